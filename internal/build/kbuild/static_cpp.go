package kbuild

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
)

// This file reads the preprocessor directives of C and assembly sources
// that decide which files a compilation reads: #include lines, the
// conditionals around them, and the #define lines an include may depend
// on. It evaluates conditionals over the config (include/generated/
// autoconf.h) and the macros the compiler and Kbuild predefine; anything
// else is unknown and both branches count.

// ppKind is the kind of a directive the scan keeps.
type ppKind uint8

const (
	ppCond    ppKind = iota // #if, #ifdef, #ifndef, #elif, #elifdef, #elifndef, #else, #endif
	ppInclude               // #include, #include_next
	ppDefine                // #define
	ppUndef                 // #undef of a config or predefined macro
)

// ppLine is one kept directive.
type ppLine struct {
	kind ppKind
	// name is the directive of a ppCond ("if", "endif"), the macro of a
	// ppDefine or ppUndef, and the macro a ppInclude names in place of a
	// file (#include MACRO), if it does.
	name string
	rest string   // ppCond: the expression
	inc  cInclude // ppInclude naming a file; ppDefine of a header name
	next bool     // #include_next
}

// cInclude is one #include line's file name and its form.
type cInclude struct {
	name  string
	angle bool
}

// scanDirectives returns the directives of a C or assembly file that
// matter to what it includes. Comments are skipped, directives continued
// over several lines are joined.
func scanDirectives(data []byte) []ppLine {
	var out []ppLine
	inComment := false
	for len(data) > 0 {
		var line []byte
		line, data = cutLine(data)
		if inComment {
			i := bytes.Index(line, []byte("*/"))
			if i < 0 {
				continue
			}
			line, inComment = line[i+2:], false
		}
		t := skipBlankAndComments(line)
		if len(t) == 0 || t[0] != '#' {
			if bytes.Contains(line, []byte("/*")) {
				_, inComment = stripComments(line)
			}
			continue
		}
		// A directive goes on over lines that end in a backslash. Those
		// whose text matters are joined; a #define's body is not read
		// past its first line.
		d := t[1:]
		if continued(d) {
			if name, _ := cutIdentBytes(bytes.TrimLeft(d, " \t")); joined[string(name)] {
				d = bytes.Clone(d)
				for continued(d) && len(data) > 0 {
					var cont []byte
					cont, data = cutLine(data)
					d = bytes.TrimRight(d, " \t\r")
					d = append(append(d[:len(d)-1], ' '), cont...)
				}
			} else {
				d = bytes.TrimRight(d, " \t\r")
				d = d[:len(d)-1]
				text, open := stripComments(d)
				for open || len(data) > 0 {
					var cont []byte
					cont, data = cutLine(data)
					open = commentOpen(cont, open)
					if !continued(cont) {
						break
					}
				}
				inComment = open
				if l, ok := parseDirective(text); ok {
					out = append(out, l)
				}
				continue
			}
		}
		text, open := stripComments(d)
		inComment = open
		if l, ok := parseDirective(text); ok {
			out = append(out, l)
		}
	}
	return out
}

// joined are the directives whose continuation lines are read.
var joined = map[string]bool{
	"if": true, "ifdef": true, "ifndef": true, "elif": true, "elifdef": true, "elifndef": true,
	"include": true, "include_next": true,
}

func continued(line []byte) bool {
	return bytes.HasSuffix(bytes.TrimRight(line, " \t\r"), []byte{'\\'})
}

// commentOpen tells whether a /* comment is open after line, open telling
// whether one was before it.
func commentOpen(line []byte, open bool) bool {
	if open {
		i := bytes.Index(line, []byte("*/"))
		if i < 0 {
			return true
		}
		line = line[i+2:]
	}
	if !bytes.Contains(line, []byte("/*")) {
		return false
	}
	_, open = stripComments(line)
	return open
}

func cutLine(data []byte) (line, rest []byte) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i], data[i+1:]
	}
	return data, nil
}

// skipBlankAndComments skips the blanks and whole /* */ comments at the
// start of a line: a directive may follow a comment.
func skipBlankAndComments(line []byte) []byte {
	for {
		i := 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\f' || line[i] == '\v') {
			i++
		}
		line = line[i:]
		if !bytes.HasPrefix(line, []byte("/*")) {
			return line
		}
		end := bytes.Index(line[2:], []byte("*/"))
		if end < 0 {
			return nil // the comment goes on: stripComments tells
		}
		line = line[2+end+2:]
	}
}

