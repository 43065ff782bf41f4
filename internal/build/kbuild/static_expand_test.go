package kbuild

import (
	"context"
	"strings"
	"testing"
)

// evalSnippet runs makefile text in an empty tree and returns the run.
func evalSnippet(t *testing.T, text string) (*mkRun, *staticEval) {
	t.Helper()
	e := &staticEval{
		ctx: context.Background(), root: t.TempDir(), jobs: 1,
		warnings: map[string]bool{}, taints: map[string][]string{},
	}
	r := newRun(e, map[string]*mkVar{
		"CONFIG_Y":           {segs: []mkSeg{{text: "y"}}},
		"CONFIG_M":           {segs: []mkSeg{{text: "m"}}},
		"CONFIG_GCC_VERSION": {segs: []mkSeg{{text: "120200"}}},
		"comma":              {segs: []mkSeg{{text: ","}}},
		"space":              {segs: []mkSeg{{text: " "}}},
	})
	f := parseMakefile("test.mk", text)
	for _, err := range f.errs {
		e.warn("%s", err)
	}
	r.run(f, f.stmts)
	return r, e
}

func TestMakeExpand(t *testing.T) {
	tests := []struct {
		name, mk, expr, want string
	}{
		{"subst", "", "$(subst ee,EE,feet on the street)", "fEEt on the strEEt"},
		{"patsubst", "", "$(patsubst %.c,%.o,x.c.c bar.c baz.h)", "x.c.o bar.o baz.h"},
		{"patsubst no %", "", "$(patsubst a,b,a ab a)", "b ab b"},
		{"substitution ref", "x := a.o b.o c.S", "$(x:.o=.c) $(x:%.S=%.s)", "a.c b.c c.S a.o b.o c.s"},
		{"strip", "", "[$(strip   a   b  )]", "[a b]"},
		{"findstring", "", "$(findstring a,mississippi)|$(findstring ss,mississippi)", "|ss"},
		{"filter", "", "$(filter %.c %.s,foo.c bar.c baz.s ugh.h)", "foo.c bar.c baz.s"},
		{"filter-out", "", "$(filter-out %/,a/ b.o c/ d.o)", "b.o d.o"},
		{"sort", "", "$(sort foo bar lose foo)", "bar foo lose"},
		{"word", "", "$(word 2,a b c)$(word 9,a b)", "b"},
		{"wordlist", "", "$(wordlist 2,3,a b c d)", "b c"},
		{"words", "", "$(words a b  c)", "3"},
		{"firstword lastword", "", "$(firstword a b c) $(lastword a b c)", "a c"},
		{"dir notdir", "", "$(dir src/foo.c hacks) $(notdir src/foo.c hacks)", "src/ ./ foo.c hacks"},
		{"suffix basename", "", "$(suffix src/foo.c src-1.0/bar.o hacks) $(basename src/foo.c hacks)", ".c .o src/foo hacks"},
		{"addsuffix addprefix", "", "$(addprefix src/,$(addsuffix .o,foo bar))", "src/foo.o src/bar.o"},
		{"join", "", "$(join a b c,.c .o)", "a.c b.o c"},
		{"if", "", "$(if $(CONFIG_Y),yes,no) $(if $(CONFIG_N),yes,no) $(if ,x)", "yes no "},
		{"or and", "", "$(or ,$(CONFIG_M),b) $(and a,$(CONFIG_Y)) [$(and a,,b)]", "m y []"},
		{"foreach", "", "$(foreach d,a b,$(d)/x.o)", "a/x.o b/x.o"},
		{"call", "rev = $(2) $(1)", "$(call rev,a,b)", "b a"},
		{"call nested args hidden", "inner = [$(1)][$(2)]\nouter = $(call inner,$(1))", "$(call outer,x,y)", "[x][]"},
		{"recursive call", "count = $(if $(1),$(call count,$(wordlist 2,9,$(1))) $(firstword $(1)))", "$(strip $(call count,a b c))", "c b a"},
		{"comma and space", "", "$(subst $(comma),$(space),a,b)", "a b"},
		{"dollar escape and braces", "x := v", "$$x ${x} $x", "$x v v"},
		{"single-char variable", "X := v", "$X", "v"},
		{"recursive vs simple", "a = $(b)\nc := $(b)\nb = late", "$(a)|$(c)", "late|"},
		{"append keeps flavor", "s := 1\ns += $(later)\nr = 1\nr += $(later)\nlater = 2", "$(s)|$(r)", "1|1 2"},
		{"conditional assignment", "a ?= 1\na ?= 2\nb := \nb ?= 3", "$(a)|$(b)", "1|"},
		{"self append", "x := a\nx := $(x) b\nx += c", "$(x)", "a b c"},
		{"self reference loop", "x = $(x) a", "[$(x)]", "[ a]"},
		{"define", "define two\nline1\nline2\nendef", "$(two)", "line1\nline2"},
		{"eval", "$(foreach v,a b,$(eval var_$(v) := got_$(v)))", "$(var_a) $(var_b)", "got_a got_b"},
		{"value origin flavor", "r = $(x)\ns := 1", "$(value r) $(origin r) $(origin nope) $(flavor r) $(flavor s) $(flavor nope)",
			"$(x) file undefined recursive simple undefined"},
		{"comments", "a := x # comment\nb := \\#y", "$(a)|$(b)", "x |#y"},
		{"continuation", "a := one \\\n     two \\\n\tthree", "$(a)", "one two three"},
		{"recipes and target variables ignored", "$(obj)/x.o: FORCE\n\tobj-y := no\nfoo.o: CFLAGS += -O3\nobj-y := yes", "$(obj-y) [$(CFLAGS)]", "yes []"},
		{"export prefix", "export A := 1\noverride B = 2\nexport C\nexport", "$(A)$(B)", "12"},
		{"undefine", "a := 1\nundefine a", "[$(a)]", "[]"},
		{"ifeq forms", "ifeq ($(CONFIG_Y), y)\na := 1\nendif\nifneq '$(CONFIG_M)' 'y'\nb := 2\nendif", "$(a)$(b)", "12"},
		{"ifdef does not expand", "e = $(nothing)\nifdef e\na := set\nendif\nifndef nope\nb := unset\nendif", "$(a) $(b)", "set unset"},
		{"nested conditionals", "ifdef CONFIG_Y\nifdef CONFIG_N\na := 1\nelse\na := 2\nendif\nelse\na := 3\nendif", "$(a)", "2"},
		{"gcc-min-version", "", "$(call gcc-min-version, 110100)|$(call gcc-min-version, 130000)", "y|"},
		{"cc-option", "", "$(call cc-option,-mfoo,-mbar) $(call cc-disable-warning, unused)", "-mfoo -Wno-unused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, e := evalSnippet(t, tc.mk)
			got, _ := r.expand(tc.expr)
			if got != tc.want {
				t.Errorf("%s\n  got  %q\n  want %q", tc.expr, got, tc.want)
			}
			if len(e.warnings) > 0 {
				t.Errorf("warnings: %v", e.warnings)
			}
		})
	}
}

