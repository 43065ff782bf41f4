package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// TestAutoPatch: with --auto-patch-tier, a sync that brings CVEs newly
// affecting the Debian cloud kernel makes a deployable patch on its own,
// from the raw fix in a later Debian source package, which a real builder
// builds and vets with no human step; the time from the sync to the patch
// waiting for review is logged. The sync that turns it on makes nothing.
func TestAutoPatch(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_VM") != "" {
		t.Skip("builds and vets livepatches in QEMU")
	}
	bin := binary(t)
	data := t.TempDir()
	if err := os.Symlink(testenv.Mirror(t), filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB="}}
	older := testenv.BundleHead + "~300"
	local.must(t, "-q", "sync", "--no-fetch", "--rev", older)
	local.must(t, "-q", "kernel", "add", "cloud", "--release", "6.1.0-50-cloud-amd64", "--source", "debian:linux-source-6.1=6.1.176-1")
	secret := map[string]string{}
	for _, role := range []string{"admin", "builder"} {
		var tok struct{ Secret string }
		json.Unmarshal([]byte(local.must(t, "token", "create", "--role", role, "--json")), &tok)
		secret[role] = tok.Secret
	}
	if code, _, errs := local.run(t, "--insecure", "serve", "--listen", "127.0.0.1:0", "--auto-patch-tier", "high"); code != 2 || !strings.Contains(errs, "--auto-patch-fixes-from") {
		t.Errorf("--auto-patch-tier without a fix source: exit %d, %q", code, errs)
	}
	addr, _ := local.serve(t, "--insecure", "--auto-patch-tier", "medium", "--auto-patch-fixes-from", "debian:linux-source-6.1=6.1.187-1", "--auto-patch-limit", "1")
	as := func(role string) proc {
		return proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr, "TUXTAPE_TOKEN=" + secret[role]},
			pre: []string{"--insecure"}}
	}
	admin := as("admin")
	as("builder").startBuilder(t, userCache(t), "--name", "auto-builder", "--kind", "patch-build")
	// It first records what affects the kernel already, and makes nothing
	// of it.
	waitEvent(t, admin, "auto-patch.following", 2*time.Minute)
	if ps := admin.must(t, "patch", "list", "--json"); strings.TrimSpace(ps) != "[]" {
		t.Fatalf("turning automatic patching on made patches: %s", ps)
	}
	start := time.Now()
	admin.must(t, "sync", "--no-fetch", "--rev", testenv.BundleHead)
	var made []struct{ ID, CVE, State, Author string }
	deadline := time.Now().Add(10 * time.Minute)
	for {
		json.Unmarshal([]byte(admin.must(t, "patch", "list", "--json")), &made)
		if len(made) > 0 && made[0].State != "building" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no automatic patch reached a verdict within 10 min of the sync: %+v\n%s", made, admin.must(t, "events", "--kind", "autopatch."))
		}
		time.Sleep(time.Second)
	}
	took := time.Since(start)
	if len(made) != 1 || made[0].Author != "auto-patch" {
		t.Fatalf("automatic patches: %+v (limit 1)", made)
	}
	v := admin.patch(t, made[0].ID)
	var src struct{ Revisions []struct{ Source string } }
	json.Unmarshal([]byte(admin.must(t, "patch", "show", made[0].ID, "--json")), &src)
	if !strings.Contains(src.Revisions[0].Source, "debian:linux-source-6.1=6.1.187-1") {
		t.Errorf("the automatic patch's fix came from %q", src.Revisions[0].Source)
	}
	t.Logf("sync → %s of %s %s in %v (no human step)", v.State, made[0].CVE, map[string]string{"vetted": "waiting for review"}[v.State], took.Round(time.Second))
	if ev := admin.must(t, "events", "--kind", "autopatch."); !strings.Contains(ev, "limit of 1") {
		t.Logf("no CVE was skipped for the limit:\n%s", ev)
	}
}
