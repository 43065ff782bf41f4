package klp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/build/vmtest"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

const (
	release = "6.1.0-50-cloud-amd64"
	version = "6.1.176-1"
)

// preparedKernel is a Debian kernel set up once per test binary; the
// packages and the prepared tree are cached across runs.
type preparedKernel struct {
	release, version string
	once             sync.Once
	k                *target.Kernel
	err              error
}

var kernel61 = &preparedKernel{release: release, version: version}

// get sets the kernel up, or skips without the VM tools' consent.
func (p *preparedKernel) get(t *testing.T) *target.Kernel {
	t.Helper()
	if os.Getenv("TUXTAPE_SKIP_VM") == "1" {
		t.Skip("TUXTAPE_SKIP_VM=1")
	}
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "gcc-12", "patch"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (run scripts/install-deps, or set TUXTAPE_SKIP_VM=1)", tool, err)
		}
	}
	p.once.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			p.err = err
			return
		}
		start := time.Now()
		p.k, p.err = target.Debian(context.Background(), kernelenv.DebOptions(), p.release, p.version, filepath.Join(cache, "tuxtape", "trees"), slog.Default())
		t.Logf("kernel %s=%s ready in %v", p.release, p.version, time.Since(start))
	})
	if p.err != nil {
		t.Fatalf("set up kernel %s=%s: %v", p.release, p.version, p.err)
	}
	return p.k
}

// debianKernel is Debian's 6.1 cloud kernel.
func debianKernel(t *testing.T) *target.Kernel { return kernel61.get(t) }

// bootWith runs the patch through its life in a VM and returns the
// key/value lines the exercise printed.
func bootWith(t *testing.T, k *target.Kernel, ko, name, exercise string, objects ...string) map[string]string {
	t.Helper()
	return bootWithFiles(t, k, ko, name, exercise, objects)
}

