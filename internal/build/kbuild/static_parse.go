package kbuild

import (
	"fmt"
	"strings"
)

// This file parses the subset of GNU Make that Kbuild Makefiles use into
// statements; static_expand.go evaluates them. Parsing is separate so that
// a Makefile included from many places is read and split only once.

type mkKind uint8

const (
	mkAssign   mkKind = iota // NAME op VALUE
	mkCond                   // ifeq/ifneq/ifdef/ifndef ... else ... endif
	mkInclude                // include / -include / sinclude
	mkExport                 // export NAMES (no assignment)
	mkExpr                   // a line that is only expanded ($(eval ...), $(info ...))
	mkUndefine               // undefine NAME
	mkRule                   // targets: prerequisites (kept for .o targets only)
)

// mkStmt is one statement of a makefile.
type mkStmt struct {
	kind mkKind
	line int
	// mkAssign: name and value are unexpanded text; op is "=", ":=",
	// "::=", "+=", "?=" or "!=".
	name, op, value string
	override        bool
	export          bool
	// mkInclude, mkExport, mkExpr, mkUndefine: the unexpanded text;
	// mkRule: the targets (text) and the prerequisites (value).
	text     string
	optional bool // -include, sinclude
	cond     *mkCondition
}

// mkCondition is a conditional block; an "else ifeq" chain nests in els.
type mkCondition struct {
	kind      string // ifeq, ifneq, ifdef, ifndef
	a, b      string // ifeq/ifneq operands, ifdef/ifndef name (a)
	then, els []mkStmt
}

// mkFile is a parsed makefile.
type mkFile struct {
	name  string // for messages, relative to the tree
	stmts []mkStmt
	// errs are syntax problems found while parsing (with line numbers);
	// parsing goes on after each, as a conservative reader should.
	errs []string
}

// logicalLine is a line after joining backslash continuations.
type logicalLine struct {
	text string
	line int  // first physical line, 1-based
	tab  bool // starts with a tab (a recipe line inside a rule)
}

// splitLogical joins continued lines the way Make does outside recipes:
// backslash-newline and the whitespace around it become one space.
func splitLogical(data string) []logicalLine {
	var out []logicalLine
	phys := strings.Split(data, "\n")
	for i := 0; i < len(phys); i++ {
		start := i
		l := strings.TrimSuffix(phys[i], "\r")
		if !mkContinued(l) {
			out = append(out, logicalLine{text: l, line: start + 1, tab: strings.HasPrefix(l, "\t")})
			continue
		}
		var b strings.Builder
		for mkContinued(l) && i+1 < len(phys) {
			b.WriteString(strings.TrimRight(l[:len(l)-1], " \t"))
			b.WriteByte(' ')
			i++
			l = strings.TrimLeft(strings.TrimSuffix(phys[i], "\r"), " \t")
		}
		if mkContinued(l) {
			l = l[:len(l)-1]
		}
		b.WriteString(l)
		first := strings.TrimSuffix(phys[start], "\r")
		out = append(out, logicalLine{text: b.String(), line: start + 1, tab: strings.HasPrefix(first, "\t")})
	}
	return out
}

