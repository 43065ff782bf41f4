package kmsg

import (
	"regexp"
	"strings"
)

// Problem is one kernel log line that says something went wrong.
type Problem struct {
	Kind string // "WARNING", "BUG", "Oops", "Call Trace", "Kernel panic", …
	Line string // the whole line, timestamp included
}

// problemPatterns are the seven kinds the VM checks have always reported,
// checked in order; the first match names the kind. They are kept apart
// from Classify's finer kinds so that Problems' results do not change:
// a soft lockup, for one, stays a "BUG" here.
var problemPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{KindPanic.String(), rePanic},
	{KindOops.String(), reOops},
	{KindBUG.String(), reBUG},
	{KindWarning.String(), reWarning},
	{KindGPF.String(), reGPF},
	{KindHungTask.String(), regexp.MustCompile(`INFO: task .* blocked for more than`)},
	{KindCallTrace.String(), reCallTrace},
}

// problemLine is the printk timestamp that starts a kernel line on the
// console (the VM checks turn printk.time on); it keeps a script's own
// "WARNING:" from counting. Stricter than ParseLine on purpose: no "<N>"
// prefix, exactly one space after the bracket.
var problemLine = regexp.MustCompile(`^\[\s*\d+\.\d+\] `)

// Problems returns the kernel problems in a console log or dmesg output,
// in order. Only lines that start with a printk timestamp count; line ends
// may be "\n" or "\r\n". It is what the VM checks report as problems.
func Problems(log string) []Problem {
	var out []Problem
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		if !problemLine.MatchString(line) {
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

// sleepingOn is the livepatch transition's debug line
// (kernel/livepatch/transition.c, klp_try_switch_task):
// "livepatch: klp_try_switch_task: comm:pid is sleeping on function f".
var sleepingOn = regexp.MustCompile(`: (\S+:\d+) is sleeping on function (\S+)`)

// Blockers returns the distinct tasks the livepatch transition found
// sleeping in a function being patched, as "comm:pid in func", in order
// of first appearance. It reads raw dmesg text (any format), so a comm
// with a space in it is not found.
func Blockers(dmesg string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range sleepingOn.FindAllStringSubmatch(dmesg, -1) {
		b := m[1] + " in " + m[2]
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}
