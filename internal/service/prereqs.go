package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/fixsource"
	"github.com/tuxtape/tuxtape/internal/build/kernelsrc"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// fixSource is where fixes, and the prerequisites a fix lacks, come from.
type fixSource interface {
	Fetch(ctx context.Context, rec vulns.Record, version string) (*fixsource.Fix, error)
	Prerequisites(ctx context.Context, fix *fixsource.Fix, missing []fixsource.Missing) ([]fixsource.Prerequisite, []fixsource.Missing, error)
}

// openFixSource opens a fix source spec ("git:REPO" or
// "debian:linux-source-X.Y=VERSION"); tree gives the kernel's own
// unpacked source, which only the Debian source reads.
func (s *Service) openFixSource(ctx context.Context, from string, tree func() (string, error)) (fixSource, error) {
	switch {
	case strings.HasPrefix(from, "git:"):
		repo := strings.TrimPrefix(from, "git:")
		if repo == "" || strings.HasPrefix(repo, "-") {
			return nil, invalidf("--fixes-from %q: want git:REPOSITORY (a kernel git repository with the stable tags)", from)
		}
		return fixsource.Git{Repo: repo, Log: s.log}, nil
	case strings.HasPrefix(from, "debian:"):
		dir, err := tree()
		if err != nil {
			return nil, fmt.Errorf("the kernel's own source: %w", err)
		}
		d, err := fixsource.NewDebian(ctx, debpkg.Options{CacheDir: s.debsDir(), Logger: s.log}, s.cfg.CacheDir, from, fixsource.DirFiles(dir), s.log)
		if err != nil {
			return nil, fixErr(err)
		}
		return d, nil
	}
	return nil, invalidf("--fixes-from %q: want git:REPOSITORY or debian:linux-source-X.Y=VERSION", from)
}

// Prerequisites are the changes a fix source offers for the names a fix
// lacks. They are never applied on their own: a person adds them to a
// new revision (patch edit --with-prerequisites) and reviews them there.
type Prerequisites struct {
	// From is the fix source looked in.
	From  string                   `json:"from"`
	Found []fixsource.Prerequisite `json:"found,omitempty"`
	// Unresolved are the missing names no change in the window defines.
	Unresolved []fixsource.Missing `json:"unresolved,omitempty"`
	// Error says why the lookup itself failed.
	Error string `json:"error,omitempty"`
}

// Files are the files the prerequisites change.
func (p Prerequisites) Files() []string {
	var out []string
	for _, f := range p.Found {
		out = append(out, f.Files...)
	}
	return out
}

// Fixes are the prerequisites as generator inputs, after the fix itself.
func (p Prerequisites) Fixes() []klp.Fix {
	var out []klp.Fix
	for _, f := range p.Found {
		out = append(out, klp.Fix{Name: "prerequisite " + strings.Join(f.Files, ", "), Diff: f.Diff})
	}
	return out
}

// ErrNoMissingNames: the compiler errors name nothing a prerequisite
// could define (a syntax error, a type mismatch…).
var ErrNoMissingNames = errors.New("the compiler errors name no missing declaration")

// findPrerequisites reads a fix's compiler errors for the names it lacks
// and asks src for the changes that define them.
func findPrerequisites(ctx context.Context, src fixSource, from string, fix *fixsource.Fix, compilerErrors []string) (Prerequisites, error) {
	missing := fixsource.ParseCompilerErrors(strings.Join(compilerErrors, "\n"))
	if len(missing) == 0 {
		return Prerequisites{}, fmt.Errorf("prerequisites of %s: %w", fix.CVE, ErrNoMissingNames)
	}
	found, unresolved, err := src.Prerequisites(ctx, fix, missing)
	if err != nil {
		return Prerequisites{}, err
	}
	return Prerequisites{From: from, Found: found, Unresolved: unresolved}, nil
}

// prerequisiteTimeout bounds a lookup (a Debian package read cold, a
// git log over a stable window).
const prerequisiteTimeout = 10 * time.Minute

