package kbuild

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// This file evaluates parsed makefiles: variables, expansion, functions and
// conditionals. Whatever cannot be decided statically ($(shell), a toolchain
// test, an unterminated reference) expands to its most likely value and
// carries a taint: the reason it is uncertain. Taints follow values into
// variables; objects whose names carry one are reported as Possible, and a
// conditional that depends on one takes both branches.

// taint is why a value is uncertain.
type taint struct {
	pos  string // file:line
	what string
}

func (t *taint) String() string { return t.pos + ": " + t.what }

func mergeTaint(a, b *taint) *taint {
	if a != nil {
		return a
	}
	return b
}

// mkSeg is one assignment's share of a variable's value. Segments keep
// "+=" appends apart so that an uncertain append marks only its own words.
type mkSeg struct {
	text   string
	expand bool // unexpanded text of a recursive variable
	t      *taint
}

type mkOrigin uint8

const (
	originFile mkOrigin = iota
	originEnv
	originCmdline
	originAutomatic
)

type mkVar struct {
	segs      []mkSeg
	recursive bool
	origin    mkOrigin
}

func (v *mkVar) clone() *mkVar {
	c := *v
	c.segs = slices.Clip(v.segs)
	return &c
}

// raw is the unexpanded value.
func (v *mkVar) raw() string {
	if len(v.segs) == 1 {
		return v.segs[0].text
	}
	parts := make([]string, 0, len(v.segs))
	for _, s := range v.segs {
		if s.text != "" {
			parts = append(parts, s.text)
		}
	}
	return strings.Join(parts, " ")
}

// mkFrame binds $(1).. of a $(call) or a $(foreach) variable.
type mkFrame struct {
	vars map[string]string
	call bool
}

// mkRun evaluates makefiles for one Kbuild directory (or the arch
// Makefile). It is not safe for concurrent use; each directory has its own.
type mkRun struct {
	ev     *staticEval
	global map[string]*mkVar // shared, read-only
	local  map[string]*mkVar
	frames []mkFrame
	// ctx is the taint of the undecidable conditionals being evaluated.
	ctx       *taint
	file      string
	line      int
	expanding map[string]bool // recursive variables being expanded
	depth     int
	exported  map[string]bool
	objRules  map[string]string // object → source, from explicit rules
}

func newRun(ev *staticEval, global map[string]*mkVar) *mkRun {
	return &mkRun{ev: ev, global: global, local: make(map[string]*mkVar), expanding: make(map[string]bool)}
}

func (r *mkRun) pos() string { return fmt.Sprintf("%s:%d", r.file, r.line) }

func (r *mkRun) taintf(format string, args ...any) *taint {
	return &taint{pos: r.pos(), what: fmt.Sprintf(format, args...)}
}

func (r *mkRun) lookup(name string) *mkVar {
	if v, ok := r.local[name]; ok {
		return v
	}
	return r.global[name]
}

// writable returns the local copy of a variable, copying a global one.
func (r *mkRun) writable(name string) *mkVar {
	if v, ok := r.local[name]; ok {
		return v
	}
	if g, ok := r.global[name]; ok {
		v := g.clone()
		r.local[name] = v
		return v
	}
	return nil
}

