package klp

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

func TestCompilerErrors(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []string
	}{
		{"none", "make: *** [Makefile:2050: .] Error 2", nil},
		{
			// Cut from a real run: CVE-2026-72052's ip6_gre.c needs a
			// helper its diff does not add.
			"implicit declaration",
			"  CC [M]  net/ipv6/ip6_gre.o\nnet/ipv6/ip6_gre.c: In function ‘ip6gre_changelink’:\n" +
				"net/ipv6/ip6_gre.c:2115:14: error: implicit declaration of function ‘rtnl_dev_link_net_capable’; did you mean ‘netlink_net_capable’? [-Werror=implicit-function-declaration]\n" +
				" 2115 |         if (!rtnl_dev_link_net_capable(dev, t->net))\ncc1: some warnings being treated as errors\n",
			[]string{"net/ipv6/ip6_gre.c:2115: implicit declaration of function ‘rtnl_dev_link_net_capable’; did you mean ‘netlink_net_capable’? [-Werror=implicit-function-declaration]"},
		},
		{
			"repeats and limit",
			"a.c:1:2: error: x\na.c:9:2: error: x\nb.h:3:4: error: y\nc.c:5:6: error: z\nd.c:7:8: error: w\n",
			[]string{"a.c:1: x", "b.h:3: y", "c.c:5: z"},
		},
		{"warning only", "a.c:1:2: warning: unused variable\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compilerErrors(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("compilerErrors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTransitionBlockers(t *testing.T) {
	// Lines as kernel/livepatch/transition.c prints them with dynamic
	// debug on, from the CVE-2026-64435 run (kauditd never leaves
	// kauditd_thread).
	dmesg := "[   12.1] livepatch: 'tt_x': starting patching transition\n" +
		"[   12.2] livepatch: klp_try_switch_task: kauditd:22 is sleeping on function kauditd_thread\n" +
		"[   13.2] livepatch: klp_try_switch_task: kauditd:22 is sleeping on function kauditd_thread\n" +
		"[   13.3] livepatch: klp_try_switch_task: sh:1 is running\n" +
		"[   14.2] livepatch: klp_try_switch_task: kworker/0:1:17 is sleeping on function worker_thread\n"
	got := transitionBlockers(dmesg)
	want := []string{"kauditd:22 in kauditd_thread", "kworker/0:1:17 in worker_thread"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("transitionBlockers = %q, want %q", got, want)
	}
	if got := transitionBlockers("garbage\x00 is sleeping on function\n"); got != nil {
		t.Errorf("transitionBlockers(garbage) = %q, want none", got)
	}
}

func TestVMReportSummary(t *testing.T) {
	tests := []struct {
		name string
		r    VMReport
		want string
	}{
		{"clean", VMReport{Enabled: true, Transition: true, Unloaded: true}, ""},
		{"stuck", VMReport{Enabled: true, Unloaded: true, Blockers: []string{"kauditd:22 in kauditd_thread"}},
			"the transition did not complete in 30 s (tasks sleeping in patched functions: kauditd:22 in kauditd_thread; a kernel thread that never leaves a patched function keeps the old code)"},
		{"oops", VMReport{Enabled: true, Transition: true, Unloaded: true, Problems: []string{"BUG: kernel NULL pointer dereference"}},
			"BUG: kernel NULL pointer dereference"},
		{"not loaded", VMReport{}, "the patch did not enable; the patch did not disable and unload cleanly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Summary(); got != tt.want {
				t.Errorf("Summary = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestThreadStarter(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("gcc is required in CI: %v", err)
		}
		t.Skipf("gcc not installed: %v", err)
	}
	src := `struct task_struct;
struct task_struct *kthread_create_on_node(int (*fn)(void *), void *data, int node, const char *fmt, ...);
void schedule(void);
static int __attribute__((noinline)) worker(void *d) { for (;;) schedule(); return 0; }
int helper(void *d) { schedule(); return d != 0; }
int start(void) { kthread_create_on_node(worker, 0, -1, "w"); return helper(0); }
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// The code model and fentry calls of an x86_64 kernel build.
	cmd := exec.Command(gcc, "-O2", "-ffunction-sections", "-fdata-sections", "-fno-pie", "-mcmodel=kernel",
		"-mno-red-zone", "-pg", "-mfentry", "-c", "-o", "t.o", "t.c")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	obj, err := elfobj.OpenFile(filepath.Join(dir, "t.o"))
	if err != nil {
		t.Fatal(err)
	}
	all := elfobj.Functions(obj)
	funcs := map[string]*elfobj.Function{}
	for _, f := range all {
		funcs[f.Name] = f
	}
	for name, want := range map[string]string{"worker": "start", "helper": "", "start": ""} {
		f := funcs[name]
		if f == nil {
			t.Fatalf("no function %s in %v", name, funcs)
		}
		if got := threadStarter(obj, all, f); got != want {
			t.Errorf("threadStarter(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestCopyable(t *testing.T) {
	e := &extractor{newData: map[*elfobj.Symbol]bool{}}
	bss := &elfobj.Section{Name: ".bss.__key.2", Type: elf.SHT_NOBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE}
	data := &elfobj.Section{Name: ".data.count", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE}
	ro := &elfobj.Section{Name: ".rodata.__func__.1", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC}
	tests := []struct {
		name string
		sec  *elfobj.Section
		sym  *elfobj.Symbol
		want bool
	}{
		// A lock_class_key without lockdep is empty: the patch may have its own.
		{"empty key", bss, &elfobj.Symbol{Name: "__key.2", Type: elf.STT_OBJECT, Bind: elf.STB_LOCAL, Section: bss}, true},
		{"static variable", data, &elfobj.Symbol{Name: "count", Type: elf.STT_OBJECT, Bind: elf.STB_LOCAL, Size: 4, Section: data}, false},
		{"empty global", bss, &elfobj.Symbol{Name: "marker", Type: elf.STT_OBJECT, Bind: elf.STB_GLOBAL, Section: bss}, false},
		{"__func__", ro, &elfobj.Symbol{Name: "__func__.1", Type: elf.STT_OBJECT, Bind: elf.STB_LOCAL, Size: 9, Section: ro}, true},
	}
	for _, tt := range tests {
		if got := e.copyable(tt.sec, tt.sym); got != tt.want {
			t.Errorf("%s: copyable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
