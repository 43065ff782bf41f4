package cvesync_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// tuxtape builds the command once per test binary (the CLI's own package
// may not import this one's tests, and the exit codes are the point).
func tuxtape(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tuxtape-cvesync-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = testenv.BuildTuxtape(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func runCLI(t *testing.T, data string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(tuxtape(t), append([]string{"--data-dir", data, "-q"}, args...)...)
	cmd.Env = append(os.Environ(), "TUXTAPE_CONFIG="+filepath.Join(data, "none.toml"))
	if err := os.WriteFile(filepath.Join(data, "none.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = strings.NewReader(stdin)
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

// TestSyncCLI: sync's JSON problem keys, `sync status` with a kept
// malformed record, a busy data directory, and --announce refusals.
func TestSyncCLI(t *testing.T) {
	u := newUpstream(t)
	u.put("published/2025", "CVE-2025-21703")
	u.put("published/2024", "CVE-2024-26581")
	good := u.commit("two good records")
	u.write("published/2024/CVE-2024-26581.dyad", "6.1.43:89a4d1a89751a0fbd520e64091873e19cc0979e8:6.1.x:zz\n")
	u.commit("break one")
	data := t.TempDir()

	if code, _, stderr := runCLI(t, data, "", "sync", "--source", u.dir, "--rev", good); code != 0 {
		t.Fatalf("sync to the good commit: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, data, "", "sync", "--source", u.dir, "--json")
	if code != 0 {
		t.Fatalf("sync: exit %d: %s", code, stderr)
	}
	var sum struct {
		Mode     string
		Problems []map[string]string
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || len(sum.Problems) != 1 {
		t.Fatalf("sync --json = %s (%v), want one problem", stdout, err)
	}
	if p := sum.Problems[0]; p["id"] != "CVE-2024-26581" || !strings.HasSuffix(p["file"], ".dyad") || !strings.Contains(p["reason"], "6.1.x") {
		t.Errorf("sync --json problem = %v, want keys id, file, reason", p)
	}

	code, stdout, stderr = runCLI(t, data, "", "sync", "status")
	if code != 0 || !strings.Contains(stdout, "CVE-2024-26581 (cve/published/2024/CVE-2024-26581.dyad): ") ||
		!strings.Contains(stdout, "2 published") || !strings.Contains(stdout, "last run: incremental") {
		t.Errorf("sync status: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, data, "", "sync", "status", "--json")
	var st struct {
		Commit   string
		Records  map[string]int
		LastRun  *struct{ Mode string } `json:"last_run"`
		Problems []map[string]string
	}
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || len(st.Problems) != 1 || st.Problems[0]["id"] != "CVE-2024-26581" ||
		st.Records["published"] != 2 || st.LastRun == nil || st.LastRun.Mode != "incremental" || len(st.Commit) != 40 {
		t.Errorf("sync status --json: exit %d, %v\n%s", code, err, stdout)
	}

	// Busy: another process holds the data directory's lock.
	f, err := os.OpenFile(filepath.Join(data, cvesync.LockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	code, _, stderr = runCLI(t, data, "", "sync", "--source", u.dir, "--full")
	if want := fmt.Sprintf("another sync is running (pid %d)", os.Getpid()); code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("sync while locked: exit %d, %q, want a failure saying %q", code, stderr, want)
	}
	f.Close()

	for _, tc := range []struct {
		name, path, stdin string
		wantCode          bool // nonzero
		want, notWant     string
	}{
		{"directory", data, "", true, data + ": a directory", ""},
		{"fifo", mkfifo(t), "", true, "not a regular file", ""},
		// net/mail quotes a bad header line as it is: ESC must not reach
		// the terminal.
		{"escape in a bad mail", "-", "From a@b Mon Jan  1 00:00:00 2024\nSubject: CVE-2024-1234: x\n\x1b]0;owned\x07\n\nbody\n", false, `\e]0;owned\x07`, "\x1b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, data, tc.stdin, "sync", "--announce", tc.path)
			if (code != 0) != tc.wantCode || !strings.Contains(stderr, tc.want) || (tc.notWant != "" && strings.Contains(stderr, tc.notWant)) {
				t.Errorf("sync --announce %s: exit %d, stderr %q; want %q", tc.path, code, stderr, tc.want)
			}
		})
	}
}

func mkfifo(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