// setSimple defines name as a simple variable (used for Kbuild's own
// variables and the command line of each directory's make).
func (r *mkRun) setSimple(name, value string, origin mkOrigin) {
	r.local[name] = &mkVar{segs: []mkSeg{{text: value}}, origin: origin}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// value expands a variable reference.
func (r *mkRun) value(name string) (string, *taint) {
	numeric := isDigits(name)
	for i := len(r.frames) - 1; i >= 0; i-- {
		if v, ok := r.frames[i].vars[name]; ok {
			return v, nil
		}
		if numeric && r.frames[i].call {
			return "", nil
		}
	}
	v := r.lookup(name)
	if v == nil {
		return "", nil
	}
	return r.expandVar(name, v)
}

func (r *mkRun) expandVar(name string, v *mkVar) (string, *taint) {
	if len(v.segs) == 1 && !v.segs[0].expand {
		return v.segs[0].text, v.segs[0].t
	}
	if r.expanding[name] {
		return "", r.taintf("variable %s references itself", name)
	}
	r.expanding[name] = true
	defer delete(r.expanding, name)
	var b strings.Builder
	var t *taint
	for _, s := range v.segs {
		text, st := s.text, s.t
		if s.expand {
			var et *taint
			text, et = r.expand(text)
			st = mergeTaint(st, et)
		}
		if text == "" {
			t = mergeTaint(t, st)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(text)
		t = mergeTaint(t, st)
	}
	return b.String(), t
}

// mkWord is a word of a list variable with its own taint.
type mkWord struct {
	s string
	t *taint
}

// words expands a list variable into words, each tainted only by the
// segment (assignment) it came from.
func (r *mkRun) words(name string) []mkWord {
	v := r.lookup(name)
	if v == nil {
		return nil
	}
	var out []mkWord
	for _, s := range v.segs {
		text, t := s.text, s.t
		if s.expand {
			if r.expanding[name] {
				continue
			}
			r.expanding[name] = true
			var et *taint
			text, et = r.expand(text)
			delete(r.expanding, name)
			t = mergeTaint(t, et)
		}
		for _, w := range strings.Fields(text) {
			out = append(out, mkWord{w, t})
		}
	}
	return out
}

// expand expands all references in s.
func (r *mkRun) expand(s string) (string, *taint) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > 200 {
		return "", r.taintf("expansion nested too deep")
	}
	var b strings.Builder
	var t *taint
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		if i+1 >= len(s) {
			break
		}
		switch c := s[i+1]; c {
		case '$':
			b.WriteByte('$')
			i += 2
		case '(', '{':
			closer := byte(')')
			if c == '{' {
				closer = '}'
			}
			end := matchParen(s, i+2, c, closer)
			if end < 0 {
				t = mergeTaint(t, r.taintf("unterminated variable reference in %q", s))
				i = len(s)
				continue
			}
			v, vt := r.reference(s[i+2 : end])
			b.WriteString(v)
			t = mergeTaint(t, vt)
			i = end + 1
		default:
			v, vt := r.value(string(c))
			b.WriteString(v)
			t = mergeTaint(t, vt)
			i += 2
		}
	}
	return b.String(), t
}

// reference evaluates the inside of $(...): a function call, a
// substitution reference or a variable.
func (r *mkRun) reference(content string) (string, *taint) {
	if k := strings.IndexAny(content, " \t"); k > 0 {
		if fn, ok := mkFuncs[content[:k]]; ok {
			return fn(r, strings.TrimLeft(content[k:], " \t"))
		}
	}
	if colon := topLevelIndex(content, ':'); colon >= 0 {
		if eq := topLevelIndex(content[colon+1:], '='); eq >= 0 {
			name, t1 := r.expand(content[:colon])
			from, t2 := r.expand(content[colon+1 : colon+1+eq])
			to, t3 := r.expand(content[colon+2+eq:])
			val, t4 := r.value(name)
			if !strings.Contains(from, "%") {
				from, to = "%"+from, "%"+to
			}
			return patsubst(from, to, val), mergeTaint(mergeTaint(t1, t2), mergeTaint(t3, t4))
		}
	}
	name, t := r.expand(content)
	v, vt := r.value(name)
	return v, mergeTaint(t, vt)
}

// run executes statements.
func (r *mkRun) run(f *mkFile, stmts []mkStmt) {
	for i := range stmts {
		st := &stmts[i]
		if r.ev.cancelled() {
			return
		}
		r.file, r.line = f.name, st.line
		switch st.kind {
		case mkAssign:
			name, t := r.expand(st.name)
			name = strings.TrimSpace(name)
			if name == "" || strings.ContainsAny(name, " \t") {
				if t != nil {
					r.ev.warn("%s:%d: variable name %q: %s", f.name, st.line, st.name, t.what)
				}
				continue
			}
			saved := r.ctx
			if t != nil {
				// obj-$(shell ...): count the objects in, as possibly built.
				r.ctx = mergeTaint(r.ctx, t)
				if strings.HasSuffix(name, "-") {
					name += "y"
				}
			}
			r.assign(name, st.op, st.value, st.override)
			r.ctx = saved
			if st.export {
				r.export(name)
			}
		case mkExport:
			names, _ := r.expand(st.text)
			for _, n := range strings.Fields(names) {
				r.export(n)
			}
		case mkUndefine:
			name, _ := r.expand(st.text)
			delete(r.local, strings.TrimSpace(name))
		case mkCond:
			r.runCond(f, st.cond)
		case mkInclude:
			r.include(st.text, st.optional)
		case mkRule:
			r.rule(st.text, st.value)
		case mkExpr:
			// Only $(eval ...) and friends matter; any other text would
			// be a syntax error in Make, which does not stop us.
			r.expand(st.text)
		}
	}
}