// bootWithFiles is bootWith with files the exercise needs in the guest.
func bootWithFiles(t *testing.T, k *target.Kernel, ko, name, exercise string, objects []string, files ...vmtest.File) map[string]string {
	t.Helper()
	r, err := vmcheck.Check(context.Background(), k.VM(), ko, name, objects, exercise, files...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VM values: %v", r.Values)
	for _, p := range r.Problems {
		t.Errorf("problem: %s", p)
	}
	if !r.OK() {
		t.Errorf("VM report: %+v\n%s", r, cmdout.Tail(r.Dmesg, 30))
	}
	return r.Values
}

func build(t *testing.T, k *target.Kernel, name string, fixes ...string) (string, *klp.Result) {
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
	res, err := klp.Build(context.Background(), k.Kernel, klp.Options{Fixes: fs, Name: name, Replace: true, WorkDir: t.TempDir(), Out: out})
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

// TestSymposConsoles patches c_start of fs/proc/consoles.c; vmlinux has
// three static functions of that name, so old_sympos must pick the right
// one: /proc/consoles changes, /proc/cpuinfo (another c_start) does not.
func TestSymposConsoles(t *testing.T) {
	k := debianKernel(t)
	ko, res := build(t, k, "tt_consoles", "testdata/consoles-sympos.patch")
	if len(res.Units) != 1 || len(res.Units[0].Funcs) != 1 || res.Units[0].Funcs[0].Name != "c_start" || res.Units[0].Funcs[0].Sympos < 1 {
		t.Fatalf("units = %+v, want c_start with a sympos", res.Units)
	}
	pos := res.Units[0].Funcs[0].Sympos
	kv := bootWith(t, k, ko, "tt_consoles", `exercise() {
	echo "consoles-$1: $(head -n 1 /proc/consoles)"
	echo "cpuinfo-$1: $(head -n 1 /proc/cpuinfo)"
}`, "vmlinux")
	if want := fmt.Sprintf("vmlinux/c_start,%d", pos); kv["sysfs"] != want {
		t.Errorf("sysfs = %q, want %q", kv["sysfs"], want)
	}
	if !strings.HasPrefix(kv["consoles-patched"], "tuxtape ttyS0") || !strings.HasPrefix(kv["consoles-after"], "ttyS0") {
		t.Errorf("/proc/consoles patched %q, after %q", kv["consoles-patched"], kv["consoles-after"])
	}
	if !strings.HasPrefix(kv["cpuinfo-patched"], "processor") || kv["cpuinfo-patched"] != kv["cpuinfo-after"] {
		t.Errorf("/proc/cpuinfo patched %q, after %q: the wrong c_start was patched", kv["cpuinfo-patched"], kv["cpuinfo-after"])
	}
}

// TestStaticKeyVmlinux: the new code branches on delayacct_key, a static
// key vmlinux does not export. Its __jump_table entry reaches the key
// through a livepatch relocation, which the module loader applies before
// it sets up the patch's jump labels; the branch then follows the key as
// sysctl kernel.task_delayacct turns it on and off.
func TestStaticKeyVmlinux(t *testing.T) {
	k := debianKernel(t)
	ko, res := build(t, k, "tt_dacct", "testdata/delayacct-static-key.patch")
	if len(res.Units) != 1 || !slices.Contains(res.Units[0].KlpSymbols, "vmlinux:delayacct_key,0") {
		t.Fatalf("units = %+v, want delayacct_key through a livepatch relocation", res.Units)
	}
	kv := bootWith(t, k, ko, "tt_dacct", `exercise() {
	echo "off-$1: $(cat /proc/sys/kernel/task_delayacct)"
	echo 1 > /proc/sys/kernel/task_delayacct
	echo "on-$1: $(cat /proc/sys/kernel/task_delayacct)"
	echo 0 > /proc/sys/kernel/task_delayacct
}`, "vmlinux")
	for key, want := range map[string]string{"off-patched": "0", "on-patched": "7", "off-after": "0", "on-after": "1"} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
}

// TestModuleExercised runs the patched code of a module fix from user
// space: CVE-2026-64317 changes the Rock Ridge symlink parser of isofs.
// The guest mounts an ISO with a symlink while the patch is enabled and
// reads the link; function tracing restricted to the livepatch module
// shows its code is what ran.
func TestModuleExercised(t *testing.T) {
	k := debianKernel(t)
	geniso, err := exec.LookPath("genisoimage")
	if err != nil {
		t.Fatalf("genisoimage: %v (run scripts/install-deps)", err)
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "target"), []byte("isofs target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "rr.iso")
	if out, err := exec.Command(geniso, "-quiet", "-R", "-o", iso, tree).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	const name = "tt_isofs_rr"
	ko, res := build(t, k, name, filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-64317.patch"))
	if len(res.Units) != 1 || res.Units[0].Object != "isofs" {
		t.Fatalf("units = %+v, want one unit of isofs", res.Units)
	}
	kv := bootWithFiles(t, k, ko, name, `exercise() {
	tr=/sys/kernel/tracing
	if [ "$1" = patched ]; then
		echo ":mod:`+name+`" > $tr/set_ftrace_filter
		echo function > $tr/current_tracer
	fi
	echo > $tr/trace
	mkdir -p /mnt/iso
	mount -t iso9660 -o loop,ro /root/rr.iso /mnt/iso
	echo "readlink-$1: $(readlink /mnt/iso/link)"
	echo "cat-$1: $(cat /mnt/iso/link)"
	umount /mnt/iso
	echo "traced-$1: $(grep -v '^#' $tr/trace | grep -c . || true)"
	echo nop > $tr/current_tracer
}`, []string{"isofs", "loop"}, vmtest.File{Path: "/root/rr.iso", Source: iso})
	for _, phase := range []string{"patched", "after"} {
		if kv["readlink-"+phase] != "target" || kv["cat-"+phase] != "isofs target" {
			t.Errorf("%s: readlink %q, cat %q; want target, isofs target", phase, kv["readlink-"+phase], kv["cat-"+phase])
		}
	}
	if n, _ := strconv.Atoi(kv["traced-patched"]); n == 0 {
		t.Errorf("no function of %s ran while the link was read (traced-patched = %q)", name, kv["traced-patched"])
	}
}

// TestCorpus builds real fixes from the corpus: one in a module (the patch
// applies when the module loads; here it is loaded first) and one in
// vmlinux whose new code reaches static symbols of its file through
// livepatch relocations.
func TestCorpus(t *testing.T) {
	k := debianKernel(t)
	corpus := filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches")
	if _, err := os.Stat(corpus); err != nil {
		t.Fatalf("corpus not found: %v", err)
	}
	for _, tc := range []struct {
		id, object string
		klpSym     string // a livepatch relocation the build must have
	}{
		{"CVE-2026-64317", "isofs", "isofs:iso_date,0"},
		{"CVE-2026-64324", "udf", ""},
		{"CVE-2026-31451", "vmlinux", "vmlinux:__ext4_check_dir_entry,0"},
		// cpufreq_driver is a static variable of drivers/cpufreq/cpufreq.c.
		{"CVE-2026-64373", "vmlinux", "vmlinux:cpufreq_driver,0"},
		// A WARN_ONCE flag: a static local whose name vmlinux has 70-odd times.
		{"CVE-2026-64425", "vmlinux", "vmlinux:__already_done.1,41"},
		// net_get_random_once: DO_ONCE's static key is the fix's own,
		// carried in the patch with its jump labels.
		{"CVE-2026-74290", "cls_flow", ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			name := "tt_" + strings.ToLower(strings.ReplaceAll(tc.id, "-", "_"))
			ko, res := build(t, k, name, filepath.Join(corpus, tc.id+".patch"))
			var klpSyms []string
			for _, u := range res.Units {
				if u.Object != tc.object {
					t.Errorf("unit %s belongs to %s, want %s", u.Unit, u.Object, tc.object)
				}
				klpSyms = append(klpSyms, u.KlpSymbols...)
			}
			if tc.klpSym != "" && !slices.Contains(klpSyms, tc.klpSym) {
				t.Errorf("livepatch relocations against %v, want one against %s", klpSyms, tc.klpSym)
			}
			t.Logf("livepatch relocations against %v", klpSyms)
			kv := bootWith(t, k, ko, name, "", tc.object)
			if !strings.Contains(kv["sysfs"], tc.object+"/") {
				t.Errorf("sysfs = %q, want functions under %s/", kv["sysfs"], tc.object)
			}
		})
	}
}

// TestLoadsBeforeModules: a module's patched function calls an export of
// another module (udf's udf_read_tagged calls crc_itu_t of crc-itu-t).
// The patch must not depend on either: it loads first, as on a host where
// the filesystem is mounted hours later, and udf is patched as it loads.
func TestLoadsBeforeModules(t *testing.T) {
	k := debianKernel(t)
	const name = "tt_udf_crc"
	ko, res := build(t, k, name, filepath.Join("testdata", "udf-crc-error.patch"))
	if len(res.Units) != 1 || !slices.Contains(res.Units[0].KlpSymbols, "crc_itu_t:crc_itu_t,0") {
		t.Fatalf("units = %+v, want a livepatch relocation against crc_itu_t:crc_itu_t,0", res.Units)
	}
	info, err := exec.Command("modinfo", "-F", "depends", ko).Output()
	if err != nil {
		t.Fatal(err)
	}
	if d := strings.TrimSpace(string(info)); d != "" {
		t.Errorf("the patch depends on %q, want no module", d)
	}
	kv := bootWith(t, k, ko, name, "", "udf")
	if kv["later"] != "udf" || kv["objects"] != "udf=1" || kv["objects-again"] != "udf=1" {
		t.Errorf("later %q, objects %q, objects-again %q; want udf loaded after the patch and patched both times", kv["later"], kv["objects"], kv["objects-again"])
	}
}

// TestStaticCPUHas: a patched function that tests a CPU feature with
// static_cpu_has() jumps into the unit's .altinstr_aux for the test the
// kernel runs until alternatives are applied; the patch carries that block.
// start_thread_common runs on every execve, which the exercise does.
func TestStaticCPUHas(t *testing.T) {
	k := debianKernel(t)
	const name = "tt_static_cpu_has"
	ko, res := build(t, k, name, filepath.Join("testdata", "static-cpu-has.patch"))
	if len(res.Units) != 1 || len(res.Units[0].Funcs) == 0 || !strings.HasPrefix(res.Units[0].Funcs[0].Name, "start_thread_common") {
		t.Fatalf("units = %+v, want start_thread_common patched", res.Units)
	}
	kv := bootWith(t, k, ko, name, vmcheck.Traced(name, "default_exercise", vmcheck.DefaultExercise))
	ran := strings.Fields(kv["ran"])
	if !slices.ContainsFunc(ran, func(f string) bool {
		return strings.HasPrefix(f, "start_thread_common") || strings.HasPrefix(f, "__tuxtape_")
	}) {
		t.Errorf("ran = %v, want the patched start_thread_common (the exercise runs programs)", ran)
	}
}

// TestBadFixes: what the generator says about fixes it cannot turn into a
// module.
func TestBadFixes(t *testing.T) {
	k := debianKernel(t)
	comment := "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -6,6 +6,7 @@\n \n static int cmdline_proc_show(struct seq_file *m, void *v)\n {\n+\t/* a comment changes no code */\n \tseq_puts(m, saved_command_line);\n \tseq_putc(m, '\\n');\n \treturn 0;\n"
	noApply := strings.Replace(comment, "seq_puts(m, saved_command_line)", "seq_puts(m, other_line)", 1)
	header := "--- a/include/linux/seq_file.h\n+++ b/include/linux/seq_file.h\n@@ -1,3 +1,4 @@\n+/* x */\n"
	initFix := "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -14,5 +14,6 @@\n static int __init proc_cmdline_init(void)\n {\n \tproc_create_single(\"cmdline\", 0, NULL, cmdline_proc_show);\n+\tpr_info(\"proc_cmdline_init\\n\");\n \treturn 0;\n }\n"
	outside := "--- a/../../../tmp/x.c\n+++ b/../../../tmp/x.c\n@@ -1 +1 @@\n-a\n+b\n"
	unknownFile := "--- a/fs/no-such-dir/x.c\n+++ b/fs/no-such-dir/x.c\n@@ -1 +1 @@\n-a\n+b\n"
	// The cloud config builds no wireless drivers.
	notBuilt := "--- a/drivers/net/wireless/intel/iwlwifi/pcie/drv.c\n+++ b/drivers/net/wireless/intel/iwlwifi/pcie/drv.c\n@@ -1 +1 @@\n-a\n+b\n"
	kstrtouint := "--- a/lib/kstrtox.c\n+++ b/lib/kstrtox.c\n@@ -235,5 +235,5 @@\n \t\treturn rv;\n \tif (tmp != (unsigned int)tmp)\n-\t\treturn -ERANGE;\n+\t\treturn -EINVAL;\n \t*res = tmp;\n \treturn 0;\n"
	// A const ops table the fix adds a callback to: it cannot be written
	// at run time, so it is not repointed.
	readOnly, err := os.ReadFile(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-74363.patch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, diff string
		check      func(error) bool
		code       refusal.Code
		function   string
		msg        string
	}{
		{"empty", "", func(err error) bool { return err != nil }, refusal.BadFix, "", "empty"},
		{"outside the tree", outside, func(err error) bool { return err != nil }, refusal.BadFix, "", ".."},
		{"comment only", comment, func(err error) bool { return errors.Is(err, klp.ErrNoChange) }, refusal.NoChange, "", "no functional change"},
		{"does not apply", noApply, func(err error) bool { return errors.Is(err, klp.ErrFixDoesNotApply) }, refusal.FixDoesNotApply, "", "does not apply"},
		// The static profile's include graph finds every unit that reads
		// it: far too many to compare.
		{"header", header, klp.IsNotLivepatchable, refusal.HeaderTooWide, "", "header include/linux/seq_file.h"},
		{"__init", initFix, klp.IsNotLivepatchable, refusal.InitExit, "proc_cmdline_init", "__init"},
		{"other arch", "--- a/arch/arm64/kernel/smp.c\n+++ b/arch/arm64/kernel/smp.c\n@@ -1 +1 @@\n-a\n+b\n", func(err error) bool { return errors.Is(err, klp.ErrNotCompiled) }, refusal.OtherArch, "", "another architecture"},
		{"not in the source", unknownFile, func(err error) bool { return errors.Is(err, klp.ErrFixDoesNotApply) }, refusal.FixDoesNotApply, "", "has no fs/no-such-dir/x.c"},
		{"not in the build", notBuilt, func(err error) bool { return errors.Is(err, klp.ErrNotCompiled) }, refusal.NotCompiled, "", "iwlwifi/pcie/drv.c"},
		// lib/ has no ftrace entries, and hundreds of units call kstrtouint.
		{"callers too many", kstrtouint, klp.IsNotLivepatchable, refusal.CallersTooMany, "kstrtouint", "compile units of this kernel call them"},
		{"read-only ops table", string(readOnly), klp.IsNotLivepatchable, refusal.ChangedData, "", "bpf_super_ops (pointers 4 → 5: read-only data (.rodata.bpf_super_ops)"},
	} {
		_, err := klp.Build(context.Background(), k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: tc.name, Diff: []byte(tc.diff)}}, Name: "tt_bad",
			WorkDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "tt_bad.ko")})
		if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Build error = %v, want one saying %q", tc.name, err, tc.msg)
		}
		r, ok := klp.AsRefusal(err)
		if !ok || r.Code != tc.code || r.Function != tc.function {
			t.Errorf("%s: refusal = %+v, want code %q, function %q", tc.name, r, tc.code, tc.function)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(k.Tree.Dir), "tmp", "x.o")); err == nil {
		t.Errorf("a fix outside the tree was compiled outside it")
	}
	// A patch named like a module of the kernel would be what modprobe
	// finds instead of the module.
	_, err = klp.Build(context.Background(), k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: "comment", Diff: []byte(comment)}}, Name: "isofs",
		WorkDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "isofs.ko")})
	if err == nil || !strings.Contains(err.Error(), `"isofs" is the name of a module of this kernel`) {
		t.Errorf("Build named isofs = %v, want the name refused", err)
	}
}

