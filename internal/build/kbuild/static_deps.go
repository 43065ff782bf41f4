package kbuild

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// scanIncludes fills p.Deps with the .c files that the units' .c sources
// #include, directly or through another included .c (such files are
// compiled only as part of their includers), and with the tree files
// generated unit sources are made from. p must be sorted.
func (e *staticEval) scanIncludes(p *profile.Profile) error {
	bySrc := make(map[string][]int32)
	for i, u := range p.Units {
		bySrc[u.Source] = append(bySrc[u.Source], int32(i))
	}
	srcs := make([]string, 0, len(bySrc))
	for s := range bySrc {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)

	c := &incCache{e: e}
	found := make([][]string, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range e.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if e.cancelled() {
					continue
				}
				found[i], errs[i] = c.closure(srcs[i])
			}
		}()
	}
	for i := range srcs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := e.ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	deps := make(map[string][]int32)
	for i, src := range srcs {
		for _, d := range found[i] {
			deps[d] = append(deps[d], bySrc[src]...)
		}
	}
	for d, us := range deps {
		slices.Sort(us)
		deps[d] = slices.Compact(us)
	}
	if len(deps) > 0 {
		p.Deps = deps
	}
	return nil
}

type incCache struct {
	e      *staticEval
	direct onceMap[string, []string] // the .c files each file includes
}

