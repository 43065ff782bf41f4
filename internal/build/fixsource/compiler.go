package fixsource

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MissingKind says what kind of name a compiler found missing.
type MissingKind string

const (
	// MissingFunction: "implicit declaration of function 'foo'".
	MissingFunction MissingKind = "function"
	// MissingMember: "'struct bar' has no member named 'baz'".
	MissingMember MissingKind = "member"
	// MissingIdentifier: "'FOO' undeclared" (a macro, enum constant or variable).
	MissingIdentifier MissingKind = "identifier"
	// MissingType: "unknown type name 'foo_t'", "invalid use of undefined type 'struct foo'".
	MissingType MissingKind = "type"
	// MissingSymbol: modpost's `"foo" [drivers/x.ko] undefined!`: declared
	// but defined nowhere the module links.
	MissingSymbol MissingKind = "symbol"
	// MissingFile: "fatal error: ../common/foo.h: No such file or
	// directory": Name is the path as the #include wrote it, File the
	// file that includes it.
	MissingFile MissingKind = "file"
)

// Missing is one name a fix needs and the kernel's source lacks.
type Missing struct {
	Kind MissingKind
	Name string
	// Type is the struct or union of a missing member ("struct bar"), or
	// the tagged type of a MissingType ("struct foo").
	Type string
	// File and Line are where the compiler met the name; Included are the
	// headers the message says that file was reached through.
	File     string
	Line     int
	Included []string
	Message  string // the compiler's line
}

// Key identifies a missing name regardless of where it was met.
func (m Missing) Key() string { return string(m.Kind) + " " + m.Type + " " + m.Name }

// gcc quotes names with 'x' in the C locale and ‘x’ in UTF-8 ones.
const q = `['‘]`
const qe = `['’]`

var (
	locRE        = regexp.MustCompile(`^([^:\s][^:]*?):(\d+):(?:\d+:)?\s*(?:fatal )?(error|warning):\s*(.*)$`)
	includedRE   = regexp.MustCompile(`^(?:In file included|\s+) from ([^:\s][^:]*?):\d+[:,]`)
	implicitRE   = regexp.MustCompile(`^implicit declaration of function ` + q + `([A-Za-z_]\w*)` + qe)
	memberRE     = regexp.MustCompile(`^` + q + `([^'’]+)` + qe + `(?: \{aka ` + q + `([^'’]+)` + qe + `\})? has no member named ` + q + `([A-Za-z_]\w*)` + qe)
	undeclaredRE = regexp.MustCompile(`^` + q + `([A-Za-z_]\w*)` + qe + ` undeclared`)
	unknownTyRE  = regexp.MustCompile(`^unknown type name ` + q + `([A-Za-z_]\w*)` + qe)
	undefTypeRE  = regexp.MustCompile(`^invalid use of undefined type ` + q + `((?:struct|union|enum) ([A-Za-z_]\w*))` + qe)
	noFileRE     = regexp.MustCompile(`^([\w./+-]+\.h): No such file or directory$`)
	modpostRE    = regexp.MustCompile(`^(?:ERROR|WARNING): modpost: "([A-Za-z_]\w*)" \[([^\]]+)\] undefined!`)
	// shortRE is the generator's summary of gcc's errors in a refusal
	// (klp: "file:line: message", several joined with "; ").
	shortRE = regexp.MustCompile(`(?:^|; )([^\s:;'‘’][^\s:;]*):(\d+): `)
)

// ParseCompilerErrors reads gcc's (and modpost's) output and returns the
// names it says are missing, once each in order of first mention. Other
// errors are ignored: they are not something a prerequisite can supply.
func ParseCompilerErrors(output string) []Missing {
	var out []Missing
	seen := map[string]bool{}
	var included []string
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := includedRE.FindStringSubmatch(line); m != nil {
			included = append(included, m[1])
			continue
		}
		var miss Missing
		if m := modpostRE.FindStringSubmatch(line); m != nil {
			miss = Missing{Kind: MissingSymbol, Name: m[1], File: m[2], Message: line}
		} else if m := locRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			var ok bool
			miss, ok = parseMessage(m[3], m[4])
			if !ok {
				// A message on another file ends an include chain.
				included = nil
				continue
			}
			miss.File, miss.Line, miss.Message = cleanPath(m[1]), n, line
			miss.Included = included
		} else {
			for _, miss := range parseShort(line) {
				if len(miss.Name) <= 128 && !seen[miss.Key()] {
					seen[miss.Key()] = true
					out = append(out, miss)
				}
			}
			continue
		}
		included = nil
		// Longer is no C identifier gcc would print but a corrupt log.
		if len(miss.Name) > 128 {
			continue
		}
		if !seen[miss.Key()] {
			seen[miss.Key()] = true
			out = append(out, miss)
		}
	}
	return out
}

