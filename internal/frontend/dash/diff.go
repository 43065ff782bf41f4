package dash

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// diffLines lays a unified diff out for the screen, one string a line of
// at most w cells: added lines green, removed red, hunk headers cyan. The
// colours are emphasis only: the +, - and @@ stay in the text, so a dumb
// terminal, where Bubble Tea drops the colours, shows a plain diff. A
// diff is input from outside (a fix file, an editor): every line is
// escaped.
func diffLines(diff []byte, w int, st styles) []string {
	text := strings.TrimRight(string(diff), "\n")
	if text == "" {
		return nil
	}
	raw := strings.Split(text, "\n")
	out := make([]string, 0, len(raw))
	for _, l := range raw {
		l = clipPlain(safeLine(strings.TrimSuffix(l, "\r")), w)
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			l = st.title.Render(l)
		case strings.HasPrefix(l, "@@"):
			l = st.hunk.Render(l)
		case strings.HasPrefix(l, "+"):
			l = st.add.Render(l)
		case strings.HasPrefix(l, "-"):
			l = st.del.Render(l)
		}
		out = append(out, l)
	}
	return out
}

// safeLine is one line of outside text, control characters escaped and
// tabs as spaces.
func safeLine(s string) string {
	return strings.ReplaceAll(text(s), "\n", " ")
}

// clipPlain cuts an unstyled line to w cells.
func clipPlain(s string, w int) string {
	if w <= 0 || ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// padRight pads a (possibly styled) line with spaces to w cells.
func padRight(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return clip(s, w)
}

// sideBySide sets two columns of lines next to each other, the left one
// lw cells wide, with a bar between them.
func sideBySide(left, right []string, lw int, bar string) []string {
	n := max(len(left), len(right))
	out := make([]string, n)
	for i := range n {
		var l, r string
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out[i] = padRight(l, lw) + bar + r
	}
	return out
}
