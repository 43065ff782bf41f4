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
		{
			// Cut from a real run: CVE-2026-64380's header prerequisite
			// includes a header added in the same window.
			"fatal: a missing header",
			"In file included from fs/smb/client/asn1.c:12:\nfs/smb/client/cifsglob.h:29:10: fatal error: ../common/cifsglob.h: No such file or directory\ncompilation terminated.\n",
			[]string{"fs/smb/client/cifsglob.h:29: ../common/cifsglob.h: No such file or directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compilerErrors(tt.out, 3); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("compilerErrors = %q, want %q", got, tt.want)
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

func TestFirstErrors(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"compiler", "  CC      fs/x.o\nfs/x.c:12:3: error: 'y' undeclared (first use in this function)\nmake[2]: *** [scripts/Makefile.build:250: fs/x.o] Error 1\n",
			"fs/x.c:12: 'y' undeclared (first use in this function)"},
		{"objtool", "  CC      fs/x.o\nfs/x.o: error: objtool: can't find starting instruction\nmake[2]: *** [scripts/Makefile.build:250: fs/x.o] Error 255\nmake[1]: *** [Makefile:2012: fs] Error 2\n",
			"fs/x.o: error: objtool: can't find starting instruction"},
		{"no error lines", "a\nb\nc\n", "a; b; c"},
	}
	for _, tt := range tests {
		if got := firstErrors(tt.out); got != tt.want {
			t.Errorf("%s: firstErrors(%q) = %q, want %q", tt.name, tt.out, got, tt.want)
		}
	}
}