// continued reports whether a line ends in an odd number of backslashes.
func mkContinued(l string) bool {
	n := 0
	for i := len(l) - 1; i >= 0 && l[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// stripComment removes a # comment; \# is a literal #.
func stripComment(s string) string {
	if strings.IndexByte(s, '#') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '#':
			b.WriteByte('#')
			i++
		case s[i] == '#':
			return b.String()
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// condFrame is an open conditional while parsing.
type condFrame struct {
	c      *mkCondition
	line   int
	inElse bool
	chain  bool // opened by "else ifeq": closed by its parent's endif
}

// parseMakefile parses makefile text. name is used in messages only.
func parseMakefile(name, data string) *mkFile {
	f := &mkFile{name: name}
	var stack []*condFrame
	cur := func() *[]mkStmt {
		if len(stack) == 0 {
			return &f.stmts
		}
		top := stack[len(stack)-1]
		if top.inElse {
			return &top.c.els
		}
		return &top.c.then
	}
	errorf := func(line int, format string, args ...any) {
		f.errs = append(f.errs, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	lines := splitLogical(data)
	inRule := false
	for i := 0; i < len(lines); i++ {
		ll := lines[i]
		if ll.tab && inRule {
			continue // a recipe: never evaluated for the object lists
		}
		// Make keeps the trailing blanks of a value ("x := y # c" is
		// "y "), so only leading ones go here.
		full := strings.TrimLeft(stripComment(ll.text), " \t")
		override, export := false, false
		for {
			w, r := firstWord(full)
			if w != "override" && w != "export" && w != "private" || r == "" {
				if r == "" && (w == "export" || w == "override") {
					full = "" // a bare "export": nothing to evaluate
				}
				break
			}
			override = override || w == "override"
			export = export || w == "export"
			full = strings.TrimLeft(full[len(w):], " \t")
		}
		text := strings.TrimRight(full, " \t")
		if text == "" {
			continue
		}
		word, rest := firstWord(text)
		switch word {
		case "ifeq", "ifneq", "ifdef", "ifndef":
			c, err := parseCondition(word, rest)
			if err != nil {
				errorf(ll.line, "%v", err)
			}
			*cur() = append(*cur(), mkStmt{kind: mkCond, line: ll.line, cond: c})
			stack = append(stack, &condFrame{c: c, line: ll.line})
			continue
		case "else":
			if len(stack) == 0 {
				errorf(ll.line, "else without if")
				continue
			}
			top := stack[len(stack)-1]
			if top.inElse {
				errorf(ll.line, "more than one else")
			}
			top.inElse = true
			if rest != "" {
				w, r := firstWord(rest)
				switch w {
				case "ifeq", "ifneq", "ifdef", "ifndef":
					c, err := parseCondition(w, r)
					if err != nil {
						errorf(ll.line, "%v", err)
					}
					top.c.els = append(top.c.els, mkStmt{kind: mkCond, line: ll.line, cond: c})
					stack = append(stack, &condFrame{c: c, chain: true})
				default:
					errorf(ll.line, "junk after else: %q", rest)
				}
			}
			continue
		case "endif":
			if len(stack) == 0 {
				errorf(ll.line, "endif without if")
				continue
			}
			for len(stack) > 0 {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if !top.chain {
					break
				}
			}
			continue
		case "define":
			// The body is raw text up to the matching endef.
			nameText, op := rest, "="
			for _, o := range []string{"::=", ":=", "+=", "?=", "="} {
				if strings.HasSuffix(nameText, o) {
					nameText, op = strings.TrimSpace(strings.TrimSuffix(nameText, o)), o
					break
				}
			}
			var body []string
			depth := 1
			j := i + 1
			for ; j < len(lines); j++ {
				w, _ := firstWord(strings.TrimSpace(lines[j].text))
				if w == "define" {
					depth++
				} else if w == "endef" {
					depth--
					if depth == 0 {
						break
					}
				}
				body = append(body, lines[j].text)
			}
			if j == len(lines) {
				errorf(ll.line, "define without endef")
			}
			i = j
			if op == ":=" || op == "::=" {
				// Rare; treated like a recursive definition.
				op = "="
			}
			*cur() = append(*cur(), mkStmt{kind: mkAssign, line: ll.line, name: nameText, op: op,
				value: strings.Join(body, "\n"), override: override, export: export})
			inRule = false
			continue
		case "endef":
			errorf(ll.line, "endef without define")
			continue
		case "include", "-include", "sinclude":
			*cur() = append(*cur(), mkStmt{kind: mkInclude, line: ll.line, text: rest, optional: word != "include"})
			inRule = false
			continue
		case "undefine":
			*cur() = append(*cur(), mkStmt{kind: mkUndefine, line: ll.line, text: rest})
			continue
		case "unexport", "vpath":
			continue
		}
		name, op, value, kind := splitAssign(full)
		switch kind {
		case lineAssign:
			*cur() = append(*cur(), mkStmt{kind: mkAssign, line: ll.line, name: name, op: op, value: value,
				override: override, export: export})
			inRule = false
		case lineRule:
			inRule = true
			// An explicit rule can compile an object from a source
			// elsewhere ($(obj)/x.o: $(srctree)/lib/x.c); other rules,
			// and target-specific variables, do not matter here.
			targets, prereqs := name, value
			if strings.Contains(targets, ".o") && topLevelIndex(prereqs, '=') < 0 {
				if i := strings.IndexAny(prereqs, ";|"); i >= 0 {
					prereqs = prereqs[:i]
				}
				*cur() = append(*cur(), mkStmt{kind: mkRule, line: ll.line, text: targets, value: prereqs})
			}
		default:
			if export {
				*cur() = append(*cur(), mkStmt{kind: mkExport, line: ll.line, text: text})
				continue
			}
			*cur() = append(*cur(), mkStmt{kind: mkExpr, line: ll.line, text: text})
		}
	}
	if len(stack) > 0 {
		errorf(stack[0].line, "missing endif")
	}
	return f
}

func firstWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// parseCondition splits the operands of a conditional directive.
func parseCondition(kind, rest string) (*mkCondition, error) {
	c := &mkCondition{kind: kind}
	if kind == "ifdef" || kind == "ifndef" {
		c.a = strings.TrimSpace(rest)
		return c, nil
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "(") {
		end := matchParen(rest, 1, '(', ')')
		if end < 0 {
			return c, fmt.Errorf("%s: unterminated (", kind)
		}
		args := rest[1:end]
		comma := topLevelIndex(args, ',')
		if comma < 0 {
			return c, fmt.Errorf("%s: missing comma in %q", kind, rest)
		}
		c.a, c.b = strings.TrimSpace(args[:comma]), strings.TrimSpace(args[comma+1:])
		return c, nil
	}
	// "a" "b" or 'a' 'b'
	var ops []string
	for len(ops) < 2 {
		rest = strings.TrimSpace(rest)
		if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
			return c, fmt.Errorf("%s: want (a,b) or \"a\" \"b\"", kind)
		}
		end := strings.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return c, fmt.Errorf("%s: unterminated quote", kind)
		}
		ops = append(ops, rest[1:1+end])
		rest = rest[end+2:]
	}
	c.a, c.b = ops[0], ops[1]
	return c, nil
}

type lineKind uint8

const (
	lineOther lineKind = iota
	lineAssign
	lineRule
)

// splitAssign classifies a line: an assignment (split into name, op and
// value), a rule (split into targets and the rest), or something else.
func splitAssign(s string) (name, op, value string, kind lineKind) {
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$' && i+1 < len(s) && (s[i+1] == '(' || s[i+1] == '{'):
			depth++
			i++
		case (c == '(' || c == '{') && depth > 0:
			depth++
		case (c == ')' || c == '}') && depth > 0:
			depth--
		case depth > 0:
		case c == '=':
			op := "="
			start := i
			if i > 0 {
				switch s[i-1] {
				case '+', '?', '!':
					op = s[i-1:i] + "="
					start = i - 1
				}
			}
			return strings.TrimSpace(s[:start]), op, strings.TrimLeft(s[i+1:], " \t"), lineAssign
		case c == ':':
			if strings.HasPrefix(s[i:], ":=") {
				return strings.TrimSpace(s[:i]), ":=", strings.TrimLeft(s[i+2:], " \t"), lineAssign
			}
			if strings.HasPrefix(s[i:], "::=") {
				return strings.TrimSpace(s[:i]), "::=", strings.TrimLeft(s[i+3:], " \t"), lineAssign
			}
			if strings.HasPrefix(s[i:], "::") {
				return strings.TrimSpace(s[:i]), "", s[i+2:], lineRule
			}
			return strings.TrimSpace(s[:i]), "", s[i+1:], lineRule
		}
	}
	return "", "", "", lineOther
}

// matchParen finds the close matching an open paren just before s[i],
// counting nested pairs of the same kind; -1 when there is none.
func matchParen(s string, i int, open, close byte) int {
	depth := 1
	for ; i < len(s); i++ {
		switch s[i] {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// topLevelIndex finds c outside any parentheses or braces.
func topLevelIndex(s string, c byte) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '{':
			depth++
		case ')', '}':
			if depth > 0 {
				depth--
			}
		case c:
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitArgs splits function arguments at top-level commas; with max > 0
// the last argument keeps any further commas, as in Make.
func splitArgs(s string, max int) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '{':
			depth++
		case ')', '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 && (max <= 0 || len(out) < max-1) {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