func TestMakeTaint(t *testing.T) {
	tests := []struct {
		name, mk, list string
		sure, maybe    []string
	}{
		{"shell value", "obj-y := a.o\nobj-y += $(shell echo b.o)\nobj-y += c.o", "obj-y", []string{"a.o", "c.o"}, nil},
		{"shell condition", "obj-y := a.o\nifeq ($(shell uname),Linux)\nobj-y += b.o\nelse\nobj-y := c.o\nendif", "obj-y",
			[]string{"a.o"}, []string{"b.o", "c.o"}},
		{"if on unknown", "x := $(if $(shell true),p.o,q.o)", "x", nil, []string{"p.o", "q.o"}},
		{"propagates through variables", "u := $(call as-instr,insn,y)\nobj-$(u) += v.o\nobj-y += w.o", "obj-y",
			[]string{"w.o"}, []string{"v.o"}},
		{"ifdef of a tainted variable", "t := $(shell x)\nifdef t\nobj-y += d.o\nendif", "obj-y", nil, []string{"d.o"}},
		{"flags only: no effect", "ccflags-y := $(call cc-option,-mx)\nobj-y := a.o", "obj-y", []string{"a.o"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := evalSnippet(t, tc.mk)
			var sure, maybe []string
			for _, w := range r.words(tc.list) {
				if w.t == nil {
					sure = append(sure, w.s)
				} else {
					maybe = append(maybe, w.s)
				}
			}
			if strings.Join(sure, " ") != strings.Join(tc.sure, " ") || strings.Join(maybe, " ") != strings.Join(tc.maybe, " ") {
				t.Errorf("sure %v maybe %v, want %v %v", sure, maybe, tc.sure, tc.maybe)
			}
		})
	}
}

func TestParseMakefileErrors(t *testing.T) {
	for _, tc := range []struct{ mk, want string }{
		{"ifeq (a,b)\nx := 1\n", "test.mk:1: missing endif"},
		{"endif\n", "test.mk:1: endif without if"},
		{"else\n", "test.mk:1: else without if"},
		{"ifdef A\nelse\nelse\nendif\n", "test.mk:3: more than one else"},
		{"ifeq (a b)\nendif\n", "test.mk:1: ifeq: missing comma"},
		{"ifeq a b\nendif\n", `test.mk:1: ifeq: want (a,b) or "a" "b"`},
		{"define x\nfoo\n", "test.mk:1: define without endef"},
		{"endef\n", "test.mk:1: endef without define"},
	} {
		f := parseMakefile("test.mk", tc.mk)
		if len(f.errs) == 0 || !strings.Contains(strings.Join(f.errs, "\n"), tc.want) {
			t.Errorf("%q: errors %q, want %q", tc.mk, f.errs, tc.want)
		}
	}
}
