package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// needSandbox skips where this process cannot make namespaces at all (no
// root and no unprivileged user namespaces), saying why.
func needSandbox(t *testing.T) {
	t.Helper()
	if err := Available(context.Background()); err != nil {
		t.Skipf("cannot confine a command here: %v", err)
	}
}

// TestRun: what a confined command can and cannot do. Each case was
// checked to fail without its isolation, on a copy of the package with
// that part taken out: without CLONE_NEWNET "no network" failed; without
// the uid switch "own user" and "set-uid root program"; without
// no_new_privs "no capabilities, no_new_privs" and "set-uid root program";
// without the read-only attribute "read-only system"; without the /tmp
// tmpfs "private /tmp"; without CLONE_NEWPID "own processes only" (and the
// time limit, which then leaves the sleep behind); without RLIMIT_AS
// "memory limit"; with a later deadline "time limit". ("hidden directory"
// lies under /tmp, which hides it too; ktree's TestWorkspaceConfinesFix
// fails without the hiding.)
func TestRun(t *testing.T) {
	needSandbox(t)
	ln := testenv.Listen(t)
	hidden := t.TempDir()
	if err := os.WriteFile(filepath.Join(hidden, "token"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A set-uid-root program, bound into the job's view without nosuid:
	// only no_new_privs keeps it from making the job root.
	suidDir := t.TempDir()
	if !Rootless() {
		idBin, err := exec.LookPath("id")
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(idBin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(suidDir, "id"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(suidDir, "id"), 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		os.Chmod(suidDir, 0o755)
	}
	lockFile := fmt.Sprintf("/run/lock/tuxtape-sandbox-test-%d", os.Getpid())
	defer os.Remove(lockFile)
	marker := fmt.Sprintf("/tmp/tuxtape-sandbox-marker-%d", os.Getpid())
	defer os.Remove(marker)
	uid, _ := (&Config{}).JobUID()
	wantUID := strconv.Itoa(uid)
	if Rootless() {
		wantUID = "0" // the user namespace's root, without capabilities
	}
	port := ln.Port
	for _, tc := range []struct {
		name   string
		script string
		limits Limits
		want   string // the command's output, when it succeeds
		err    error  // the error Run returns, when it fails
	}{
		{"own user", "id -u; id -G", Limits{}, wantUID + "\n" + wantUID + "\n", nil},
		{"no capabilities, no_new_privs", "grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status | tr -s '\\t ' ' '", Limits{},
			"CapPrm: 0000000000000000\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nCapAmb: 0000000000000000\nNoNewPrivs: 1\n", nil},
		{"set-uid root program", suidDir + "/id -u", Limits{}, wantUID + "\n", nil},
		{"no network", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d && cat <&3 || echo refused", port), Limits{}, "refused\n", nil},
		{"own processes only", "ls /proc | grep -c '^[0-9]'", Limits{}, "", nil}, // checked below: few
		// /run/lock is world-writable and no tmpfs of the sandbox's:
		// only the read-only mounts keep the job from writing there.
		{"read-only system", "touch /etc/tuxtape-sandbox-test 2>/dev/null || echo read-only; touch " + lockFile + " 2>&1 | grep -o 'Read-only file system'", Limits{}, "read-only\nRead-only file system\n", nil},
		{"hidden directory", "ls -A " + hidden + "; cat " + hidden + "/token 2>/dev/null; touch " + hidden + "/x 2>/dev/null || echo hidden", Limits{}, "hidden\n", nil},
		{"private /tmp", "echo x > " + marker + " && cat " + marker, Limits{}, "x\n", nil},
		{"root-only file", "cat " + secret + " 2>/dev/null || echo denied", Limits{}, map[bool]string{true: "secret\n", false: "denied\n"}[Rootless()], nil},
		{"time limit", "sleep 30", Limits{Time: time.Second}, "", ErrTimeLimit},
		{"memory limit", "head -c 512M /dev/zero | tail -n 1 >/dev/null", Limits{Memory: 64 << 20, Time: time.Minute}, "", ErrMemoryLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "read-only system" {
				if fi, err := os.Stat("/run/lock"); err != nil || fi.Mode().Perm()&0o002 == 0 {
					t.Skip("no world-writable /run/lock to try")
				}
			}
			if (tc.name == "root-only file" || tc.name == "set-uid root program") && Rootless() {
				t.Skip("rootless: the builder's own files are the job's; they are kept out of reach by hiding (Hide), not by the uid")
			}
			c := &Config{Limits: tc.limits, Hide: []string{hidden}}
			var out, stderr bytes.Buffer
			start := time.Now()
			err := c.Run(context.Background(), Cmd{Args: []string{"bash", "-c", tc.script}, Dir: "/", Stdout: &out, Stderr: &stderr,
				Mounts: []Mount{{Target: suidDir, Source: suidDir}}})
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !errors.Is(err, ErrLimit) {
					t.Fatalf("Run(%q) = %v, want %v (stderr %q)", tc.script, err, tc.err, stderr.String())
				}
				if tc.limits.Time > 0 && time.Since(start) > tc.limits.Time+5*time.Second {
					t.Errorf("Run(%q) took %v with a %v limit", tc.script, time.Since(start), tc.limits.Time)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run(%q) = %v (stderr %q)", tc.script, err, stderr.String())
			}
			if tc.name == "own processes only" {
				if n, _ := strconv.Atoi(strings.TrimSpace(out.String())); n == 0 || n > 5 {
					t.Errorf("the command sees %s processes, want its own few", out.String())
				}
				return
			}
			if out.String() != tc.want {
				t.Errorf("Run(%q) printed %q, want %q", tc.script, out.String(), tc.want)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command's write to %s reached the real /tmp", marker)
	}
	if _, err := os.Stat(lockFile); err == nil {
		t.Errorf("the command wrote %s", lockFile)
	}
	if _, err := os.Stat("/etc/tuxtape-sandbox-test"); err == nil {
		os.Remove("/etc/tuxtape-sandbox-test")
		t.Error("the command wrote into /etc")
	}
	if n := ln.Heard(t); n > 0 {
		t.Errorf("the listener on loopback accepted %d connection(s) from confined commands", n)
	}
}

// TestRunOverlay: the overlay is the command's writable view, at its
// target, over a lower layer it cannot change.
func TestRunOverlay(t *testing.T) {
	needSandbox(t)
	dir := t.TempDir()
	lower, upper, work := filepath.Join(dir, "tree"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{lower, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "a"), []byte("lower\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid, gid := (&Config{}).JobUID()
	if err := os.Chown(upper, uid, gid); err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	err := (&Config{Hide: []string{dir}}).Run(context.Background(), Cmd{
		Args:   []string{"sh", "-c", "cat a; echo new > b; echo more >> a 2>/dev/null || echo a-denied; ls " + upper + " 2>&1 | head -1"},
		Dir:    lower,
		Mounts: []Mount{{Target: lower, Lower: []string{lower}, Upper: upper, Work: work}},
		Stdout: &out, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Run = %v (%s)", err, stderr.String())
	}
	want := "lower\n"
	if Rootless() {
		want += "" // the lower file is the builder's, so the job may write its copy
	} else {
		want += "a-denied\n"
	}
	if got := out.String(); !strings.HasPrefix(got, want) {
		t.Errorf("the command printed %q, want %q first", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(upper, "b")); err != nil || string(b) != "new\n" {
		t.Errorf("upper/b = %q, %v; want the command's write there", b, err)
	}
	if _, err := os.Stat(filepath.Join(lower, "b")); err == nil {
		t.Error("the command's write reached the lower layer")
	}
	if a, _ := os.ReadFile(filepath.Join(lower, "a")); string(a) != "lower\n" {
		t.Errorf("the lower layer's a = %q", a)
	}
}

// TestRunRootless runs this package's tests again as an unprivileged uid
// (nobody), where the sandbox is a user namespace.
func TestRunRootless(t *testing.T) {
	out := testenv.RerunAsNobody(t, "TUXTAPE_SANDBOX_ROOTLESS_CHILD", "^TestRun(Overlay)?$", "TestRun", "TestRunOverlay")
	t.Logf("as nobody:\n%s", out)
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"4G", 4 << 30}, {"4GiB", 4 << 30}, {"512M", 512 << 20}, {"1.5G", 3 << 29}, {"1024", 1024}, {"64k", 64 << 10}} {
		if got, err := ParseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "lots"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}

func TestOutOfMemory(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		want   bool
	}{
		{"cc1: out of memory allocating 65536 bytes after a total of 1 bytes\n", true},
		{"tail: memory exhausted\n", true},
		{"bash: fork: Cannot allocate memory\n", true},
		{"x.c:3:9: error: expected ';'\n    3 |  pr_err(\"out of memory\")\n", false},
		{"make: *** [Makefile:3: x.o] Error 1\n", false},
	} {
		if got := outOfMemory(tc.stderr); got != tc.want {
			t.Errorf("outOfMemory(%q) = %v, want %v", tc.stderr, got, tc.want)
		}
	}
}
