// Package fleet is the fleet's records: the machines agents run on, the
// livepatches each has loaded, and what happened to them (events). It
// checks what agents send, with bounds on every size, since an agent's
// report is input from outside; it stores and serves nothing.
package fleet

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tuxtape/tuxtape/internal/model/authz"
)

// State is where a machine's livepatching stands.
type State string

// The states. An agent reports the first four; Stale is the server's
// verdict on a machine it has not heard from for StaleAfter, whatever it
// last reported.
const (
	StateOK         State = "ok"          // runs its patch level, nothing in progress
	StatePatching   State = "patching"    // a livepatch is loading or in transition
	StateFailed     State = "failed"      // the last apply failed; the previous level runs
	StateRolledBack State = "rolled_back" // a livepatch was taken out again (bug detected, operator)
	StateStale      State = "stale"       // not heard from for StaleAfter
)

// StaleAfter is how long a machine may stay silent before it counts as
// stale: agents heartbeat every minute, so this is five missed ones.
const StaleAfter = 5 * time.Minute

// States lists every state, Stale included.
func States() []State {
	return []State{StateOK, StatePatching, StateFailed, StateRolledBack, StateStale}
}

// ParseState checks a state name (for filters: Stale included).
func ParseState(s string) (State, error) {
	for _, st := range States() {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("state %q: want ok, patching, failed, rolled_back or stale", s)
}

// Reported says whether an agent may report s (Stale is the server's).
func (s State) Reported() bool { return s != StateStale && s != "" && s.valid() }

func (s State) valid() bool {
	_, err := ParseState(string(s))
	return err == nil
}

// Patch is one loaded livepatch module, as /sys/kernel/livepatch shows it.
type Patch struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	Enabled    bool   `json:"enabled"`
	Transition bool   `json:"transition"` // patching or unpatching in progress
}

// Livepatch is a machine's livepatch state.
type Livepatch struct {
	Patches []Patch `json:"patches"`
	// Level is the effective patch level: the newest cumulative patch
	// that is enabled and out of transition ("" when none).
	Level string   `json:"level,omitempty"`
	CVEs  []string `json:"cves"` // fixed by what runs now
}

// Machine is what the server knows of one machine: its last heartbeat.
type Machine struct {
	ID           string    `json:"id"`
	Hostname     string    `json:"hostname"`
	Kernel       string    `json:"kernel"` // uname -r
	AgentVersion string    `json:"agent_version"`
	Ring         string    `json:"ring,omitempty"` // rollout ring (canary, prod, …)
	State        State     `json:"state"`
	LastSeen     time.Time `json:"last_seen"` // the server's clock, not the agent's
	Livepatch    Livepatch `json:"livepatch"`
}

// EffectiveState is the state to show at now: Stale after StaleAfter of
// silence, else what the agent reported.
func (m *Machine) EffectiveState(now time.Time) State {
	if now.Sub(m.LastSeen) >= StaleAfter {
		return StateStale
	}
	return m.State
}

// EventKind is what happened on a machine.
type EventKind string

// The event kinds.
const (
	EventApplied     EventKind = "applied"
	EventApplyFailed EventKind = "apply_failed"
	EventRolledBack  EventKind = "rolled_back"
	EventBugDetected EventKind = "bug_detected" // the kernel log showed an oops, warning or the like
)

// Failure reports whether an event of kind k counts against a patch in
// its ring's health.
func (k EventKind) Failure() bool {
	return k == EventApplyFailed || k == EventRolledBack || k == EventBugDetected
}

// FailureKinds are the kinds that count against a patch.
var FailureKinds = []EventKind{EventApplyFailed, EventRolledBack, EventBugDetected}

// EventKinds lists the kinds.
func EventKinds() []EventKind {
	return []EventKind{EventApplied, EventApplyFailed, EventRolledBack, EventBugDetected}
}