// rule records the source of an object built by an explicit rule.
func (r *mkRun) rule(targets, prereqs string) {
	ts, _ := r.expand(targets)
	var src string
	for _, t := range strings.Fields(ts) {
		if !strings.HasSuffix(t, ".o") {
			continue
		}
		if src == "" {
			ps, _ := r.expand(prereqs)
			for _, p := range strings.Fields(ps) {
				if strings.HasSuffix(p, ".c") || strings.HasSuffix(p, ".S") {
					src = path.Clean(p)
					break
				}
			}
			if src == "" {
				return
			}
		}
		if r.objRules == nil {
			r.objRules = make(map[string]string)
		}
		r.objRules[path.Clean(t)] = src
	}
}

func (r *mkRun) export(name string) {
	if r.exported == nil {
		r.exported = make(map[string]bool)
	}
	r.exported[name] = true
}

func (r *mkRun) runCond(f *mkFile, c *mkCondition) {
	var ok bool
	var t *taint
	switch c.kind {
	case "ifdef", "ifndef":
		name, nt := r.expand(c.a)
		name = strings.TrimSpace(name)
		t = nt
		if v := r.lookup(name); v != nil {
			// ifdef looks at the value without expanding it.
			ok = strings.TrimSpace(v.raw()) != ""
			for _, s := range v.segs {
				t = mergeTaint(t, s.t)
			}
		}
		for i := len(r.frames) - 1; i >= 0; i-- {
			if v, in := r.frames[i].vars[name]; in {
				ok = v != ""
				break
			}
		}
		if c.kind == "ifndef" {
			ok = !ok
		}
	default:
		a, ta := r.expand(c.a)
		b, tb := r.expand(c.b)
		t = mergeTaint(ta, tb)
		ok = a == b
		if c.kind == "ifneq" {
			ok = !ok
		}
	}
	if t == nil {
		if ok {
			r.run(f, c.then)
		} else {
			r.run(f, c.els)
		}
		return
	}
	// Undecidable: take both branches, marking what they assign.
	saved := r.ctx
	r.ctx = mergeTaint(saved, &taint{pos: t.pos, what: "condition depends on " + t.what})
	r.run(f, c.then)
	r.run(f, c.els)
	r.ctx = saved
}

// assign performs one assignment.
func (r *mkRun) assign(name, op, value string, override bool) {
	v := r.writable(name)
	if v != nil && v.origin == originCmdline && !override {
		return // command-line variables win over the makefile's
	}
	if op == "?=" {
		if v != nil {
			return
		}
		op = "="
	}
	if op == "!=" {
		r.local[name] = &mkVar{segs: []mkSeg{{t: r.taintf("shell assignment %s != ...", name)}}}
		return
	}
	if op == "+=" && v != nil {
		seg := mkSeg{text: value, expand: true, t: r.ctx}
		if !v.recursive {
			text, t := r.expand(value)
			seg = mkSeg{text: text, t: mergeTaint(r.ctx, t)}
		}
		v.segs = append(v.segs, seg)
		return
	}
	recursive := op == "=" || op == "+="
	seg := mkSeg{text: value, expand: true, t: r.ctx}
	if !recursive {
		text, t := r.expand(value)
		seg = mkSeg{text: text, t: mergeTaint(r.ctx, t)}
	}
	if v != nil && r.ctx != nil {
		// Under an undecidable condition keep the old value too: the
		// union is the conservative answer for object lists.
		v.segs = append(v.segs, seg)
		return
	}
	r.local[name] = &mkVar{segs: []mkSeg{seg}, recursive: recursive}
}

// include reads and evaluates the makefiles named by text.
func (r *mkRun) include(text string, optional bool) {
	file, line := r.file, r.line
	names, t := r.expand(text)
	if t != nil && !optional {
		r.ev.warn("%s:%d: include %s: %s", file, line, strings.TrimSpace(text), t.what)
	}
	for _, n := range strings.Fields(names) {
		f, err := r.ev.parsed(n)
		if err != nil {
			if !optional {
				r.ev.warn("%s:%d: include %s: %v", file, line, n, err)
			}
			continue
		}
		if r.depth > 50 {
			r.ev.warn("%s:%d: include %s: nested too deep", file, line, n)
			continue
		}
		r.depth++
		r.run(f, f.stmts)
		r.depth--
		r.file, r.line = file, line
	}
}