// TestHeaderFix: a fix to a header reaches every unit that reads it, as the
// kernel's real build profile says (a fixture cut from the cloud config's
// full build: the three apparmor units that include policy_unpack.h).
func TestHeaderFix(t *testing.T) {
	k := debianKernel(t)
	data, err := os.ReadFile(filepath.Join("testdata", "cloud-profile-apparmor.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p profile.Profile
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	k.Profile = profile.NewIndex(&p)
	defer func() { k.Profile = nil }()

	// Too many readers: refused with the count, before any compile.
	wide := &profile.Profile{Kind: profile.KindReal, Deps: map[string][]int32{}}
	for i := range klp.MaxHeaderUnits + 1 {
		wide.Units = append(wide.Units, profile.Unit{Source: fmt.Sprintf("net/x%02d.c", i), Object: fmt.Sprintf("net/x%02d.o", i), Target: "vmlinux"})
		wide.Deps["include/net/sock.h"] = append(wide.Deps["include/net/sock.h"], int32(i))
	}
	k.Profile = profile.NewIndex(wide)
	header := "--- a/include/net/sock.h\n+++ b/include/net/sock.h\n@@ -1,3 +1,4 @@\n+/* x */\n"
	_, err = klp.Build(context.Background(), k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: "wide", Diff: []byte(header)}}, Name: "tt_wide",
		WorkDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "tt_wide.ko")})
	if !klp.IsNotLivepatchable(err) || !strings.Contains(err.Error(), "41 compile units") {
		t.Errorf("a header read by %d units: %v", klp.MaxHeaderUnits+1, err)
	}
	k.Profile = profile.NewIndex(&p)

	corpus := filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches")
	const id = "CVE-2026-63827" // security/apparmor/include/policy_unpack.h and policy.c
	name := "tt_cve_2026_63827"
	ko, res := build(t, k, name, filepath.Join(corpus, id+".patch"))
	var units []string
	for _, u := range res.Units {
		units = append(units, u.Unit)
	}
	slices.Sort(units)
	want := []string{"security/apparmor/apparmorfs.o", "security/apparmor/policy.o", "security/apparmor/policy_unpack.o"}
	if !slices.Equal(units, want) {
		t.Errorf("compared units %v, want %v", units, want)
	}
	kv := bootWith(t, k, ko, name, "", "vmlinux")
	if !strings.Contains(kv["sysfs"], "vmlinux/") {
		t.Errorf("sysfs = %q, want functions under vmlinux/", kv["sysfs"])
	}
}

