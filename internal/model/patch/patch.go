// Package patch is the record of deployable patches: a fix for one CVE on
// one kernel, in immutable revisions, each built and vetted by a builder,
// then reviewed by people; and the patch sets, one cumulative livepatch
// per kernel made of the approved revisions.
package patch

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is where a patch's newest revision stands.
type State string

// A revision is built and vetted by a builder job (building), then is
// vetted (it loaded, transitioned and unloaded in a VM of the kernel),
// refused (the generator cannot make it: needs a hand-written livepatch)
// or failed (a build or VM failure); people then approve or reject it.
const (
	Building State = "building"
	Vetted   State = "vetted"
	Refused  State = "refused"
	Failed   State = "failed"
	Approved State = "approved"
	Rejected State = "rejected"
)

// States are the states there are.
var States = []State{Building, Vetted, Refused, Failed, Approved, Rejected}

// ParseState reads a state's name.
func ParseState(s string) (State, error) {
	for _, v := range States {
		if State(s) == v {
			return v, nil
		}
	}
	return "", fmt.Errorf("patch state %q: want building, vetted, refused, failed, approved or rejected", s)
}

// Patch is a deployable patch: its newest revision's state.
type Patch struct {
	ID      string    `json:"id"`
	CVE     string    `json:"cve"`
	Kernel  string    `json:"kernel"`
	Rev     int       `json:"rev"` // the newest revision
	State   State     `json:"state"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Revision is one immutable version of a patch's fix.
type Revision struct {
	Patch   string    `json:"patch"`
	Rev     int       `json:"rev"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	Source  string    `json:"source"` // where the diff came from, for people: a file, an edit, a fix source
	// FixSource is the fix source spec (git:…, debian:…) the raw fix, and
	// any prerequisites added to it, came from; "" for a fix from a file
	// or an edit. Prerequisites are looked for there.
	FixSource string `json:"fix_source,omitempty"`
	Diff      []byte `json:"diff"`
	Job       string `json:"job,omitempty"`    // the build-and-vet job
	Module    string `json:"module,omitempty"` // the built module's SHA-256
	// Vet is the VM report (JSON), Risk the risk score with its reasons
	// (JSON), Refusal the generator's reason and RefusalCode its stable
	// code (model/refusal) when refused.
	Vet         json.RawMessage `json:"vet,omitempty"`
	Risk        json.RawMessage `json:"risk,omitempty"`
	Refusal     string          `json:"refusal,omitempty"`
	RefusalCode string          `json:"refusal_code,omitempty"`
	Error       string          `json:"error,omitempty"`
	// Prerequisites (JSON) are what the fix source offers a revision
	// whose fix does not compile: never applied but by a new revision.
	Prerequisites json.RawMessage `json:"prerequisites,omitempty"`
	// Exercise is the revision's own vetting script (see
	// kernel.Kernel.Exercise), "" for the kernel's or the default.
	Exercise string `json:"exercise,omitempty"`
}

// Verdict is a review's answer.
type Verdict string

// The verdicts.
const (
	Approve Verdict = "approve"
	Reject  Verdict = "reject"
)

// Review is one person's verdict on a revision.
type Review struct {
	Patch    string    `json:"patch"`
	Rev      int       `json:"rev"`
	Reviewer string    `json:"reviewer"`
	Verdict  Verdict   `json:"verdict"`
	Comment  string    `json:"comment"`
	At       time.Time `json:"at"`
}

// SetState is where a patch set stands.
type SetState string

// A patch set is built by a builder job, then is ready (its module can
// be published) or failed.
const (
	SetBuilding SetState = "building"
	SetReady    SetState = "ready"
	SetFailed   SetState = "failed"
)

// Set is one version of a kernel's cumulative livepatch: every approved
// patch's approved revision, in one replace=true module.
type Set struct {
	Kernel  string    `json:"kernel"`
	Version int       `json:"version"`
	State   SetState  `json:"state"`
	Module  string    `json:"module_name"`      // the module's name
	SHA256  string    `json:"module,omitempty"` // the module artifact
	Job     string    `json:"job"`
	CVEs    []string  `json:"cves"`
	Patches []string  `json:"patches"` // ID@rev
	Created time.Time `json:"created"`
	Error   string    `json:"error,omitempty"`
}