// ---- functions ----

type mkFunc func(r *mkRun, args string) (string, *taint)

var mkFuncs map[string]mkFunc

func init() {
	// Assigned in init because some functions refer back to the table.
	mkFuncs = map[string]mkFunc{
		"subst":      fnSubst,
		"patsubst":   fnPatsubst,
		"strip":      fnWords(func(w []string) string { return strings.Join(w, " ") }),
		"findstring": fnFindstring,
		"filter":     fnFilter(false),
		"filter-out": fnFilter(true),
		"sort": fnWords(func(w []string) string {
			slices.Sort(w)
			return strings.Join(slices.Compact(w), " ")
		}),
		"word":      fnWord,
		"wordlist":  fnWordlist,
		"words":     fnWords(func(w []string) string { return strconv.Itoa(len(w)) }),
		"firstword": fnWords(func(w []string) string { return mkFirst(w) }),
		"lastword": fnWords(func(w []string) string {
			if len(w) == 0 {
				return ""
			}
			return w[len(w)-1]
		}),
		"dir":       fnEach(func(w string) string { d, _ := path.Split(w); return mkOrDot(d) }),
		"notdir":    fnEach(func(w string) string { _, f := path.Split(w); return f }),
		"suffix":    fnEach(suffixOf),
		"basename":  fnEach(func(w string) string { return strings.TrimSuffix(w, suffixOf(w)) }),
		"addsuffix": fnAdd(false),
		"addprefix": fnAdd(true),
		"join":      fnJoin,
		"wildcard":  fnWildcard,
		"realpath":  fnRealpath,
		"abspath":   fnAbspath,
		"if":        fnIf,
		"or":        fnOr,
		"and":       fnAnd,
		"foreach":   fnForeach,
		"call":      fnCall,
		"value":     fnValue,
		"origin":    fnOrigin,
		"flavor":    fnFlavor,
		"eval":      fnEval,
		"shell":     fnUnknown("$(shell ...)"),
		"file":      fnUnknown("$(file ...)"),
		"guile":     fnUnknown("$(guile ...)"),
		"let":       fnUnknown("$(let ...)"),
		"intcmp":    fnUnknown("$(intcmp ...)"),
		"info":      fnIgnore,
		"warning":   fnIgnore,
		"error":     fnError,
	}
}

func mkFirst(w []string) string {
	if len(w) == 0 {
		return ""
	}
	return w[0]
}

func mkOrDot(d string) string {
	if d == "" {
		return "./"
	}
	return d
}

func suffixOf(w string) string {
	_, f := path.Split(w)
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		return f[i:]
	}
	return ""
}

// expandArgs splits and expands all arguments.
func (r *mkRun) expandArgs(args string, max int) ([]string, *taint) {
	parts := splitArgs(args, max)
	var t *taint
	for i, p := range parts {
		var pt *taint
		parts[i], pt = r.expand(p)
		t = mergeTaint(t, pt)
	}
	return parts, t
}

func mkArg(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

func fnSubst(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 3)
	if mkArg(a, 0) == "" {
		return mkArg(a, 2), t
	}
	return strings.ReplaceAll(mkArg(a, 2), a[0], mkArg(a, 1)), t
}

func fnPatsubst(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 3)
	return patsubst(strings.TrimSpace(mkArg(a, 0)), strings.TrimSpace(mkArg(a, 1)), mkArg(a, 2)), t
}

// patsubst replaces words matching pattern (with at most one %).
func patsubst(pattern, repl, text string) string {
	ws := strings.Fields(text)
	pre, suf, hasPct := strings.Cut(pattern, "%")
	rpre, rsuf, rPct := strings.Cut(repl, "%")
	for i, w := range ws {
		if !hasPct {
			if w == pattern {
				ws[i] = repl
			}
			continue
		}
		if len(w) >= len(pre)+len(suf) && strings.HasPrefix(w, pre) && strings.HasSuffix(w, suf) {
			if rPct {
				ws[i] = rpre + w[len(pre):len(w)-len(suf)] + rsuf
			} else {
				ws[i] = repl
			}
		}
	}
	return strings.Join(ws, " ")
}

