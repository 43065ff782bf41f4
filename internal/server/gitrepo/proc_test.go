package gitrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// cloneIn, when set, makes the test binary a process that clones the
// bundle into that mirror directory and is killed meanwhile.
const cloneIn = "TUXTAPE_TEST_CLONE_IN"

func TestMain(m *testing.M) {
	if dir := os.Getenv(cloneIn); dir != "" {
		_, err := Mirror(context.Background(), os.Getenv("TUXTAPE_TEST_BUNDLE"), dir)
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// indexing reports whether a clone into parent got as far as index-pack,
// the child of git that reads the bundle on its own.
func indexing(parent string) bool {
	return len(gitProcessesIn(parent)) >= 2
}

// TestCancelKillsGitGroup: a clone cancelled while index-pack runs leaves
// no git process behind (git's children were left running when only git
// was killed), and no temporary clone.
func TestCancelKillsGitGroup(t *testing.T) {
	bundle := testenv.Bundle(t)
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Mirror(ctx, bundle, filepath.Join(parent, "vulns.git"))
		done <- err
	}()
	if !waitFor(20*time.Second, func() bool { return indexing(parent) }) {
		t.Fatal("the clone never got to index-pack")
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("cancelled Mirror = %v, want context.Canceled", err)
		}
	case <-time.After(waitDelay + 2*time.Second):
		// With git alone killed, its index-pack holds stderr open and Wait
		// waits for the whole clone.
		t.Fatal("Mirror did not return after its context was cancelled")
	}
	if !waitFor(time.Second, func() bool { return len(gitProcessesIn(parent)) == 0 }) {
		t.Errorf("git processes left after cancelling: %v", gitProcessesIn(parent))
	}
	if left, _ := filepath.Glob(filepath.Join(parent, clonePrefix+"*")); len(left) != 0 {
		t.Errorf("temporary clones left: %v", left)
	}
}

// TestKilledParent: tuxtape killed with SIGKILL in the middle of a clone
// takes git with it (Pdeathsig); the index-pack git started, which the
// kernel does not kill, and the temporary clone are removed by the next
// run's RemoveStaleClones.
func TestKilledParent(t *testing.T) {
	bundle := testenv.Bundle(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "vulns.git")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cloneIn+"="+dir, "TUXTAPE_TEST_BUNDLE="+bundle)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(20*time.Second, func() bool { return indexing(parent) }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the clone never got to index-pack")
	}
	cmd.Process.Kill()
	cmd.Wait()
	clone := func() bool {
		for _, pid := range gitProcessesIn(parent) {
			args, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
			if strings.Contains(string(args), "\x00clone\x00") {
				return true
			}
		}
		return false
	}
	if !waitFor(2*time.Second, func() bool { return !clone() }) {
		t.Error("git clone outlived the killed process")
	}
	stale, _ := filepath.Glob(filepath.Join(parent, clonePrefix+"*"))
	if len(stale) != 1 {
		t.Fatalf("temporary clones after the kill: %v, want one", stale)
	}
	removed, err := RemoveStaleClones(context.Background(), dir)
	if err != nil || len(removed) != 1 || removed[0] != stale[0] {
		t.Errorf("RemoveStaleClones = %v, %v, want %v", removed, err, stale)
	}
	if _, err := os.Stat(stale[0]); !os.IsNotExist(err) {
		t.Errorf("stale clone still there: %v", err)
	}
	if pids := gitProcessesIn(parent); len(pids) != 0 {
		t.Errorf("git processes left: %v", pids)
	}
}