// stripComments replaces the comments of a line by blanks, and reports
// whether a /* comment is still open at its end. String and character
// literals are skipped over.
func stripComments(line []byte) ([]byte, bool) {
	if !bytes.Contains(line, []byte("/*")) && !bytes.Contains(line, []byte("//")) {
		return line, false
	}
	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(line) && line[j] != c {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j, len(line)-1)
			out = append(out, line[i:j+1]...)
			i = j
		case c == '/' && i+1 < len(line) && line[i+1] == '/':
			return out, false
		case c == '/' && i+1 < len(line) && line[i+1] == '*':
			end := bytes.Index(line[i+2:], []byte("*/"))
			if end < 0 {
				return out, true
			}
			out = append(out, ' ')
			i += 2 + end + 1
		default:
			out = append(out, c)
		}
	}
	return out, false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// cutIdent splits a leading identifier off s.
func cutIdent(s string) (ident, rest string) {
	i := 0
	for i < len(s) && isIdentByte(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// headerName parses a "file" or <file> at the start of s.
func headerName(s string) (cInclude, bool) {
	if len(s) < 2 || (s[0] != '"' && s[0] != '<') {
		return cInclude{}, false
	}
	closer := byte('"')
	if s[0] == '<' {
		closer = '>'
	}
	end := strings.IndexByte(s[1:], closer)
	if end <= 0 {
		return cInclude{}, false
	}
	return cInclude{name: s[1 : 1+end], angle: s[0] == '<'}, true
}

func cutIdentBytes(s []byte) (ident, rest []byte) {
	i := 0
	for i < len(s) && isIdentByte(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// parseDirective parses the text after a line's #, comments removed.
func parseDirective(text []byte) (ppLine, bool) {
	name, restB := cutIdentBytes(bytes.TrimLeft(text, " \t"))
	restB = bytes.TrimSpace(restB)
	switch string(name) {
	case "if", "ifdef", "ifndef", "elif", "elifdef", "elifndef", "else", "endif":
		return ppLine{kind: ppCond, name: string(name), rest: string(restB)}, true
	case "include", "include_next":
		rest := string(restB)
		l := ppLine{kind: ppInclude, next: len(name) > len("include")}
		if inc, ok := headerName(rest); ok {
			l.inc = inc
			return l, true
		}
		// #include MACRO; a function-like macro (TRACE_INCLUDE(x)) is
		// not followed: define_trace.h re-includes through it a trace
		// header the unit included by name already.
		m, after := cutIdent(rest)
		if m == "" || strings.HasPrefix(strings.TrimSpace(after), "(") {
			return ppLine{}, false
		}
		l.name = m
		return l, true
	case "define":
		m, after := cutIdentBytes(restB)
		if len(m) == 0 {
			return ppLine{}, false
		}
		l := ppLine{kind: ppDefine, name: string(m)}
		if after = bytes.TrimSpace(after); len(after) > 0 && (after[0] == '"' || after[0] == '<') && !bytes.HasPrefix(restB[len(m):], []byte("(")) {
			if inc, ok := headerName(string(after)); ok {
				l.inc = inc
			}
		}
		return l, true
	case "undef":
		if m, _ := cutIdentBytes(restB); decidable(string(m)) {
			return ppLine{kind: ppUndef, name: string(m)}, true
		}
	}
	return ppLine{}, false
}

// predefined are the macros, other than config ones, whose definition
// the evaluation may know: the compiler's and those on every Kbuild
// compile line. A file that redefines one, or a -D or -U flag that names
// one, makes it unknown for the unit.
var predefined = map[string]bool{
	"__KERNEL__": true, "__ASSEMBLY__": true, "__x86_64__": true, "__i386__": true,
	"__CHECKER__": true, "__GENKSYMS__": true, "__clang__": true, "__GNUC__": true,
	"__cplusplus": true, "__INTEL_COMPILER": true, "__ECC": true, "__linux__": true, "__unix__": true,
	"__GNUC_MINOR__": true, "__GNUC_PATCHLEVEL__": true,
	"__SANITIZE_ADDRESS__": true, "__SANITIZE_THREAD__": true, "__SANITIZE_MEMORY__": true,
}

// decidable reports whether the evaluation may decide whether the macro
// name is defined.
func decidable(name string) bool {
	return strings.HasPrefix(name, "CONFIG_") || predefined[name]
}

// tri is a preprocessor truth value that may be unknown: only config
// symbols (include/generated/autoconf.h), predefined macros and literals
// are known here.
type tri int8

const (
	triFalse tri = iota - 1
	triUnknown
	triTrue
)

func (t tri) not() tri { return -t }

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// cppEnv is what conditionals are evaluated against.
type cppEnv struct {
	cfg map[string]string
	// known says whether predefined macros are defined; those it lacks
	// are unknown. values are the values of those defined, where known.
	known  map[string]bool
	values map[string]int64
	// loose are the config and predefined macros the unit may change
	// (a -D flag, a #define in its source): unknown.
	loose map[string]bool
}

// defined says whether a macro is defined: for config macros CONFIG_X for
// y (and for strings and numbers), CONFIG_X_MODULE for m.
func (env *cppEnv) defined(name string) tri {
	name = strings.TrimSpace(name)
	if env.loose[name] {
		return triUnknown
	}
	if d, ok := env.known[name]; ok {
		return triOf(d)
	}
	if !strings.HasPrefix(name, "CONFIG_") {
		return triUnknown
	}
	if base, ok := strings.CutSuffix(name, "_MODULE"); ok {
		if env.loose[base] {
			return triUnknown
		}
		if env.cfg[base] == "m" {
			return triTrue
		}
	}
	v, ok := env.cfg[name]
	return triOf(ok && v != "m")
}

// config returns a config symbol's value, ok false when it is loose.
func (env *cppEnv) config(sym string) (v string, ok bool) {
	if env.loose[sym] {
		return "", false
	}
	return env.cfg[sym], true
}

// cppGroup is an open #if group: the state of its current branch and
// whether an earlier branch was taken.
type cppGroup struct{ cur, taken tri }

type cppStack []cppGroup

// off reports whether the current line is certainly excluded.
func (s cppStack) off() bool {
	for _, g := range s {
		if g.cur == triFalse {
			return true
		}
	}
	return false
}

func (s *cppStack) directive(name, rest string, env *cppEnv) {
	switch name {
	case "if":
		c := cppEval(rest, env)
		*s = append(*s, cppGroup{cur: c, taken: c})
	case "ifdef", "ifndef":
		c := env.defined(rest)
		if name == "ifndef" {
			c = c.not()
		}
		*s = append(*s, cppGroup{cur: c, taken: c})
	case "elif", "elifdef", "elifndef", "else":
		if len(*s) == 0 {
			return
		}
		g := &(*s)[len(*s)-1]
		var c tri
		switch name {
		case "elif":
			c = cppEval(rest, env)
		case "elifdef":
			c = env.defined(rest)
		case "elifndef":
			c = env.defined(rest).not()
		default:
			c = triTrue
		}
		// This branch is live if no earlier one was taken and its own
		// condition holds.
		g.cur = triAnd(g.taken.not(), c)
		g.taken = triOr(g.taken, c)
	case "endif":
		if len(*s) > 0 {
			*s = (*s)[:len(*s)-1]
		}
	}
}

// activeIncludes returns the indices in lines of the #include lines that
// no conditional rules out in env.
func activeIncludes(lines []ppLine, env *cppEnv) []int32 {
	var out []int32
	var conds cppStack
	for i, l := range lines {
		switch l.kind {
		case ppCond:
			conds.directive(l.name, l.rest, env)
		case ppInclude:
			if !conds.off() {
				out = append(out, int32(i))
			}
		}
	}
	return out
}

// includedCFiles finds the #include lines naming a .c file that are not
// ruled out by a preprocessor conditional on config symbols.
func includedCFiles(data []byte, cfg map[string]string) []cInclude {
	if !bytes.Contains(data, []byte(".c\"")) && !bytes.Contains(data, []byte(".c>")) {
		return nil
	}
	var out []cInclude
	lines := scanDirectives(data)
	for _, i := range activeIncludes(lines, &cppEnv{cfg: cfg}) {
		if l := lines[i]; l.name == "" && !l.next && strings.HasSuffix(l.inc.name, ".c") {
			out = append(out, l.inc)
		}
	}
	return out
}

func triAnd(a, b tri) tri {
	if a == triFalse || b == triFalse {
		return triFalse
	}
	if a == triTrue && b == triTrue {
		return triTrue
	}
	return triUnknown
}

func triOr(a, b tri) tri {
	if a == triTrue || b == triTrue {
		return triTrue
	}
	if a == triFalse && b == triFalse {
		return triFalse
	}
	return triUnknown
}

// cppEval evaluates an #if expression: integer arithmetic over literals,
// config values, predefined macros and undefined macros (0), with
// defined and the IS_ENABLED family; whatever else it meets is unknown,
// and so is every result that depends on it.
func cppEval(expr string, env *cppEnv) tri {
	p := cppParser{toks: cppTokens(expr), env: env}
	v := p.cond()
	if p.i != len(p.toks) || !v.ok {
		return triUnknown
	}
	return triOf(v.v != 0)
}

func cppTokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case c == '\'':
			// A character literal: one token, evaluated as unknown.
			j := i + 1
			for j < len(s) && s[j] != '\'' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			toks = append(toks, s[i:j])
			i = j
		case i+1 < len(s) && cppPairs[s[i:i+2]]:
			toks = append(toks, s[i:i+2])
			i += 2
		default:
			toks = append(toks, s[i:i+1])
			i++
		}
	}
	return toks
}

var cppPairs = map[string]bool{"&&": true, "||": true, "==": true, "!=": true, ">=": true, "<=": true, "<<": true, ">>": true}

// cppVal is a value of an #if expression; ok is false when unknown.
type cppVal struct {
	v  int64
	ok bool
}

var cppUnknown = cppVal{}

func cppKnown(v int64) cppVal { return cppVal{v, true} }

func cppBool(b bool) cppVal {
	if b {
		return cppKnown(1)
	}
	return cppKnown(0)
}

func (v cppVal) isFalse() bool { return v.ok && v.v == 0 }
func (v cppVal) isTrue() bool  { return v.ok && v.v != 0 }

type cppParser struct {
	toks []string
	i    int
	env  *cppEnv
}

func (p *cppParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

// fail makes the expression malformed: unknown.
func (p *cppParser) fail() cppVal {
	p.i = len(p.toks) + 1
	return cppUnknown
}

func (p *cppParser) cond() cppVal {
	c := p.or()
	if p.peek() != "?" {
		return c
	}
	p.i++
	a := p.cond()
	if p.peek() != ":" {
		return p.fail()
	}
	p.i++
	b := p.cond()
	switch {
	case c.isTrue():
		return a
	case c.isFalse():
		return b
	case a == b:
		return a
	}
	return cppUnknown
}

func (p *cppParser) or() cppVal {
	v := p.and()
	for p.peek() == "||" {
		p.i++
		w := p.and()
		switch {
		case v.isTrue() || w.isTrue():
			v = cppKnown(1)
		case v.ok && w.ok:
			v = cppKnown(0)
		default:
			v = cppUnknown
		}
	}
	return v
}

func (p *cppParser) and() cppVal {
	v := p.binary(0)
	for p.peek() == "&&" {
		p.i++
		w := p.binary(0)
		switch {
		case v.isFalse() || w.isFalse():
			v = cppKnown(0)
		case v.ok && w.ok:
			v = cppKnown(1)
		default:
			v = cppUnknown
		}
	}
	return v
}

// cppLevels are the binary operators below && by precedence, loosest
// first.
var cppLevels = [][]string{{"|"}, {"^"}, {"&"}, {"==", "!="}, {"<", ">", "<=", ">="}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "%"}}

func (p *cppParser) binary(level int) cppVal {
	if level == len(cppLevels) {
		return p.unary()
	}
	v := p.binary(level + 1)
	for slices.Contains(cppLevels[level], p.peek()) {
		op := p.peek()
		p.i++
		w := p.binary(level + 1)
		v = cppApply(op, v, w)
	}
	return v
}

func cppApply(op string, a, b cppVal) cppVal {
	if !a.ok || !b.ok {
		return cppUnknown
	}
	x, y := a.v, b.v
	switch op {
	case "|":
		return cppKnown(x | y)
	case "^":
		return cppKnown(x ^ y)
	case "&":
		return cppKnown(x & y)
	case "==":
		return cppBool(x == y)
	case "!=":
		return cppBool(x != y)
	case "<":
		return cppBool(x < y)
	case ">":
		return cppBool(x > y)
	case "<=":
		return cppBool(x <= y)
	case ">=":
		return cppBool(x >= y)
	case "<<", ">>":
		if y < 0 || y > 63 {
			return cppUnknown
		}
		if op == "<<" {
			return cppKnown(x << y)
		}
		return cppKnown(x >> y)
	case "+":
		return cppKnown(x + y)
	case "-":
		return cppKnown(x - y)
	case "*":
		return cppKnown(x * y)
	case "/", "%":
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return cppUnknown
		}
		if op == "/" {
			return cppKnown(x / y)
		}
		return cppKnown(x % y)
	}
	return cppUnknown
}

