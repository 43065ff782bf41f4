// Package termtext makes untrusted text safe to print on a terminal: CVE
// records, announcement subjects and kernel logs come from outside, and an
// ESC, OSC or CR in them would otherwise drive the user's terminal (set
// its title, move the cursor, hide lines). JSON output stays exact; only
// what is printed for people goes through here.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Safe returns s with every control character (C0, DEL, C1, and the
// Unicode bidirectional overrides) written as a visible escape: \e, \r,
// \x00, \u202e. Tabs and newlines are kept; invalid UTF-8 bytes become
// \xNN.
func Safe(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || r == '\n':
			b.WriteRune(r)
		case r == 0x1b:
			b.WriteString(`\e`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Line is Safe with newlines escaped too, for text that must stay on one
// line (a table cell, an error message).
func Line(s string) string {
	return strings.ReplaceAll(Safe(s), "\n", `\n`)
}

func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f {
			return isSafeSlow(s)
		}
	}
	return true
}

func isSafeSlow(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return false
			}
		}
		if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || unsafeRune(r) {
			return false
		}
	}
	return true
}

// unsafeRune: C1 controls and the format characters that reorder or hide
// text (bidi overrides and isolates, zero-width joiners are left alone).
func unsafeRune(r rune) bool {
	if r >= 0x80 && r < 0xa0 {
		return true
	}
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
		return true
	}
	return r != '\t' && r != '\n' && unicode.Is(unicode.Cc, r)
}