func matchPattern(pattern, w string) bool {
	pre, suf, ok := strings.Cut(pattern, "%")
	if !ok {
		return pattern == w
	}
	return len(w) >= len(pre)+len(suf) && strings.HasPrefix(w, pre) && strings.HasSuffix(w, suf)
}

func fnFindstring(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 2)
	if strings.Contains(mkArg(a, 1), mkArg(a, 0)) {
		return mkArg(a, 0), t
	}
	return "", t
}

func fnFilter(out bool) mkFunc {
	return func(r *mkRun, args string) (string, *taint) {
		a, t := r.expandArgs(args, 2)
		pats := strings.Fields(mkArg(a, 0))
		var keep []string
		for _, w := range strings.Fields(mkArg(a, 1)) {
			m := false
			for _, p := range pats {
				if matchPattern(p, w) {
					m = true
					break
				}
			}
			if m != out {
				keep = append(keep, w)
			}
		}
		return strings.Join(keep, " "), t
	}
}

func fnWords(f func([]string) string) mkFunc {
	return func(r *mkRun, args string) (string, *taint) {
		s, t := r.expand(args)
		return f(strings.Fields(s)), t
	}
}

func fnEach(f func(string) string) mkFunc {
	return fnWords(func(ws []string) string {
		out := ws[:0]
		for _, w := range ws {
			if v := f(w); v != "" {
				out = append(out, v)
			}
		}
		return strings.Join(out, " ")
	})
}

func fnAdd(prefix bool) mkFunc {
	return func(r *mkRun, args string) (string, *taint) {
		a, t := r.expandArgs(args, 2)
		ws := strings.Fields(mkArg(a, 1))
		for i, w := range ws {
			if prefix {
				ws[i] = a[0] + w
			} else {
				ws[i] = w + a[0]
			}
		}
		return strings.Join(ws, " "), t
	}
}

func fnJoin(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 2)
	x, y := strings.Fields(mkArg(a, 0)), strings.Fields(mkArg(a, 1))
	out := make([]string, max(len(x), len(y)))
	for i := range out {
		if i < len(x) {
			out[i] = x[i]
		}
		if i < len(y) {
			out[i] += y[i]
		}
	}
	return strings.Join(out, " "), t
}

func fnWord(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 2)
	n, err := strconv.Atoi(strings.TrimSpace(mkArg(a, 0)))
	ws := strings.Fields(mkArg(a, 1))
	if err != nil || n < 1 {
		return "", mergeTaint(t, r.taintf("bad $(word) index %q", mkArg(a, 0)))
	}
	if n > len(ws) {
		return "", t
	}
	return ws[n-1], t
}

func fnWordlist(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 3)
	s, err1 := strconv.Atoi(strings.TrimSpace(mkArg(a, 0)))
	e, err2 := strconv.Atoi(strings.TrimSpace(mkArg(a, 1)))
	ws := strings.Fields(mkArg(a, 2))
	if err1 != nil || err2 != nil || s < 1 {
		return "", mergeTaint(t, r.taintf("bad $(wordlist) range"))
	}
	e = min(e, len(ws))
	if s > e {
		return "", t
	}
	return strings.Join(ws[s-1:e], " "), t
}

func fnWildcard(r *mkRun, args string) (string, *taint) {
	s, t := r.expand(args)
	var out []string
	for _, p := range strings.Fields(s) {
		abs := r.ev.fsPath(p)
		if !strings.ContainsAny(p, "*?[") {
			if _, err := os.Lstat(abs); err == nil {
				out = append(out, p)
			}
			continue
		}
		matches, err := filepath.Glob(abs)
		if err != nil {
			continue
		}
		slices.Sort(matches)
		for _, m := range matches {
			if filepath.IsAbs(p) {
				out = append(out, m)
				continue
			}
			rel, err := filepath.Rel(r.ev.root, m)
			if err != nil {
				continue
			}
			rel = filepath.ToSlash(rel)
			if strings.HasPrefix(p, "./") {
				rel = "./" + rel
			}
			out = append(out, rel)
		}
	}
	return strings.Join(out, " "), t
}

