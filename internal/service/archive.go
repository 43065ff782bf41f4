package service

import (
	"context"
	"errors"
	"time"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// The signed patch archive's use cases. For now they run on an archive
// directory on this machine (standalone): publishing a patch set the
// server approved needs the approval workflow, which is not there yet.

// ArchiveInitOptions make a new archive.
type ArchiveInitOptions struct {
	Dir        string
	Rings      []string       // default canary, early, stable
	Thresholds map[string]int // per role, default 1
	// Expiries per role; zero keeps the default (root 1 year, targets 30
	// days, snapshot 7 days, timestamp 6 hours).
	RootExpiry, TargetsExpiry, SnapshotExpiry, TimestampExpiry time.Duration
}

// ArchiveInit makes a new archive and returns its status.
func (s *Service) ArchiveInit(ctx context.Context, o ArchiveInitOptions) (*repo.Status, error) {
	r, err := repo.Init(ctx, o.Dir, repo.InitOptions{
		Options:    repo.Options{Log: s.log},
		Rings:      o.Rings,
		Thresholds: o.Thresholds,
		Expiry: repo.Expiries{Root: repo.Duration(o.RootExpiry), Targets: repo.Duration(o.TargetsExpiry),
			Snapshot: repo.Duration(o.SnapshotExpiry), Timestamp: repo.Duration(o.TimestampExpiry)},
	})
	if err != nil {
		return nil, archiveErr(err)
	}
	st, err := r.Status(ctx)
	return st, archiveErr(err)
}

// ArchivePublishOptions publish a module file as the next version for a
// kernel release.
type ArchivePublishOptions struct {
	Dir       string
	Module    string // the .ko
	Kernel    string // uname -r
	PatchSet  string
	CVEs      []string
	Ring      string // default the first ring
	Replaces  int64  // default the newest published version
	VetReport string // sha256 hex, optional
	// AllowPlainModule takes a module without livepatch=Y.
	AllowPlainModule bool
}

// ArchivePublish publishes a module.
func (s *Service) ArchivePublish(ctx context.Context, o ArchivePublishOptions) (*feed.Release, error) {
	r, err := s.openArchive(o.Dir)
	if err != nil {
		return nil, err
	}
	rel, err := r.Publish(ctx, repo.PublishOptions{Module: o.Module, Kernel: o.Kernel, PatchSet: o.PatchSet, CVEs: o.CVEs,
		Ring: o.Ring, Replaces: o.Replaces, VetReport: o.VetReport, AllowPlainModule: o.AllowPlainModule})
	return rel, archiveErr(err)
}

// ArchiveVersion names a published version.
type ArchiveVersion struct {
	Dir     string
	Kernel  string
	Version int64
	Ring    string // promote: the ring to go to (default the next); downgrade: the rings to publish to
}

// ArchivePromote moves a version to a further ring.
func (s *Service) ArchivePromote(ctx context.Context, o ArchiveVersion) (*feed.Release, error) {
	r, err := s.openArchive(o.Dir)
	if err != nil {
		return nil, err
	}
	rel, err := r.Promote(ctx, o.Kernel, o.Version, o.Ring)
	return rel, archiveErr(err)
}

// ArchiveRevoke withdraws a version.
func (s *Service) ArchiveRevoke(ctx context.Context, o ArchiveVersion) (*feed.Release, error) {
	r, err := s.openArchive(o.Dir)
	if err != nil {
		return nil, err
	}
	rel, err := r.Revoke(ctx, o.Kernel, o.Version)
	return rel, archiveErr(err)
}

// ArchiveDowngrade publishes the module of an older version (o.Version)
// again as a new, higher version.
func (s *Service) ArchiveDowngrade(ctx context.Context, o ArchiveVersion) (*feed.Release, error) {
	r, err := s.openArchive(o.Dir)
	if err != nil {
		return nil, err
	}
	rel, err := r.Downgrade(ctx, o.Kernel, o.Version, o.Ring)
	return rel, archiveErr(err)
}

// ArchiveRotateKey replaces a role's keys.
func (s *Service) ArchiveRotateKey(ctx context.Context, dir, role string) (*repo.Status, error) {
	r, err := s.openArchive(dir)
	if err != nil {
		return nil, err
	}
	if err := r.RotateKey(ctx, role); err != nil {
		return nil, archiveErr(err)
	}
	st, err := r.Status(ctx)
	return st, archiveErr(err)
}

// ArchiveRefresh re-signs what is due (cron).
func (s *Service) ArchiveRefresh(ctx context.Context, dir string) (repo.Renewed, error) {
	r, err := s.openArchive(dir)
	if err != nil {
		return repo.Renewed{}, err
	}
	got, err := r.Refresh(ctx)
	return got, archiveErr(err)
}

// ArchiveStatus shows the archive's versions and expiries.
func (s *Service) ArchiveStatus(ctx context.Context, dir string) (*repo.Status, error) {
	r, err := s.openArchive(dir)
	if err != nil {
		return nil, err
	}
	st, err := r.Status(ctx)
	return st, archiveErr(err)
}

// ArchivePublicDir is the directory of an archive to serve.
func (s *Service) ArchivePublicDir(dir string) (string, error) {
	r, err := s.openArchive(dir)
	if err != nil {
		return "", err
	}
	return r.PublicDir(), nil
}

func (s *Service) openArchive(dir string) (*repo.Repo, error) {
	if dir == "" {
		return nil, invalidf("no archive directory")
	}
	r, err := repo.Open(dir, repo.Options{Log: s.log})
	return r, archiveErr(err)
}

// archiveErr gives the archive's refusals the service's kinds, so front
// ends show them as usage errors or not-found.
func archiveErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, repo.ErrInvalid):
		return &InvalidError{err.Error()}
	case errors.Is(err, repo.ErrNotFound):
		return &NotFoundError{Kind: "archive", err: archiveNotFound{err}}
	}
	return err
}

// archiveNotFound is a repo.ErrNotFound that is also a store.ErrNotFound,
// the one front ends look for.
type archiveNotFound struct{ error }

func (e archiveNotFound) Unwrap() error        { return e.error }
func (e archiveNotFound) Is(target error) bool { return target == store.ErrNotFound }
