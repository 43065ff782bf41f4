package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
)

// builderProc is a running `tuxtape builder`, in a process group of its
// own so that killing it kills what it runs too (as a machine that dies).
type builderProc struct {
	cmd *exec.Cmd
}

func (p proc) startBuilder(t *testing.T, cache string, args ...string) *builderProc {
	t.Helper()
	cmd := exec.Command(p.bin, append(append(append([]string{}, p.pre...), "builder", "--cache-dir", cache), args...)...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("builder %d: %s", cmd.Process.Pid, sc.Text())
		}
	}()
	b := &builderProc{cmd: cmd}
	t.Cleanup(func() { b.kill() })
	return b
}

func (b *builderProc) kill() {
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	b.cmd.Wait()
}

type jobView struct {
	ID, Kind, State, Kernel, Builder, Error string
	Attempts                                int
	Artifacts                               []struct{ Name, SHA256 string }
}

func (p proc) job(t *testing.T, id string) jobView {
	t.Helper()
	var j jobView
	if err := json.Unmarshal([]byte(p.must(t, "job", "show", id, "--json")), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// waitJob polls a job until ok says yes, or fails the test after limit.
func (p proc) waitJob(t *testing.T, id string, limit time.Duration, what string, ok func(jobView) bool) jobView {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		j := p.job(t, id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: not %s within %v: %+v", id, what, limit, j)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// queued reads the job ID from "queued job ID: …".
func queued(t *testing.T, out string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(out, "queued job ")
	id, _, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || len(id) != 16 {
		t.Fatalf("submit said %q", out)
	}
	return id
}

// userCache is the cache directory TestKernelBuild builds in.
func userCache(t *testing.T) string {
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache directory")
	}
	return filepath.Join(base, "tuxtape")
}

// TestBuilders runs the real server and real builders: a builder killed
// with SIGKILL mid-job loses the job to another, which finishes it and
// reports the real build profile the server stores; two builders work at
// once; cancelled jobs stop; a job that fails on every attempt ends
// failed with its error. Kernel builds are tinyconfig builds of 6.1.176.
func TestBuilders(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_KERNEL") != "" {
		t.Skip("builds a kernel on builders")
	}
	ctx := context.Background()
	dk, err := debpkg.NewKernel(debpkg.Options{}, "6.1.0-50-cloud-amd64", "6.1.176-1")
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := dk.SourceTarball(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin := binary(t)
	data := t.TempDir()
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB="}}
	// The name TestKernelBuild uses: the default cache keeps its build
	// tree, so a builder on that cache rebuilds incrementally.
	const tiny = "test-tinyconfig-6.1.176"
	for _, name := range []string{tiny, "tiny-b", "tiny-c"} {
		local.must(t, "kernel", "add", name, "--release", "6.1.176-tiny", "--version", "6.1.176", "--source", tarball, "--kconfig", tinyConfig)
	}
	local.must(t, "kernel", "add", "unreachable", "--release", "6.1.176-x", "--version", "6.1.176",
		"--source", "http://127.0.0.1:9/linux-6.1.176.tar.xz", "--kconfig", tinyConfig)
	secret := map[string]string{}
	for _, role := range []string{"admin", "builder", "reviewer"} {
		var tok struct{ Secret string }
		if err := json.Unmarshal([]byte(local.must(t, "token", "create", "--role", role, "--json")), &tok); err != nil {
			t.Fatal(err)
		}
		secret[role] = tok.Secret
	}
	addr, _ := local.serve(t, "--insecure")
	as := func(role string) proc {
		return proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr, "TUXTAPE_TOKEN=" + secret[role]},
			pre: []string{"--insecure"}}
	}
	admin := as("admin")
	adminArgs := func(args ...string) []string { return args }

	// Roles: a builder may not submit; an admin may not take jobs.
	if code, _, errs := as("builder").run(t, adminArgs("kernel", "build", tiny)...); code != 1 || !strings.Contains(errs, "PermissionDenied") {
		t.Errorf("a builder submitting: exit %d, %q", code, errs)
	}
	if code, _, errs := admin.run(t, adminArgs("builder", "--name", "x")...); code != 1 || !strings.Contains(errs, "PermissionDenied") {
		t.Errorf("an admin as a builder: exit %d, %q", code, errs)
	}

	// The cancelled builds leave partial trees; the user cache keeps only
	// the one TestKernelBuild reuses. (Cleanups run last first: this one
	// after the builders are killed.)
	t.Cleanup(func() {
		for _, name := range []string{"tiny-b", "tiny-c"} {
			os.RemoveAll(filepath.Join(userCache(t), "builds", name))
		}
	})

	// A builder is killed mid-job; the job goes to the next builder.
	builder := as("builder")
	doomedCache, err := os.MkdirTemp("", "tuxtape-builder-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(doomedCache)
	doomed := builder.startBuilder(t, doomedCache, "--name", "doomed", "--lease", "3s")
	j1 := queued(t, admin.must(t, adminArgs("kernel", "build", tiny)...))
	admin.waitJob(t, j1, time.Minute, "leased", func(j jobView) bool { return j.State == "leased" && j.Builder != "" })
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(admin.must(t, adminArgs("job", "log", j1)...), "building kernel") {
		if time.Now().After(deadline) {
			t.Fatal("the doomed builder streamed no log")
		}
		time.Sleep(500 * time.Millisecond)
	}
	doomed.kill()
	rescuer := builder.startBuilder(t, userCache(t), "--name", "rescuer", "--lease", "10s")
	first := admin.job(t, j1).Builder
	done := admin.waitJob(t, j1, 20*time.Minute, "done", func(j jobView) bool { return j.State == "done" || j.State == "failed" })
	if done.State != "done" || done.Attempts != 2 || done.Builder == first || len(done.Artifacts) != 1 || done.Artifacts[0].Name != "profile.json" {
		t.Fatalf("after the kill: %+v (first builder %s)", done, first)
	}
	// The real profile reached the kernel record.
	var p struct {
		Kind  string
		Units []struct{ Source, Target string }
	}
	if err := json.Unmarshal([]byte(local.must(t, "kernel", "profile", tiny, "--real", "--json")), &p); err != nil || p.Kind != "real" || len(p.Units) < 100 {
		t.Errorf("the kernel's real profile after the job: %d units, %v", len(p.Units), err)
	}
	if got, want := as("reviewer").must(t, "kernel", "profile", tiny, "--real", "--json"), local.must(t, "kernel", "profile", tiny, "--real", "--json"); got != want {
		t.Errorf("kernel profile through the server differs from local (%d vs %d bytes)", len(got), len(want))
	}
	if log := admin.must(t, adminArgs("job", "log", j1)...); !strings.Contains(log, "real build profile") {
		t.Errorf("the job's log does not end with the profile:\n%s", log)
	}

	// Two builders at once, each on its own job; then both cancelled.
	otherCache := t.TempDir()
	builder.startBuilder(t, otherCache, "--name", "second")
	j2 := queued(t, admin.must(t, adminArgs("kernel", "build", "tiny-b")...))
	j3 := queued(t, admin.must(t, adminArgs("kernel", "build", "tiny-c")...))
	deadline = time.Now().Add(2 * time.Minute)
	for {
		a, b := admin.job(t, j2), admin.job(t, j3)
		if a.State == "leased" && b.State == "leased" {
			if a.Builder == b.Builder {
				t.Fatalf("one builder holds two jobs with -j 1: %+v %+v", a, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two builders did not take two jobs at once: %+v %+v", a, b)
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = rescuer
	for _, id := range []string{j2, j3} {
		admin.must(t, adminArgs("job", "cancel", id)...)
	}
	if code, _, errs := admin.run(t, adminArgs("job", "cancel", j1)...); code != 2 || !strings.Contains(errs, "done already") {
		t.Errorf("cancelling a finished job: exit %d, %q", code, errs)
	}

	// A job that fails every time ends failed with its error, and
	// `kernel build --wait` exits 1 saying so.
	code, out, errs := admin.run(t, adminArgs("kernel", "build", "unreachable", "--wait")...)
	if code != 1 || !strings.Contains(errs, "failed") {
		t.Errorf("a build that cannot fetch its source: exit %d, %q, %q", code, out, errs)
	}
	var failed []jobView
	json.Unmarshal([]byte(as("reviewer").must(t, adminArgs("job", "list", "--state", "failed", "--json")...)), &failed)
	if len(failed) != 1 || failed[0].Attempts != 3 || failed[0].Error == "" {
		t.Errorf("failed jobs: %+v", failed)
	}
	var builders []struct{ Name string }
	json.Unmarshal([]byte(admin.must(t, adminArgs("job", "builders", "--json")...)), &builders)
	if len(builders) != 3 {
		t.Errorf("builders: %+v", builders)
	}
}
