package kmsg

import (
	"regexp"
	"strconv"
	"strings"
)

// Kind is what a log line says happened.
type Kind int

// The kinds of line Classify tells apart. KindNone is every other line.
const (
	KindNone Kind = iota
	KindPanic
	KindOops
	KindBUG
	KindWarning
	KindGPF
	KindHungTask
	KindCallTrace
	KindSoftLockup
	KindRCUStall
	KindTaint
	KindPatchEnable       // livepatch: enabling patch 'NAME'
	KindPatchTransition   // 'NAME': starting patching transition
	KindPatchComplete     // 'NAME': patching complete
	KindUnpatchTransition // 'NAME': starting unpatching transition
	KindUnpatchComplete   // 'NAME': unpatching complete
	KindPatchBlocked      // klp_try_switch_task: comm:pid is sleeping on function f (and the like)
	KindLivepatchError    // livepatch: failed to ..., klp_* errors
	kindCount             // keep last
)

var kindNames = [kindCount]string{
	KindNone:              "none",
	KindPanic:             "Kernel panic",
	KindOops:              "Oops",
	KindBUG:               "BUG",
	KindWarning:           "WARNING",
	KindGPF:               "general protection fault",
	KindHungTask:          "hung task",
	KindCallTrace:         "Call Trace",
	KindSoftLockup:        "soft lockup",
	KindRCUStall:          "RCU stall",
	KindTaint:             "taint",
	KindPatchEnable:       "livepatch enable",
	KindPatchTransition:   "livepatch patching transition",
	KindPatchComplete:     "livepatch patching complete",
	KindUnpatchTransition: "livepatch unpatching transition",
	KindUnpatchComplete:   "livepatch unpatching complete",
	KindPatchBlocked:      "livepatch task blocked",
	KindLivepatchError:    "livepatch error",
}

