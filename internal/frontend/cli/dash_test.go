package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// TestDashWorkflow runs the patch workflow's pages in a real terminal
// against a real server (--require-approvals 2) and a real builder that
// vets in a VM of Debian's cloud kernel: reviewer r1 opens the corpus
// fix's CVE in the dashboard, makes a deployable patch of the fix file
// (p, the path typed on the prompt line), and watches the build-and-vet
// job's log follow live until the patch is vetted; reviewer r2, in a
// second dashboard, finds it on the review page with the two-person rule
// shown, approves it with a comment typed there, and the CLI (patch show
// --json) reads the approval and the comment back from the server. With
// TUXTAPE_DASH_WORKFLOW_SCREENS=FILE it writes each page's screen there.
func TestDashWorkflow(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_VM") != "" {
		t.Skip("builds a livepatch and boots the kernel in QEMU, runs the dashboard in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.Missing(t, "tmux is not installed (apt-get install tmux): %v", err)
	}
	bin := binary(t)
	data := t.TempDir()
	if err := os.Symlink(testenv.Mirror(t), filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB="}}
	local.must(t, "-q", "sync", "--no-fetch", "--rev", testenv.BundleHead)
	local.must(t, "-q", "kernel", "add", "cloud", "--release", "6.1.0-50-cloud-amd64", "--source", "debian:linux-source-6.1=6.1.176-1")
	type token struct{ ID, Secret string }
	tok := map[string]token{}
	for _, who := range []string{"admin", "builder", "r1", "r2", "r3"} {
		role := who
		if strings.HasPrefix(who, "r") {
			role = "reviewer"
		}
		var tk token
		if err := json.Unmarshal([]byte(local.must(t, "token", "create", "--role", role, "--json")), &tk); err != nil || tk.Secret == "" {
			t.Fatalf("token create %s: %v", who, err)
		}
		tok[who] = tk
	}
	addr, _ := local.serve(t, "--insecure", "--require-approvals", "2")
	env := func(who string) []string {
		return []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr, "TUXTAPE_TOKEN=" + tok[who].Secret}
	}
	as := func(who string) proc { return proc{bin: bin, env: env(who), pre: []string{"--insecure"}} }
	as("builder").startBuilder(t, userCache(t), "--name", "vm-builder", "--kind", "patch-build")
	fix := filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-64317.patch")
	screens := &strings.Builder{}

	// r1 makes the patch from the CVE's page.
	tm := startTmux(t, 120, 40, env("r1"), bin, "--insecure", "dash", "--profile", "none")
	tm.waitFor(t, "the queue", regexp.MustCompile(`kernel cloud · needs action`))
	tm.keys(t, "a", "/")
	tm.literal(t, "CVE-2026-64317")
	tm.keys(t, "Enter")
	tm.waitFor(t, "the CVE in the queue", regexp.MustCompile(`› CVE-2026-64317`))
	tm.keys(t, "Enter")
	tm.waitFor(t, "the CVE page", regexp.MustCompile(`Kernel cloud\n`))
	tm.keys(t, "p")
	tm.waitFor(t, "the fix prompt", regexp.MustCompile(`fix for CVE-2026-64317 on cloud: `))
	fmt.Fprintf(screens, "## Patch: no patch yet, the fix file asked for\n\n%s\n", tm.capture(t))
	tm.literal(t, fix)
	tm.keys(t, "Enter")
	created := tm.waitFor(t, "the patch created", regexp.MustCompile(`patch [0-9a-f]{16} · CVE-2026-64317 on cloud · building · revision 1`))
	id := regexp.MustCompile(`patch ([0-9a-f]{16}) ·`).FindStringSubmatch(created)[1]
	// The build-and-vet job's log, live: lines arrive while it runs.
	building := tm.waitWithin(t, "the build log following", regexp.MustCompile(`build log · job [0-9a-f]{16} · [1-9]\d* lines · following`), 5*time.Minute)
	fmt.Fprintf(screens, "## Patch: building, the job's log followed\n\n%s\n", building)
	tm.waitWithin(t, "the patch vetted", regexp.MustCompile(`· vetted · revision 1`), 20*time.Minute)
	// The log ends when the job does (its follower polls the server).
	vetted := tm.waitFor(t, "the log's end", regexp.MustCompile(`build log · job [0-9a-f]{16} · \d+ lines · the job is over`))
	for _, s := range []string{"vetted in a VM: enabled, transitioned, unloaded", "isofs", "0 of 2", "the job is over"} {
		if !strings.Contains(vetted, s) {
			t.Errorf("the vetted patch's page lacks %q:\n%s", s, vetted)
		}
	}
	fmt.Fprintf(screens, "## Patch: vetted\n\n%s\n", vetted)
	if v := as("r1").patch(t, id); v.State != "vetted" || v.CVE != "CVE-2026-64317" || v.Kernel != "cloud" {
		t.Fatalf("the server's patch: %+v", v)
	}
	tm.keys(t, "q")
	if code := tm.exit(t); code != "0" {
		t.Errorf("dash exited %s after q", code)
	}

	// r2 reviews it.
	rv := startTmux(t, 120, 40, env("r2"), bin, "--insecure", "dash", "--profile", "none")
	// The queue's first answer before the keys, so that the screens
	// below show no query of the queue in flight.
	rv.waitFor(t, "the queue", regexp.MustCompile(`kernel cloud · needs action · [^\n]*to act on`))
	rv.keys(t, "7")
	list := rv.waitFor(t, "the review queue", regexp.MustCompile(`› `+id+` +CVE-2026-64317 +cloud`))
	fmt.Fprintf(screens, "## Review: the patches waiting\n\n%s\n", list)
	rv.keys(t, "Enter")
	page := rv.waitFor(t, "the review page", regexp.MustCompile(`Two-person rule`))
	for _, s := range []string{"0 of 2 · 2 more must", tok["r1"].ID, "Diff of revision 1", "enabled, transitioned, unloaded", "Risk"} {
		if !strings.Contains(page, s) {
			t.Errorf("the review page lacks %q:\n%s", s, page)
		}
	}
	if !regexp.MustCompile(`\+\s+goto eio;`).MatchString(page) {
		t.Errorf("the review page lacks the diff's added line:\n%s", page)
	}
	fmt.Fprintf(screens, "## Review: a patch, report beside the diff\n\n%s\n", page)
	rv.keys(t, "a")
	rv.waitFor(t, "the comment line", regexp.MustCompile(`approve revision 1, comment: `))
	const comment = "bounds check is right; vetted in the VM"
	rv.literal(t, comment)
	rv.waitFor(t, "the comment typed", regexp.MustCompile(`comment: `+regexp.QuoteMeta(comment)))
	fmt.Fprintf(screens, "## Review: approving, the comment typed\n\n%s\n", rv.capture(t))
	rv.keys(t, "Enter")
	rv.waitFor(t, "the approval's answer", regexp.MustCompile(`approved revision 1: vetted, 1 of 2 approvals`))
	// Then the reloads it caused end (no spinner: nothing in flight).
	done := rv.waitFor(t, "the reloads done", regexp.MustCompile(`(?m)^review `+id+` · approved revision 1: vetted, 1 of 2 approvals`))
	if !strings.Contains(done, tok["r2"].ID) || !strings.Contains(done, "1 more must") {
		t.Errorf("the two-person rule after the approval:\n%s", done)
	}
	fmt.Fprintf(screens, "## Review: approved once, one more must\n\n%s\n", done)

	// The server has it.
	var got struct {
		State     string
		Approvals []string
		Reviews   []struct{ Reviewer, Verdict, Comment string }
	}
	if err := json.Unmarshal([]byte(as("r1").must(t, "patch", "show", id, "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.State != "vetted" || len(got.Approvals) != 1 || got.Approvals[0] != tok["r2"].ID || len(got.Reviews) != 1 ||
		got.Reviews[0].Verdict != "approve" || got.Reviews[0].Comment != comment || got.Reviews[0].Reviewer != tok["r2"].ID {
		t.Errorf("patch show after the dashboard's approval: %+v (r2 is %s)", got, tok["r2"].ID)
	}
	rv.keys(t, "Escape", "8")
	pub := rv.waitFor(t, "the publish page", regexp.MustCompile(`kernel cloud · 0 patch set`))
	fmt.Fprintf(screens, "## Publish: nothing approved twice yet\n\n%s\n", pub)
	rv.keys(t, "q")
	if code := rv.exit(t); code != "0" {
		t.Errorf("dash exited %s after q", code)
	}

	// The second approval, on the CLI; then an admin builds the kernel's
	// patch set from the dashboard and watches the fleet's health of its
	// module, halted by a failure in a ring.
	as("r3").must(t, "patch", "review", id, "--approve", "-m", "agreed")
	ad := startTmux(t, 120, 40, append(env("admin"), "EDITOR=sed -i -e s/keep\\x20the\\x20component/keep\\x20the\\x20SL_component/"), bin,
		"--insecure", "dash", "--profile", "none")
	ad.waitFor(t, "the queue", regexp.MustCompile(`kernel cloud · needs action · [^\n]*to act on`))
	ad.keys(t, "8")
	ad.waitFor(t, "the publish page", regexp.MustCompile(`kernel cloud · 0 patch set`))
	ad.keys(t, "b")
	ad.waitFor(t, "the set queued", regexp.MustCompile(`queued v1 \(tt_cloud_1\): 1 patch\(es\)`))
	ready := ad.waitWithin(t, "the set ready", regexp.MustCompile(`› v1 +ready +tt_cloud_1 +CVE-2026-64317`), 20*time.Minute)
	fmt.Fprintf(screens, "## Publish: the kernel's patch sets\n\n%s\n", ready)
	ad.keys(t, "Enter")
	set := ad.waitFor(t, "the set's page", regexp.MustCompile(`no machine has reported it yet`))
	if !strings.Contains(set, "tuxtape archive publish --from-patchset cloud:1") || !strings.Contains(set, "does not publish") {
		t.Errorf("the set's page:\n%s", set)
	}
	const release = "6.1.0-50-cloud-amd64"
	report := func(machine, ring string, kinds ...string) {
		t.Helper()
		var tk token
		json.Unmarshal([]byte(local.must(t, "token", "create", "--role", "agent", "--machine", machine, "--json")), &tk)
		c, err := api.Dial(addr, api.ClientOptions{Token: tk.Secret, Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		if _, err := c.Fleet().Heartbeat(ctx, &pb.HeartbeatRequest{MachineId: machine, Hostname: machine, Kernel: release, AgentVersion: "1", Ring: ring, State: "ok"}); err != nil {
			t.Fatal(err)
		}
		for _, k := range kinds {
			if _, err := c.Fleet().Report(ctx, &pb.ReportRequest{MachineId: machine, Events: []*pb.Event{{Kind: k, Patch: "tt_cloud_1", Detail: k}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	report("canary-1", "canary", "applied")
	report("early-1", "early", "applied", "bug_detected", "rolled_back")
	halted := ad.waitFor(t, "the halt on the set's page", regexp.MustCompile(`early +1 +1 +HALTED`))
	if !regexp.MustCompile(`canary +1 +0 +open`).MatchString(halted) || !strings.Contains(halted, "HALTED in early") {
		t.Errorf("the set's fleet health:\n%s", halted)
	}
	fmt.Fprintf(screens, "## Publish: a ready set, its fleet health with a halt\n\n%s\n", halted)

	// e edits the newest revision in $EDITOR: the dashboard gives the
	// terminal to the editor (here a sed script) and takes it back; the
	// edited diff is the server's revision 2, queued for its build.
	ad.keys(t, "Escape", "6")
	ad.waitFor(t, "the patch list", regexp.MustCompile(`› `+id))
	ad.keys(t, "Enter")
	ad.waitFor(t, "the patch", regexp.MustCompile(`patch `+id+` · CVE-2026-64317 on cloud · approved · revision 1`))
	ad.keys(t, "e")
	ad.waitFor(t, "the revision made", regexp.MustCompile(`revision 2: its build and vetting are queued`))
	var edited struct {
		Revisions []struct {
			Source string
			Diff   []byte
		}
	}
	if err := json.Unmarshal([]byte(as("r1").must(t, "patch", "show", id, "--json")), &edited); err != nil {
		t.Fatal(err)
	}
	if n := len(edited.Revisions); n != 2 || edited.Revisions[1].Source != "edit" || !strings.Contains(string(edited.Revisions[1].Diff), "keep the SL_component") {
		t.Errorf("after e in the dashboard: %d revisions; the newest %+v", n, edited.Revisions[n-1].Source)
	}
	ad.keys(t, "q")
	if code := ad.exit(t); code != "0" {
		t.Errorf("dash exited %s after q", code)
	}
	if out := os.Getenv("TUXTAPE_DASH_WORKFLOW_SCREENS"); out != "" {
		if err := os.WriteFile(out, []byte(screens.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDashKernels runs the kernels page in a real terminal against a real
// server: an admin adds a kernel through the form (its config file read
// by the dashboard and sent), sees the server's refusal of a second one
// of that name on the page, then makes a new kernel's config from the
// Debian cloud kernel's: the kernel's own make menuconfig runs in the
// terminal on the cached 6.1.176 source (the tree the other tests
// unpack), driven with keys (search IKCONFIG, set it, exit, save), and
// the server (GetKernel) has the new kernel with that option set, the
// base's release and source, while the shared tree stays unwritten.
// With TUXTAPE_DASH_KERNEL_SCREENS=FILE it writes each screen there.
func TestDashKernels(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_KERNEL") != "" {
		t.Skip("unpacks linux-source-6.1 and runs make menuconfig in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.Missing(t, "tmux is not installed (apt-get install tmux): %v", err)
	}
	bin := binary(t)
	data := t.TempDir()
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB="}}
	const release, source = "6.1.0-50-cloud-amd64", "debian:linux-source-6.1=6.1.176-1"
	local.must(t, "-q", "kernel", "add", "cloud", "--release", release, "--source", source)
	var tok struct{ Secret string }
	if err := json.Unmarshal([]byte(local.must(t, "token", "create", "--role", "admin", "--json")), &tok); err != nil || tok.Secret == "" {
		t.Fatalf("token create: %v", err)
	}
	addr, _ := local.serve(t, "--insecure")
	// The dashboard's cache is the user's: the source tree of the kernel
	// named cloud is the one TestDashWorkflow's server unpacks.
	env := []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr, "TUXTAPE_TOKEN=" + tok.Secret,
		"TUXTAPE_CACHE_DIR=" + userCache(t)}
	admin := proc{bin: bin, env: env, pre: []string{"--insecure"}}
	cfgFile, err := filepath.Abs(tinyConfig)
	if err != nil {
		t.Fatal(err)
	}
	screens := &strings.Builder{}

	tm := startTmux(t, 120, 40, env, bin, "--insecure", "dash", "--profile", "none")
	tm.waitFor(t, "the queue", regexp.MustCompile(`kernel cloud · needs action`))
	tm.keys(t, "4")
	tm.waitFor(t, "the kernels", regexp.MustCompile(`› cloud +6\.1\.0-50-cloud-amd64`))

	// The form: a tarball kernel with its config file.
	fill := func() {
		tm.keys(t, "n")
		tm.waitFor(t, "the form", regexp.MustCompile(`Add a kernel`))
		for i, v := range []string{"tiny", "6.1.176-tiny", kernelURL, "", "6.1.176", cfgFile} {
			if v != "" {
				tm.literal(t, v)
			}
			if i < 5 {
				tm.keys(t, "Tab")
			}
		}
	}
	fill()
	fmt.Fprintf(screens, "## Kernels: adding a kernel\n\n%s\n", tm.waitFor(t, "the form filled", regexp.MustCompile(`› config +`+regexp.QuoteMeta(cfgFile))))
	tm.keys(t, "Enter")
	added := tm.waitFor(t, "the kernel added", regexp.MustCompile(`added kernel tiny \(its config: \d+ bytes\)`))
	if !regexp.MustCompile(`tiny +6\.1\.176-tiny +6\.1\.176`).MatchString(tm.waitFor(t, "tiny listed", regexp.MustCompile(`tiny +6\.1\.176-tiny`))) {
		t.Errorf("the kernels after the form:\n%s", added)
	}
	var shown struct {
		Release, Version string
		ConfigSHA256     string `json:"config_sha256"`
	}
	if err := json.Unmarshal([]byte(admin.must(t, "kernel", "show", "tiny", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(cfg); shown.Release != "6.1.176-tiny" || shown.Version != "6.1.176" || shown.ConfigSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("kernel show tiny after the form: %+v; want the config file's sha256 %x", shown, sum)
	}
	// The same name again: the server's refusal on the page, the form
	// back as it was.
	fill()
	tm.keys(t, "Enter")
	refused := tm.waitFor(t, "the refusal", regexp.MustCompile(`error: add kernel tiny: [^\n]*already exists`))
	if !strings.Contains(refused, "Add a kernel") || !regexp.MustCompile(`name +tiny\n`).MatchString(refused) {
		t.Errorf("the form is gone after the refusal:\n%s", refused)
	}
	fmt.Fprintf(screens, "## Kernels: the server refuses a kernel\n\n%s\n", refused)
	tm.keys(t, "Escape")

	// A new config from cloud's, with menuconfig.
	tm.waitFor(t, "the list", regexp.MustCompile(`› cloud +6\.1\.0-50-cloud-amd64`))
	tm.keys(t, "c")
	tm.waitFor(t, "the name asked", regexp.MustCompile(`its name: cloud-custom`))
	for range len("custom") {
		tm.keys(t, "BSpace")
	}
	tm.literal(t, "ikconfig")
	tm.keys(t, "Enter")
	tm.waitFor(t, "the base asked", regexp.MustCompile(`start from: enter for cloud's config`))
	tm.keys(t, "Enter")
	mc := tm.waitWithin(t, "menuconfig", regexp.MustCompile(`General setup  --->`), 5*time.Minute)
	fmt.Fprintf(screens, "## Kernels: make menuconfig, the dashboard suspended\n\n%s\n", mc)
	tm.keys(t, "/")
	tm.waitFor(t, "menuconfig's search", regexp.MustCompile(`Search Configuration Parameter|Enter \(sub\)string`))
	tm.literal(t, "IKCONFIG")
	tm.keys(t, "Enter")
	tm.waitFor(t, "the search's results", regexp.MustCompile(`\(1\) +-> Kernel \.config support \(IKCONFIG \[=n\]\)`))
	tm.keys(t, "1")
	tm.waitFor(t, "the option", regexp.MustCompile(`< > +Kernel \.config support`))
	tm.keys(t, "y")
	tm.waitFor(t, "the option set", regexp.MustCompile(`<\*> +Kernel \.config support`))
	tm.tmux(t, "send-keys", "Escape", "Escape")
	tm.waitFor(t, "back to the results", regexp.MustCompile(`IKCONFIG \[=y\]`))
	tm.tmux(t, "send-keys", "Escape", "Escape")
	tm.waitFor(t, "the main menu", regexp.MustCompile(`Processor type and features  --->`))
	tm.tmux(t, "send-keys", "Escape", "Escape")
	tm.waitFor(t, "the save question", regexp.MustCompile(`Do you wish to save your new configuration\?`))
	tm.keys(t, "Enter")
	saved := tm.waitWithin(t, "the new kernel saved", regexp.MustCompile(`added kernel cloud-ikconfig`), time.Minute)
	fmt.Fprintf(screens, "## Kernels: the new kernel saved on the server\n\n%s\n", tm.waitFor(t, "listed", regexp.MustCompile(`cloud-ikconfig +6\.1\.0-50-cloud-amd64`)))
	if !strings.Contains(saved, "[4 Kernels]") {
		t.Errorf("the dashboard did not come back:\n%s", saved)
	}
	// The new kernel's record and its jobs (none yet: the CLI's kernel
	// build queues its full build).
	tm.keys(t, "Down", "Enter")
	tm.waitFor(t, "the new kernel", regexp.MustCompile(`kernel cloud-ikconfig\n`))
	tm.keys(t, "b")
	tm.waitFor(t, "its jobs", regexp.MustCompile(`Kernel cloud-ikconfig has no jobs`))
	tm.keys(t, "Escape", "Escape")

	c, err := api.Dial(addr, api.ClientOptions{Token: tok.Secret, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	base, err := c.Kernel.GetKernel(ctx, &pb.GetKernelRequest{Name: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Kernel.GetKernel(ctx, &pb.GetKernelRequest{Name: "cloud-ikconfig"})
	if err != nil {
		t.Fatalf("the new kernel is not on the server: %v", err)
	}
	if k.Release != release || k.Source.GetKind() != "debian" || "debian:"+k.Source.GetSpec() != source || k.Version != base.Version {
		t.Errorf("the new kernel: release %s, source %s:%s, version %s; want the base's", k.Release, k.Source.GetKind(), k.Source.GetSpec(), k.Version)
	}
	if !strings.Contains(string(k.Config), "\nCONFIG_IKCONFIG=y\n") || !strings.Contains(string(base.Config), "# CONFIG_IKCONFIG is not set") {
		t.Errorf("the new config does not have the change: IKCONFIG in the new %q, the base's %q", grepLine(k.Config, "IKCONFIG"), grepLine(base.Config, "IKCONFIG"))
	}
	if len(k.FixedCves) != len(base.FixedCves) {
		t.Errorf("the new kernel declares %d fixed CVEs; the base %d", len(k.FixedCves), len(base.FixedCves))
	}
	// menuconfig wrote its files in a directory of its own.
	trees, _ := filepath.Glob(filepath.Join(userCache(t), "sources", "cloud-*"))
	for _, tree := range trees {
		for _, f := range []string{".config", "scripts/kconfig/mconf", "include/config"} {
			if _, err := os.Stat(filepath.Join(tree, f)); err == nil {
				t.Errorf("menuconfig wrote %s into the shared tree %s", f, tree)
			}
		}
	}
	if len(trees) == 0 {
		t.Error("no cached tree of cloud's source: the dashboard's cache is not the user's")
	}
	tm.keys(t, "q")
	if code := tm.exit(t); code != "0" {
		t.Errorf("dash exited %s after q", code)
	}
	if out := os.Getenv("TUXTAPE_DASH_KERNEL_SCREENS"); out != "" {
		if err := os.WriteFile(out, []byte(screens.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// grepLine is the first line of b that holds s.
func grepLine(b []byte, s string) string {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// waitWithin is waitFor with its own limit, for what a VM takes.
func (s *tmuxSession) waitWithin(t *testing.T, what string, re *regexp.Regexp, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		screen := s.capture(t)
		if re.MatchString(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the screen never matched %s within %v:\n%s", what, re, limit, screen)
		}
		time.Sleep(time.Second)
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
