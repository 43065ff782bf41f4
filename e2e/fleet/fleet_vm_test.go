package fleet_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/e2e/fleet/guestvm"
	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

const (
	machineID = "vm-fleet-1"
	cve       = "CVE-2026-64317" // isofs: fs/isofs/rock.c, a module of the cloud kernel
	goodMod   = "tt_cloud_1"     // the patch set the workflow builds
	badMod    = "tt_cloud_2"     // a bad second version, published by hand
)

// firstBoot: the agent daemon applies the patch set from the archive (the
// isofs object patched, isofs loaded first); the host then publishes the
// bad version, which the daemon loads; reading /proc/cmdline runs its
// WARN, and the agent must roll it back to the good version by itself.
var firstBoot = `
hostname ` + machineID + `
$A run --interval 2s --heartbeat 2s & rpid=$!
waitfor '[ "$(lp ` + goodMod + `)" = 10 ]' 3000
echo "good-enabled: $(lp ` + goodMod + `)"
echo "isofs-patched: $(cat /sys/kernel/livepatch/` + goodMod + `/isofs/patched 2>/dev/null)"
echo "cmdline-good: $(cat /proc/cmdline)"
# The host publishes the bad version once the server has the applied report.
waitfor '[ "$(lp ` + badMod + `)" = 10 ]' 3000
echo "bad-enabled: $(lp ` + badMod + `)"
t0=$(date +%s)
cat /proc/cmdline > /tmp/bad
waitfor '[ ! -d /sys/kernel/livepatch/` + badMod + ` ] && ! grep -q "^` + badMod + ` " /proc/modules && [ "$(lp ` + goodMod + `)" = 10 ]' 300
t1=$(date +%s)
echo "rollback-seconds: $((t1-t0))"
echo "bad-cmdline: $(cat /tmp/bad)"
echo "loaded-after: $(ls /sys/kernel/livepatch | tr '\n' ' ')"
# Heartbeats and the queued reports reach the server.
sleep 8
$A status --json > /tmp/st.json; echo "status-1: $?"
echo "status-json: $(tr -d '\n' < /tmp/st.json)"
kill -TERM $rpid; wait $rpid; echo "run-exit: $?"
sync; umount $S; echo "umount: $?"
`

// secondBoot: after a reboot the agent re-applies the last good version
// from its cache, then polls the archive, where the bad version is still
// the newest, and must not load it again.
var secondBoot = `
hostname ` + machineID + `
echo "loaded-before: $(ls /sys/kernel/livepatch | wc -l)"
$A poll --boot; echo "boot-poll: $?"
echo "loaded-boot: $(ls /sys/kernel/livepatch | tr '\n' ' ')"
$A poll; echo "net-poll: $?"
echo "loaded-net: $(ls /sys/kernel/livepatch | tr '\n' ' ')"
echo "bad-module: $(grep -c '^` + badMod + ` ' /proc/modules)"
$A status --json > /tmp/st.json; echo "status-2: $?"
echo "status-json: $(tr -d '\n' < /tmp/st.json)"
sync; umount $S; echo "umount: $?"
`

type machineView struct {
	ID, Kernel, State string
	Livepatch         struct {
		Level   string
		CVEs    []string
		Patches []struct {
			Name    string
			Enabled bool
		}
	}
	Events []struct {
		Kind, Patch, Detail string
		At                  time.Time
		Log                 []string
	}
}

type agentStatus struct {
	Level string   `json:"level"`
	CVEs  []string `json:"cves"`
	Bad   []struct {
		Version int64  `json:"version"`
		Reason  string `json:"reason"`
	} `json:"bad_versions"`
	ExitCode int `json:"exit_code"`
}