// cancelOn cancels a build a moment after the generator logs msg, so the
// cancellation lands while make runs.
type cancelOn struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
}

func (c cancelOn) Enabled(context.Context, slog.Level) bool { return true }

func (c cancelOn) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == c.msg {
		time.AfterFunc(300*time.Millisecond, c.cancel)
	}
	return nil
}

// TestBuildCancelled: a build stopped mid-compile returns the context's
// error, never a verdict such as "not compiled" or "does not compile".
func TestBuildCancelled(t *testing.T) {
	k := debianKernel(t)
	fix, err := os.ReadFile(filepath.Join("testdata", "cmdline.patch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"compiling before the fix", "compiling after the fix"} {
		ctx, cancel := context.WithCancel(context.Background())
		log := slog.New(cancelOn{Handler: slog.DiscardHandler, msg: phase, cancel: cancel})
		start := time.Now()
		_, err := klp.Build(ctx, k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: "cmdline.patch", Diff: fix}}, Name: "tt_cancel",
			WorkDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "tt_cancel.ko"), Log: log})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled while %s: Build error = %v, want context.Canceled", phase, err)
		}
		if r, ok := klp.AsRefusal(err); ok {
			t.Errorf("cancelled while %s: got the verdict %s (%s)", phase, r.Code, r.Reason)
		}
		t.Logf("cancelled while %s: returned after %v: %v", phase, time.Since(start).Round(time.Millisecond), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = klp.Build(ctx, k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: "cmdline.patch", Diff: fix}}, Name: "tt_cancel",
		WorkDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "tt_cancel.ko")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past its deadline: Build error = %v, want context.DeadlineExceeded", err)
	}
}

