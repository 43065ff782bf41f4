package ktree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ErrBadPath is what every *PathError matches with errors.Is.
var ErrBadPath = errors.New("unsafe file name in diff")

// PathError names a file name of a diff that may not be applied, where it
// is and why.
type PathError struct {
	Line   int    // 1-based line of the diff
	Path   string // the name as the diff writes it (unquoted)
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("diff line %d: file name %q: %s", e.Line, e.Path, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBadPath) hold.
func (e *PathError) Unwrap() error { return ErrBadPath }

// CheckPatchPaths validates every file name a diff gives before anything is
// applied or compiled; see PatchPaths.
func CheckPatchPaths(diff []byte, treeDir string) error {
	_, err := PatchPaths(diff, treeDir)
	return err
}

// PatchPaths returns the tree-relative names of the files a diff names
// (-p1: one leading component stripped), in order of first appearance,
// without /dev/null, after checking each: relative, clean (no "." or ".."
// component, no "//", no trailing slash), not in .git, free of control
// characters, and, when treeDir is not "", without a symbolic link on the
// way down from treeDir (patch and kbuild would follow it out of the tree).
// It fails with a *PathError.
//
// Names are read where patch(1) and git read them: "---", "+++" and "***"
// (context diff) headers, with patch's rules (a C-quoted name, or a name
// ending at a tab, or at white space when the line has no tab); the two
// names of "diff --git"; and "rename from/to", "copy from/to" and "Index:",
// which carry no prefix and are checked as they are. A "+++ " line inside
// a hunk is content to patch, but PatchFiles reads it as a name, so it is
// held to the same rules as PatchFiles reads it.
func PatchPaths(diff []byte, treeDir string) ([]string, error) {
	var paths []string
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	var oldLeft, newLeft int // lines still due in the current unified hunk
	var hunkIndent int       // the indentation of its header
	lines := strings.Split(string(diff), "\n")
	for i, raw := range lines {
		n := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		// patch reads an indented diff (a mail quoting one, say) as well:
		// indentation is white space or X, as much as the header had.
		indent := len(raw) - len(strings.TrimLeft(raw, " \tX"))
		line := raw[indent:]
		if oldLeft > 0 || newLeft > 0 {
			if inHunk(raw[min(indent, hunkIndent):], &oldLeft, &newLeft) {
				if strings.HasPrefix(raw, "+++ ") {
					if err := checkLoose(n, raw, treeDir); err != nil {
						return nil, err
					}
				}
				continue
			}
			// A line that cannot be in a hunk ends it early (patch calls
			// the diff malformed); read it as a header, the stricter way.
			oldLeft, newLeft = 0, 0
		}
		if m := hunkHeader.FindStringSubmatch(line); m != nil {
			oldLeft, newLeft = hunkLen(m[1]), hunkLen(m[2])
			hunkIndent = indent
			continue
		}
		// PatchFiles reads only unindented lines, patch indented ones too.
		if strings.HasPrefix(raw, "+++ ") {
			if err := checkLoose(n, raw, treeDir); err != nil {
				return nil, err
			}
		}
		var (
			names []string
			strip bool
		)
		switch {
		case strings.HasPrefix(line, "--- ") && !contextRange.MatchString(line),
			strings.HasPrefix(line, "+++ "),
			strings.HasPrefix(line, "*** ") && !contextRange.MatchString(line),
			strings.HasPrefix(line, "Index: "):
			head, rest, _ := strings.Cut(line, " ")
			name, err := headerName(rest)
			if err != nil {
				return nil, &PathError{Line: n, Path: rest, Reason: err.Error()}
			}
			if name == "/dev/null" && head != "Index:" {
				continue
			}
			// Index: (CVS, quilt) names carry no prefix.
			names, strip = []string{name}, head != "Index:"
		case strings.HasPrefix(line, "diff --git "):
			a, b, err := gitHeaderNames(line[len("diff --git "):])
			if err != nil {
				return nil, &PathError{Line: n, Path: line[len("diff --git "):], Reason: err.Error()}
			}
			names, strip = []string{a, b}, true
		default:
			for _, k := range gitNoPrefix {
				if rest, ok := strings.CutPrefix(line, k); ok {
					name, err := wholeName(rest)
					if err != nil {
						return nil, &PathError{Line: n, Path: rest, Reason: err.Error()}
					}
					names = []string{name}
					break
				}
			}
		}
		for _, name := range names {
			rel, reason := checkName(name, strip, treeDir)
			if reason != "" {
				return nil, &PathError{Line: n, Path: name, Reason: reason}
			}
			add(rel)
		}
	}
	return paths, nil
}

// gitNoPrefix are git's extended headers whose names are written whole,
// without the a/ b/ prefix.
var gitNoPrefix = []string{"rename from ", "rename to ", "copy from ", "copy to "}

var (
	hunkHeader = regexp.MustCompile(`^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@`)
	// contextRange is a context diff's hunk range, "*** 1,5 ****" or
	// "--- 1,5 ----", not a file name.
	contextRange = regexp.MustCompile(`^(?:\*\*\* \d+(?:,\d+)? \*\*\*\*|--- \d+(?:,\d+)? ----)\s*$`)
)

// hunkLen reads a hunk header's line count (absent means 1). A count too
// large to read is 0, so that the lines after it are read as headers.
func hunkLen(s string) int {
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 1<<30 {
		return 0
	}
	return n
}

// inHunk reports whether line is a line of the current unified hunk and
// counts it off; a line the counts have no room for ends the hunk.
func inHunk(line string, oldLeft, newLeft *int) bool {
	var o, n int
	switch {
	case line == "" || line[0] == ' ':
		// patch takes an empty line for an empty context line.
		o, n = 1, 1
	case line[0] == '-':
		o = 1
	case line[0] == '+':
		n = 1
	case line[0] == '\\': // "\ No newline at end of file"
	default:
		return false
	}
	if *oldLeft < o || *newLeft < n {
		return false
	}
	*oldLeft -= o
	*newLeft -= n
	return true
}

// patchFilesName is how PatchFiles reads a "+++ " line.
var patchFilesName = regexp.MustCompile(`^\+\+\+ (?:b/)?(\S+)`)

// checkLoose holds the name PatchFiles reads from a "+++ " line to the
// rules that keep it in the tree, since callers build what PatchFiles
// lists whether or not patch sees a header there.
func checkLoose(n int, line, treeDir string) error {
	m := patchFilesName.FindStringSubmatch(line)
	if m == nil || m[1] == "/dev/null" {
		return nil
	}
	if reason := staysInside(m[1], treeDir); reason != "" {
		return &PathError{Line: n, Path: m[1], Reason: reason + " (as the tree's file list reads this line)"}
	}
	return nil
}

// headerName reads the file name of a "---", "+++" or "***" line the way
// patch(1) does: a C-quoted name; or, when a tab follows the name (diff -u
// puts the timestamp after one, git puts one after a name with a space),
// everything before the tab; or else everything before the first white
// space.
func headerName(s string) (string, error) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, `"`) {
		name, _, err := unquoteC(s)
		return name, err
	}
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		return strings.TrimRight(s[:i], " "), nil
	}
	if i := strings.IndexAny(s, " \v\f\r"); i >= 0 {
		return s[:i], nil
	}
	return s, nil
}

