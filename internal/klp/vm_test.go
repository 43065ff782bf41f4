package klp_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/debpkg"
	"github.com/tuxtape/tuxtape/internal/klp"
)

const (
	release = "6.1.0-50-cloud-amd64"
	version = "6.1.176-1"
)

var (
	kernelOnce sync.Once
	kernel     *klp.Kernel
	kernelErr  error
)

// debianKernel sets up Debian's cloud kernel once per test binary; the
// packages and the prepared tree are cached across runs.
func debianKernel(t *testing.T) *klp.Kernel {
	t.Helper()
	if os.Getenv("TUXTAPE_SKIP_VM") == "1" {
		t.Skip("TUXTAPE_SKIP_VM=1")
	}
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "gcc-12", "patch"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (run scripts/install-deps, or set TUXTAPE_SKIP_VM=1)", tool, err)
		}
	}
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
		start := time.Now()
		kernel, kernelErr = klp.DebianKernel(context.Background(), opts, release, version, filepath.Join(cache, "tuxtape", "trees"), slog.Default())
		t.Logf("kernel %s=%s ready in %v", release, version, time.Since(start))
	})
	if kernelErr != nil {
		t.Fatalf("set up kernel %s=%s: %v", release, version, kernelErr)
	}
	return kernel
}

// bootWith runs the patch through its life in a VM and returns the
// key/value lines the exercise printed.
func bootWith(t *testing.T, k *klp.Kernel, ko, name, exercise string, objects ...string) map[string]string {
	t.Helper()
	r, err := klp.CheckInVM(context.Background(), k, ko, name, objects, exercise)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM values: %v", r.Values)
	for _, p := range r.Problems {
		t.Errorf("problem: %s", p)
	}
	if !r.OK() {
		t.Errorf("VM report: %+v\n%s", r, lastLines(r.Dmesg, 30))
	}
	return r.Values
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func build(t *testing.T, k *klp.Kernel, name string, fixes ...string) (string, *klp.Result) {
	t.Helper()
	var fs []klp.Fix
	for _, f := range fixes {
		d, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, klp.Fix{Name: filepath.Base(f), Diff: d})
	}
	out := filepath.Join(t.TempDir(), name+".ko")
	res, err := klp.Build(context.Background(), k, klp.Options{Fixes: fs, Name: name, Replace: true, WorkDir: t.TempDir(), Out: out})
	if err != nil {
		t.Fatalf("build %v: %v", fixes, err)
	}
	t.Logf("built %s in %v: %+v", name, res.Duration, res.Units)
	return out, res
}

// TestCmdlineBehaviour: a fix whose effect user space sees (/proc/cmdline)
// changes behaviour once loaded and reverts once disabled; the new code
// reaches a non-exported vmlinux variable through a livepatch relocation.
func TestCmdlineBehaviour(t *testing.T) {
	k := debianKernel(t)
	ko, res := build(t, k, "tt_cmdline", "testdata/cmdline.patch")
	if len(res.Units) != 1 || strings.Join(res.Units[0].Changed, ",") != "cmdline_proc_show" ||
		strings.Join(res.Units[0].KlpSymbols, ",") != "vmlinux:saved_command_line,0" {
		t.Errorf("units = %+v, want cmdline_proc_show changed, saved_command_line through a klp relocation", res.Units)
	}
	kv := bootWith(t, k, ko, "tt_cmdline", `exercise() { echo "cmdline-$1: $(cat /proc/cmdline)"; }`, "vmlinux")
	for key, want := range map[string]string{"enabled": "1", "transition": "0", "sysfs": "vmlinux/cmdline_proc_show,1", "disabled": "gone", "modules": "0"} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
	if !strings.HasPrefix(kv["cmdline-patched"], "tuxtape-livepatched console=ttyS0") {
		t.Errorf("patched /proc/cmdline = %q", kv["cmdline-patched"])
	}
	if !strings.HasPrefix(kv["cmdline-after"], "console=ttyS0") {
		t.Errorf("/proc/cmdline after disabling = %q", kv["cmdline-after"])
	}
}
