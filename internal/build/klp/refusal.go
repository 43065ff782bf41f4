package klp

import (
	"errors"
	"fmt"

	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// The sentinels a Refusal matches with errors.Is, one per class.
var (
	// ErrNotLivepatchable: the fix cannot be turned into a livepatch as it
	// is; the message says why in a kernel engineer's words.
	ErrNotLivepatchable = errors.New("not livepatchable")
	// ErrNotCompiled: the fix changes code this kernel does not build.
	ErrNotCompiled = errors.New("not compiled in this kernel")
	// ErrNoChange: the fix changes no function of the kernel as built.
	ErrNoChange = errors.New("no functional change")
	// ErrFixDoesNotCompile: the unfixed units compile and the fixed ones
	// do not: the fix is incomplete for this kernel.
	ErrFixDoesNotCompile = errors.New("the fix does not compile against this kernel's source")
	// ErrFixDoesNotApply: the diff does not apply to this kernel's source.
	ErrFixDoesNotApply = errors.New("the fix does not apply")
	// ErrBuildFailed: make failed otherwise.
	ErrBuildFailed = errors.New("build failed")
	// ErrBadFix: the fix is empty, or names paths outside the tree.
	ErrBadFix = errors.New("bad fix")
)

// Refusal is the generator's typed verdict on a fix it did not turn into
// a module: a stable code, where (unit, object, function), and the
// sentence a kernel engineer reads. Its message starts with the sentinel
// of its class, as the untyped errors did.
type Refusal struct {
	Code     refusal.Code `json:"code"`
	Unit     string       `json:"unit,omitempty"`
	Object   string       `json:"object,omitempty"`
	Function string       `json:"function,omitempty"`
	Reason   string       `json:"reason"`
	// Errors are every distinct compiler error of a fix that does not
	// compile (the reason keeps the first few): what a prerequisite
	// finder reads for the names the fix lacks.
	Errors []string `json:"errors,omitempty"`
}

func (r *Refusal) sentinel() error {
	if r.Code == refusal.BadFix {
		return ErrBadFix
	}
	switch r.Code.Class() {
	case refusal.ClassNotCompiled:
		return ErrNotCompiled
	case refusal.ClassNoChange:
		return ErrNoChange
	case refusal.ClassNotLivepatchable:
		return ErrNotLivepatchable
	case refusal.ClassFixDoesNotCompile:
		return ErrFixDoesNotCompile
	case refusal.ClassFixDoesNotApply:
		return ErrFixDoesNotApply
	}
	return ErrBuildFailed
}

func (r *Refusal) Error() string { return r.sentinel().Error() + ": " + r.Reason }

// Is matches the sentinel of r's class.
func (r *Refusal) Is(target error) bool { return target == r.sentinel() }

// refuse makes a Refusal; fn is the function it is about, if any.
func refuse(code refusal.Code, fn string, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Function: fn, Reason: fmt.Sprintf(format, args...)}
}

// AsRefusal returns the Refusal in err's chain, if there is one.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// IsNotLivepatchable reports whether err says a fix cannot be livepatched.
func IsNotLivepatchable(err error) bool { return errors.Is(err, ErrNotLivepatchable) }
