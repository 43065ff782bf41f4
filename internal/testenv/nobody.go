package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RerunAsNobody runs the tests matching run again in a copy of the
// running test binary as nobody (uid and gid 65534, no groups), with env
// set in the child so it can tell, and returns their verbose output; it
// fails t if they fail or any of mustRun was skipped. The tests that ran as
// root show what holds for a root process; this shows the rest without one.
// It skips where the process is not root or util-linux's setpriv is absent.
func RerunAsNobody(t *testing.T, env, run string, mustRun ...string) string {
	t.Helper()
	if os.Getenv(env) != "" {
		t.Skip("already the run as nobody")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: the other tests ran without root already")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv (util-linux) to drop to another uid")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy nobody may run, in a directory nobody may use as its /tmp
	// (t.TempDir's parent is root's alone).
	dir, err := os.MkdirTemp("", "tuxtape-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(self))
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--", bin, "-test.run", run, "-test.v")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir, "HOME=" + dir, env + "=1"}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests as nobody: %v\n%s", err, out)
	}
	for _, name := range mustRun {
		if strings.Contains(string(out), "--- SKIP: "+name+" ") {
			t.Errorf("as nobody, %s was skipped:\n%s", name, out)
		}
	}
	return string(out)
}
