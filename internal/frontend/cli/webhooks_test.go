package cli_test

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/server/notify"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// receiver is a real HTTP webhook receiver on loopback that keeps the
// events whose signature checks out.
type receiver struct {
	url    string
	mu     sync.Mutex
	events []map[string]any
	bad    int
}

func newReceiver(t *testing.T, secret []byte) *receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{url: "http://" + l.Addr().String() + "/hook"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := notify.VerifyRequest(req, 0, secret)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		r.events = append(r.events, ev)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

// kinds waits until the receiver has events of every kind in want.
func (r *receiver) wait(t *testing.T, limit time.Duration, want ...string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r.mu.Lock()
		got := map[string]bool{}
		for _, e := range r.events {
			got[e["kind"].(string)] = true
		}
		all := true
		for _, k := range want {
			all = all && got[k]
		}
		events := append([]map[string]any(nil), r.events...)
		r.mu.Unlock()
		if all {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not get %v within %v: %v", want, limit, events)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWebhooks: the real server tells a real receiver, with signed
// bodies, of the CVEs a sync brings that affect a kernel at or above the
// tier; turning webhooks on sends no backlog.
func TestWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the CNA bundle under the server")
	}
	bin := binary(t)
	data := t.TempDir()
	if err := os.Symlink(testenv.Mirror(t), filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB="}}
	older := testenv.BundleHead + "~300"
	local.must(t, "-q", "sync", "--no-fetch", "--rev", older)
	local.must(t, "kernel", "add", "tiny", "--release", "6.1.176-tiny", "--version", "6.1.176", "--source", kernelURL, "--kconfig", tinyConfig)
	secret := []byte("0123456789abcdef0123456789abcdef")
	secretFile := filepath.Join(data, "hook.secret")
	os.WriteFile(secretFile, append(secret, '\n'), 0o600)
	rec := newReceiver(t, secret)
	var admin struct{ Secret string }
	json.Unmarshal([]byte(local.must(t, "token", "create", "--role", "admin", "--json")), &admin)

	// Bad webhook settings are refused before serving.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--webhook", rec.url}, "--webhook-secret-file"},
		{[]string{"--webhook", "ftp://x/", "--webhook-secret-file", secretFile}, "http(s) URL"},
		{[]string{"--webhook", rec.url, "--webhook-secret-file", secretFile, "--webhook-tier", "urgent"}, "--webhook-tier"},
	} {
		if code, _, errs := local.run(t, append([]string{"--insecure", "serve", "--listen", "127.0.0.1:0"}, tc.args...)...); code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("serve %v: exit %d, %q", tc.args, code, errs)
		}
	}

	addr, _ := local.serve(t, "--insecure", "--webhook", rec.url, "--webhook-secret-file", secretFile, "--webhook-tier", "low")
	remote := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr, "TUXTAPE_TOKEN=" + admin.Secret},
		pre: []string{"--insecure"}}
	// The dispatcher first records what affects the kernel already (no
	// backlog is sent), then says it follows the stream.
	waitEvent(t, remote, "webhooks.following", time.Minute)
	remote.must(t, "sync", "--no-fetch", "--rev", testenv.BundleHead)
	events := rec.wait(t, time.Minute, "cve_affects_kernel")
	// The kernel's source is never fetched here: its verdicts go by
	// version, as the dispatcher's did.
	newer := map[string]bool{}
	var all []struct{ ID string }
	json.Unmarshal([]byte(local.must(t, "cve", "list", "--kernel", "tiny", "--affected", "--profile", "none", "--json")), &all)
	for _, c := range all {
		newer[c.ID] = true
	}
	for _, e := range events {
		p := e["payload"].(map[string]any)
		if e["kind"] != "cve_affects_kernel" || p["kernel"] != "tiny" || !newer[p["cve"].(string)] {
			t.Errorf("a notice for a CVE that does not affect tiny: %v", e)
		}
	}
	if len(events) >= len(all) {
		t.Errorf("%d notices for %d CVEs affecting tiny: the backlog was sent", len(events), len(all))
	}
	if rec.bad != 0 {
		t.Errorf("%d requests with a bad signature", rec.bad)
	}
	t.Logf("%d CVEs newly affecting tiny were told, of %d affecting it", len(events), len(all))
}

// waitEvent waits until the server's stream holds an event of kind.
func waitEvent(t *testing.T, p proc, kind string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(p.must(t, "events", "--kind", kind), kind) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within %v", kind, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
