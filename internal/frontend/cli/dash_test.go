package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/testenv"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// TestDash runs `tuxtape dash` in a real terminal (tmux) against the real
// server on the synced CNA bundle: it walks queue → search → CVE → back →
// fleet → machine → events with keys and reads what the screen shows, then
// adds a kernel through the CLI while the dashboard runs and watches the
// event arrive and the kernels reload. A second run on TERM=dumb must
// show no colour. With TUXTAPE_DASH_SCREENS=FILE it writes each page's
// screen there (the README's captures).
func TestDash(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the CNA bundle, runs the server and the dashboard in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.Missing(t, "tmux is not installed (apt-get install tmux): %v", err)
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
		"--kconfig", tinyConfig)
	certs := filepath.Join(data, "certs")
	local.must(t, "certs", "init", "--out", certs, "--host", "127.0.0.1")
	secret := map[string]string{}
	for _, tc := range [][]string{{"admin"}, {"reviewer"}, {"agent", "--machine", "host-1"}} {
		var tok struct{ Secret string }
		if err := json.Unmarshal([]byte(local.must(t, append([]string{"token", "create", "--json", "--role"}, tc...)...)), &tok); err != nil || tok.Secret == "" {
			t.Fatalf("token create %v: %v", tc, err)
		}
		secret[tc[0]] = tok.Secret
	}
	addr, _ := local.serve(t, "--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem"))
	remoteEnv := func(who string) []string {
		return []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=" + addr,
			"TUXTAPE_CA=" + filepath.Join(certs, "ca.pem"), "TUXTAPE_TOKEN=" + secret[who]}
	}
	reviewer, admin := proc{bin: bin, env: remoteEnv("reviewer")}, proc{bin: bin, env: remoteEnv("admin")}

	// A machine for the fleet page, with a kernel log line that would
	// retitle the terminal.
	c, err := api.Dial(addr, api.ClientOptions{Token: secret["agent"], CA: filepath.Join(certs, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.Fleet().Heartbeat(ctx, &pb.HeartbeatRequest{MachineId: "host-1", Hostname: "web-1.example", Kernel: "6.1.176-tiny",
		AgentVersion: "0.1", Ring: "canary", State: "ok", Livepatch: &pb.Livepatch{Level: "tt-6.1.176-1", Cves: []string{"CVE-2025-21703"},
			Patches: []*pb.LoadedPatch{{Name: "livepatch_tt_6_1_176_1", Version: "1", Enabled: true}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fleet().Report(ctx, &pb.ReportRequest{MachineId: "host-1", Events: []*pb.Event{{Kind: "bug_detected", Patch: "livepatch_tt_6_1_176_1",
		Detail: "oops after apply", Log: []string{"BUG: kernel NULL pointer dereference \x1b]0;pwned\x07"}}}}); err != nil {
		t.Fatal(err)
	}

	screens := &strings.Builder{}
	// From the stream's first event: the feed shows the sync, the kernel
	// and the machine's report before the kernel added below.
	tm := startTmux(t, 120, 40, remoteEnv("reviewer"), bin, "dash", "--profile", "none", "--events-after", "0")

	// The queue: the tiny kernel's CVEs that need action, by priority.
	queue := tm.waitFor(t, "the queue", regexp.MustCompile(`› CVE-\d{4}-\d+`))
	if !strings.Contains(queue, "kernel tiny · needs action") || !strings.Contains(queue, "[1 Queue]") {
		t.Errorf("queue screen:\n%s", queue)
	}
	top := regexp.MustCompile(`› (CVE-\d{4}-\d+)`).FindStringSubmatch(queue)[1]
	var want []struct{ ID string }
	if err := json.Unmarshal([]byte(reviewer.must(t, "cve", "list", "--kernel", "tiny", "--profile", "none", "--affected", "--sort", "priority", "--limit", "1", "--json")), &want); err != nil || len(want) != 1 {
		t.Fatalf("cve list: %v", err)
	}
	if top != want[0].ID {
		t.Errorf("the queue's first CVE is %s; cve list --sort priority says %s", top, want[0].ID)
	}
	fmt.Fprintf(screens, "## Queue\n\n%s\n", queue)

	// Search: / opens the line, enter applies it.
	tm.keys(t, "/")
	tm.waitFor(t, "the search line", regexp.MustCompile(`search: `))
	tm.literal(t, "netem")
	tm.keys(t, "Enter")
	found := tm.waitFor(t, "the search's answer", regexp.MustCompile(`"netem" · \d+ shown`))
	id := regexp.MustCompile(`› (CVE-\d{4}-\d+)`).FindStringSubmatch(found)
	if id == nil {
		t.Fatalf("no CVE for netem:\n%s", found)
	}
	fmt.Fprintf(screens, "## Queue, searching \"netem\"\n\n%s\n", found)
	var cve struct{ Title string }
	if err := json.Unmarshal([]byte(reviewer.must(t, "cve", "show", id[1], "--json")), &cve); err != nil {
		t.Fatal(err)
	}

	// The CVE's page: its title, verdict for the kernel, priority.
	tm.keys(t, "Enter")
	page := tm.waitFor(t, "the CVE page", regexp.MustCompile(`Kernel tiny\n`))
	for _, s := range []string{"[2 CVE]", id[1], cve.Title[:min(len(cve.Title), 60)], "Priority", "CVSS 3.1", "Description"} {
		if !strings.Contains(page, s) {
			t.Errorf("CVE page lacks %q:\n%s", s, page)
		}
	}
	fmt.Fprintf(screens, "## CVE\n\n%s\n", page)
	tm.keys(t, "Escape")
	tm.waitFor(t, "back on the queue", regexp.MustCompile(`\[1 Queue\][^\n]*\n[^\n]*"netem"`))

	// The fleet and a machine, its kernel log escaped.
	tm.keys(t, "3")
	fl := tm.waitFor(t, "the fleet", regexp.MustCompile(`› host-1 +web-1.example`))
	fmt.Fprintf(screens, "## Fleet\n\n%s\n", fl)
	tm.keys(t, "Enter")
	ma := tm.waitFor(t, "the machine", regexp.MustCompile(`bug_detected`))
	if !strings.Contains(ma, `\e]0;pwned\x07`) || !strings.Contains(ma, "tt-6.1.176-1") {
		t.Errorf("machine page:\n%s", ma)
	}
	fmt.Fprintf(screens, "## Machine\n\n%s\n", ma)
	tm.keys(t, "Escape")

	tm.keys(t, "4")
	ks := tm.waitFor(t, "the kernels", regexp.MustCompile(`› tiny +6\.1\.176-tiny`))
	fmt.Fprintf(screens, "## Kernels\n\n%s\n", ks)

	// Events: a kernel added while the dashboard runs shows up, and the
	// kernels page has it without a key pressed.
	tm.keys(t, "5")
	tm.waitFor(t, "the event feed", regexp.MustCompile(`fleet\.bug_detected +host-1`))
	admin.must(t, "kernel", "add", "tiny2", "--release", "6.1.176-tiny2", "--version", "6.1.176", "--source", kernelURL, "--kconfig", tinyConfig)
	start := time.Now()
	tm.waitFor(t, "kernel.added on the events page", regexp.MustCompile(`kernel\.added +tiny2`))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("kernel.added took %v to show", d)
	}
	// The capture for the README once the reloads it caused are done.
	ev := tm.waitFor(t, "the feed settled", regexp.MustCompile(`(?m)^following the event stream[^\n]*\n[^\n]*kernel\.added +tiny2`))
	fmt.Fprintf(screens, "## Events\n\n%s\n", ev)
	tm.keys(t, "4")
	tm.waitFor(t, "tiny2 on the kernels page", regexp.MustCompile(`tiny2 +6\.1\.176-tiny2`))
	tm.keys(t, "1", "K")
	tm.waitFor(t, "the queue for tiny2", regexp.MustCompile(`kernel tiny2 · needs action[^\n]*shown`))

	tm.keys(t, "q")
	if code := tm.exit(t); code != "0" {
		t.Errorf("dash exited %s after q", code)
	}

	// A dumb terminal gets no colour and no attributes, only text.
	dumb := startTmux(t, 80, 24, remoteEnv("reviewer"), "env", "TERM=dumb", bin, "dash", "--profile", "none")
	dumb.waitFor(t, "the queue on TERM=dumb", regexp.MustCompile(`› CVE-\d{4}-\d+`))
	if raw := dumb.captureEscapes(t); strings.Contains(raw, "\x1b[") {
		t.Errorf("TERM=dumb: the screen has escape sequences:\n%q", raw)
	}
	small := dumb.capture(t)
	fmt.Fprintf(screens, "## Queue at 80×24 on TERM=dumb\n\n%s\n", small)
	dumb.keys(t, "q")
	dumb.exit(t)

	if out := os.Getenv("TUXTAPE_DASH_SCREENS"); out != "" {
		if err := os.WriteFile(out, []byte(screens.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDashRefusals: the dashboard is a server's; without one, or with a
// bad flag, it says what to do before it takes the terminal.
func TestDashRefusals(t *testing.T) {
	t.Setenv("TUXTAPE_CONFIG", "")
	t.Setenv("TUXTAPE_SERVER", "")
	t.Setenv("TUXTAPE_DATA_DIR", t.TempDir())
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"dash"}, "no server"},
		{[]string{"--server", "127.0.0.1:1", "--insecure", "dash", "--profile", "best"}, "--profile"},
	} {
		if code, _, errs := run(t, tc.args...); code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("tuxtape %v: exit %d, %q; want exit 2 saying %q", tc.args, code, errs, tc.msg)
		}
	}
}

// tmuxSession is one dashboard in its own tmux server (a private socket:
// nothing else's sessions are touched).
type tmuxSession struct {
	sock, exitFile string
}

func startTmux(t *testing.T, w, h int, env []string, bin string, args ...string) *tmuxSession {
	t.Helper()
	dir := t.TempDir()
	s := &tmuxSession{sock: filepath.Join(dir, "tmux.sock"), exitFile: filepath.Join(dir, "exit")}
	// The shell records the exit code, then waits so the last screen can
	// still be read.
	script := fmt.Sprintf(`%s 2>%s; echo $? > %s; sleep 60`, shellQuote(append([]string{bin}, args...)), filepath.Join(dir, "stderr"), s.exitFile)
	cmdArgs := []string{"-S", s.sock, "-f", "/dev/null", "new-session", "-d", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h)}
	for _, e := range env {
		cmdArgs = append(cmdArgs, "-e", e)
	}
	cmdArgs = append(cmdArgs, "sh", "-c", script)
	if out, err := exec.Command("tmux", cmdArgs...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "stderr")); err == nil && len(b) > 0 {
			t.Logf("dash stderr: %s", b)
		}
		exec.Command("tmux", "-S", s.sock, "kill-server").Run()
	})
	return s
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func (s *tmuxSession) tmux(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// keys sends tmux key names (Enter, Escape) or single characters.
func (s *tmuxSession) keys(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		s.tmux(t, "send-keys", k)
		time.Sleep(100 * time.Millisecond) // one key per frame, as a person types
	}
}

// literal types text as it is.
func (s *tmuxSession) literal(t *testing.T, text string) {
	t.Helper()
	s.tmux(t, "send-keys", "-l", text)
}

func (s *tmuxSession) capture(t *testing.T) string {
	t.Helper()
	return s.tmux(t, "capture-pane", "-p")
}

func (s *tmuxSession) captureEscapes(t *testing.T) string {
	t.Helper()
	return s.tmux(t, "capture-pane", "-p", "-e")
}

// waitFor reads the screen until re matches it (20 s at most).
func (s *tmuxSession) waitFor(t *testing.T, what string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen := s.capture(t)
		if re.MatchString(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the screen never matched %s:\n%s", what, re, screen)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// exit waits for the dashboard to end and returns its exit code.
func (s *tmuxSession) exit(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(s.exitFile); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("dash did not exit within 10 s:\n%s", s.capture(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