func (p *cppParser) unary() cppVal {
	t := p.peek()
	switch t {
	case "!", "~", "-", "+":
		p.i++
		v := p.unary()
		if !v.ok {
			return v
		}
		switch t {
		case "!":
			return cppBool(v.v == 0)
		case "~":
			return cppKnown(^v.v)
		case "-":
			return cppKnown(-v.v)
		}
		return v
	}
	return p.primary()
}

func (p *cppParser) primary() cppVal {
	t := p.peek()
	switch {
	case t == "(":
		p.i++
		v := p.cond()
		if p.peek() != ")" {
			return p.fail()
		}
		p.i++
		return v
	case t == "defined":
		p.i++
		paren := p.peek() == "("
		if paren {
			p.i++
		}
		name := p.peek()
		if name == "" || !isIdentByte(name[0]) {
			return p.fail()
		}
		p.i++
		if paren {
			if p.peek() != ")" {
				return p.fail()
			}
			p.i++
		}
		return triVal(p.env.defined(name))
	case t == "IS_ENABLED" || t == "IS_BUILTIN" || t == "IS_MODULE" || t == "IS_REACHABLE":
		p.i++
		if p.peek() != "(" || p.i+2 >= len(p.toks) || p.toks[p.i+2] != ")" {
			return p.fail()
		}
		sym := p.toks[p.i+1]
		p.i += 3
		if !strings.HasPrefix(sym, "CONFIG_") {
			return cppUnknown
		}
		v, ok := p.env.config(sym)
		if !ok {
			return cppUnknown
		}
		switch t {
		case "IS_BUILTIN":
			return cppBool(v == "y")
		case "IS_MODULE":
			return cppBool(v == "m")
		case "IS_REACHABLE":
			if v == "m" {
				return cppUnknown // depends on the unit being a module
			}
			return cppBool(v == "y")
		}
		return cppBool(v == "y" || v == "m")
	case t != "" && t[0] >= '0' && t[0] <= '9':
		p.i++
		n, err := strconv.ParseInt(strings.TrimRight(t, "uUlL"), 0, 64)
		if err != nil {
			return cppUnknown
		}
		return cppKnown(n)
	case t != "" && isIdentByte(t[0]):
		p.i++
		if p.peek() == "(" {
			// A function-like macro (__has_include, a header's own):
			// skip its arguments.
			depth := 0
			for ; p.i < len(p.toks); p.i++ {
				switch p.toks[p.i] {
				case "(":
					depth++
				case ")":
					depth--
				}
				if depth == 0 {
					p.i++
					break
				}
			}
			if depth != 0 {
				return p.fail()
			}
			return cppUnknown
		}
		return p.env.value(t)
	case t == "" || t == ")" || t == ":":
		return p.fail()
	}
	p.i++
	return cppUnknown // a character literal, an operator out of place
}

func triVal(t tri) cppVal {
	switch t {
	case triTrue:
		return cppKnown(1)
	case triFalse:
		return cppKnown(0)
	}
	return cppUnknown
}

// value is an identifier's value in #if: a config symbol's (1 for y, a
// number's own, 0 when unset or m), a predefined macro's, 0 for a macro
// known undefined.
func (env *cppEnv) value(name string) cppVal {
	if env.loose[name] {
		return cppUnknown
	}
	if strings.HasPrefix(name, "CONFIG_") {
		v, set := env.cfg[name]
		switch {
		case !set || v == "m":
			return cppKnown(0)
		case v == "y":
			return cppKnown(1)
		}
		if n, err := strconv.ParseInt(v, 0, 64); err == nil {
			return cppKnown(n)
		}
		return cppUnknown
	}
	if d, ok := env.known[name]; ok {
		if !d {
			return cppKnown(0)
		}
		if n, ok := env.values[name]; ok {
			return cppKnown(n)
		}
	}
	return cppUnknown
}
