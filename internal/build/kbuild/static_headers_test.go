package kbuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func hdrTree(t *testing.T) (string, kconfig.Config) {
	t.Helper()
	cfg, err := kconfig.ReadConfig(filepath.Join("testdata", "hdrtree.config"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join("testdata", "hdrtree"), cfg
}

// TestStaticHeadersTree evaluates testdata/hdrtree, a small tree made for
// the include graph, and checks which units read each file.
func TestStaticHeadersTree(t *testing.T) {
	dir, cfg := hdrTree(t)
	p, err := Static(context.Background(), dir, cfg, StaticOptions{Headers: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Headers || !p.HeaderDeps() {
		t.Errorf("Headers = %v, HeaderDeps() = %v, want true", p.Headers, p.HeaderDeps())
	}
	all := []string{"arch/x86/kernel/entry.o", "drivers/foo/bar.o", "drivers/foo/baz.o", "kernel/core.o", "kernel/gen.o", "kernel/mod.o", "kernel/other.o"}
	cUnits := slices.DeleteFunc(slices.Clone(all), func(o string) bool { return o == "arch/x86/kernel/entry.o" })
	core, mod := "kernel/core.o", "kernel/mod.o"
	tests := []struct {
		file string
		want []string // objects of the units that read it; nil for none
	}{
		// Forced includes: compiler_types.h only on C compile lines.
		{"include/linux/compiler-version.h", all},
		{"include/linux/kconfig.h", all},
		{"include/generated/autoconf.h", all},
		{"include/linux/compiler_types.h", cUnits},
		// __GNUC__, not __clang__, for a config made with gcc.
		{"include/linux/compiler-gcc.h", cUnits},
		{"include/linux/compiler-clang.h", nil},
		// __ASSEMBLY__ is defined for assembly only.
		{"include/linux/both.h", []string{"arch/x86/kernel/entry.o"}},
		{"arch/x86/include/asm/asm-only.h", []string{"arch/x86/kernel/entry.o"}},
		{"include/linux/c-only.h", nil},
		// An include cycle; the -I order (arch/x86/include before include);
		// a generated asm-generic wrapper; the asm-generic fallback where
		// none was generated; a uapi-only header.
		{"include/linux/a.h", []string{core, mod}},
		{"include/linux/b.h", []string{core, mod}},
		{"arch/x86/include/asm/ord.h", []string{core, mod}},
		{"include/asm/ord.h", nil},
		{"arch/x86/include/generated/asm/gen.h", []string{core, mod}},
		{"include/asm-generic/gen.h", []string{core, mod}},
		{"include/asm-generic/fallback.h", []string{core, mod}},
		{"include/uapi/linux/uonly.h", []string{core, mod}},
		// "file" next to the includer first; <file> on the -I path only.
		{"kernel/local.h", []string{core}},
		{"kernel/linux/dup.h", []string{core}},
		{"include/linux/dup.h", []string{"kernel/other.o"}},
		// Conditionals: config tests decided, others open; DEBUG and
		// SOME_MACRO undefined but where a source defines them (or the
		// unit includes a header the build generates: gen.c); FEATURE and
		// FEATURE_LEVEL open (a header read defines them); CC_USING_FENTRY
		// open (the top-level Makefile passes it with -D).
		{"include/linux/conds.h", []string{core, "kernel/gen.o", "kernel/other.o"}},
		{"include/linux/y.h", []string{core, "kernel/gen.o", "kernel/other.o"}},
		{"include/linux/n.h", nil},
		{"include/linux/unknown.h", []string{core, "kernel/gen.o", "kernel/other.o"}},
		// An undefined macro is 0 in #if (gen.c keeps both branches).
		{"include/linux/zero.h", []string{"kernel/gen.o"}},
		{"include/linux/not-unknown.h", []string{core, "kernel/gen.o", "kernel/other.o"}},
		{"include/linux/debug-only.h", []string{"kernel/gen.o", "kernel/other.o"}},
		{"include/linux/hdr-defined.h", []string{core, "kernel/gen.o", "kernel/other.o"}},
		{"include/linux/fentry.h", []string{core, "kernel/gen.o", "kernel/other.o"}},
		{"include/linux/feature.h", []string{mod}},
		// define_trace.h reads the event machinery only when the unit
		// defines CREATE_TRACE_POINTS.
		{"include/trace/events/ev.h", []string{core, "kernel/other.o"}},
		{"include/trace/define_trace.h", []string{core, "kernel/other.o"}},
		{"include/trace/events-impl.h", []string{core}},
		// #include MACRO, an included .c, comments.
		{"include/linux/macro-target.h", []string{core}},
		{"kernel/core-tables.c", []string{core}},
		{"include/linux/in-comment.h", nil},
		// The unit's flags: subdir-ccflags-y of the directory above,
		// ccflags-y, CFLAGS_bar.o's -include and -D.
		{"drivers/foo/inc/priv.h", []string{"drivers/foo/bar.o", "drivers/foo/baz.o"}},
		{"drivers/common/common.h", []string{"drivers/foo/bar.o"}},
		{"drivers/foo/forced.h", []string{"drivers/foo/bar.o"}},
		{"drivers/foo/extra.h", []string{"drivers/foo/bar.o"}},
	}
	ix := profile.NewIndex(p)
	for _, tc := range tests {
		var got []string
		for _, u := range ix.Units(tc.file) {
			got = append(got, u.Object)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("units reading %s = %q, want %q", tc.file, got, tc.want)
		}
	}
	// The explicit rule core.o: core-tables.c names a prerequisite, not
	// the source.
	for _, u := range p.Units {
		if u.Object == core && u.Source != "kernel/core.c" {
			t.Errorf("source of %s = %q, want kernel/core.c", core, u.Source)
		}
	}
	for d, us := range p.Deps {
		if !slices.IsSorted(us) || len(slices.Compact(slices.Clone(us))) != len(us) {
			t.Errorf("Deps[%s] = %v: not sorted without repeats", d, us)
		}
	}

	// Without Headers, Deps has the included .c files only.
	p, err = Static(context.Background(), dir, cfg, StaticOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Headers || p.HeaderDeps() {
		t.Errorf("without Headers: Headers = %v, HeaderDeps() = %v", p.Headers, p.HeaderDeps())
	}
	if got := slices.Sorted(mapKeys(p.Deps)); !slices.Equal(got, []string{"kernel/core-tables.c"}) {
		t.Errorf("without Headers: Deps = %q, want [kernel/core-tables.c]", got)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestHeaderResolve checks the search of one #include line.
func TestHeaderResolve(t *testing.T) {
	dir, cfg := hdrTree(t)
	root, _ := filepath.Abs(dir)
	e := &staticEval{ctx: context.Background(), root: root, cfg: cfg, jobs: 1, srcarch: "x86", warnings: map[string]bool{}}
	g := newHdrGraph(e)
	plain := g.layer(g.envFor(false, nil, false, nil), nil, nil)
	withI := g.layer(g.envFor(false, nil, false, nil), nil, []string{"drivers/foo/inc", "kernel"})
	withQ := g.layer(g.envFor(false, nil, false, nil), []string{"kernel"}, nil)
	tests := []struct {
		l     *hdrLayer
		from  string
		inc   string // "x" or <x>
		next  bool
		want  string
		lname string
	}{
		{plain, "kernel/core.c", `"local.h"`, false, "kernel/local.h", "plain"},
		{plain, "kernel/core.c", `<local.h>`, false, "", "plain"},
		{plain, "kernel/core.c", `"linux/dup.h"`, false, "kernel/linux/dup.h", "plain"},
		{plain, "kernel/core.c", `<linux/dup.h>`, false, "include/linux/dup.h", "plain"},
		{plain, "drivers/foo/bar.c", `"linux/dup.h"`, false, "include/linux/dup.h", "plain"},
		{plain, "kernel/core.c", `<asm/ord.h>`, false, "arch/x86/include/asm/ord.h", "plain"},
		{plain, "kernel/core.c", `<asm/gen.h>`, false, "arch/x86/include/generated/asm/gen.h", "plain"},
		{plain, "kernel/core.c", `<asm/fallback.h>`, false, "include/asm-generic/fallback.h", "plain"},
		{plain, "kernel/core.c", `<linux/uonly.h>`, false, "include/uapi/linux/uonly.h", "plain"},
		{plain, "kernel/core.c", `<linux/absent.h>`, false, "", "plain"},
		{plain, "kernel/core.c", `"../include/linux/a.h"`, false, "include/linux/a.h", "plain"},
		{plain, "kernel/core.c", `"../../outside.h"`, false, "", "plain"},
		{plain, "kernel/core.c", `</etc/passwd>`, false, "", "plain"},
		// The top of the tree, last.
		{plain, "kernel/core.c", `<kernel/local.h>`, false, "kernel/local.h", "plain"},
		// -I after LINUXINCLUDE: a name on both is LINUXINCLUDE's.
		{withI, "drivers/foo/bar.c", `<priv.h>`, false, "drivers/foo/inc/priv.h", "-I"},
		{withI, "drivers/foo/bar.c", `<local.h>`, false, "kernel/local.h", "-I"},
		{withI, "drivers/foo/bar.c", `<linux/dup.h>`, false, "include/linux/dup.h", "-I"},
		// -iquote: for "x" only, before -I.
		{withQ, "drivers/foo/bar.c", `"linux/dup.h"`, false, "kernel/linux/dup.h", "-iquote"},
		{withQ, "drivers/foo/bar.c", `<linux/dup.h>`, false, "include/linux/dup.h", "-iquote"},
		// #include_next: after the directory of the includer.
		{plain, "arch/x86/include/asm/ord.h", `<asm/ord.h>`, true, "include/asm/ord.h", "plain"},
		{plain, "include/asm/ord.h", `<asm/ord.h>`, true, "", "plain"},
	}
	for _, tc := range tests {
		inc, ok := headerName(tc.inc)
		if !ok {
			t.Fatalf("bad test include %s", tc.inc)
		}
		if got := tc.l.resolve(ppLine{kind: ppInclude, inc: inc, next: tc.next}, tc.from); got != tc.want {
			t.Errorf("%s: resolve(%s from %s, next=%v) = %q, want %q", tc.lname, tc.inc, tc.from, tc.next, got, tc.want)
		}
	}
}

func TestScanDirectives(t *testing.T) {
	show := func(ls []ppLine) []string {
		var out []string
		for _, l := range ls {
			switch l.kind {
			case ppCond:
				out = append(out, strings.TrimSpace("#"+l.name+" "+l.rest))
			case ppInclude:
				s := "include"
				if l.next {
					s = "include_next"
				}
				switch {
				case l.name != "":
					s += " " + l.name
				case l.inc.angle:
					s += " <" + l.inc.name + ">"
				default:
					s += ` "` + l.inc.name + `"`
				}
				out = append(out, s)
			case ppDefine:
				s := "define " + l.name
				if l.inc.name != "" {
					s += " =" + l.inc.name
				}
				out = append(out, s)
			case ppUndef:
				out = append(out, "undef "+l.name)
			}
		}
		return out
	}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"forms", "#include <a.h>\n#include \"b.h\"\n#include<c.h>\n# include_next <d.h>\n#include MACRO\n#include TRACE_INCLUDE(X)\n",
			[]string{"include <a.h>", `include "b.h"`, "include <c.h>", "include_next <d.h>", "include MACRO"}},
		{"conditionals", "#ifdef A /* c */\n#elif B // c\n#else\n#endif\n#if defined(X) && \\\n  Y\n#endif\n",
			[]string{"#ifdef A", "#elif B", "#else", "#endif", "#if defined(X) &&    Y", "#endif"}},
		{"block comments", "/* #include <a.h>\n#include <b.h>\n*/ #include <c.h>\n/* x */ #include <d.h>\nint x; /* open\n#include <e.h>\n */\n",
			[]string{"include <c.h>", "include <d.h>"}},
		{"comment opened on a directive", "#endif /* a\n#include <b.h>\n*/\n#include <c.h>\n",
			[]string{"#endif", "include <c.h>"}},
		{"strings", "char *s = \"/*\";\n#include <a.h>\nchar c = '\"'; /* x */\n#include <b.h>\n",
			[]string{"include <a.h>", "include <b.h>"}},
		{"not directives", "x = \"#include <a.h>\";\n// #include <b.h>\nfoo(); #include <c.h>\n", nil},
		{"defines", "#define A <x.h>\n#define B \"y.h\"\n#define C 1\n#define D(x) <z.h>\n#undef CONFIG_E\n#undef F\n#define\n",
			[]string{"define A =x.h", "define B =y.h", "define C", "define D", "undef CONFIG_E"}},
		{"continued defines", "#define A \\\n  <x.h>\n#include <b.h>\n#define B(x) \\\n /* c \\\n */ x\n#include <c.h>\n" +
			"#define C 1 /* open\n#include <no.h>\n*/\n#define D \\\n 1 /* open\n#include <no.h>\n */\n#include <d.h>\n#define E \\",
			[]string{"define A", "include <b.h>", "define B", "include <c.h>", "define C", "define D", "include <d.h>", "define E"}},
		{"unterminated", "#include <a.h\n#include \"b.h\n#include\n#if\n", []string{"#if"}},
		{"crlf", "#include <a.h>\r\n#ifdef X\r\n#endif\r\n", []string{"include <a.h>", "#ifdef X", "#endif"}},
	}
	for _, tc := range tests {
		if got := show(scanDirectives([]byte(tc.src))); !slices.Equal(got, tc.want) {
			t.Errorf("%s: scanDirectives(%q) = %q, want %q", tc.name, tc.src, got, tc.want)
		}
	}
}

func TestCppEnv(t *testing.T) {
	env := &cppEnv{
		cfg:    map[string]string{"CONFIG_Y": "y", "CONFIG_M": "m", "CONFIG_L": "y", "CONFIG_LEVELS": "5", "CONFIG_HEX": "0x10", "CONFIG_S": `"s"`},
		known:  map[string]bool{"__KERNEL__": true, "__ASSEMBLY__": false, "UNDEF": false, "__GNUC__": true, "NOVALUE": true},
		values: map[string]int64{"__KERNEL__": 1, "__GNUC__": 12},
		loose:  map[string]bool{"CONFIG_L": true},
	}
	tests := []struct {
		expr string
		want tri
	}{
		{"defined(__KERNEL__)", triTrue},
		{"!defined __ASSEMBLY__", triTrue},
		{"defined(UNDEF) || defined(CONFIG_Y)", triTrue},
		{"defined(UNDEF) && defined(OTHER)", triFalse},
		{"defined(OTHER)", triUnknown},
		{"IS_ENABLED(CONFIG_L)", triUnknown},
		{"defined(CONFIG_L)", triUnknown},
		{"CONFIG_L", triUnknown},
		{"defined(CONFIG_L_MODULE)", triUnknown},
		{"IS_MODULE(CONFIG_M) && !defined(CONFIG_M)", triTrue},
		{"defined(CONFIG_UNSET)", triFalse},
		// Arithmetic over what is known.
		{"CONFIG_LEVELS > 4", triTrue},
		{"CONFIG_LEVELS == 2", triFalse},
		{"CONFIG_HEX == 16 && CONFIG_Y == 1 && CONFIG_M == 0 && CONFIG_UNSET == 0", triTrue},
		{"__GNUC__ * 100 >= 1200 && __KERNEL__", triTrue},
		{"(1 << 3) + 2 * 3 - 10 / 2 % 3 == 12", triTrue},
		{"-1 < 0 && ~0 == -1 && (5 & 3) == 1 && (5 | 2) == 7 && (5 ^ 1) == 4", triTrue},
		{"!UNDEF && UNDEF == 0", triTrue},
		{"0 ? OTHER : 1", triTrue},
		{"OTHER ? 1 : 1", triTrue},
		{"OTHER ? 1 : 0", triUnknown},
		{"OTHER > 1 || CONFIG_Y", triTrue},
		{"OTHER > 1 && !CONFIG_Y", triFalse},
		{"NOVALUE == 1", triUnknown},
		{"CONFIG_S", triUnknown},
		{"CONFIG_L == 1", triUnknown},
		{"FUNC(1, (2)) || 0", triUnknown},
		{"__has_include(<linux/x.h>) && CONFIG_UNSET", triFalse},
		{"1 / 0", triUnknown},
		{"'a' == 97", triUnknown},
		// Malformed: unknown.
		{"(1", triUnknown},
		{"1 +", triUnknown},
		{"defined(", triUnknown},
		{"FUNC(1", triUnknown},
		{"1 ? 2", triUnknown},
		{"", triUnknown},
	}
	for _, tc := range tests {
		if got := cppEval(tc.expr, env); got != tc.want {
			t.Errorf("cppEval(%q) = %d, want %d", tc.expr, got, tc.want)
		}
	}
}

func TestParsePPOrigins(t *testing.T) {
	cfg := &cppEnv{cfg: map[string]string{"CONFIG_Y": "y"}}
	tests := []struct {
		name, src       string
		origins, tested []string
	}{
		{"plain", "#define A\n#define B(x) x\n", []string{"A", "B"}, nil},
		{"self-guarded", "#ifdef A\n#undef A\n#define A\n#endif\n#if defined(B) && X\n#define B\n#endif\n",
			nil, []string{"A", "B", "X"}},
		{"not self-guarded", "#ifndef A\n#define A\n#endif\n#if defined(B) || X\n#define B\n#endif\n#ifndef C\n#else\n#define D\n#endif\n",
			[]string{"A", "B", "D"}, []string{"A", "B", "C", "X"}},
		{"else of ifndef", "#ifndef A\n#else\n#define A\n#endif\n", nil, []string{"A"}},
		{"ruled out by the config", "#ifdef CONFIG_N\n#define A\n#endif\n#ifdef CONFIG_Y\n#define B\n#endif\n", []string{"B"}, nil},
		{"reserved names are not tested", "#ifdef __FOO\n#endif\n#if _BAR || MODULE || KBUILD_X || linux\n#endif\n", nil, nil},
	}
	for _, tc := range tests {
		f := parsePP([]byte(tc.src), cfg)
		var want []uint64
		for _, o := range tc.origins {
			want = append(want, macroHash(o))
		}
		slices.Sort(want)
		if !slices.Equal(f.origins, want) {
			t.Errorf("%s: origins of %q: got %d hashes, want those of %q", tc.name, tc.src, len(f.origins), tc.origins)
		}
		if !slices.Equal(f.tested, tc.tested) {
			t.Errorf("%s: tested of %q = %q, want %q", tc.name, tc.src, f.tested, tc.tested)
		}
	}
}

func TestIncludeFlags(t *testing.T) {
	e := &staticEval{root: "/src/linux"}
	tests := []struct {
		words string
		want  []string
	}{
		{"-I./drivers/foo -I drivers/bar/../baz -Iinclude", []string{"I:drivers/foo", "I:drivers/baz", "I:include"}},
		{"-I/src/linux/drivers/abs -I/usr/include -I../outside", []string{"I:drivers/abs"}},
		{"-iquote drivers/q -isystem drivers/s -idirafter drivers/a", []string{"Q:drivers/q", "I:drivers/s", "I:drivers/a"}},
		{"-include ./include/linux/x.h -imacros drivers/m.h", []string{"F:include/linux/x.h", "F:drivers/m.h"}},
		{"-DDEBUG -DCONFIG_X=1 -U__KERNEL__ -D FOO -Wall -O2 -m32", []string{"d:DEBUG", "D:CONFIG_X", "D:__KERNEL__", "d:FOO", "m32"}},
		{"-I", nil},
	}
	for _, tc := range tests {
		var ws []mkWord
		for _, w := range strings.Fields(tc.words) {
			ws = append(ws, mkWord{s: w})
		}
		if got := e.includeFlags(ws); !slices.Equal(got, tc.want) {
			t.Errorf("includeFlags(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

func FuzzScanDirectives(f *testing.F) {
	f.Add([]byte("#include <a.h>\n#if defined(X) && \\\n Y\n#endif /* x\n */\n#define A \"b.h\"\n"))
	f.Add([]byte("/* #include <a.h> */ #include \"b.h\"\n'\"' /* \n#include MACRO\n"))
	f.Add([]byte("#\n#include\n#include <\n#define (\n#if ((((\n#elif\n#else\n"))
	cfg := &cppEnv{cfg: map[string]string{"CONFIG_Y": "y"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		f := parsePP(data, cfg)
		for _, l := range f.lines {
			if l.kind == ppInclude && l.name == "" && l.inc.name == "" {
				t.Fatalf("an include without a name: %+v", l)
			}
		}
		activeIncludes(f.lines, cfg)
		includedCFiles(data, cfg.cfg)
	})
}

// TestStaticHeadersAgainstRealBuild compares the include graph of each
// build's own .config, over the build's own tree (an in-tree build is a
// prepared tree), with the files the real compilations read; and, for the
// headers the corpus's fixes change, over the pristine source too (no
// generated headers). Recall must be all but perfect: a unit missed is a
// fix not compiled.
func TestStaticHeadersAgainstRealBuild(t *testing.T) {
	dirs := os.Getenv("TUXTAPE_KBUILD_REAL_DIR")
	if dirs == "" {
		t.Skip("TUXTAPE_KBUILD_REAL_DIR is not set: see TestAgainstRealBuild")
	}
	var corpusHeaders []string
	patches, _ := filepath.Glob(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", "*.patch"))
	for _, name := range patches {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ktree.PatchFiles(data) {
			if strings.HasSuffix(f, ".h") && !slices.Contains(corpusHeaders, f) {
				corpusHeaders = append(corpusHeaders, f)
			}
		}
	}
	for _, dir := range filepath.SplitList(dirs) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, err := kconfig.ReadConfig(filepath.Join(dir, ".config"))
			if err != nil {
				t.Fatal(err)
			}
			real, err := ReadBuild(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			var inTree []string
			for h := range real.Deps {
				if strings.HasSuffix(h, ".h") && !strings.Contains(h, "generated/") {
					inTree = append(inTree, h)
				}
			}
			for _, tree := range []struct{ name, dir string }{{"built tree", dir}, {"pristine source", kernelSrc(t)}} {
				p, err := Static(context.Background(), tree.dir, cfg, StaticOptions{Headers: true})
				if err != nil {
					t.Fatal(err)
				}
				for _, set := range []struct {
					name    string
					headers []string
				}{{"corpus headers", corpusHeaders}, {"headers read", inTree}} {
					// Units compiled from sources the build generates are
					// not in a static profile of a tree without them.
					inTree := func(u profile.Unit) bool {
						for _, f := range []string{u.Source, generatedFrom(u.Source)} {
							if _, err := os.Stat(filepath.Join(tree.dir, f)); err == nil {
								return true
							}
						}
						return false
					}
					prec, rec, missed := headerScores(real, p, set.headers, inTree)
					t.Logf("%s, %s (%d): precision %.4f recall %.4f", tree.name, set.name, len(set.headers), prec, rec)
					for _, m := range missed[:min(len(missed), 20)] {
						t.Log("  missed:", m)
					}
					if rec < 0.999 {
						t.Errorf("%s, %s: recall %.4f below 99.9%%", tree.name, set.name, rec)
					}
					if prec < 0.9 {
						t.Errorf("%s, %s: precision %.4f below 90%%", tree.name, set.name, prec)
					}
				}
			}
		})
	}
}

// headerScores are the micro-averaged precision and recall of the units
// static says read each header, against the units of real that keep
// accepts.
func headerScores(real, static *profile.Profile, headers []string, keep func(profile.Unit) bool) (precision, recall float64, missed []string) {
	rix, six := profile.NewIndex(real), profile.NewIndex(static)
	var tp, nr, ns int
	for _, h := range headers {
		r := map[string]bool{}
		for _, u := range rix.Units(h) {
			if keep(u) {
				r[u.Object] = true
			}
		}
		s := map[string]bool{}
		for _, u := range six.Units(h) {
			s[u.Object] = true
		}
		hit := 0
		for o := range s {
			if r[o] {
				hit++
			}
		}
		if hit < len(r) {
			missed = append(missed, fmt.Sprintf("%s: %d of %d units", h, len(r)-hit, len(r)))
		}
		tp, nr, ns = tp+hit, nr+len(r), ns+len(s)
	}
	slices.Sort(missed)
	return ratio(tp, ns), ratio(tp, nr), missed
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func BenchmarkStaticHeaders(b *testing.B) {
	src := kernelSrc(b)
	cfg := kernelConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Static(context.Background(), src, cfg, StaticOptions{Headers: true}); err != nil {
			b.Fatal(err)
		}
	}
}