// offerPrerequisites looks, in the background, in the fix source of a
// revision that does not compile for the changes defining what it lacks,
// and stores what it finds with the revision (found or not, so a reader
// knows the lookup ran). Only fixes from a fix source (and revisions of
// them with prerequisites added) have a window to look in; an edited
// fix's author supplies its own.
func (s *Service) offerPrerequisites(ctx context.Context, st store.Store, id string, rev int, compilerErrors []string) {
	p, revs, _, err := st.Patch(ctx, id)
	if err != nil || rev < 1 || rev > len(revs) {
		return
	}
	from := revs[rev-1].FixSource
	if from == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), prerequisiteTimeout)
	go func() {
		defer cancel()
		found, err := s.lookUpPrerequisites(ctx, p.CVE, p.Kernel, from, revs[rev-1].Diff, compilerErrors)
		if err != nil {
			s.log.Warn("look for a fix's prerequisites", "patch", id, "rev", rev, "from", from, "err", err)
			found = Prerequisites{From: from, Error: err.Error()}
		}
		data, _ := json.Marshal(found)
		if err := st.SetPrerequisites(ctx, id, rev, data); err != nil {
			s.log.Warn("record a fix's prerequisites", "patch", id, "err", err)
			return
		}
		detail := fmt.Sprintf("revision %d: no prerequisite found in %s", rev, from)
		if len(found.Found) > 0 {
			detail = fmt.Sprintf("revision %d: %d prerequisite(s) found in %s (%s), not applied: `patch edit %s --with-prerequisites` makes a revision with them", rev, len(found.Found), from, strings.Join(found.Files(), ", "), id)
		}
		s.publish(ctx, event.Event{At: time.Now(), Kind: "patch.prerequisites", Subject: id, Detail: detail})
	}()
}

// lookUpPrerequisites fetches cve's fix for the kernel again (for its
// window) and looks in its source for what compilerErrors say diff (the
// fix, with the prerequisites of earlier rounds) lacks.
func (s *Service) lookUpPrerequisites(ctx context.Context, cve, kernelName, from string, diff []byte, compilerErrors []string) (Prerequisites, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return Prerequisites{}, err
	}
	k, err := st.Kernel(ctx, kernelName)
	if err != nil {
		return Prerequisites{}, notFound("kernel", err)
	}
	rec, err := st.CVE(ctx, cve)
	if err != nil {
		return Prerequisites{}, notFound("cve", err)
	}
	src, err := s.openFixSource(ctx, from, func() (string, error) {
		return kernelsrc.Sources{CacheDir: s.cfg.CacheDir, Log: s.log}.Tree(ctx, k)
	})
	if err != nil {
		return Prerequisites{}, err
	}
	fix, err := src.Fetch(ctx, rec, k.Version)
	if err != nil {
		return Prerequisites{}, fixErr(err)
	}
	// What the revision already carries is not looked for again.
	fix.Diff, fix.Files = diff, ktree.PatchFiles(diff)
	return findPrerequisites(ctx, src, from, fix, compilerErrors)
}

// withPrerequisites is a revision's fix with the prerequisites offered to
// it, and the source line that says so.
func withPrerequisites(r patch.Revision) ([]byte, string, error) {
	var p Prerequisites
	if len(r.Prerequisites) == 0 || json.Unmarshal(r.Prerequisites, &p) != nil || len(p.Found) == 0 {
		return nil, "", invalidf("revision %d has no prerequisites to add: they are offered once a build from a fix source is refused as %s and the source has changes defining what it lacks (see patch show)", r.Rev, refusal.FixDoesNotCompile)
	}
	diff := append([]byte(nil), r.Diff...)
	for _, f := range p.Found {
		if len(diff) > 0 && diff[len(diff)-1] != '\n' {
			diff = append(diff, '\n')
		}
		diff = append(diff, f.Diff...)
	}
	return diff, fmt.Sprintf("revision %d + prerequisites from %s: %s", r.Rev, p.From, strings.Join(p.Files(), ", ")), nil
}
