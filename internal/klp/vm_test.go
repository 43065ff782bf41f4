package klp_test

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

	"github.com/tuxtape/tuxtape/internal/debpkg"
	"github.com/tuxtape/tuxtape/internal/klp"
	"github.com/tuxtape/tuxtape/internal/vmtest"
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

// lifecycle loads a livepatch, runs exercise while it is enabled, disables
// and unloads it, and prints "key: value" lines for the test to check.
func lifecycle(name, exercise string) string {
	return fmt.Sprintf(`set -e
lp=/sys/kernel/livepatch/%[1]s
wait_transition() {
	i=0
	while [ -e $lp/transition ] && [ "$(cat $lp/transition)" != 0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
}
%[2]s
echo "phase: before"
insmod /root/%[1]s.ko
wait_transition
echo "enabled: $(cat $lp/enabled)"
echo "transition: $(cat $lp/transition)"
echo "sysfs: $(cd $lp && ls -d */*,* | tr '\n' ' ' | sed 's/ $//')"
echo "phase: patched"
exercise patched
echo 0 > $lp/enabled
i=0
while [ -e $lp ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ -e $lp ] && echo "disabled: still there" || echo "disabled: gone"
rmmod %[1]s
echo "modules: $(grep -c '^%[1]s ' /proc/modules || true)"
exercise after
`, name, exercise)
}

func parseKV(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv
}

// bootWith loads ko in a VM with script and returns its key/value output.
func bootWith(t *testing.T, k *klp.Kernel, ko, name, script string, modules ...string) map[string]string {
	t.Helper()
	res, err := vmtest.Boot(context.Background(), vmtest.Config{
		Kernel:     k.Vmlinuz,
		ModulesDir: k.ModulesDir,
		Modules:    modules,
		Files:      []vmtest.File{{Path: "/root/" + name + ".ko", Source: ko}},
		Script:     script,
		Timeout:    3 * time.Minute,
	})
	if err != nil {
		con := ""
		if res != nil {
			con = res.Console
		}
		t.Fatalf("boot: %v\n%s", err, lastLines(con, 60))
	}
	t.Logf("VM output:\n%s", res.Output)
	if res.ExitCode != 0 {
		t.Fatalf("script exit %d\n%s", res.ExitCode, lastLines(res.Console, 60))
	}
	for _, p := range res.Problems {
		t.Errorf("kernel problem: %s", p.Line)
	}
	if !strings.Contains(res.Dmesg, "'"+name+"': patching complete") || !strings.Contains(res.Dmesg, "'"+name+"': unpatching complete") {
		t.Errorf("dmesg lacks the livepatch transitions:\n%s", lastLines(res.Dmesg, 30))
	}
	return parseKV(res.Output)
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
	kv := bootWith(t, k, ko, "tt_cmdline", lifecycle("tt_cmdline", `exercise() { echo "cmdline-$1: $(cat /proc/cmdline)"; }`))
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
