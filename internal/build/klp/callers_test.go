package klp

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

func TestNamesIn(t *testing.T) {
	word := regexp.MustCompile(`\b(?:glob_match|uuid_gen)\b`)
	for _, tc := range []struct {
		name   string
		src    string
		header bool
		want   bool
	}{
		{"call in a .c file", "static int f(void) { return glob_match(p, s); }", false, true},
		{"prototype in a .c file counts", "bool glob_match(const char *, const char *);", false, true},
		{"prototype in a header", "bool __pure glob_match(char const *pat, char const *str);\n", true, false},
		{"inline code in a header", "static inline bool m(const char *p)\n{\n\treturn glob_match(p, \"x\");\n}\n", true, true},
		{"macro in a header", "#define MATCH(p, s) \\\n\tglob_match(p, s)\n", true, true},
		{"macro's second line only", "#define MATCH(p, s) \\\n\t(p && \\\n\tglob_match(p, s))\nint x;\n", true, true},
		{"after a macro ends", "#define X 1\nbool glob_match(const char *, const char *);\n", true, false},
		{"comment", "/* glob_match() is slow */\nint x;", false, false},
		{"line comment", "int x; // see glob_match\n", false, false},
		{"string", "static const char s[] = \"glob_match\";", false, false},
		{"a longer name", "static int glob_match_len(int x) { return x; }", false, false},
		{"brace in a char literal", "static char c = '{';\nbool glob_match(const char *, const char *);\n", true, false},
		{"struct member declaration", "struct s {\n\tint (*uuid_gen)(void);\n};\n", true, true},
		{"no name", "int main(void) { return 0; }", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := namesIn([]byte(tc.src), word, tc.header); got != tc.want {
				t.Errorf("namesIn(%q, header=%v) = %v, want %v", tc.src, tc.header, got, tc.want)
			}
		})
	}
}

func TestBranchAt(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		off  uint64
		want bool
	}{
		{"call", []byte{0x90, 0xe8, 0, 0, 0, 0}, 2, true},
		{"jmp", []byte{0xe9, 0, 0, 0, 0}, 1, true},
		{"jne", []byte{0x0f, 0x85, 0, 0, 0, 0}, 2, true},
		{"lea", []byte{0x48, 0x8d, 0x3d, 0, 0, 0, 0}, 3, false},
		{"mov imm", []byte{0x48, 0xc7, 0xc7, 0, 0, 0, 0}, 3, false},
		{"at 0", []byte{0, 0, 0, 0}, 0, false},
		{"past the end", []byte{0xe8}, 9, false},
	} {
		if got := branchAt(tc.code, tc.off); got != tc.want {
			t.Errorf("%s: branchAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAddressTaken(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		defined   bool
		refused   bool
	}{
		{"calls", "int ext(int);\nint f(int x) { return ext(x) + 1; }\n", false, false},
		{"tail call", "int ext(int);\nint f(int x) { return ext(x); }\n", false, false},
		{"pointer in data", "int ext(int);\nint (*p)(int) = ext;\nint f(int x) { return x; }\n", false, true},
		{"pointer made in code", "int ext(int);\nvoid set(int (**p)(int)) { *p = ext; }\n", false, true},
		{"own function called", "int ext(int x) { return x * 3; }\nint f(int x) { return ext(x) + 1; }\n", true, false},
		{"own function in an ops table", "int ext(int x) { return x * 3; }\nstruct ops { int (*fn)(int); } o = { .fn = ext };\n", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := compileUnit(t, tc.src)
			err := addressTaken(obj, "ext", tc.defined)
			if got := err != nil; got != tc.refused {
				t.Fatalf("addressTaken = %v, want refused %v", err, tc.refused)
			}
			if err != nil {
				if r, ok := AsRefusal(err); !ok || r.Code != refusal.AddressTaken {
					t.Errorf("err = %#v, want an address_taken refusal", err)
				}
			}
		})
	}
}

// FuzzNamesIn: any bytes (unterminated comments and literals, stray
// braces) are scanned without a panic, and blanking keeps every newline.
func FuzzNamesIn(f *testing.F) {
	for _, s := range []string{"static inline void f(void) { g(); }", "/* g", "\"g", "'", "#define X \\\n g()", "}}}{ g", "// g\n"} {
		f.Add([]byte(s))
	}
	word := regexp.MustCompile(`\bg\b`)
	f.Fuzz(func(t *testing.T, src []byte) {
		namesIn(src, word, true)
		namesIn(src, word, false)
		out := stripComments(src)
		if len(out) != len(src) || bytes.Count(out, []byte("\n")) != bytes.Count(src, []byte("\n")) {
			t.Fatalf("stripComments(%q) = %q: length or newlines changed", src, out)
		}
	})
}

// TestCheckResolved: a fix whose new code calls a function nothing in the
// kernel has (the running module, vmlinux, an export, another unit of the
// patch) is refused as lacking a change, before any extraction.
func TestCheckResolved(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		obj := compileUnit(t, src)
		data, err := obj.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	modules := filepath.Join(dir, "modules")
	if err := os.MkdirAll(modules, 0o755); err != nil {
		t.Fatal(err)
	}
	vmlinux := write("vmlinux", "int in_vmlinux(int x) { return x; }\n")
	write("modules/mod.ko", "int in_module(int x) { return x; }\n")
	st, err := ReadSymbolTable(filepath.Join(modules, "mod.ko"), "mod")
	if err != nil {
		t.Fatal(err)
	}
	before := compileUnit(t, "int g(int);\nint f(int x) { return g(x); }\n")
	for _, tc := range []struct {
		name, call string
		weak       bool
		refused    bool
	}{
		{"exported", "exported", false, false},
		{"in the running module", "in_module", false, false},
		{"in vmlinux, unexported", "in_vmlinux", false, false},
		{"added by another unit of the patch", "provided", false, false},
		{"nowhere", "renamed_in_assembly", false, true},
		{"nowhere, weak", "renamed_in_assembly", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decl := "int " + tc.call + "(int);\n"
			if tc.weak {
				decl = "int " + tc.call + "(int) __attribute__((weak));\n"
			}
			after := compileUnit(t, "int g(int);\n"+decl+"int f(int x) { return g(x) + "+tc.call+"(x); }\n")
			k := &Kernel{Vmlinux: vmlinux, ModulesDir: modules, Exports: Exports{"exported": "vmlinux", "g": "vmlinux"}}
			u := &unit{path: "drivers/x.o", object: "mod", symbols: st, before: before, after: after}
			err := u.checkResolved(k, map[string]bool{"provided": true})
			if got := err != nil; got != tc.refused {
				t.Fatalf("checkResolved = %v, want refused %v", err, tc.refused)
			}
			if err != nil {
				r, ok := AsRefusal(err)
				if !ok || r.Code != refusal.FixDoesNotCompile || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], tc.call) {
					t.Errorf("refusal = %+v, want fix_does_not_compile naming %s", r, tc.call)
				}
			}
		})
	}
}