// TestCallersAcrossUnits: the fix changes generate_random_uuid in lib/,
// which 6.1 builds without ftrace, so livepatch cannot redirect it. The
// patch carries the new copy and replaces its callers in other units
// instead, in vmlinux (proc_do_uuid behind /proc/sys/kernel/random/uuid)
// and in the modules that call it, their calls bound to the copy. The
// UUIDs the kernel makes carry the fix's mark while the patch is on, and
// not after.
func TestCallersAcrossUnits(t *testing.T) { callersAcrossUnits(t, debianKernel(t), "tt_uuid_callers") }

func callersAcrossUnits(t *testing.T, k *target.Kernel, name string) {
	ko, res := build(t, k, name, filepath.Join("testdata", "uuid-lib.patch"))
	var lib, random *klp.UnitResult
	objects := map[string]bool{}
	for i, u := range res.Units {
		switch u.Unit {
		case "lib/uuid.o":
			lib = &res.Units[i]
		case "drivers/char/random.o":
			random = &res.Units[i]
		}
		for _, f := range u.Funcs {
			if !f.New {
				objects[f.Object] = true
			}
		}
	}
	if lib == nil || random == nil {
		t.Fatalf("units = %+v, want lib/uuid.o and drivers/char/random.o", res.Units)
	}
	if !slices.ContainsFunc(lib.Funcs, func(f klp.Func) bool { return f.Name == "generate_random_uuid" && f.New }) {
		t.Errorf("lib/uuid.o funcs = %+v, want generate_random_uuid carried, not redirected", lib.Funcs)
	}
	if !slices.ContainsFunc(random.Funcs, func(f klp.Func) bool { return f.Name == "proc_do_uuid" && !f.New }) ||
		!slices.ContainsFunc(random.Callers, func(c string) bool { return strings.HasPrefix(c, "proc_do_uuid calls generate_random_uuid") }) {
		t.Errorf("drivers/char/random.o = %+v, want proc_do_uuid redirected as a caller of generate_random_uuid", *random)
	}
	var mods []string
	for o := range objects {
		if o != "vmlinux" {
			mods = append(mods, o)
		}
	}
	if len(mods) == 0 {
		t.Errorf("objects = %v, want the modules that call generate_random_uuid (ext4, btrfs, cifs...) too", objects)
	}
	slices.Sort(mods)
	t.Logf("patched objects: vmlinux %v", mods)
	kv := bootWith(t, k, ko, name, `exercise() { echo "uuid-$1: $(cat /proc/sys/kernel/random/uuid)"; }`, append([]string{"vmlinux"}, mods...)...)
	if !strings.HasPrefix(kv["uuid-patched"], "74757874-") {
		t.Errorf("uuid while patched = %q, want the fix's mark 74757874-", kv["uuid-patched"])
	}
	if u := kv["uuid-after"]; len(u) != 36 || strings.HasPrefix(u, "74757874-") {
		t.Errorf("uuid after the patch = %q, want a random one", u)
	}
}

// TestCallersAddressTaken: CVE-2026-64299 changes glob_match (lib/) and
// the trace event filter's matchers (kernel/trace/), none of which has an
// ftrace entry, so their callers would have to be patched instead; but the
// filter stores the matchers' addresses in its predicates (and tracefs
// reaches the glob_match callers through its file operations), and a call
// through such a pointer would keep the old code: refused, with the
// reason.
func TestCallersAddressTaken(t *testing.T) {
	k := debianKernel(t)
	diff, err := os.ReadFile(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "CVE-2026-64299.patch"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = klp.Build(context.Background(), k.Kernel, klp.Options{Fixes: []klp.Fix{{Name: "CVE-2026-64299", Diff: diff}}, Name: "tt_glob",
		WorkDir: t.TempDir(), Out: filepath.Join(t.TempDir(), "tt_glob.ko")})
	r, ok := klp.AsRefusal(err)
	if !ok || r.Code != refusal.AddressTaken || !strings.Contains(r.Reason, "its address is taken") || r.Unit == "" {
		t.Fatalf("Build = %v (%+v), want an address_taken refusal naming the unit", err, r)
	}
	t.Logf("refused: %s: %s", r.Unit, r.Reason)
}