func (k Kind) String() string {
	if k >= 0 && k < kindCount {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Problem reports whether the kind means the kernel is in trouble: a
// crash, a warning, a lockup or stall, or a livepatch error.
func (k Kind) Problem() bool {
	switch k {
	case KindPanic, KindOops, KindBUG, KindWarning, KindGPF, KindHungTask,
		KindSoftLockup, KindRCUStall, KindLivepatchError:
		return true
	}
	return false
}

// Event is a classified line.
type Event struct {
	Kind   Kind
	Patch  string // the livepatch's name, for livepatch kinds
	Module string // the module a taint line names
	Taint  string // taint flags, "GWOE", for a "Tainted:" line
	Comm   string // the task a hung-task, lockup or blocked line names
	PID    int
	Func   string // the function a blocked task sleeps on
	Reason string // for KindPatchBlocked: "is running", "has an unreliable stack", "is sleeping on function"
}

// The kernel's formats; see kernel/panic.c, kernel/hung_task.c,
// kernel/watchdog.c, kernel/rcu/tree_stall.h, kernel/livepatch/*.c and
// lib/bug.c. Order matters: the first match wins, so the specific forms
// ("watchdog: BUG: soft lockup") come before the generic ones ("BUG: ").
var (
	rePanic      = regexp.MustCompile(`Kernel panic - not syncing`)
	reSoftLockup = regexp.MustCompile(`BUG: soft lockup - CPU#\d+ stuck for \d+s! \[(.*):(\d+)\]`)
	reRCUStall   = regexp.MustCompile(`INFO: rcu_\w+ (?:self-)?detected stalls?\b`)
	reHungTask   = regexp.MustCompile(`INFO: task (.*):(\d+) blocked for more than`)
	reOops       = regexp.MustCompile(`\bOops\b`)
	reBUG        = regexp.MustCompile(`\bBUG: |kernel BUG at `)
	reWarning    = regexp.MustCompile(`\bWARNING: `)
	reGPF        = regexp.MustCompile(`general protection fault`)
	reCallTrace  = regexp.MustCompile(`Call Trace:`)

	reTainted   = regexp.MustCompile(`\bTainted: ([A-Z ]*[A-Z])`)
	reModTaint  = regexp.MustCompile(`^([\w-]+): (?:loading out-of-tree module taints kernel|module verification failed: .*tainting kernel|module is from the staging directory|tainting kernel with TAINT_\w+|module license '.*' taints kernel|.*taints kernel)`)
	reLockDebug = regexp.MustCompile(`Disabling lock debugging due to kernel taint`)

	reLPEnable   = regexp.MustCompile(`^livepatch: enabling patch '([^']*)'`)
	reLPState    = regexp.MustCompile(`^livepatch: '([^']*)': (starting patching transition|patching complete|starting unpatching transition|unpatching complete)$`)
	reLPBlocked  = regexp.MustCompile(`^livepatch: \w+: (.*):(\d+) (is running|has an unreliable stack|is sleeping on function (\S+))$`)
	reLPError    = regexp.MustCompile(`(?i)\b(?:fail(?:ed|ure|s)?|error|cannot|can't|unable|refusing|invalid)\b`)
	reQuoted     = regexp.MustCompile(`'([^']*)'`)
	reKlpPrefix  = regexp.MustCompile(`\bklp_\w+`)
	reLPModError = regexp.MustCompile(`^livepatch: `)
)

// Classify says what one message (Record.Text) is about.
func Classify(text string) Event {
	switch {
	case rePanic.MatchString(text):
		return Event{Kind: KindPanic}
	case reSoftLockup.MatchString(text):
		m := reSoftLockup.FindStringSubmatch(text)
		return Event{Kind: KindSoftLockup, Comm: m[1], PID: atoi(m[2])}
	case reRCUStall.MatchString(text):
		return Event{Kind: KindRCUStall}
	case reOops.MatchString(text):
		return Event{Kind: KindOops}
	case reBUG.MatchString(text):
		return Event{Kind: KindBUG}
	case reWarning.MatchString(text):
		return Event{Kind: KindWarning}
	case reGPF.MatchString(text):
		return Event{Kind: KindGPF}
	case reHungTask.MatchString(text):
		m := reHungTask.FindStringSubmatch(text)
		return Event{Kind: KindHungTask, Comm: m[1], PID: atoi(m[2])}
	case reCallTrace.MatchString(text):
		return Event{Kind: KindCallTrace}
	}
	if e, ok := classifyLivepatch(text); ok {
		return e
	}
	switch {
	case reLockDebug.MatchString(text):
		return Event{Kind: KindTaint}
	case reModTaint.MatchString(text):
		return Event{Kind: KindTaint, Module: reModTaint.FindStringSubmatch(text)[1]}
	}
	if m := reTainted.FindStringSubmatch(text); m != nil {
		return Event{Kind: KindTaint, Taint: strings.ReplaceAll(m[1], " ", "")}
	}
	return Event{}
}

func classifyLivepatch(text string) (Event, bool) {
	if m := reLPEnable.FindStringSubmatch(text); m != nil {
		return Event{Kind: KindPatchEnable, Patch: m[1]}, true
	}
	if m := reLPState.FindStringSubmatch(text); m != nil {
		k := map[string]Kind{
			"starting patching transition":   KindPatchTransition,
			"patching complete":              KindPatchComplete,
			"starting unpatching transition": KindUnpatchTransition,
			"unpatching complete":            KindUnpatchComplete,
		}[m[2]]
		return Event{Kind: k, Patch: m[1]}, true
	}
	if m := reLPBlocked.FindStringSubmatch(text); m != nil {
		reason := m[3]
		if m[4] != "" {
			reason = "is sleeping on function"
		}
		return Event{Kind: KindPatchBlocked, Comm: m[1], PID: atoi(m[2]), Func: m[4], Reason: reason}, true
	}
	// Errors: the livepatch core's own lines, or a klp_* function's
	// complaint from a patch module ("klp_enable_patch failed").
	if (reLPModError.MatchString(text) || reKlpPrefix.MatchString(text)) && reLPError.MatchString(text) {
		e := Event{Kind: KindLivepatchError}
		if m := reQuoted.FindStringSubmatch(text); m != nil {
			e.Patch = m[1]
		}
		return e, true
	}
	return Event{}, false
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
