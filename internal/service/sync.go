package service

import (
	"cmp"
	"context"
	"io"
	"time"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
)

// SyncOptions shape a sync of the CVE repository.
type SyncOptions struct {
	Source  string // default: the configured source
	Rev     string
	Full    bool
	NoFetch bool
	// Progress hears how many records of how many were read.
	Progress func(done, total int)
}

// Sync brings the database to the CVE repository's revision.
func (s *Service) Sync(ctx context.Context, o SyncOptions) (cvesync.Summary, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return cvesync.Summary{}, err
	}
	return cvesync.Run(ctx, st, cvesync.Options{
		Source:    cmp.Or(o.Source, s.cfg.Source),
		Rev:       o.Rev,
		MirrorDir: s.cfg.MirrorDir,
		NoFetch:   o.NoFetch,
		Full:      o.Full,
		Progress:  o.Progress,
		Log:       s.log.With("component", "sync"),
	})
}

// Announce ingests linux-cve-announce mails (an mbox).
func (s *Service) Announce(ctx context.Context, mbox io.Reader) (cvesync.AnnounceSummary, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return cvesync.AnnounceSummary{}, err
	}
	return cvesync.Announce(ctx, st, mbox, time.Now())
}
