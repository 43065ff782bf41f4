// Package fixsource finds the fix of a CVE for a kernel, so that the
// generator is given a CVE instead of a diff. Two sources:
//
//   - Git: a kernel repository with the stable tags (a linux-stable clone
//     or a mirror). The fix is the .dyad's commit for the kernel's stable
//     branch, exported with `git format-patch`; when the branch has no fix
//     but mainline does, the mainline commit, marked as such (Fix.Mainline)
//     because nobody backported it: a reviewer must look.
//   - Debian: a later Debian source package of the kernel's branch. The
//     fix is the change to the CVE's programFiles between the kernel's own
//     source and that package: the stable fix, plus whatever else stable
//     changed in those files in between.
//
// When such a fix does not compile for want of a name (a helper, a struct
// member, a constant an earlier stable commit added elsewhere),
// ParseCompilerErrors reads the compiler's complaints and the source's
// Prerequisites looks in the same window for the change defining each
// name. A prerequisite is returned on its own, with why it was chosen: it
// is never folded into the fix, a human decides.
package fixsource

import (
	"errors"
	"fmt"

	"github.com/tuxtape/tuxtape/internal/analysis/risk"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Kind is where a fix came from.
type Kind string

const (
	KindGit    Kind = "git"
	KindDebian Kind = "debian"
)

// MainlineNote is the warning a mainline commit carries when the branch has
// no fix of its own.
const MainlineNote = "mainline fix, not a stable backport: review carefully"

// Errors callers decide on.
var (
	// ErrNoFix: the record names no fix for the kernel's branch nor for
	// mainline (the branch is unfixed, or the record has no .dyad).
	ErrNoFix = errors.New("no fix commit for this kernel")
	// ErrAlreadyFixed: the kernel's version already has the branch's fix.
	ErrAlreadyFixed = errors.New("kernel already has the fix")
	// ErrNotInSource: the fix source does not have the fix (the commit is
	// not in the repository, or the package does not change the files).
	ErrNotInSource = errors.New("fix source does not have the fix")
	// ErrBadInput: a version, ref or path that cannot be used safely.
	ErrBadInput = errors.New("bad fix source input")
)

// Fix is a CVE's fix for one kernel.
type Fix struct {
	CVE  string
	Diff []byte // a unified diff with a/ and b/ prefixes (git: a format-patch mail)
	Kind Kind
	// Commit is the git commit (KindGit), "" for a Debian package.
	Commit string
	// Branch is the kernel's stable branch ("6.1").
	Branch string
	// Mainline is set when Commit is the mainline fix, the branch having
	// none; Note then says so.
	Mainline bool
	Note     string
	// FixedVersion is the version the .dyad says fixed the branch ("" for
	// a mainline-only fix).
	FixedVersion string
	// From and To name the window the fix was taken from: the kernel's
	// version and the package's version (Debian), or the kernel's tag and
	// the commit (git).
	From, To string
	Files    []string // the files the diff changes
}

// target is the commit to fetch for a kernel on one branch.
type target struct {
	commit   string
	version  string // the .dyad's fixed version
	mainline bool
}

// pickFix chooses the .dyad line for version's branch: its stable fix when
// it has one, else the mainline fix. A branch fix the kernel already has
// is ErrAlreadyFixed: nothing to patch.
func pickFix(rec vulns.Record, version vulns.Version) (target, error) {
	branch := version.Branch()
	for _, b := range rec.Branches {
		if b.FixedCommit == "" || b.FixedVersion == "" {
			continue
		}
		fv, err := vulns.ParseVersion(b.FixedVersion)
		if err != nil || fv.IsMainline() || fv.Branch() != branch {
			continue
		}
		if fv.Compare(version) <= 0 {
			return target{}, fmt.Errorf("%s: %w: fixed in %s, kernel is %s", rec.ID, ErrAlreadyFixed, fv, version)
		}
		return target{commit: b.FixedCommit, version: fv.String()}, nil
	}
	// A mainline release at or before the branch point fixed it for the
	// whole branch: the kernel has it.
	for _, b := range rec.Branches {
		if b.FixedVersion == "" {
			continue
		}
		if fv, err := vulns.ParseVersion(b.FixedVersion); err == nil && fv.IsMainline() && !fv.IsRC() && fv.Compare(version) <= 0 {
			return target{}, fmt.Errorf("%s: %w: fixed in mainline %s, before %s", rec.ID, ErrAlreadyFixed, fv, version)
		}
	}
	if rec.MainlineFix != "" {
		return target{commit: rec.MainlineFix, mainline: true}, nil
	}
	return target{}, fmt.Errorf("%s: %w: no %s or mainline fix in its .dyad", rec.ID, ErrNoFix, branch)
}

// parseDiff reads a unified diff; the analysis side's parser is the one the
// risk score uses, so both read a fix the same way.
func parseDiff(b []byte) ([]risk.File, error) { return risk.ParseDiff(b) }

// diffFiles lists the paths a diff changes.
func diffFiles(diff []byte) []string {
	files, err := parseDiff(diff)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.Path())
	}
	return out
}