// gitHeaderNames reads the two names of a "diff --git" line, each C-quoted
// or ending at white space, as patch(1) does. An unquoted name with a space
// can only be split in two equal halves (git's own rule for a file that
// is not renamed); anything else cannot be read and is refused.
func gitHeaderNames(s string) (string, string, error) {
	var names [2]string
	rest := s
	ok := true
	for i := range names {
		rest = strings.TrimLeft(rest, " \t")
		if strings.HasPrefix(rest, `"`) {
			name, r, err := unquoteC(rest)
			if err != nil {
				return "", "", err
			}
			names[i], rest = name, r
			continue
		}
		j := strings.IndexAny(rest, " \t")
		if j < 0 {
			j = len(rest)
		}
		names[i], rest = rest[:j], rest[j:]
	}
	if strings.TrimSpace(rest) != "" || names[1] == "" {
		ok = false
	}
	if ok {
		return names[0], names[1], nil
	}
	if len(s)%2 == 1 {
		a, b := s[:len(s)/2], s[len(s)/2+1:]
		if s[len(s)/2] == ' ' && stripOne(a) == stripOne(b) {
			return a, b, nil
		}
	}
	return "", "", errors.New(`cannot tell the two names of "diff --git" apart`)
}

func stripOne(p string) string {
	_, rest, _ := strings.Cut(p, "/")
	return rest
}

