package risk

import (
	"regexp"
	"strings"
)

// Reading C from a diff without a compiler: the kernel's coding style puts
// a function's definition, a file-scope declaration and the braces closing
// them at column 0 and indents everything else, which is enough to tell
// which function a changed line is in and what a new column-0 line
// defines. Misreadings only move points between reasons.

// hunkContext follows a hunk's lines to know the enclosing definition.
type hunkContext struct {
	section  string
	fn       string // the enclosing function, "" at file scope or unknown
	init     bool   // fn is __init or __exit code
	inStruct string // inside a struct/union type definition
	inData   string // inside a file-scope initializer (a table)
	started  bool
}

var (
	funcDefRE   = regexp.MustCompile(`^[A-Za-z_][\w \t\*,]*?\b([A-Za-z_]\w*)\s*\(`)
	typeDefRE   = regexp.MustCompile(`^(?:typedef\s+)?(struct|union|enum)\s+(\w+)\s*\{`)
	defineMacRE = regexp.MustCompile(`^(?:static\s+)?((?:DEFINE|DECLARE)_\w+)\((\w+)`)
	identRE     = regexp.MustCompile(`[A-Za-z_]\w*`)
	notFuncs    = map[string]bool{"if": true, "for": true, "while": true, "switch": true, "return": true, "sizeof": true}
)

func (c *hunkContext) observe(text string) {
	if !c.started {
		c.started = true
		if c.section != "" {
			c.observe(c.section)
		}
	}
	if text == "" || !isColumn0(text) {
		return
	}
	if strings.HasPrefix(text, "}") {
		c.fn, c.init, c.inStruct, c.inData = "", false, "", ""
		return
	}
	if m := typeDefRE.FindStringSubmatch(text); m != nil && !strings.Contains(text, "=") {
		c.fn, c.inStruct, c.inData = "", m[1]+" "+m[2], ""
		return
	}
	if n, ok := definedFunction(text); ok {
		c.fn, c.inStruct, c.inData = n, "", ""
		c.init = initExitRE.MatchString(text)
		return
	}
	if n, ok := definedData(text); ok && strings.HasSuffix(strings.TrimSpace(text), "{") {
		c.fn, c.inStruct, c.inData = "", "", n
	}
}

// isColumn0 reports whether a line starts a top-level construct.
func isColumn0(text string) bool {
	if text == "" {
		return false
	}
	switch text[0] {
	case ' ', '\t', '#', '/', '*':
		return false
	}
	return true
}

// definedFunction reports whether a line starts a function definition and
// its name: a column-0 "type name(" that is not a prototype or a macro
// statement (those end with ';').
func definedFunction(text string) (string, bool) {
	if !isColumn0(text) {
		return "", false
	}
	t := strings.TrimSpace(stripComment(text))
	if strings.HasSuffix(t, ";") || strings.HasPrefix(t, "typedef") || strings.HasPrefix(t, "extern") {
		return "", false
	}
	m := funcDefRE.FindStringSubmatch(t)
	if m == nil || notFuncs[m[1]] {
		return "", false
	}
	// "x = f(" is an initializer, not a definition.
	if i := strings.IndexByte(t, '='); i >= 0 && i < strings.IndexByte(t, '(') {
		return "", false
	}
	return m[1], true
}

// definedData reports whether a column-0 line declares file-scope data
// (a variable, a table, or a DEFINE_/DECLARE_ object) and its name.
func definedData(text string) (string, bool) {
	if !isColumn0(text) {
		return "", false
	}
	t := strings.TrimSpace(stripComment(text))
	if m := defineMacRE.FindStringSubmatch(t); m != nil {
		return m[2], true
	}
	for _, p := range []string{"typedef", "extern", "return", "EXPORT_SYMBOL", "MODULE_", "module_"} {
		if strings.HasPrefix(t, p) {
			return "", false
		}
	}
	left, _, hasInit := strings.Cut(t, "=")
	if !hasInit {
		if !strings.HasSuffix(t, ";") {
			return "", false
		}
		left = strings.TrimSuffix(t, ";")
	}
	if strings.ContainsAny(left, "(){}") {
		return "", false
	}
	if i := strings.IndexByte(left, '['); i >= 0 {
		left = left[:i]
	}
	words := identRE.FindAllString(left, -1)
	// Drop trailing attributes ("__read_mostly", "__initdata").
	for len(words) > 0 && strings.HasPrefix(words[len(words)-1], "__") {
		words = words[:len(words)-1]
	}
	if len(words) < 2 {
		return "", false
	}
	// "struct foo;" is a forward declaration.
	if len(words) == 2 && (words[0] == "struct" || words[0] == "union" || words[0] == "enum") {
		return "", false
	}
	return words[len(words)-1], true
}

// isComment reports whether a line is only (part of) a comment.
func isComment(text string) bool {
	t := strings.TrimSpace(text)
	return strings.HasPrefix(t, "/*") && strings.HasSuffix(t, "*/") ||
		strings.HasPrefix(t, "* ") || t == "*" || strings.HasPrefix(t, "*/") || strings.HasPrefix(t, "//") ||
		strings.HasPrefix(t, "/*") && !strings.Contains(t, "*/")
}

// stripComment drops the comments of one line, so that a primitive named
// in a comment is not counted.
func stripComment(text string) string {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "* ") || t == "*" || strings.HasPrefix(t, "*/") {
		return ""
	}
	var b strings.Builder
	for {
		i := strings.Index(text, "/*")
		j := strings.Index(text, "//")
		if j >= 0 && (i < 0 || j < i) {
			b.WriteString(text[:j])
			return b.String()
		}
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		end := strings.Index(text[i+2:], "*/")
		if end < 0 {
			return b.String()
		}
		text = text[i+2+end+2:]
	}
}
