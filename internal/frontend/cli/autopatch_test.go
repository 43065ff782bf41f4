package cli_test

import (
	"encoding/json"
	"fmt"
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
	// The CNA's commit of 2026-07-25 that assigned CVE-2026-64317 among
	// 259 others: 63 of them newly affect the cloud kernel at tier medium
	// or above, their fixes of every kind (the third by priority loads).
	const batch = "3c39e41a6"
	local.must(t, "-q", "sync", "--no-fetch", "--rev", batch+"~1")
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
	const limit = 4
	addr, _ := local.serve(t, "--insecure", "--auto-patch-tier", "medium", "--auto-patch-fixes-from", "debian:linux-source-6.1=6.1.187-1", "--auto-patch-limit", fmt.Sprint(limit))
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
	admin.must(t, "sync", "--no-fetch", "--rev", batch)
	// Each verdict's time since the sync; the builder takes the patches
	// one at a time, highest priority first.
	var made []struct{ ID, CVE, State, Author string }
	seen := map[string]time.Duration{}
	var firstVetted time.Duration
	deadline := time.Now().Add(20 * time.Minute)
	for {
		json.Unmarshal([]byte(admin.must(t, "patch", "list", "--json")), &made)
		done := 0
		for _, p := range made {
			if p.State == "building" {
				continue
			}
			done++
			if _, ok := seen[p.ID]; !ok {
				seen[p.ID] = time.Since(start)
				t.Logf("sync → %s %s after %v", p.CVE, p.State, seen[p.ID].Round(time.Second))
				if p.State == "vetted" && firstVetted == 0 {
					firstVetted = seen[p.ID]
				}
			}
		}
		if len(made) == limit && done == limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("automatic patches 20 min after the sync: %+v\n%s", made, admin.must(t, "events", "--kind", "autopatch."))
		}
		time.Sleep(time.Second)
	}
	for _, p := range made {
		if p.Author != "auto-patch" {
			t.Errorf("automatic patch %s by %q", p.ID, p.Author)
		}
		var src struct{ Revisions []struct{ Source string } }
		json.Unmarshal([]byte(admin.must(t, "patch", "show", p.ID, "--json")), &src)
		if !strings.Contains(src.Revisions[0].Source, "debian:linux-source-6.1=6.1.187-1") {
			t.Errorf("the automatic patch's fix came from %q", src.Revisions[0].Source)
		}
	}
	if firstVetted > 0 {
		t.Logf("sync → the first vetted patch waiting for review: %v (no human step; goal 5 min)", firstVetted.Round(time.Second))
	} else {
		t.Logf("none of the %d automatic patches was vetted (refused or failed: see above)", limit)
	}
	if ev := admin.must(t, "events", "--kind", "autopatch."); !strings.Contains(ev, fmt.Sprintf("limit of %d", limit)) {
		t.Logf("no CVE was skipped for the limit:\n%s", ev)
	}
}