func fnAbspath(r *mkRun, args string) (string, *taint) {
	s, t := r.expand(args)
	ws := strings.Fields(s)
	for i, w := range ws {
		ws[i] = filepath.ToSlash(r.ev.fsPath(w))
	}
	return strings.Join(ws, " "), t
}

func fnRealpath(r *mkRun, args string) (string, *taint) {
	s, t := r.expand(args)
	var out []string
	for _, w := range strings.Fields(s) {
		p := r.ev.fsPath(w)
		if _, err := os.Stat(p); err == nil {
			out = append(out, filepath.ToSlash(p))
		}
	}
	return strings.Join(out, " "), t
}

func fnIf(r *mkRun, args string) (string, *taint) {
	a := splitArgs(args, 3)
	c, t := r.expand(strings.TrimSpace(a[0]))
	if t != nil {
		// Undecidable: both branches, as a conservative list.
		x, tx := r.expand(mkArg(a, 1))
		y, ty := r.expand(mkArg(a, 2))
		return strings.TrimSpace(x + " " + y), mergeTaint(t, mergeTaint(tx, ty))
	}
	if strings.TrimSpace(c) != "" {
		return r.expand(mkArg(a, 1))
	}
	return r.expand(mkArg(a, 2))
}

func fnOr(r *mkRun, args string) (string, *taint) {
	var t *taint
	for _, a := range splitArgs(args, 0) {
		v, vt := r.expand(strings.TrimSpace(a))
		t = mergeTaint(t, vt)
		if strings.TrimSpace(v) != "" {
			return v, t
		}
	}
	return "", t
}

func fnAnd(r *mkRun, args string) (string, *taint) {
	var t *taint
	v := ""
	for _, a := range splitArgs(args, 0) {
		var vt *taint
		v, vt = r.expand(strings.TrimSpace(a))
		t = mergeTaint(t, vt)
		if strings.TrimSpace(v) == "" {
			return "", t
		}
	}
	return v, t
}

func fnForeach(r *mkRun, args string) (string, *taint) {
	a := splitArgs(args, 3)
	name, t1 := r.expand(strings.TrimSpace(a[0]))
	list, t2 := r.expand(mkArg(a, 1))
	t := mergeTaint(t1, t2)
	var out []string
	r.frames = append(r.frames, mkFrame{vars: map[string]string{}})
	fr := len(r.frames) - 1
	for _, w := range strings.Fields(list) {
		r.frames[fr].vars[strings.TrimSpace(name)] = w
		v, vt := r.expand(mkArg(a, 2))
		t = mergeTaint(t, vt)
		if v != "" {
			out = append(out, v)
		}
	}
	r.frames = r.frames[:fr]
	return strings.Join(out, " "), t
}

func fnCall(r *mkRun, args string) (string, *taint) {
	a, t := r.expandArgs(args, 0)
	name := strings.TrimSpace(a[0])
	v := r.lookup(name)
	if v == nil {
		if b, ok := toolchainTests[name]; ok {
			return b(r, a[1:])
		}
		return "", t
	}
	if len(r.frames) > 100 {
		return "", r.taintf("$(call %s) nested too deep", name)
	}
	vars := make(map[string]string, len(a))
	vars["0"] = name
	for i, x := range a[1:] {
		vars[strconv.Itoa(i+1)] = x
	}
	r.frames = append(r.frames, mkFrame{vars: vars, call: true})
	defer func() { r.frames = r.frames[:len(r.frames)-1] }()
	if !v.recursive {
		s, vt := r.expandVar(name, v)
		return s, mergeTaint(t, vt)
	}
	// A function body is expanded afresh for each call, even while the
	// same function is being expanded further up (recursive calls).
	var b strings.Builder
	for i, s := range v.segs {
		text, st := s.text, s.t
		if s.expand {
			var et *taint
			text, et = r.expand(text)
			st = mergeTaint(st, et)
		}
		if i > 0 && text != "" && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(text)
		t = mergeTaint(t, st)
	}
	return b.String(), t
}

func fnValue(r *mkRun, args string) (string, *taint) {
	name, t := r.expand(args)
	if v := r.lookup(strings.TrimSpace(name)); v != nil {
		return v.raw(), t
	}
	return "", t
}

