package notify

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// Kind names an event; receivers dispatch on it (it is also in the
// X-TuxTape-Event header, so a receiver can route before parsing).
type Kind string

// The event kinds.
const (
	KindCVEAffectsKernel Kind = "cve_affects_kernel"
	KindPatchRefused     Kind = "patch_refused"
	KindBuildFailed      Kind = "build_failed"
	KindVetFailed        Kind = "vet_failed"
	KindReviewWaiting    Kind = "review_waiting"
	KindRingHalted       Kind = "ring_halted"
)

// Event is what a webhook receives, as JSON:
//
//	{"id": "…", "kind": "patch_refused", "time": "2026-08-21T10:00:00Z", "payload": {…}}
//
// ID is the same on every retry of a delivery, so a receiver that saw it
// already can drop the repeat.
type Event struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	Payload any       `json:"payload"`
}

// CVEAffectsKernel: a sync found a CVE newly affecting a kernel at or above
// the configured priority tier.
type CVEAffectsKernel struct {
	CVE    string `json:"cve"`
	Kernel string `json:"kernel"`
	Tier   string `json:"tier"`
	Score  int    `json:"score,omitempty"`
}

// PatchRefused: the generator cannot make a livepatch for the fix.
type PatchRefused struct {
	CVE    string       `json:"cve"`
	Kernel string       `json:"kernel"`
	Code   refusal.Code `json:"refusal_code"`
	Class  string       `json:"refusal_class"`
	Reason string       `json:"reason"`
	Action string       `json:"action"`
}

// JobFailed is the payload of build_failed and vet_failed.
type JobFailed struct {
	CVE    string `json:"cve,omitempty"`
	Kernel string `json:"kernel"`
	Job    string `json:"job,omitempty"`
	Patch  string `json:"patch,omitempty"`
	Error  string `json:"error"`
}

// ReviewWaiting: a vetted patch revision waits for a reviewer.
type ReviewWaiting struct {
	CVE      string `json:"cve"`
	Kernel   string `json:"kernel"`
	Patch    string `json:"patch"`
	Revision int    `json:"revision"`
	Risk     string `json:"risk_level,omitempty"`
}

// RingHalted: a rollout ring stopped (the archive's staged publishing).
type RingHalted struct {
	Ring   string `json:"ring"`
	Kernel string `json:"kernel,omitempty"`
	Reason string `json:"reason"`
}

// NewEvent makes an event of kind with a fresh ID, stamped now.
func NewEvent(kind Kind, payload any) Event {
	return Event{ID: newID(), Kind: kind, Time: time.Now().UTC().Truncate(time.Second), Payload: payload}
}

// NewPatchRefused is the event for a refusal, with the class and the
// action a human should take filled in.
func NewPatchRefused(cve, kernel string, code refusal.Code, reason string) Event {
	return NewEvent(KindPatchRefused, PatchRefused{
		CVE: cve, Kernel: kernel, Code: code, Class: string(code.Class()), Reason: reason, Action: code.Action(),
	})
}

func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}
