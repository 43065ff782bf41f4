// Package job is the record of work the server hands to builders: a
// kernel build (its real build profile) or a livepatch build, with its
// state, attempts, lease and results.
package job

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

// Kind is what a job does.
type Kind string

// The kinds builders run.
const (
	KernelBuild Kind = "kernel-build" // a full build: the real build profile
	PatchBuild  Kind = "patch-build"  // the livepatch generator
)

// Kinds are the kinds there are.
var Kinds = []Kind{KernelBuild, PatchBuild}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// State is where a job stands.
type State string

// A job is queued until a builder leases it, then done or failed; a lease
// that runs out puts it back in the queue (or fails it after its last
// attempt). Cancelled jobs stop.
const (
	Queued    State = "queued"
	Leased    State = "leased"
	Done      State = "done"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// States are the states there are.
var States = []State{Queued, Leased, Done, Failed, Cancelled}

// ParseState reads a state's name.
func ParseState(s string) (State, error) {
	for _, v := range States {
		if State(s) == v {
			return v, nil
		}
	}
	return "", fmt.Errorf("job state %q: want queued, leased, done, failed or cancelled", s)
}

// Final reports whether a job in s is over.
func (s State) Final() bool { return s == Done || s == Failed || s == Cancelled }

// Job is one unit of builder work.
type Job struct {
	ID          string    `json:"id"`
	Kind        Kind      `json:"kind"`
	State       State     `json:"state"`
	Kernel      string    `json:"kernel"` // the kernel record's name
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"max_attempts"`
	Builder     string    `json:"builder,omitempty"` // the builder that holds or held it
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	By          string    `json:"by,omitempty"` // who submitted it
	Error       string    `json:"error,omitempty"`
	// Spec is what to do; Result what came of it (JSON of the kind's
	// types below).
	Spec   []byte `json:"-"`
	Result []byte `json:"-"`
}

// KernelBuildSpec is a kernel build's input: the kernel record itself,
// so a builder needs nothing from the store.
type KernelBuildSpec struct {
	Kernel *kernel.Kernel `json:"kernel"`
	// Config is the kernel's .config (the record's JSON leaves it out).
	Config []byte `json:"config"`
	Jobs   int    `json:"jobs,omitempty"` // make -j; 0: the builder's cores
}

// Fix is one diff of a patch build.
type Fix struct {
	Name string `json:"name"`
	Diff []byte `json:"diff"`
}

// PatchBuildSpec is a livepatch build's input.
type PatchBuildSpec struct {
	Kernel  *kernel.Kernel `json:"kernel"`
	Config  []byte         `json:"config"`
	Fixes   []Fix          `json:"fixes"`
	Module  string         `json:"module"`
	Replace bool           `json:"replace"`
	// Vet runs the built module through its life in a VM of the kernel.
	Vet bool `json:"vet,omitempty"`
	// Exercises are the shell scripts the vetting runs while the patch is
	// enabled (and after it), in order; none: the default.
	Exercises []string `json:"exercises,omitempty"`
	// Patch and Rev name the deployable patch revision the job builds;
	// SetVersion the kernel's patch set (0: neither).
	Patch      string `json:"patch,omitempty"`
	Rev        int    `json:"rev,omitempty"`
	SetVersion int    `json:"set_version,omitempty"`
}

// PatchBuildResult is what a patch build made: a module (an artifact), or
// the generator's refusal.
type PatchBuildResult struct {
	Module  string `json:"module,omitempty"` // the artifact's name
	Refusal string `json:"refusal,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Errors are a fix's compiler errors when it does not compile.
	Errors []string `json:"errors,omitempty"`
	Units  int      `json:"units"`
	Funcs  int      `json:"funcs"`
	// Functions are the patched functions per object.
	Functions map[string][]string `json:"functions,omitempty"`
	// Vet is the VM report (vmcheck's JSON) when the job vetted the
	// module; VetOK says it loaded, transitioned and unloaded cleanly.
	Vet   json.RawMessage `json:"vet,omitempty"`
	VetOK bool            `json:"vet_ok,omitempty"`
	// VetProblem says in one line what went wrong in the VM.
	VetProblem string `json:"vet_problem,omitempty"`
	// Ran and NotRan are the patched functions ("object:function") the
	// exercise ran while the patch was enabled, by function tracing
	// limited to the module, and those it did not.
	Ran    []string `json:"ran,omitempty"`
	NotRan []string `json:"not_ran,omitempty"`
}

// Artifact is a file a job made, kept content-addressed by the server.
type Artifact struct {
	Name   string `json:"name"` // profile.json, module.ko, vm-report.json
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Builder is a worker that registered with the server.
type Builder struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Arch     string    `json:"arch"`
	Cores    int       `json:"cores"`
	Kernels  []string  `json:"kernels"` // prepared trees it has
	Seen     time.Time `json:"seen"`
	Register time.Time `json:"registered"`
}

var (
	idRE       = regexp.MustCompile(`^[0-9a-f]{16}$`)
	artifactRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidID reports whether id has the form IDs are made in.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Validate checks an artifact's record.
func (a *Artifact) Validate() error {
	switch {
	case !artifactRE.MatchString(a.Name):
		return fmt.Errorf("artifact name %q: use letters, digits, '.', '_' or '-' (at most 64)", a.Name)
	case !sha256RE.MatchString(a.SHA256):
		return fmt.Errorf("artifact %s: sha256 %q is not 64 hex digits", a.Name, a.SHA256)
	case a.Size < 0:
		return fmt.Errorf("artifact %s: size %d", a.Name, a.Size)
	}
	return nil
}