// TestFleetVM runs TuxTape from the CVE data to a livepatched kernel with
// real processes only: sync, the server with TLS and the two-person rule,
// a builder that builds and vets in a VM, reviews, the kernel's patch set,
// the signed archive, and the agent in a VM of Debian's cloud kernel that
// reports to the server. Then a bad version: rolled back by the agent on
// its own, reported, and never retried after a reboot.
func TestFleetVM(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_VM") != "" {
		t.Skip("builds livepatches and boots Debian's kernel in QEMU, twice")
	}
	ctx := t.Context()
	work := t.TempDir()
	bin, err := testenv.BuildTuxtape(work)
	if err != nil {
		t.Fatal(err)
	}
	agent := buildAgent(t, work)
	var seeds []string
	if v := os.Getenv("TUXTAPE_DEB_DIRS"); v != "" {
		seeds = filepath.SplitList(v)
	}
	kernel, err := guestvm.DebianKernel(ctx, seeds)
	if err != nil {
		t.Fatal(err)
	}
	fix := filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", cve+".patch")
	mirror := testenv.Mirror(t)
	data := filepath.Join(work, "server")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mirror, filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(work, "archive")
	local := cli{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB=",
		"TUXTAPE_CA=", "TUXTAPE_ARCHIVE_DIR=" + archive}}

	// The bad version, built first so that it does not count in the time
	// to protection: the same fix, plus a change that makes the patched
	// cmdline_proc_show WARN each time /proc/cmdline is read.
	badKo := filepath.Join(work, badMod+".ko")
	start := time.Now()
	local.must(t, "-q", "patch", "build", "--kernel", "debian:"+guestvm.Release+"="+guestvm.Version,
		"--fix", fix, "--fix", filepath.Join("testdata", "cmdline-warn.patch"), "--name", badMod, "-o", badKo)
	t.Logf("built the bad version %s in %v", badMod, time.Since(start).Round(time.Second))

	// The CVE arrives: the time to protection starts with this sync.
	t0 := time.Now()
	steps := []string{}
	step := func(what string, since time.Time) {
		steps = append(steps, fmt.Sprintf("%-34s %6.1f s", what, time.Since(since).Seconds()))
	}
	s := time.Now()
	local.must(t, "-q", "sync", "--no-fetch", "--rev", testenv.BundleHead)
	step("sync", s)
	s = time.Now()
	local.must(t, "-q", "kernel", "add", "cloud", "--release", guestvm.Release, "--source", "debian:linux-source-6.1="+guestvm.Version)
	if out := local.must(t, "cve", "show", cve, "--kernel", "cloud"); !strings.Contains(out, "fs/isofs") {
		t.Errorf("cve show %s --kernel cloud does not name fs/isofs:\n%s", cve, out)
	}
	certs := filepath.Join(work, "certs")
	local.must(t, "certs", "init", "--out", certs, "--host", "127.0.0.1", "--host", guestvm.HostAddr)
	secret := map[string]string{}
	for _, tok := range [][]string{{"admin", "admin"}, {"builder", "builder"}, {"r1", "reviewer"}, {"r2", "reviewer"}, {"r3", "reviewer"},
		{"agent", "agent", "--machine", machineID}} {
		var made struct{ Secret string }
		if err := json.Unmarshal([]byte(local.must(t, append([]string{"token", "create", "--json", "--role"}, tok[1:]...)...)), &made); err != nil || made.Secret == "" {
			t.Fatalf("token create %v: %v", tok, err)
		}
		secret[tok[0]] = made.Secret
	}
	// The guest reaches the host's loopback as 10.0.2.2 (user networking).
	serve := local.start(t, "serve", "serve", "--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(certs, "server.pem"),
		"--tls-key", filepath.Join(certs, "server-key.pem"), "--require-approvals", "2")
	addr, _, _ := strings.Cut(serve.waitLine(t, "serving on ", 30*time.Second), " ")
	_, port, _ := strings.Cut(addr, ":")
	as := func(who string) cli {
		return cli{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr,
			"TUXTAPE_CA=" + filepath.Join(certs, "ca.pem"), "TUXTAPE_TOKEN=" + secret[who], "TUXTAPE_ARCHIVE_DIR=" + archive}}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	builder := as("builder").start(t, "builder", "builder", "--cache-dir", filepath.Join(cache, "tuxtape"), "--name", "fleet-builder", "--kind", "patch-build")
	step("kernel, certs, tokens, server", s)

	// The deployable patch: built and vetted by the builder, then two
	// reviewers (not its author) approve it.
	s = time.Now()
	var created struct{ ID, State string }
	if err := json.Unmarshal([]byte(as("r1").must(t, "patch", "create", "--cve", cve, "--kernel", "cloud", "--fix", fix, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	var patch struct {
		State     string
		Revisions []struct {
			Job string
			Vet struct{ Enabled, Transitioned, Unloaded bool }
		}
	}
	eventually(t, "patch "+created.ID+" vetted", 20*time.Minute, 2*time.Second, func() (bool, string) {
		out := as("r1").must(t, "patch", "show", created.ID, "--json")
		json.Unmarshal([]byte(out), &patch)
		if patch.State != "building" && patch.State != "vetted" {
			log := ""
			if len(patch.Revisions) > 0 {
				log = as("admin").must(t, "job", "log", patch.Revisions[0].Job)
			}
			t.Fatalf("patch %s: %s\n%s\nbuilder:\n%s", created.ID, out, log, cmdout.Tail(builder.output(), 30))
		}
		return patch.State == "vetted", out
	})
	if v := patch.Revisions[0].Vet; !v.Enabled || !v.Transitioned || !v.Unloaded {
		t.Errorf("vetting: %+v", v)
	}
	step("patch create → vetted", s)
	s = time.Now()
	as("r2").must(t, "patch", "review", created.ID, "--approve", "-m", "the SL component bound is right; vetted in the VM")
	if out := as("r3").must(t, "patch", "review", created.ID, "--approve", "-m", "agreed"); !strings.Contains(out, "approved (2 of 2 approvals)") {
		t.Errorf("second approval: %q", out)
	}
	step("two approvals", s)

	// The kernel's cumulative patch set, built and vetted on the builder.
	s = time.Now()
	if out := as("admin").must(t, "patchset", "build", "cloud"); !strings.Contains(out, goodMod) {
		t.Fatalf("patchset build: %q", out)
	}
	type patchSet struct {
		Version       int
		State, Job    string
		Module, Error string
		CVEs          []string
	}
	var sets []patchSet
	eventually(t, "patch set cloud v1 ready", 20*time.Minute, 2*time.Second, func() (bool, string) {
		out := as("r1").must(t, "patchset", "list", "cloud", "--json")
		json.Unmarshal([]byte(out), &sets)
		if len(sets) == 1 && sets[0].State != "building" && sets[0].State != "ready" {
			t.Fatalf("patch set: %s\n%s", out, as("admin").must(t, "job", "log", sets[0].Job))
		}
		return len(sets) == 1 && sets[0].State == "ready", out
	})
	if !slices.Contains(sets[0].CVEs, cve) {
		t.Errorf("patch set CVEs %v lack %s", sets[0].CVEs, cve)
	}
	step("patchset build → ready", s)

	// The archive, with the patch set published from the server.
	s = time.Now()
	local.must(t, "archive", "init")
	var rel struct {
		Module, PatchSet string
		Version          int64
		CVEs             []string
		Rings            []string
	}
	if err := json.Unmarshal([]byte(as("admin").must(t, "archive", "publish", "--from-patchset", "cloud:1", "--json")), &rel); err != nil {
		t.Fatal(err)
	}
	if rel.Module != goodMod || rel.Version != 1 || !slices.Contains(rel.CVEs, cve) {
		t.Fatalf("published %+v", rel)
	}
	arch := local.start(t, "archive-serve", "archive", "serve", "--listen", "127.0.0.1:0")
	_, archURL, _ := strings.Cut(arch.waitLine(t, "serving ", 30*time.Second), "http://")
	archAddr, _, _ := strings.Cut(archURL, "/")
	_, archPort, _ := strings.Cut(archAddr, ":")
	step("archive init, publish, serve", s)

	// The machine: its settings name the real server, as the guest sees it.
	disk := filepath.Join(work, "state.img")
	if err := guestvm.NewStateDisk(ctx, disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	settings := guestvm.Settings{
		ArchiveURL: "http://" + guestvm.HostAddr + ":" + archPort, Server: guestvm.HostAddr + ":" + port,
		Token: secret["agent"], MachineID: machineID, Ring: "canary",
		RollbackWindow: 20 * time.Second, TransitionWait: 60 * time.Second, SignalWait: 60 * time.Second,
	}.TOML()
	boot := func(name, script string) <-chan bootResult {
		ch := make(chan bootResult, 1)
		go func() {
			res, err := guestvm.Boot(ctx, guestvm.Config{Kernel: kernel, Agent: agent, Settings: settings,
				Root: filepath.Join(archive, "public", "metadata", "1.root.json"), CA: filepath.Join(certs, "ca.pem"),
				Disk: disk, Modules: []string{"isofs"}, Script: script, Timeout: 12 * time.Minute})
			ch <- bootResult{name, res, err}
		}()
		return ch
	}
	admin := as("admin")
	machine := func() (machineView, bool) {
		out, _, err := admin.run(ctx, "fleet", "show", machineID, "--events", "100", "--json")
		var m machineView
		if err != nil || json.Unmarshal([]byte(out), &m) != nil {
			return m, false
		}
		return m, true
	}
	applied := func(m machineView, patch string, after time.Time) bool {
		for _, e := range m.Events {
			if e.Kind == "applied" && e.Patch == patch && !e.At.Before(after.Add(-2*time.Second)) {
				return true
			}
		}
		return false
	}

	s = time.Now()
	vm1 := boot("first boot", firstBoot)
	var first *vmtest.Result
	eventually(t, "the server has the machine's applied report", 10*time.Minute, 500*time.Millisecond, func() (bool, string) {
		select {
		case r := <-vm1:
			first = r.check(t)
			t.Fatalf("the guest finished before the server had its applied report:\n%s", first.Output)
		default:
		}
		m, ok := machine()
		return ok && applied(m, goodMod, t0), fmt.Sprintf("%+v", m)
	})
	ttp := time.Since(t0)
	step("VM boot → applied on the server", s)
	t.Logf("TIME TO PROTECTION: %v from the sync that brought %s to the agent's applied report on the server (human steps scripted)",
		ttp.Round(100*time.Millisecond), cve)
	t.Logf("breakdown:\n  %s", strings.Join(steps, "\n  "))
	eventually(t, "the fleet view shows the machine patched", time.Minute, time.Second, func() (bool, string) {
		m, ok := machine()
		return ok && strings.HasPrefix(m.Livepatch.Level, goodMod+"@") && slices.Contains(m.Livepatch.CVEs, cve) &&
			m.Kernel == guestvm.Release, fmt.Sprintf("%+v", m)
	})
	var list []struct {
		ID, Kernel, State string
		Livepatch         struct{ CVEs []string }
	}
	if err := json.Unmarshal([]byte(admin.must(t, "fleet", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != machineID ||
		!slices.Contains(list[0].Livepatch.CVEs, cve) {
		t.Errorf("fleet list --json: %+v, %v", list, err)
	}
	t.Logf("fleet show, patched:\n%s", admin.must(t, "fleet", "show", machineID))

	// The bad second version, straight to the archive.
	badPublished := time.Now()
	local.must(t, "archive", "publish", badKo, "--kernel", guestvm.Release, "--patchset", rel.PatchSet, "--cves", cve)
	r := <-vm1
	first = r.check(t)
	kv := guestvm.Values(first.Output)
	for key, want := range map[string]string{
		"mount": "ok", "good-enabled": "10", "isofs-patched": "1", "bad-enabled": "10",
		"loaded-after": goodMod, "status-1": "0", "run-exit": "0", "umount": "0",
	} {
		if kv[key] != want {
			t.Errorf("first boot: %s = %q, want %q", key, kv[key], want)
		}
	}
	if !strings.HasPrefix(kv["bad-cmdline"], "tuxtape-bad ") {
		t.Errorf("first boot: /proc/cmdline under the bad version = %q: its change did not run", kv["bad-cmdline"])
	}
	if n, err := strconv.Atoi(kv["rollback-seconds"]); err != nil || n > 10 {
		t.Errorf("first boot: the rollback took %q s, want at most 10", kv["rollback-seconds"])
	} else {
		t.Logf("the agent rolled %s back %d s after its WARN", badMod, n)
	}
	var st agentStatus
	if err := json.Unmarshal([]byte(kv["status-json"]), &st); err != nil {
		t.Errorf("first boot: status --json %q: %v", kv["status-json"], err)
	}
	if !strings.HasPrefix(st.Level, goodMod+"@") || !slices.Contains(st.CVEs, cve) || len(st.Bad) != 1 || st.Bad[0].Version != 2 {
		t.Errorf("first boot: agent status %+v: want %s, %s fixed, version 2 bad", st, goodMod, cve)
	}

	// The server has the reports: the bug, the rollback, the re-apply.
	eventually(t, "the server has the rollback", 30*time.Second, time.Second, func() (bool, string) {
		m, ok := machine()
		var kinds []string
		for _, e := range m.Events {
			if !e.At.Before(badPublished.Add(-2 * time.Second)) {
				kinds = append(kinds, e.Kind+":"+e.Patch)
			}
		}
		return ok && slices.Contains(kinds, "bug_detected:"+badMod) && slices.Contains(kinds, "rolled_back:"+badMod), strings.Join(kinds, " ")
	})
	m, _ := machine()
	if m.State != "rolled_back" || !strings.HasPrefix(m.Livepatch.Level, goodMod+"@") {
		t.Errorf("fleet show after the rollback: state %q, level %q; want rolled_back at %s", m.State, m.Livepatch.Level, goodMod)
	}
	for _, e := range m.Events {
		if e.Kind == "bug_detected" && e.Patch == badMod && !strings.Contains(strings.Join(e.Log, "\n"), "cmdline_proc_show") {
			t.Errorf("bug_detected's log does not name cmdline_proc_show: %q", e.Log)
		}
	}
	if ev := admin.must(t, "events", "--kind", "fleet."); !strings.Contains(ev, "fleet.rolled_back") || !strings.Contains(ev, "fleet.bug_detected") {
		t.Errorf("events --kind fleet.:\n%s", ev)
	}
	if out, _, err := admin.run(ctx, "fleet", "health", "--patch", badMod, "--json"); err != nil {
		t.Errorf("fleet health: %v", err)
	} else {
		var hs []struct {
			Ring            string
			Applied, Failed int
			Halted          bool
		}
		json.Unmarshal([]byte(out), &hs)
		// serve's default --halt-after is 1: one failure halts the ring.
		if len(hs) != 1 || hs[0].Ring != "canary" || hs[0].Failed < 1 || !hs[0].Halted {
			t.Errorf("fleet health --patch %s: %s, want canary failed and halted", badMod, out)
		}
		t.Logf("fleet health --patch %s: %s", badMod, strings.TrimSpace(out))
	}
	t.Logf("fleet show, after the rollback:\n%s", admin.must(t, "fleet", "show", machineID, "--events", "8"))

	// A reboot: the good version again, from the cache; the bad one never.
	rebooted := time.Now()
	r = <-boot("second boot", secondBoot)
	second := r.check(t)
	kv = guestvm.Values(second.Output)
	for key, want := range map[string]string{
		"mount": "ok", "loaded-before": "0", "boot-poll": "0", "loaded-boot": goodMod, "net-poll": "0",
		"loaded-net": goodMod, "bad-module": "0", "status-2": "0", "umount": "0",
	} {
		if kv[key] != want {
			t.Errorf("second boot: %s = %q, want %q", key, kv[key], want)
		}
	}
	if strings.Contains(second.Dmesg, badMod) {
		t.Errorf("second boot: the kernel log names %s: it was tried again:\n%s", badMod, cmdout.Tail(second.Dmesg, 30))
	}
	st = agentStatus{}
	json.Unmarshal([]byte(kv["status-json"]), &st)
	if len(st.Bad) != 1 || st.Bad[0].Version != 2 {
		t.Errorf("second boot: status %+v lost bad version 2", st)
	}
	eventually(t, "the server has the re-apply after the reboot", 30*time.Second, time.Second, func() (bool, string) {
		m, ok := machine()
		return ok && applied(m, goodMod, rebooted) && strings.HasPrefix(m.Livepatch.Level, goodMod+"@"), fmt.Sprintf("%+v", m)
	})
	t.Logf("fleet show, after the reboot:\n%s", admin.must(t, "fleet", "show", machineID, "--events", "4"))
	t.Logf("TIME TO PROTECTION: %v", ttp.Round(100*time.Millisecond))
}

type bootResult struct {
	name string
	res  *vmtest.Result
	err  error
}

// check fails the test if the boot failed, and logs the guest's output.
func (b bootResult) check(t *testing.T) *vmtest.Result {
	t.Helper()
	if b.err != nil {
		if b.res != nil {
			t.Logf("%s: console:\n%s", b.name, cmdout.Tail(b.res.Console, 120))
		}
		t.Fatalf("%s: %v", b.name, b.err)
	}
	t.Logf("%s: guest output:\n%s", b.name, b.res.Output)
	return b.res
}
