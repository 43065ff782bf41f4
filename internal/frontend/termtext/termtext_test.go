package termtext

import (
	"strings"
	"testing"
)

func TestSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcödé ✓", "plain text, ünïcödé ✓"},
		{"tab\tand\nnewline", "tab\tand\nnewline"},
		{"\x1b]0;owned\a title", `\e]0;owned\x07 title`},
		{"\x1b[2J\x1b[H", `\e[2J\e[H`},
		{"over\rwrite", `over\rwrite`},
		{"nul\x00byte", `nul\x00byte`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
	}
	for _, tt := range tests {
		if got := Safe(tt.in); got != tt.want {
			t.Errorf("Safe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Line("a\nb\x1b"); got != `a\nb\e` {
		t.Errorf("Line = %q", got)
	}
}

func FuzzSafe(f *testing.F) {
	for _, s := range []string{"", "x", "\x1b]0;t\a", "\xff", "\u202e", "a\r\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Safe(s)
		for _, r := range out {
			if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || unsafeRune(r) {
				t.Fatalf("Safe(%q) = %q keeps control %U", s, out, r)
			}
		}
		if strings.ContainsRune(Line(s), '\n') {
			t.Fatalf("Line(%q) keeps a newline", s)
		}
	})
}