// closure returns the files src includes, transitively, that matter as
// Deps: included .c files, or for a generated source the file it is
// generated from.
func (c *incCache) closure(src string) ([]string, error) {
	if !strings.HasSuffix(src, ".c") {
		return nil, nil
	}
	if !c.e.exists(src) {
		if from := generatedFrom(src); c.e.exists(from) {
			return []string{from}, nil
		}
		return nil, nil
	}
	var out []string
	seen := map[string]bool{src: true}
	queue := []string{src}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		incs, err := c.includes(f, src)
		if err != nil {
			return nil, err
		}
		for _, inc := range incs {
			if !seen[inc] {
				seen[inc] = true
				out = append(out, inc)
				queue = append(queue, inc)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// includes returns the .c files that file f #includes, resolved in the
// tree. unit is the unit being compiled, whose directory is usually on
// the include path too.
func (c *incCache) includes(f, unit string) ([]string, error) {
	return c.direct.get(f, func() ([]string, error) {
		data, err := os.ReadFile(c.e.fsPath(f))
		if err != nil {
			return nil, fmt.Errorf("scan %s for included .c files: %w", f, err)
		}
		var incs []string
		for _, name := range includedCFiles(data, c.e.cfg.Values) {
			if p := c.resolve(name, f, unit); p != "" {
				incs = append(incs, p)
			}
		}
		return incs, nil
	})
}

// cInclude is one #include line's file name and its form.
type cInclude struct {
	name  string
	angle bool
}

// includedCFiles finds the #include lines naming a .c file that are not
// ruled out by a preprocessor conditional on config symbols.
func includedCFiles(data []byte, cfg map[string]string) []cInclude {
	if !bytes.Contains(data, []byte(".c\"")) && !bytes.Contains(data, []byte(".c>")) {
		return nil
	}
	var out []cInclude
	var conds cppStack
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 || line[0] != '#' {
			continue
		}
		// Directives may continue over several lines.
		for bytes.HasSuffix(bytes.TrimRight(line, " \t\r"), []byte{'\\'}) && len(data) > 0 {
			cont := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				cont, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			l := bytes.TrimRight(line, " \t\r")
			line = append(append(l[:len(l)-1:len(l)-1], ' '), cont...)
		}
		directive := string(bytes.TrimLeft(line[1:], " \t"))
		name, rest := firstWord(directive)
		if name != "include" {
			conds.directive(name, rest, cfg)
			continue
		}
		if conds.off() || len(rest) < 2 || (rest[0] != '"' && rest[0] != '<') {
			continue
		}
		closer := byte('"')
		if rest[0] == '<' {
			closer = '>'
		}
		end := strings.IndexByte(rest[1:], closer)
		if end < 0 {
			continue
		}
		if f := rest[1 : 1+end]; strings.HasSuffix(f, ".c") {
			out = append(out, cInclude{f, rest[0] == '<'})
		}
	}
	return out
}

// tri is a preprocessor truth value that may be unknown: only config
// symbols (include/generated/autoconf.h) and literals are known here.
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

func (s *cppStack) directive(name, rest string, cfg map[string]string) {
	if i := strings.Index(rest, "/*"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.Index(rest, "//"); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.TrimSpace(rest)
	switch name {
	case "if":
		c := cppEval(rest, cfg)
		*s = append(*s, cppGroup{cur: c, taken: c})
	case "ifdef", "ifndef":
		c := cppDefined(rest, cfg)
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
			c = cppEval(rest, cfg)
		case "elifdef":
			c = cppDefined(rest, cfg)
		case "elifndef":
			c = cppDefined(rest, cfg).not()
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

// cppDefined says whether a macro is defined, for config macros: CONFIG_X
// for y (and for strings and numbers), CONFIG_X_MODULE for m.
func cppDefined(name string, cfg map[string]string) tri {
	name = strings.TrimSpace(name)
	if !strings.HasPrefix(name, "CONFIG_") {
		return triUnknown
	}
	if base, ok := strings.CutSuffix(name, "_MODULE"); ok && cfg[base] == "m" {
		return triTrue
	}
	v, ok := cfg[name]
	return triOf(ok && v != "m")
}

// cppEval evaluates an #if expression made of config tests, integer
// literals, !, && and || (anything else is unknown).
func cppEval(expr string, cfg map[string]string) tri {
	p := cppParser{toks: cppTokens(expr), cfg: cfg}
	v := p.or()
	if p.i != len(p.toks) {
		return triUnknown
	}
	return v
}

func cppTokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||") ||
			strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!=") ||
			strings.HasPrefix(s[i:], ">=") || strings.HasPrefix(s[i:], "<="):
			toks = append(toks, s[i:i+2])
			i += 2
		default:
			toks = append(toks, s[i:i+1])
			i++
		}
	}
	return toks
}

type cppParser struct {
	toks []string
	i    int
	cfg  map[string]string
}

func (p *cppParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *cppParser) or() tri {
	v := p.and()
	for p.peek() == "||" {
		p.i++
		v = triOr(v, p.and())
	}
	return v
}

func (p *cppParser) and() tri {
	v := p.unary()
	for p.peek() == "&&" {
		p.i++
		v = triAnd(v, p.unary())
	}
	return v
}

func (p *cppParser) unary() tri {
	t := p.peek()
	switch {
	case t == "!":
		p.i++
		return p.unary().not()
	case t == "(":
		p.i++
		v := p.or()
		if p.peek() != ")" {
			p.i = len(p.toks) + 1 // malformed: unknown
			return triUnknown
		}
		p.i++
		return p.comparison(v)
	case t == "defined":
		p.i++
		paren := p.peek() == "("
		if paren {
			p.i++
		}
		v := cppDefined(p.peek(), p.cfg)
		p.i++
		if paren {
			if p.peek() != ")" {
				p.i = len(p.toks) + 1
				return triUnknown
			}
			p.i++
		}
		return v
	case t == "IS_ENABLED" || t == "IS_BUILTIN" || t == "IS_MODULE" || t == "IS_REACHABLE":
		p.i++
		if p.peek() != "(" || p.i+2 >= len(p.toks) || p.toks[p.i+2] != ")" {
			p.i = len(p.toks) + 1
			return triUnknown
		}
		sym := p.toks[p.i+1]
		p.i += 3
		if !strings.HasPrefix(sym, "CONFIG_") {
			return triUnknown
		}
		v := p.cfg[sym]
		switch t {
		case "IS_BUILTIN":
			return triOf(v == "y")
		case "IS_MODULE":
			return triOf(v == "m")
		case "IS_REACHABLE":
			if v == "m" {
				return triUnknown // depends on the unit being a module
			}
			return triOf(v == "y")
		}
		return triOf(v == "y" || v == "m")
	case t != "" && (t[0] >= '0' && t[0] <= '9'):
		p.i++
		n, err := strconv.ParseInt(strings.TrimRight(t, "uUlL"), 0, 64)
		if err != nil {
			return triUnknown
		}
		return p.comparison(triOf(n != 0))
	case strings.HasPrefix(t, "CONFIG_"):
		p.i++
		// A bool/tristate macro is 1 when y, undefined (0) otherwise;
		// numbers compare, which is not evaluated here.
		v, ok := p.cfg[t]
		if ok && v != "y" && v != "m" {
			return p.comparison(triUnknown)
		}
		return p.comparison(triOf(v == "y"))
	case t == "":
		return triUnknown
	}
	p.i++
	return p.comparison(triUnknown)
}

// comparison swallows a comparison after an operand; its value is unknown.
func (p *cppParser) comparison(v tri) tri {
	switch p.peek() {
	case "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "&", "|":
		p.i++
		p.unary()
		return triUnknown
	}
	return v
}

// resolve finds an included file the way the kernel's compile line would:
// "x" next to the including file, then next to the unit, then on the -I
// path (the tree top, include/, arch include/); <x> on the -I path only.
func (c *incCache) resolve(i cInclude, from, unit string) string {
	var dirs []string
	if !i.angle {
		dirs = append(dirs, path.Dir(from), path.Dir(unit))
	}
	srcarch, _ := c.e.global["SRCARCH"]
	arch := "x86"
	if srcarch != nil {
		arch = srcarch.raw()
	}
	dirs = append(dirs, "include", "arch/"+arch+"/include", ".")
	for _, d := range dirs {
		p := path.Clean(path.Join(d, i.name))
		if strings.HasPrefix(p, "../") || path.IsAbs(p) {
			continue
		}
		if c.e.exists(p) {
			return p
		}
	}
	return ""
}
