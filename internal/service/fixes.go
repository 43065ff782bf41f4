package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/fixsource"
	"github.com/tuxtape/tuxtape/internal/build/kernelsrc"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

// FetchFix finds a CVE's fix for a kernel's branch in a fix source:
// "git:REPO" (a kernel git repository with the stable tags: the .dyad's
// fix commit for the branch, else mainline's, marked so) or
// "debian:linux-source-X.Y=VERSION" (a later Debian source package of the
// branch: the change to the CVE's program files since the kernel's own
// source).
func (s *Service) FetchFix(ctx context.Context, cve string, k *kernel.Kernel, from string) (*fixsource.Fix, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := st.CVE(ctx, cve)
	if err != nil {
		return nil, notFound("cve", err)
	}
	var fix *fixsource.Fix
	switch {
	case strings.HasPrefix(from, "git:"):
		repo := strings.TrimPrefix(from, "git:")
		if repo == "" || strings.HasPrefix(repo, "-") {
			return nil, invalidf("--fixes-from %q: want git:REPOSITORY (a kernel git repository with the stable tags)", from)
		}
		fix, err = fixsource.Git{Repo: repo, Log: s.log}.Fetch(ctx, rec, k.Version)
	case strings.HasPrefix(from, "debian:"):
		tree, terr := kernelsrc.Sources{CacheDir: s.cfg.CacheDir, Log: s.log}.Tree(ctx, k)
		if terr != nil {
			return nil, fmt.Errorf("the kernel's own source: %w", terr)
		}
		d, derr := fixsource.NewDebian(ctx, debpkg.Options{CacheDir: s.debsDir(), Logger: s.log}, s.cfg.CacheDir, from, fixsource.DirFiles(tree), s.log)
		if derr != nil {
			return nil, fixErr(derr)
		}
		fix, err = d.Fetch(ctx, rec, k.Version)
	default:
		return nil, invalidf("--fixes-from %q: want git:REPOSITORY or debian:linux-source-X.Y=VERSION", from)
	}
	if err != nil {
		return nil, fixErr(err)
	}
	return fix, nil
}

// fixErr makes the fix sources' refusals the caller's to mend.
func fixErr(err error) error {
	for _, e := range []error{fixsource.ErrNoFix, fixsource.ErrAlreadyFixed, fixsource.ErrNotInSource, fixsource.ErrBadInput} {
		if errors.Is(err, e) {
			return &InvalidError{err.Error()}
		}
	}
	return err
}

// fixSourceLine says where a fetched fix came from, for the revision.
func fixSourceLine(from string, f *fixsource.Fix) string {
	line := from
	if f.Commit != "" {
		line += " commit " + f.Commit
	}
	if f.From != "" || f.To != "" {
		line += " (" + f.From + " → " + f.To + ")"
	}
	if f.Mainline {
		line += ": " + fixsource.MainlineNote
	}
	return line
}
