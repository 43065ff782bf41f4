package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// binary builds the real tuxtape binary for one test.
func binary(t *testing.T) string {
	t.Helper()
	bin, err := testenv.BuildTuxtape(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

type proc struct {
	bin string
	env []string
	pre []string // arguments before every command's (--insecure)
}

func (p proc) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(p.bin, append(append([]string{}, p.pre...), args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func (p proc) must(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := p.run(t, args...)
	if code != 0 {
		t.Fatalf("tuxtape %v: exit %d: %s", args, code, errs)
	}
	return out
}

// serve starts `tuxtape serve` and returns its address and a stop func
// that sends SIGTERM and checks the clean exit.
func (p proc) serve(t *testing.T, args ...string) (string, func()) {
	addr, _, stop := p.serveWithMetrics(t, args...)
	return addr, stop
}

// serveWithMetrics is serve, also returning the metrics address when
// --metrics-listen was given.
func (p proc) serveWithMetrics(t *testing.T, args ...string) (string, string, func()) {
	t.Helper()
	cmd, addr, metrics, lines := p.startServe(t, args...)
	var rest bytes.Buffer
	copied := make(chan struct{})
	go func() {
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		close(copied)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { <-copied; done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil || !strings.Contains(rest.String(), "stopped") {
				t.Errorf("serve after SIGTERM: %v, stderr %q", err, rest.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("serve did not stop within 30 s of SIGTERM")
		}
	}
	t.Cleanup(stop)
	return addr, metrics, stop
}

// A kernel source the server never fetches in these tests (adding a
// kernel records it; building fetches it).
const kernelURL = "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.176.tar.xz"

var tinyConfig = filepath.Join("testdata", "tinyconfig-x86_64.config")

// TestServer runs the real server and CLI binaries: TLS and mutual TLS
// with certificates from `certs init`, tokens of each role, and the same
// answers remotely as locally.
func TestServer(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the CNA bundle and runs the server")
	}
	bin := binary(t)
	mirror := testenv.Mirror(t)
	data := t.TempDir()
	if err := os.Symlink(mirror, filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN="}}
	local.must(t, "-q", "sync", "--no-fetch", "--rev", testenv.BundleHead)
	local.must(t, "kernel", "add", "tiny", "--release", "6.1.176-tiny", "--version", "6.1.176", "--source", "/srv/linux-6.1.176.tar.xz",
		"--kconfig", filepath.Join("testdata", "tinyconfig-x86_64.config"))
	certs := filepath.Join(data, "certs")
	local.must(t, "certs", "init", "--out", certs, "--host", "127.0.0.1", "--client", "cli")
	secret := map[string]string{}
	for _, tc := range [][]string{{"admin"}, {"reviewer"}, {"agent", "--machine", "host-1"}} {
		var tok struct{ Secret string }
		if err := json.Unmarshal([]byte(local.must(t, append([]string{"token", "create", "--json", "--role"}, tc...)...)), &tok); err != nil || tok.Secret == "" {
			t.Fatalf("token create %v: %v", tc, err)
		}
		secret[tc[0]] = tok.Secret
	}

	addr, metrics, stop := local.serveWithMetrics(t, "--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem"),
		"--metrics-listen", "127.0.0.1:0", "--log-format", "json")
	remote := func(who string) proc {
		return proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=" + addr,
			"TUXTAPE_CA=" + filepath.Join(certs, "ca.pem"), "TUXTAPE_TOKEN=" + secret[who]}}
	}
	admin := remote("admin")

	// The same answers, byte for byte.
	for _, args := range [][]string{
		{"cve", "list", "--kernel", "tiny", "--profile", "none", "--json"},
		{"cve", "list", "--kernel", "tiny", "--profile", "none", "--affected", "--sort", "priority", "--limit", "25"},
		{"cve", "list", "--file", "net/sched", "--min-cvss", "7", "--since", "2026-08-01"},
		{"cve", "list", "--kernel", "tiny", "--profile", "none", "--tier", "medium", "--text", "NET/", "--sort", "priority", "--json"},
		{"cve", "list", "--tier", "high", "--text", "use-after-free"},
		{"cve", "show", "CVE-2025-21703", "--kernel", "tiny", "--profile", "none", "--json"},
		{"cve", "show", "CVE-2024-26581"},
		{"kernel", "list", "--json"},
		{"kernel", "show", "tiny"},
	} {
		want := local.must(t, args...)
		got := remote("reviewer").must(t, args...)
		if got != want {
			t.Errorf("tuxtape %v: remote answer differs from local (%d vs %d bytes)", args, len(got), len(want))
		}
	}
	var lv, rv struct{ Statements []json.RawMessage }
	json.Unmarshal([]byte(local.must(t, "vex", "--kernel", "tiny", "--profile", "none")), &lv)
	json.Unmarshal([]byte(admin.must(t, "vex", "--kernel", "tiny", "--profile", "none")), &rv)
	if len(lv.Statements) < 14000 || len(rv.Statements) != len(lv.Statements) {
		t.Errorf("vex: %d statements remotely, %d locally", len(rv.Statements), len(lv.Statements))
	}

	// Refusals, with the exit code and a message that says what to do.
	for _, tc := range []struct {
		who  string
		args []string
		code int
		msg  string
	}{
		{"", []string{"cve", "list"}, 1, "Unauthenticated"},
		{"agent", []string{"cve", "list"}, 1, "PermissionDenied"},
		{"reviewer", []string{"token", "list"}, 1, "PermissionDenied"},
		{"reviewer", []string{"kernel", "rm", "tiny"}, 1, "PermissionDenied"},
		{"admin", []string{"cve", "show", "CVE-1999-0001"}, 3, "NotFound"},
		{"admin", []string{"cve", "show", "bogus"}, 2, "not a CVE ID"},
		{"admin", []string{"cve", "list", "--status", "fixed"}, 2, "--status"},
		{"reviewer", []string{"sync", "--no-fetch"}, 1, "PermissionDenied"},
		{"admin", []string{"sync", "--source", "/elsewhere"}, 2, "own source"},
		{"admin", []string{"sync", "--announce", "-"}, 2, "not through --server"},
		{"admin", []string{"kernel", "add", "x", "--release", "6.1.176-x", "--version", "6.1.176", "--source", "/x.tar.xz", "--kconfig", tinyConfig}, 2, "server's machine"},
		{"reviewer", []string{"kernel", "add", "x", "--release", "6.1.176-x", "--version", "6.1.176", "--source", kernelURL, "--kconfig", tinyConfig}, 1, "PermissionDenied"},
		{"admin", []string{"kernel", "add", "tiny", "--release", "6.1.176-x", "--version", "6.1.176", "--source", kernelURL, "--kconfig", tinyConfig}, 2, "already exists"},
		{"admin", []string{"cve", "list", "--tier", "urgent"}, 2, "--tier"},
		{"agent", []string{"events"}, 1, "PermissionDenied"},
		{"admin", []string{"events", "--after", "-2"}, 2, "after"},
		{"admin", []string{"cve", "list", "--kev", "x.json"}, 2, "the server's"},
	} {
		code, _, errs := remote(tc.who).run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: tuxtape %v: exit %d, %q; want exit %d saying %q", tc.who, tc.args, code, errs, tc.code, tc.msg)
		}
	}
	// A kernel added through the server is the server's: audited with
	// the caller's token, in the event stream, and shown as locally.
	follow := exec.Command(bin, "events", "--follow", "--after", "-1", "--json")
	follow.Env = append(os.Environ(), remote("reviewer").env...)
	followOut, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer follow.Process.Kill()
	time.Sleep(500 * time.Millisecond) // the follower has read where the stream stands
	admin.must(t, "kernel", "add", "tiny2", "--release", "6.1.176-tiny2", "--version", "6.1.176", "--source", kernelURL, "--kconfig", tinyConfig)
	if got, want := remote("reviewer").must(t, "kernel", "show", "tiny2", "--json"), local.must(t, "kernel", "show", "tiny2", "--json"); got != want {
		t.Errorf("kernel added remotely: remote show\n%s\nlocal\n%s", got, want)
	}
	admin.must(t, "kernel", "rm", "tiny2")
	followed := make(chan []string, 1)
	go func() {
		var kinds []string
		sc := bufio.NewScanner(followOut)
		for len(kinds) < 2 && sc.Scan() {
			var e struct{ Kind, Subject, Actor string }
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Subject == "tiny2" && e.Actor != "" && e.Actor != "local" {
				kinds = append(kinds, e.Kind)
			}
		}
		followed <- kinds
	}()
	select {
	case kinds := <-followed:
		if strings.Join(kinds, " ") != "kernel.added kernel.removed" {
			t.Errorf("events --follow saw %v for tiny2", kinds)
		}
	case <-time.After(20 * time.Second):
		t.Error("events --follow did not see tiny2 added and removed within 20 s")
	}
	if log := admin.must(t, "audit", "list", "--json"); !strings.Contains(log, `"kernel.add"`) || !strings.Contains(log, `"kernel.rm"`) {
		t.Errorf("kernel changes are not in the audit log:\n%s", log)
	}

	// A sync runs on the server, from its own source and mirror.
	var sum struct{ Mode, Commit string }
	if err := json.Unmarshal([]byte(admin.must(t, "sync", "--no-fetch", "--rev", testenv.BundleHead, "--json")), &sum); err != nil || sum.Mode != "up-to-date" || sum.Commit != testenv.BundleHead {
		t.Errorf("sync through the server: %+v, %v", sum, err)
	}
	if got, want := remote("reviewer").must(t, "sync", "status", "--json"), local.must(t, "sync", "status", "--json"); got != want {
		t.Errorf("sync status: remote\n%s\nlocal\n%s", got, want)
	}
	if ev := remote("reviewer").must(t, "events", "--kind", "sync."); !strings.Contains(ev, "sync.started") || !strings.Contains(ev, "sync.finished") || !strings.Contains(ev, "up-to-date") {
		t.Errorf("events --kind sync.:\n%s", ev)
	}
	// A revoked token stops working at once; the audit log says who did it.
	var made struct {
		ID     string
		Secret string
	}
	if err := json.Unmarshal([]byte(admin.must(t, "token", "create", "--role", "reviewer", "--json")), &made); err != nil {
		t.Fatal(err)
	}
	secret["temp"] = made.Secret
	remote("temp").must(t, "kernel", "list")
	admin.must(t, "token", "revoke", made.ID)
	if code, _, errs := remote("temp").run(t, "kernel", "list"); code != 1 || !strings.Contains(errs, "Unauthenticated") {
		t.Errorf("revoked token: exit %d, %q", code, errs)
	}
	audit := admin.must(t, "audit", "list", "--limit", "2")
	if !strings.Contains(audit, "token.revoke") || !strings.Contains(audit, "127.0.0.1:") {
		t.Errorf("audit list:\n%s", audit)
	}
	// The metrics count calls by method and code, refusals included.
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`tuxtape_rpc_calls_total{code="PermissionDenied",method="/tuxtape.v1.TokenService/ListTokens"} 1`,
		`tuxtape_rpc_calls_total{code="OK",method="/tuxtape.v1.CVEService/ListCVEs"}`,
		`tuxtape_rpc_duration_seconds_bucket{method="/tuxtape.v1.CVEService/GetCVE"`,
		`tuxtape_sync_runs_total{result="up-to-date"} 1`,
		`tuxtape_sync_duration_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Plain text against the TLS server fails cleanly.
	plain := remote("admin")
	plain.env = append(plain.env, "TUXTAPE_CA=")
	if code, _, errs := plain.run(t, "--insecure", "kernel", "list"); code != 1 || !strings.Contains(errs, "Unavailable") || strings.Contains(errs, "panic") {
		t.Errorf("plain text to a TLS server: exit %d, %q", code, errs)
	}
	stop()

	// Mutual TLS: no client certificate is refused in the handshake.
	addr2, _ := local.serve(t, "--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem"), "--client-ca", filepath.Join(certs, "ca.pem"))
	m := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=" + addr2,
		"TUXTAPE_CA=" + filepath.Join(certs, "ca.pem"), "TUXTAPE_TOKEN=" + secret["admin"]}}
	if code, _, errs := m.run(t, "kernel", "list"); code != 1 || !strings.Contains(errs, "client certificate") {
		t.Errorf("mutual TLS without a client certificate: exit %d, %q", code, errs)
	}
	m.must(t, "--cert", filepath.Join(certs, "client-cli.pem"), "--key", filepath.Join(certs, "client-cli-key.pem"), "kernel", "list")

	// Plain TCP is refused anywhere but loopback.
	if code, _, errs := local.run(t, "--insecure", "serve", "--listen", "0.0.0.0:0"); code != 2 || !strings.Contains(errs, "loopback") {
		t.Errorf("serve --insecure on 0.0.0.0: exit %d, %q", code, errs)
	}
	if code, _, errs := local.run(t, "serve", "--listen", "127.0.0.1:0"); code != 2 || !strings.Contains(errs, "--tls-cert") {
		t.Errorf("serve without TLS files: exit %d, %q", code, errs)
	}
}

// TestReplicas runs two servers on one PostgreSQL database: both answer,
// a token made through one works on the other (nothing that matters lives
// in one server's memory), and a revocation reaches the other within the
// token cache's lifetime.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two servers")
	}
	var dsn string
	for _, b := range testenv.Backends(t) {
		if b.Name == "postgres" {
			dsn = b.DSN
		}
	}
	if dsn == "" {
		t.Skip("no PostgreSQL (make test starts one)")
	}
	bin := binary(t)
	dir := t.TempDir()
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + dir, "TUXTAPE_DB=" + dsn, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN="}}
	certs := filepath.Join(dir, "certs")
	local.must(t, "certs", "init", "--out", certs, "--host", "127.0.0.1")
	var admin struct{ Secret string }
	if err := json.Unmarshal([]byte(local.must(t, "token", "create", "--role", "admin", "--json")), &admin); err != nil {
		t.Fatal(err)
	}
	tls := []string{"--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem")}
	// Each replica has its own data directory (as on its own machine) and
	// syncs every few seconds from the bundle: the lease makes them take
	// turns.
	const interval = 3 * time.Second
	replica := func(name string) string {
		data := t.TempDir()
		if err := os.Symlink(testenv.Mirror(t), filepath.Join(data, "vulns.git")); err != nil {
			t.Fatal(err)
		}
		p := local
		p.env = append(append([]string{}, local.env...), "TUXTAPE_DATA_DIR="+data)
		addr, _ := p.serve(t, append([]string{"--sync-interval", interval.String(), "--sync-source", testenv.Bundle(t), "--replica-id", name}, tls...)...)
		return addr
	}
	a, b := replica("a"), replica("b")
	client := func(addr, token string) proc {
		return proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr,
			"TUXTAPE_CA=" + filepath.Join(certs, "ca.pem"), "TUXTAPE_TOKEN=" + token}}
	}
	var made struct {
		ID     string
		Secret string
	}
	if err := json.Unmarshal([]byte(client(a, admin.Secret).must(t, "token", "create", "--role", "reviewer", "--json")), &made); err != nil {
		t.Fatal(err)
	}
	client(b, made.Secret).must(t, "kernel", "list")
	client(a, made.Secret).must(t, "kernel", "list")
	client(b, admin.Secret).must(t, "token", "revoke", made.ID)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, errs := client(a, made.Secret).run(t, "kernel", "list")
		if code == 1 && strings.Contains(errs, "Unauthenticated") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token revoked on one replica still works on the other after 15 s: exit %d, %q", code, errs)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Both replicas wrote the same audit log.
	if log := client(a, admin.Secret).must(t, "audit", "list", "--json"); !strings.Contains(log, `"token.revoke"`) || !strings.Contains(log, `"token.create"`) {
		t.Errorf("audit log through replica a:\n%s", log)
	}

	// The periodic sync: runs never overlap, one replica at a time, and a
	// run starts no sooner than the interval after the last one ended,
	// whichever replica ran it.
	type ev struct {
		Seq         int64
		At          time.Time
		Kind, Actor string
		Detail      string
	}
	var runs []ev
	deadline = time.Now().Add(90 * time.Second)
	for {
		runs = runs[:0]
		for _, line := range strings.Split(strings.TrimSpace(client(b, admin.Secret).must(t, "events", "--kind", "sync.", "--json")), "\n") {
			var e ev
			if line != "" && json.Unmarshal([]byte(line), &e) == nil {
				runs = append(runs, e)
			}
		}
		if finished := strings.Count(fmt.Sprint(runs), "sync.finished"); finished >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	var last *ev
	holders := map[string]bool{}
	for i := range runs {
		e := &runs[i]
		switch e.Kind {
		case "sync.started":
			if last != nil && last.Kind == "sync.started" {
				t.Errorf("sync started by %s while %s's run was going (seq %d)", e.Actor, last.Actor, e.Seq)
			}
			if last != nil && last.Kind == "sync.finished" && e.At.Sub(last.At) < interval-100*time.Millisecond {
				t.Errorf("sync started by %s %v after the last ended; the interval is %v", e.Actor, e.At.Sub(last.At), interval)
			}
			holders[e.Actor] = true
		case "sync.finished":
			if last == nil || last.Kind != "sync.started" || last.Actor != e.Actor {
				t.Errorf("sync finished by %s without its start (seq %d)", e.Actor, e.Seq)
			}
		case "sync.failed":
			t.Errorf("periodic sync failed: %s", e.Detail)
		}
		last = e
	}
	if n := strings.Count(fmt.Sprint(runs), "sync.finished"); n < 3 {
		t.Errorf("%d periodic syncs finished within 90 s at a %v interval: %+v", n, interval, runs)
	}
	t.Logf("periodic syncs ran on %v", holders)
}

// startServe starts `tuxtape serve` on a loopback port and reads its
// first lines: where it serves, and its metrics address.
func (p proc) startServe(t *testing.T, args ...string) (*exec.Cmd, string, string, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(p.bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addr, metrics := "", ""
	for lines.Scan() {
		if m, ok := strings.CutPrefix(lines.Text(), "metrics on http://"); ok {
			metrics = strings.TrimSuffix(m, "/metrics")
		}
		if a, ok := strings.CutPrefix(lines.Text(), "serving on "); ok {
			addr, _, _ = strings.Cut(a, " ")
			break
		}
		t.Logf("serve: %s", lines.Text())
	}
	if addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("serve did not say where it listens")
	}
	return cmd, addr, metrics, lines
}
