package elfobj

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Compilation modes for test objects. All use the flags the generator
// compiles with; "kernel" adds the code model and ftrace instrumentation
// of an x86_64 kernel build (R_X86_64_32S references, __fentry__ calls and
// __mcount_loc entries); "patchable" adds the SHF_LINK_ORDER
// __patchable_function_entries sections other kernels use.
var modes = map[string][]string{
	"user":      {"-O2", "-ffunction-sections", "-fdata-sections"},
	"patchable": {"-O2", "-ffunction-sections", "-fdata-sections", "-fpatchable-function-entry=8"},
	"kernel":    {"-O2", "-ffunction-sections", "-fdata-sections", "-fno-pie", "-mcmodel=kernel", "-mno-red-zone", "-fno-asynchronous-unwind-tables", "-pg", "-mfentry", "-mrecord-mcount"},
}

var buildDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "elfobj-test-") })

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := buildDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// needTool returns the path of a tool the test needs. Without it the test
// is skipped on a developer machine and fails in CI, where it must exist.
func needTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is required in CI: %v", name, err)
		}
		tb.Skipf("%s not installed: %v", name, err)
	}
	return path
}

var compiled sync.Map // key → *compileResult

type compileResult struct {
	once sync.Once
	path string
	err  error
}

// compile builds testdata source src in mode and returns the object's
// path. Every source is compiled as unit.c in a directory of its own so
// that __FILE__ is the same for a before/after pair.
func compile(tb testing.TB, src, mode string) string {
	tb.Helper()
	if strings.HasSuffix(src, ".cc") {
		needTool(tb, "g++")
	} else {
		needTool(tb, "gcc")
	}
	flags, ok := modes[mode]
	if !ok {
		tb.Fatalf("compile(%q, %q): unknown mode", src, mode)
	}
	v, _ := compiled.LoadOrStore(src+"\x00"+mode, &compileResult{})
	res := v.(*compileResult)
	res.once.Do(func() {
		res.path, res.err = compileNow(src, mode, flags)
	})
	if res.err != nil {
		tb.Fatal(res.err)
	}
	return res.path
}

func compileNow(src, mode string, flags []string) (string, error) {
	root, err := buildDir()
	if err != nil {
		return "", err
	}
	code, err := os.ReadFile(filepath.Join("testdata", src))
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, mode, strings.ReplaceAll(src, "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// C++ sources exercise COMDAT groups.
	compiler, unit := "gcc", "unit.c"
	if strings.HasSuffix(src, ".cc") {
		compiler, unit = "g++", "unit.cc"
	}
	if err := os.WriteFile(filepath.Join(dir, unit), code, 0o644); err != nil {
		return "", err
	}
	args := append(append([]string{}, flags...), "-c", unit, "-o", "unit.o")
	cmd := exec.Command(compiler, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc %s %s: %v\n%s", mode, src, err, out)
	}
	return filepath.Join(dir, "unit.o"), nil
}

// openObj compiles and opens a test object.
func openObj(tb testing.TB, src, mode string) *File {
	tb.Helper()
	f, err := OpenFile(compile(tb, src, mode))
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// run runs a command and returns its standard output.
func run(tb testing.TB, dir, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// testSources lists every C file under testdata, relative to it.
func testSources(tb testing.TB) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".c") || strings.HasSuffix(path, ".cc") {
			rel, _ := filepath.Rel("testdata", path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
