package service

import (
	"context"
	"errors"

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
	src, err := s.openFixSource(ctx, from, func() (string, error) {
		return kernelsrc.Sources{CacheDir: s.cfg.CacheDir, Log: s.log}.Tree(ctx, k)
	})
	if err != nil {
		return nil, err
	}
	fix, err := src.Fetch(ctx, rec, k.Version)
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
