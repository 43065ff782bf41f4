package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// TestFleet runs the real binaries: an agent heartbeats and reports over
// gRPC with its own token, and `fleet list` and `fleet show` answer the
// same locally as through the server.
func TestFleet(t *testing.T) {
	bin := binary(t)
	data := t.TempDir()
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN="}}
	certs := filepath.Join(data, "certs")
	local.must(t, "certs", "init", "--out", certs, "--host", "127.0.0.1")
	secret := map[string]string{}
	for _, tc := range [][]string{{"reviewer"}, {"agent", "--machine", "host-1"}} {
		var tok struct{ Secret string }
		if err := json.Unmarshal([]byte(local.must(t, append([]string{"token", "create", "--json", "--role"}, tc...)...)), &tok); err != nil || tok.Secret == "" {
			t.Fatalf("token create %v: %v", tc, err)
		}
		secret[tc[0]] = tok.Secret
	}
	addr, metrics, stop := local.serveWithMetrics(t, "--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem"),
		"--metrics-listen", "127.0.0.1:0")
	remote := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=" + addr,
		"TUXTAPE_CA=" + filepath.Join(certs, "ca.pem"), "TUXTAPE_TOKEN=" + secret["reviewer"]}}

	// The agent: a small gRPC client with its token.
	c, err := api.Dial(addr, api.ClientOptions{Token: secret["agent"], CA: filepath.Join(certs, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Fleet().Heartbeat(ctx, &pb.HeartbeatRequest{MachineId: "host-1", Hostname: "web-1.example", Kernel: "6.1.0-28-amd64",
		AgentVersion: "0.1", Ring: "canary", State: "ok", Livepatch: &pb.Livepatch{Level: "tt-6.1.119-3", Cves: []string{"CVE-2025-21703"},
			Patches: []*pb.LoadedPatch{{Name: "livepatch_tt_6_1_119_3", Version: "3", Enabled: true}}}}); err != nil {
		t.Fatal(err)
	}
	// A kernel log line that would retitle the terminal.
	if _, err := c.Fleet().Report(ctx, &pb.ReportRequest{MachineId: "host-1", Events: []*pb.Event{{Kind: "bug_detected", Patch: "livepatch_tt_6_1_119_3",
		Detail: "oops after apply", Log: []string{"BUG: kernel NULL pointer dereference \x1b]0;pwned\x07"}}}}); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"fleet", "list", "--json"},
		{"fleet", "list"},
		{"fleet", "list", "--kernel", "6.1.0-28-amd64", "--state", "ok", "--json"},
		{"fleet", "list", "--state", "stale", "--json"},
		{"fleet", "show", "host-1", "--json"},
		{"fleet", "show", "host-1"},
	} {
		want := local.must(t, args...)
		got := remote.must(t, args...)
		if got != want {
			t.Errorf("tuxtape %v: remote answer differs from local:\n%s\nlocal:\n%s", args, got, want)
		}
	}
	var ms []struct {
		ID, Hostname, State string
		Livepatch           struct{ CVEs []string }
	}
	if err := json.Unmarshal([]byte(local.must(t, "fleet", "list", "--json")), &ms); err != nil || len(ms) != 1 ||
		ms[0].ID != "host-1" || ms[0].State != "ok" || len(ms[0].Livepatch.CVEs) != 1 {
		t.Errorf("fleet list --json: %+v, %v", ms, err)
	}
	if out := local.must(t, "fleet", "list", "--state", "stale", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("no stale machine: %q", out)
	}
	show := remote.must(t, "fleet", "show", "host-1")
	if strings.Contains(show, "\x1b") || !strings.Contains(show, `\e]0;pwned\x07`) || !strings.Contains(show, "web-1.example") {
		t.Errorf("fleet show does not escape the kernel log:\n%q", show)
	}
	// The report is in the event stream, escaped on the terminal too.
	if ev := remote.must(t, "events", "--kind", "fleet."); !strings.Contains(ev, "fleet.bug_detected\thost-1") || strings.Contains(ev, "\x1b") {
		t.Errorf("events --kind fleet.:\n%q", ev)
	}
	// The metrics count the fleet by kernel and state.
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `tuxtape_fleet_machines{kernel="6.1.0-28-amd64",state="ok"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"fleet", "show", "host-2"}, 3, "not found"},
		{[]string{"fleet", "list", "--state", "dead"}, 2, "state"},
	} {
		for name, p := range map[string]proc{"local": local, "remote": remote} {
			code, _, errs := p.run(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Errorf("%s: tuxtape %v: exit %d, %q; want %d saying %q", name, tc.args, code, errs, tc.code, tc.msg)
			}
		}
	}
	stop()
}