func fnOrigin(r *mkRun, args string) (string, *taint) {
	name, t := r.expand(args)
	name = strings.TrimSpace(name)
	for i := len(r.frames) - 1; i >= 0; i-- {
		if _, ok := r.frames[i].vars[name]; ok {
			return "automatic", t
		}
	}
	v := r.lookup(name)
	switch {
	case v == nil:
		return "undefined", t
	case v.origin == originCmdline:
		return "command line", t
	case v.origin == originEnv:
		return "environment", t
	case v.origin == originAutomatic:
		return "automatic", t
	}
	return "file", t
}

func fnFlavor(r *mkRun, args string) (string, *taint) {
	name, t := r.expand(args)
	v := r.lookup(strings.TrimSpace(name))
	switch {
	case v == nil:
		return "undefined", t
	case v.recursive:
		return "recursive", t
	}
	return "simple", t
}

func fnEval(r *mkRun, args string) (string, *taint) {
	text, t := r.expand(args)
	file, line := r.file, r.line
	f := parseMakefile(fmt.Sprintf("%s:%d: $(eval)", file, line), text)
	for _, e := range f.errs {
		r.ev.warn("%s", e)
	}
	saved := r.ctx
	r.ctx = mergeTaint(r.ctx, t)
	// Statements of an eval report the position of the eval itself.
	for i := range f.stmts {
		f.stmts[i].line = line
	}
	f.name = file
	r.run(f, f.stmts)
	r.ctx = saved
	r.file, r.line = file, line
	return "", nil
}

func fnUnknown(what string) mkFunc {
	return func(r *mkRun, args string) (string, *taint) {
		return "", r.taintf("%s cannot be evaluated statically", what)
	}
}

func fnIgnore(*mkRun, string) (string, *taint) { return "", nil }

func fnError(r *mkRun, args string) (string, *taint) {
	msg, _ := r.expand(args)
	r.ev.warn("%s: $(error %s) reached: make would stop here", r.pos(), strings.TrimSpace(msg))
	return "", nil
}

// toolchainTests are the Kbuild compiler probes (scripts/Makefile.compiler)
// called through $(call ...). They run the compiler, which a static
// evaluation cannot: each answers "supported", as gcc-12 does for the
// options the kernel asks about, and taints the value so an object list
// that depended on one would be reported as uncertain. Version tests read
// the compiler version the config recorded.
var toolchainTests = map[string]func(r *mkRun, a []string) (string, *taint){
	"cc-option":          probeArg(0),
	"__cc-option":        probeArg(1),
	"cc-option-yn":       probeConst("y"),
	"as-option":          probeArg(0),
	"as-instr":           probeArg(1),
	"ld-option":          probeArg(0),
	"rustc-option":       probeArg(0),
	"try-run":            probeArg(1),
	"cc-disable-warning": probeDisableWarning,
	"cc-cross-prefix":    probeConst(""),
	"cc-ifversion":       probeArg(2),
	"ld-ifversion":       probeArg(2),
	"gcc-min-version":    minVersion("CONFIG_GCC_VERSION"),
	"clang-min-version":  minVersion("CONFIG_CLANG_VERSION"),
	"rustc-min-version":  minVersion("CONFIG_RUSTC_VERSION"),
}

func probeArg(i int) func(*mkRun, []string) (string, *taint) {
	return func(r *mkRun, a []string) (string, *taint) {
		return strings.TrimSpace(mkArg(a, i)), r.taintf("toolchain test assumed to pass")
	}
}

func probeConst(v string) func(*mkRun, []string) (string, *taint) {
	return func(r *mkRun, _ []string) (string, *taint) {
		return v, r.taintf("toolchain test assumed to pass")
	}
}

func probeDisableWarning(r *mkRun, a []string) (string, *taint) {
	return "-Wno-" + strings.TrimSpace(mkArg(a, 0)), r.taintf("toolchain test assumed to pass")
}

func minVersion(sym string) func(*mkRun, []string) (string, *taint) {
	return func(r *mkRun, a []string) (string, *taint) {
		have, _ := r.value(sym)
		h, err1 := strconv.Atoi(strings.TrimSpace(have))
		want, err2 := strconv.Atoi(strings.TrimSpace(mkArg(a, 0)))
		if err1 != nil || err2 != nil {
			return "", r.taintf("%s: compiler version unknown", sym)
		}
		if h >= want {
			return "y", nil
		}
		return "", nil
	}
}
