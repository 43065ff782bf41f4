package vmtest

import (
	"regexp"
	"strings"
)

// Problem is one kernel log line that says something went wrong.
type Problem struct {
	Kind string // "WARNING", "BUG", "Oops", "Call Trace", "Kernel panic", …
	Line string // the whole line, timestamp included
}

// problemPatterns are checked in order; the first match names the kind.
// "kernel BUG at" is the BUG_ON() form, which has no colon.
var problemPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"Kernel panic", regexp.MustCompile(`Kernel panic - not syncing`)},
	{"Oops", regexp.MustCompile(`\bOops\b`)},
	{"BUG", regexp.MustCompile(`\bBUG: |kernel BUG at `)},
	{"WARNING", regexp.MustCompile(`\bWARNING: `)},
	{"general protection fault", regexp.MustCompile(`general protection fault`)},
	{"hung task", regexp.MustCompile(`INFO: task .* blocked for more than`)},
	{"Call Trace", regexp.MustCompile(`Call Trace:`)},
}

// kernelLine matches the printk timestamp that starts every kernel line
// (Boot turns printk.time on), which keeps a script's own output that
// happens to say "WARNING:" from counting as a kernel problem.
var kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\] `)

// ParseProblems returns the kernel problems in a console log or dmesg
// output, in order. Only lines that carry a printk timestamp count.
func ParseProblems(log string) []Problem {
	var out []Problem
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		if !kernelLine.MatchString(line) {
			continue
		}
		for _, p := range problemPatterns {
			if p.re.MatchString(line) {
				out = append(out, Problem{Kind: p.kind, Line: line})
				break
			}
		}
	}
	return out
}