// wholeName reads a name that is the rest of its line, C-quoted or not.
func wholeName(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		name, rest, err := unquoteC(s)
		if err == nil && strings.TrimSpace(rest) != "" {
			err = errors.New("text after the quoted name")
		}
		return name, err
	}
	return s, nil
}

// unquoteC reads a name quoted the way git quotes one (and patch reads
// it): C escapes \a \b \t \n \v \f \r \" \\ and three-digit octal bytes.
// It returns the name and the text after the closing quote.
func unquoteC(s string) (string, string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			i++
			if i >= len(s) {
				return "", "", errors.New("unterminated quoted name")
			}
			switch e := s[i]; e {
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'v':
				b.WriteByte('\v')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\':
				b.WriteByte(e)
			case '0', '1', '2', '3':
				if i+2 >= len(s) || !isOctal(s[i+1]) || !isOctal(s[i+2]) {
					return "", "", errors.New("bad octal escape in quoted name")
				}
				b.WriteByte((e-'0')<<6 | (s[i+1]-'0')<<3 | (s[i+2] - '0'))
				i += 2
			default:
				return "", "", fmt.Errorf("unknown escape \\%c in quoted name", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated quoted name")
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// checkName checks a name from a header and returns it relative to the
// tree, with the first component stripped when strip is set (-p1), or the
// reason it is refused.
func checkName(name string, strip bool, treeDir string) (string, string) {
	if reason := wellFormed(name); reason != "" {
		return "", reason
	}
	rel := name
	if strip {
		var ok bool
		if _, rel, ok = strings.Cut(name, "/"); !ok {
			return "", "no file name after the leading directory that -p1 strips (a/, b/)"
		}
	}
	if reason := staysInside(rel, treeDir); reason != "" {
		return "", reason
	}
	return rel, ""
}

// wellFormed refuses what patch and the tree's tools would each read
// differently, or not at all, before anything is stripped.
func wellFormed(name string) string {
	switch {
	case name == "":
		return "empty file name"
	case name == ".":
		return `"." is not a file`
	case strings.HasPrefix(name, "/"):
		return "absolute path: the diff must name files relative to the tree"
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("control character %q in the name", c)
		}
	}
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return `".." leads out of the tree`
		}
	}
	if filepath.Clean(name) != name {
		return `not a clean path (".", "..", "//" or a trailing slash)`
	}
	return ""
}

// staysInside checks a tree-relative name: no way up, not into .git, and
// no symbolic link from treeDir down to it.
func staysInside(rel, treeDir string) string {
	if reason := wellFormed(rel); reason != "" {
		return reason
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		// Any case: git refuses .GIT too, for case-insensitive file systems.
		if strings.EqualFold(p, ".git") {
			return "inside .git: a fix changes source files, not the repository"
		}
	}
	if treeDir == "" {
		return ""
	}
	p := treeDir
	for _, part := range parts {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			// patch creates what is missing: no link can be on the way.
			return ""
		}
		if err != nil {
			return fmt.Sprintf("look at it in the tree: %v", err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			r, _ := filepath.Rel(treeDir, p)
			return fmt.Sprintf("%s is a symbolic link (to %q) in the tree: patch and kbuild would follow it", r, target)
		}
	}
	return ""
}
