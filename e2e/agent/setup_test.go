package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

const (
	release = "6.1.0-50-cloud-amd64"
	version = "6.1.176-1"
)

var (
	kernelOnce sync.Once
	kernel     *target.Kernel
	kernelErr  error

	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// needVM skips only when TUXTAPE_SKIP_VM=1; otherwise missing tools fail
// the test, so a broken set-up is not mistaken for a pass.
func needVM(t *testing.T) {
	t.Helper()
	if os.Getenv("TUXTAPE_SKIP_VM") == "1" {
		t.Skip("TUXTAPE_SKIP_VM=1")
	}
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "gcc-12", "patch"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (run scripts/install-deps, or set TUXTAPE_SKIP_VM=1)", tool, err)
		}
	}
}

// debianKernel sets up Debian's cloud kernel once per test binary; the
// packages and the prepared tree are cached across runs.
func debianKernel(t *testing.T) *target.Kernel {
	t.Helper()
	needVM(t)
	kernelOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			kernelErr = err
			return
		}
		opts := debpkg.Options{}
		if v := os.Getenv("TUXTAPE_DEB_DIRS"); v != "" {
			opts.SeedDirs = filepath.SplitList(v)
		}
		kernel, kernelErr = target.Debian(context.Background(), opts, release, version, filepath.Join(cache, "tuxtape", "trees"), slog.Default())
	})
	if kernelErr != nil {
		t.Fatalf("set up kernel %s=%s: %v", release, version, kernelErr)
	}
	return kernel
}

// buildPatch builds a cumulative (replace) livepatch module named name
// from the fixes in testdata.
func buildPatch(t *testing.T, k *target.Kernel, name string, fixes ...string) string {
	t.Helper()
	var fs []klp.Fix
	for _, f := range fixes {
		d, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, klp.Fix{Name: f, Diff: d})
	}
	out := filepath.Join(t.TempDir(), name+".ko")
	start := time.Now()
	if _, err := klp.Build(context.Background(), k.Kernel, klp.Options{Fixes: fs, Name: name, Replace: true, WorkDir: t.TempDir(), Out: out}); err != nil {
		t.Fatalf("build %s from %v: %v", name, fixes, err)
	}
	t.Logf("built %s in %v", name, time.Since(start).Round(time.Millisecond))
	return out
}

// buildAgent builds tuxtape-agent as it ships: static, stripped.
func buildAgent(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tuxtape-agent-bin-")
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "tuxtape-agent")
		cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", agentBin, "./cmd/tuxtape-agent")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("build tuxtape-agent: %v\n%s", err, out)
		}
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentBin
}

// values reads the "key: value" lines a guest script printed.
func values(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.ContainsAny(k, " =") {
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv
}
