package kbuild

import (
	"slices"
	"testing"
)

func TestIncludedCFiles(t *testing.T) {
	cfg := map[string]string{"CONFIG_Y": "y", "CONFIG_M": "m", "CONFIG_N": "4", "CONFIG_S": `"x"`}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"plain", "#include \"a.c\"\n#include <b.c>\n#include \"c.h\"\n", []string{"a.c", "<b.c>"}},
		{"spacing", "  #  include   \"a.c\"\n#include\t\"b.c\" /* why */\n", []string{"a.c", "b.c"}},
		{"not directives", "// #include \"a.c\"\nx = \"#include \\\"b.c\\\"\";\n", nil},
		{"ifdef", "#ifdef CONFIG_Y\n#include \"y.c\"\n#endif\n#ifdef CONFIG_M\n#include \"m.c\"\n#endif\n" +
			"#ifdef CONFIG_M_MODULE\n#include \"mm.c\"\n#endif\n#ifndef CONFIG_UNSET\n#include \"u.c\"\n#endif\n",
			[]string{"y.c", "mm.c", "u.c"}},
		{"else and elif", "#if IS_ENABLED(CONFIG_UNSET)\n#include \"a.c\"\n#elif defined(CONFIG_Y) && !IS_BUILTIN(CONFIG_M)\n" +
			"#include \"b.c\"\n#else\n#include \"c.c\"\n#endif\n", []string{"b.c"}},
		{"unknown is kept", "#ifdef STATIC\n#include \"s.c\"\n#else\n#include \"n.c\"\n#endif\n", []string{"s.c", "n.c"}},
		{"unknown then false", "#if FOO > 3\n#include \"a.c\"\n#elif 0\n#include \"b.c\"\n#else\n#include \"c.c\"\n#endif\n",
			[]string{"a.c", "c.c"}},
		{"nested", "#if 0\n#ifdef CONFIG_Y\n#include \"a.c\"\n#endif\n#include \"b.c\"\n#endif\n#include \"c.c\"\n", []string{"c.c"}},
		{"continued", "#if defined(CONFIG_UNSET) || \\\n    defined(CONFIG_Y)\n#include \"a.c\"\n#endif\n", []string{"a.c"}},
		{"numbers and strings", "#if CONFIG_N\n#include \"n.c\"\n#endif\n#ifdef CONFIG_S\n#include \"s.c\"\n#endif\n#if 1\n#include \"one.c\"\n#endif\n",
			[]string{"n.c", "s.c", "one.c"}},
		{"bare tristate", "#if CONFIG_Y && !CONFIG_M\n#include \"a.c\"\n#endif\n", []string{"a.c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, i := range includedCFiles([]byte(tc.src), cfg) {
				if i.angle {
					got = append(got, "<"+i.name+">")
				} else {
					got = append(got, i.name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
