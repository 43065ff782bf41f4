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

// bigUnit generates a compile unit with n functions of the kinds a kernel
// file has (switch tables, strings, static data, calls with line
// numbers); change picks the function whose body differs.
func bigUnit(n, change int) string {
	var b strings.Builder
	b.WriteString("extern void __might_sleep(const char *, int);\nextern int printf(const char *, ...);\nextern int sink(int);\n")
	for i := range n {
		delta := 1
		if i == change {
			delta = 2
		}
		fmt.Fprintf(&b, `
static int counter_%[1]d;
int table_%[1]d[8] = { %[1]d, 1, 2, 3, 4, 5, 6, 7 };
static __attribute__((noinline)) int helper_%[1]d(int x) { return sink(x * %[1]d + %[2]d); }
int fn_%[1]d(int x)
{
	__might_sleep(__FILE__, __LINE__);
	switch (x & 7) {
	case 0: printf("fn_%[1]d zero %%d\n", x); break;
	case 1: x += 3; break;
	case 2: x = helper_%[1]d(x); break;
	case 3: x ^= 0x55; break;
	case 4: printf("fn_%[1]d four\n"); break;
	case 5: x = -x; break;
	default: x = sink(x);
	}
	return helper_%[1]d(x) + table_%[1]d[x & 7] + counter_%[1]d++;
}
`, i, delta)
	}
	return b.String()
}

var bigObjects = sync.OnceValues(func() ([2]string, error) {
	dir, err := buildDir()
	if err != nil {
		return [2]string{}, err
	}
	var out [2]string
	for i, change := range []int{-1, 1000} {
		sub := filepath.Join(dir, "big", fmt.Sprint(i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return out, err
		}
		if err := os.WriteFile(filepath.Join(sub, "unit.c"), []byte(bigUnit(3000, change)), 0o644); err != nil {
			return out, err
		}
		cmd := exec.Command("gcc", append(modes["kernel"], "-c", "unit.c", "-o", "unit.o")...)
		cmd.Dir = sub
		if msg, err := cmd.CombinedOutput(); err != nil {
			return out, fmt.Errorf("gcc big unit: %v\n%s", err, msg)
		}
		out[i] = filepath.Join(sub, "unit.o")
	}
	return out, nil
})

func bigPair(b *testing.B) (before, after []byte) {
	b.Helper()
	needTool(b, "gcc")
	paths, err := bigObjects()
	if err != nil {
		b.Fatal(err)
	}
	before, err = os.ReadFile(paths[0])
	if err != nil {
		b.Fatal(err)
	}
	after, err = os.ReadFile(paths[1])
	if err != nil {
		b.Fatal(err)
	}
	return before, after
}

// BenchmarkDiff compares two compilations of a 3,000-function unit (about
// 15,000 sections) that differ in one function.
func BenchmarkDiff(b *testing.B) {
	bb, ab := bigPair(b)
	before, err := Open(bytes.NewReader(bb))
	if err != nil {
		b.Fatal(err)
	}
	after, err := Open(bytes.NewReader(ab))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bb) + len(ab)))
	b.ResetTimer()
	for b.Loop() {
		ch, err := Diff(before, after)
		if err != nil {
			b.Fatal(err)
		}
		if len(ch.Changed) != 1 || ch.Changed[0].Name != "helper_1000" {
			b.Fatalf("Diff(big) changed = %q, want [helper_1000]", funcChangeNames(ch.Changed))
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	data, _ := bigPair(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Open(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	data, _ := bigPair(b)
	f, err := Open(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiffObject diffs a real object against itself, e.g. a kernel
// compile unit: ELFOBJ_BENCH_OBJECT=/path/to/file.o go test -bench DiffObject.
func BenchmarkDiffObject(b *testing.B) {
	path := os.Getenv("ELFOBJ_BENCH_OBJECT")
	if path == "" {
		b.Skip("set ELFOBJ_BENCH_OBJECT to an object file")
	}
	f, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Diff(f, f); err != nil {
			b.Fatal(err)
		}
	}
}