// parseShort reads a line of the generator's "file:line: message; …"
// summary, which keeps only errors.
func parseShort(line string) []Missing {
	locs := shortRE.FindAllStringSubmatchIndex(line, -1)
	var out []Missing
	for i, l := range locs {
		end := len(line)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		miss, ok := parseMessage("error", line[l[1]:end])
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(line[l[4]:l[5]])
		miss.File, miss.Line, miss.Message = cleanPath(line[l[2]:l[3]]), n, strings.TrimPrefix(line[l[0]:end], "; ")
		out = append(out, miss)
	}
	return out
}

func parseMessage(severity, msg string) (Missing, bool) {
	if m := implicitRE.FindStringSubmatch(msg); m != nil {
		// A warning before -Werror: the kernel makes it an error, and the
		// link fails on it anyway.
		return Missing{Kind: MissingFunction, Name: m[1]}, true
	}
	if severity != "error" {
		return Missing{}, false
	}
	if m := memberRE.FindStringSubmatch(msg); m != nil {
		typ := m[1]
		if m[2] != "" && isTagged(m[2]) {
			typ = m[2] // a typedef: look for the struct it names
		}
		return Missing{Kind: MissingMember, Name: m[3], Type: typ}, true
	}
	if m := undeclaredRE.FindStringSubmatch(msg); m != nil {
		return Missing{Kind: MissingIdentifier, Name: m[1]}, true
	}
	if m := unknownTyRE.FindStringSubmatch(msg); m != nil {
		return Missing{Kind: MissingType, Name: m[1]}, true
	}
	if m := undefTypeRE.FindStringSubmatch(msg); m != nil {
		return Missing{Kind: MissingType, Name: m[2], Type: m[1]}, true
	}
	if m := noFileRE.FindStringSubmatch(msg); m != nil {
		return Missing{Kind: MissingFile, Name: m[1]}, true
	}
	return Missing{}, false
}

func isTagged(t string) bool {
	return strings.HasPrefix(t, "struct ") || strings.HasPrefix(t, "union ") || strings.HasPrefix(t, "enum ")
}

// cleanPath makes a compiler's path relative to the tree it ran in (kbuild
// prints them so; out-of-tree builds print ./x or absolute ones, whose
// prefix the caller knows better).
func cleanPath(p string) string {
	p = path.Clean(p)
	return strings.TrimPrefix(p, "./")
}

// definesRE returns the patterns of lines that define m's name. They are
// matched against added lines of a diff; the kernel's coding style puts
// definitions and prototypes at column 0 and members indented.
func definesRE(m Missing) []*regexp.Regexp {
	n := regexp.QuoteMeta(m.Name)
	macro := `^#\s*define\s+` + n + `\b`
	switch m.Kind {
	case MissingFunction, MissingSymbol:
		return compileAll(macro,
			`^[A-Za-z_][^;=()]*[\s\*]`+n+`\s*\(`, // definition or prototype
			`^`+n+`\s*\(`,                        // its return type on the line before
			`^[A-Za-z_]\w*\(`+n+`\b`,             // DEFINE_*(name, …) helpers
		)
	case MissingMember:
		return compileAll(`^\s+[A-Za-z_][^;=()]*[\s\*]` + n + `\s*(\[[^\]]*\])*\s*(:\s*\w+\s*)?(__\w+(\([^)]*\))?\s*)*;`)
	case MissingIdentifier:
		return compileAll(macro,
			`^\s*`+n+`\s*(=[^=].*)?,?\s*(/\*.*)?$`,                            // enum constant
			`^[A-Za-z_][^;()]*[\s\*]`+n+`\s*(\[[^\]]*\])*\s*(__\w+\s*)*(=|;)`, // file-scope variable
			`^(static\s+)?[A-Z_]+\(`+n+`\b`,                                   // DEFINE_MUTEX(name) and kin
		)
	case MissingType:
		tag := `(struct|union|enum)`
		if m.Type != "" {
			tag = regexp.QuoteMeta(strings.Fields(m.Type)[0])
		}
		return compileAll(`^(typedef\s+)?`+tag+`\s+`+n+`\s*\{`, `^typedef\s.*[\s\*]`+n+`\s*;`, `^\}\s*`+n+`\s*;`)
	}
	return nil
}

func compileAll(exprs ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		out[i] = regexp.MustCompile(e)
	}
	return out
}

// definition finds the added line of diff that defines m and the file it
// is in, or ok false. A name defined on both sides (a changed prototype)
// was already there and does not count.
func definition(diff []byte, m Missing) (file, line string, ok bool) {
	files, err := parseDiff(diff)
	if err != nil {
		return "", "", false
	}
	res := definesRE(m)
	match := func(s string) bool {
		return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
	}
	for _, f := range files {
		var added, removed []string
		for _, h := range f.Hunks {
			for _, l := range h.Lines {
				if !match(l.Text) {
					continue
				}
				switch l.Op {
				case '+':
					added = append(added, l.Text)
				case '-':
					removed = append(removed, l.Text)
				}
			}
		}
		if len(added) > len(removed) {
			return f.Path(), strings.TrimSpace(added[0]), true
		}
	}
	return "", "", false
}