// Event is one thing that happened on a machine.
type Event struct {
	Machine string    `json:"machine"`
	Kind    EventKind `json:"kind"`
	At      time.Time `json:"at"` // the agent's clock; the server's receipt time when it sent none
	Patch   string    `json:"patch,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Log     []string  `json:"log,omitempty"` // kernel log lines, for bug_detected
}

// Bounds on what an agent sends: generous for a real machine, small
// enough that a hostile or broken agent cannot make the server store
// megabytes a heartbeat.
const (
	MaxHostname   = 255
	MaxName       = 128 // kernel release, patch names, patch level
	MaxVersion    = 64  // agent and patch versions, ring
	MaxPatches    = 64
	MaxCVEs       = 4096
	MaxEvents     = 100 // a report
	MaxDetail     = 4096
	MaxLogLines   = 200
	MaxLogLine    = 1024
	maxCVEDigits  = 19 // the number fits an int64
	minCVEDigits  = 4
	cveYearDigits = 4
)

// FieldError is a value that fails a check; Field is the request field,
// as the API spells it (livepatch.cves[3]).
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldf(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// CheckMachine checks a heartbeat: the machine as an agent reports it
// (LastSeen is the server's and not checked).
func CheckMachine(m *Machine) error {
	if err := authz.ValidMachine(m.ID); err != nil {
		return &FieldError{Field: "machine_id", Problem: err.Error()}
	}
	for _, f := range []struct {
		name, v  string
		max      int
		required bool
	}{
		{"hostname", m.Hostname, MaxHostname, true},
		{"kernel", m.Kernel, MaxName, true},
		{"agent_version", m.AgentVersion, MaxVersion, false},
		{"ring", m.Ring, MaxVersion, false},
		{"livepatch.level", m.Livepatch.Level, MaxName, false},
	} {
		if err := label(f.name, f.v, f.max, f.required); err != nil {
			return err
		}
	}
	if !m.State.Reported() {
		return fieldf("state", "%q: want ok, patching, failed or rolled_back", Clip(string(m.State)))
	}
	lp := &m.Livepatch
	if len(lp.Patches) > MaxPatches {
		return fieldf("livepatch.patches", "%d patches; at most %d", len(lp.Patches), MaxPatches)
	}
	for i, p := range lp.Patches {
		if err := label(fmt.Sprintf("livepatch.patches[%d].name", i), p.Name, MaxName, true); err != nil {
			return err
		}
		if err := label(fmt.Sprintf("livepatch.patches[%d].version", i), p.Version, MaxVersion, false); err != nil {
			return err
		}
	}
	if len(lp.CVEs) > MaxCVEs {
		return fieldf("livepatch.cves", "%d CVE IDs; at most %d", len(lp.CVEs), MaxCVEs)
	}
	for i, id := range lp.CVEs {
		if !ValidCVE(id) {
			return fieldf(fmt.Sprintf("livepatch.cves[%d]", i), "%q is not a CVE ID (want CVE-YYYY-NNNN)", Clip(id))
		}
	}
	return nil
}

// ValidCVE says whether id is a CVE ID: CVE-YYYY-N with 4 to 19 digits.
// Written out rather than a regexp: it runs for every CVE of every
// heartbeat.
func ValidCVE(id string) bool {
	const prefix = "CVE-"
	if len(id) < len(prefix)+cveYearDigits+1+minCVEDigits || len(id) > len(prefix)+cveYearDigits+1+maxCVEDigits || id[:len(prefix)] != prefix {
		return false
	}
	rest := id[len(prefix):]
	if rest[cveYearDigits] != '-' || !digits(rest[:cveYearDigits]) {
		return false
	}
	return digits(rest[cveYearDigits+1:])
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CheckEvents checks a report of events for one machine.
func CheckEvents(machine string, es []Event) error {
	if err := authz.ValidMachine(machine); err != nil {
		return &FieldError{Field: "machine_id", Problem: err.Error()}
	}
	switch {
	case len(es) == 0:
		return fieldf("events", "none: a report carries at least one")
	case len(es) > MaxEvents:
		return fieldf("events", "%d events; at most %d a report", len(es), MaxEvents)
	}
	for i, e := range es {
		at := func(f string) string { return fmt.Sprintf("events[%d].%s", i, f) }
		if !validKind(e.Kind) {
			return fieldf(at("kind"), "%q: want applied, apply_failed, rolled_back or bug_detected", Clip(string(e.Kind)))
		}
		if err := label(at("patch"), e.Patch, MaxName, false); err != nil {
			return err
		}
		if err := text(at("detail"), e.Detail, MaxDetail); err != nil {
			return err
		}
		if len(e.Log) > MaxLogLines {
			return fieldf(at("log"), "%d lines; at most %d", len(e.Log), MaxLogLines)
		}
		for j, l := range e.Log {
			if err := text(fmt.Sprintf("events[%d].log[%d]", i, j), l, MaxLogLine); err != nil {
				return err
			}
		}
	}
	return nil
}

func validKind(k EventKind) bool {
	for _, v := range EventKinds() {
		if k == v {
			return true
		}
	}
	return false
}

// label checks a short identifier-like string: bounded, UTF-8, and free
// of control characters, which have no business in a hostname or a
// version.
func label(field, v string, max int, required bool) error {
	if v == "" && required {
		return fieldf(field, "is required")
	}
	if err := text(field, v, max); err != nil {
		return err
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fieldf(field, "contains a control character (%U)", r)
		}
	}
	return nil
}

// text checks free text (a log line, a detail): bounded, UTF-8, no NUL.
// Other control characters are kept as sent and escaped on display.
func text(field, v string, max int) error {
	switch {
	case len(v) > max:
		return fieldf(field, "%d bytes; at most %d", len(v), max)
	case !utf8.ValidString(v):
		return fieldf(field, "is not valid UTF-8")
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return fieldf(field, "contains a NUL byte")
		}
	}
	return nil
}

// Clip shortens a refused value for a message that quotes it.
func Clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:40] + "…"
}
