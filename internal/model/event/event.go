// Package event is the record of the server's event stream: what happened
// (a sync ran, a kernel was added, a machine reported), in the order the
// database committed it. The dashboard and the notifications follow it.
package event

import (
	"fmt"
	"strings"
	"time"
)

// Kind names what happened: "<area>.<what>".
type Kind string

// The kinds the server writes today. The workflow adds job.* and review.*.
const (
	SyncStarted   Kind = "sync.started"
	SyncFinished  Kind = "sync.finished"
	SyncFailed    Kind = "sync.failed"
	KernelAdded   Kind = "kernel.added"
	KernelRemoved Kind = "kernel.removed"
	// FleetPrefix is followed by the fleet event's own kind
	// (fleet.applied, fleet.rolled-back, …).
	FleetPrefix = "fleet."
)

// Event is one entry of the stream.
type Event struct {
	// Seq is the event's place in the stream: it grows by one with every
	// event committed, so a follower resumes after the last it saw.
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Kind    Kind      `json:"kind"`
	Subject string    `json:"subject"` // what it is about: a kernel name, a machine ID, a source
	Actor   string    `json:"actor,omitempty"`
	Detail  string    `json:"detail,omitempty"` // a line for people
}

// MaxDetail bounds an event's detail: the stream carries news, not logs.
const MaxDetail = 4096

// Validate checks an event before it is stored.
func (e *Event) Validate() error {
	area, what, ok := strings.Cut(string(e.Kind), ".")
	if !ok || area == "" || what == "" || len(e.Kind) > 64 {
		return fmt.Errorf("event kind %q: want area.what, e.g. sync.finished", e.Kind)
	}
	if e.At.IsZero() {
		return fmt.Errorf("event %s: no time", e.Kind)
	}
	if len(e.Subject) > 256 {
		return fmt.Errorf("event %s: subject is %d bytes; at most 256", e.Kind, len(e.Subject))
	}
	return nil
}

// Clip shortens a detail to MaxDetail bytes, on a rune boundary.
func Clip(s string) string {
	if len(s) <= MaxDetail {
		return s
	}
	cut := MaxDetail
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// Matches reports whether e is of one of kinds (each a kind, or an area
// prefix such as "sync." or "fleet."); no kinds match everything.
func (e *Event) Matches(kinds []string) bool {
	if len(kinds) == 0 {
		return true
	}
	for _, k := range kinds {
		if string(e.Kind) == k || (strings.HasSuffix(k, ".") && strings.HasPrefix(string(e.Kind), k)) {
			return true
		}
	}
	return false
}
