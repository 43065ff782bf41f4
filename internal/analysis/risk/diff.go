package risk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadDiff wraps every error of ParseDiff: the input is not a unified
// diff the scorer can trust.
var ErrBadDiff = errors.New("malformed unified diff")

// File is one file of a unified diff.
type File struct {
	// OldPath and NewPath are the paths without their a/ and b/ prefixes;
	// "/dev/null" stays as it is (a new or deleted file).
	OldPath, NewPath string
	Hunks            []Hunk
}

// Path is the file's name in the fixed tree (the old one for a deletion).
func (f File) Path() string {
	if f.NewPath == "/dev/null" || f.NewPath == "" {
		return f.OldPath
	}
	return f.NewPath
}

// Hunk is one @@ block.
type Hunk struct {
	OldStart, OldLines int
	NewStart, NewLines int
	// Section is the text after the second @@ (git's function context),
	// "" when the diff has none.
	Section string
	Lines   []Line
}

// Line is one line of a hunk.
type Line struct {
	Op   byte // ' ', '+' or '-'
	Text string
}

// ParseDiff parses a unified diff: plain (`--- a/x` / `+++ b/x`), git's
// (`diff --git`, extended headers) or a `git format-patch` mail, whose
// message, diffstat and signature are skipped. Hunks are read by their
// line counts, so a removed line reading "-- " or "--- x" is not taken for
// a header. Binary diffs and mode-only changes give a File without hunks.
func ParseDiff(data []byte) ([]File, error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	// The final newline ends the last line; it starts no empty one.
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var files []File
	var cur *File
	// gitFile is a `diff --git` header still waiting for its ---/+++ lines.
	gitFile := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "diff --git "):
			old, nw, _ := gitNames(strings.TrimPrefix(l, "diff --git "))
			files = append(files, File{OldPath: old, NewPath: nw})
			cur = &files[len(files)-1]
			gitFile = true
		case strings.HasPrefix(l, "--- ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "+++ "):
			old := headerPath(strings.TrimPrefix(l, "--- "))
			nw := headerPath(strings.TrimPrefix(lines[i+1], "+++ "))
			if !gitFile || cur == nil {
				files = append(files, File{})
				cur = &files[len(files)-1]
			}
			cur.OldPath, cur.NewPath = old, nw
			gitFile = false
			i++
		case strings.HasPrefix(l, "@@ "):
			if cur == nil {
				return nil, fmt.Errorf("%w: line %d: hunk before any file header", ErrBadDiff, i+1)
			}
			h, err := parseHunkHeader(l)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadDiff, i+1, err)
			}
			n, err := readHunk(&h, lines[i+1:])
			if err != nil {
				return nil, fmt.Errorf("%w: %s: hunk at line %d: %v", ErrBadDiff, cur.Path(), i+1, err)
			}
			cur.Hunks = append(cur.Hunks, h)
			i += n
		}
		// Anything else (extended git headers, a mail's message and
		// diffstat, "-- " signatures) says nothing the scorer uses.
	}
	return files, nil
}

// readHunk fills h.Lines from lines and returns how many it consumed.
func readHunk(h *Hunk, lines []string) (int, error) {
	oldLeft, newLeft := h.OldLines, h.NewLines
	n := 0
	for oldLeft > 0 || newLeft > 0 {
		if n >= len(lines) {
			return n, fmt.Errorf("ends early: %d old and %d new lines missing", oldLeft, newLeft)
		}
		l := lines[n]
		n++
		if strings.HasPrefix(l, `\`) { // "\ No newline at end of file"
			continue
		}
		op := byte(' ')
		text := ""
		if l != "" { // some tools strip the space of an empty context line
			op, text = l[0], l[1:]
		}
		switch op {
		case ' ':
			oldLeft--
			newLeft--
		case '-':
			oldLeft--
		case '+':
			newLeft--
		default:
			return n, fmt.Errorf("line %q is not part of a hunk", clip(l))
		}
		if oldLeft < 0 || newLeft < 0 {
			return n, fmt.Errorf("more lines than the header counts")
		}
		h.Lines = append(h.Lines, Line{Op: op, Text: text})
	}
	for n < len(lines) && strings.HasPrefix(lines[n], `\`) {
		n++
	}
	return n, nil
}

// parseHunkHeader reads "@@ -a[,b] +c[,d] @@[ section]".
func parseHunkHeader(l string) (Hunk, error) {
	rest := strings.TrimPrefix(l, "@@ ")
	ranges, section, ok := strings.Cut(rest, " @@")
	if !ok {
		return Hunk{}, fmt.Errorf("hunk header %q has no closing @@", clip(l))
	}
	oldR, newR, ok := strings.Cut(ranges, " ")
	if !ok || !strings.HasPrefix(oldR, "-") || !strings.HasPrefix(newR, "+") {
		return Hunk{}, fmt.Errorf("hunk header %q: want -a,b +c,d", clip(l))
	}
	var h Hunk
	var err error
	if h.OldStart, h.OldLines, err = parseRange(oldR[1:]); err != nil {
		return Hunk{}, fmt.Errorf("hunk header %q: %v", clip(l), err)
	}
	if h.NewStart, h.NewLines, err = parseRange(newR[1:]); err != nil {
		return Hunk{}, fmt.Errorf("hunk header %q: %v", clip(l), err)
	}
	h.Section = strings.TrimSpace(section)
	return h, nil
}

// maxHunkLines bounds a hunk's counts, so that a corrupt header cannot make
// the parser wait for billions of lines.
const maxHunkLines = 1 << 24

func parseRange(s string) (start, count int, err error) {
	a, b, hasCount := strings.Cut(s, ",")
	start, err = strconv.Atoi(a)
	if err != nil || start < 0 {
		return 0, 0, fmt.Errorf("bad start %q", a)
	}
	count = 1
	if hasCount {
		count, err = strconv.Atoi(b)
		if err != nil || count < 0 || count > maxHunkLines {
			return 0, 0, fmt.Errorf("bad count %q", b)
		}
	}
	return start, count, nil
}

// gitNames splits "a/x b/x" of a `diff --git` line; the ---/+++ lines that
// follow are authoritative, so an ambiguous name with spaces only matters
// for a file without hunks.
func gitNames(s string) (old, nw string, ok bool) {
	if i := strings.Index(s, " b/"); i >= 0 {
		return strings.TrimPrefix(s[:i], "a/"), s[i+3:], true
	}
	return s, s, false
}

// headerPath is the path of a ---/+++ line: the timestamp diff(1) appends
// after a tab goes, and so does the a/ or b/ prefix.
func headerPath(s string) string {
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "/dev/null" {
		return s
	}
	if strings.HasPrefix(s, "a/") || strings.HasPrefix(s, "b/") {
		return s[2:]
	}
	return s
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
