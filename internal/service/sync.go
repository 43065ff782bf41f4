package service

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// SyncOptions shape a sync of the CVE repository.
type SyncOptions struct {
	Source  string // default: the configured source
	Rev     string
	Full    bool
	NoFetch bool
	// Progress hears how many records of how many were read.
	Progress func(done, total int)
	By       Actor // who asked, for the event stream
}

// Sync brings the database to the CVE repository's revision.
func (s *Service) Sync(ctx context.Context, o SyncOptions) (cvesync.Summary, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return cvesync.Summary{}, err
	}
	source := cmp.Or(o.Source, s.cfg.Source)
	start := time.Now()
	s.publish(ctx, event.Event{At: start, Kind: event.SyncStarted, Subject: source, Actor: actorID(o.By)})
	sum, err := cvesync.Run(ctx, st, cvesync.Options{
		Source:    source,
		Rev:       o.Rev,
		MirrorDir: s.cfg.MirrorDir,
		NoFetch:   o.NoFetch,
		Full:      o.Full,
		Progress:  o.Progress,
		Log:       s.log.With("component", "sync"),
	})
	if err == nil && sum.Mode != "up-to-date" {
		// The run is in the database already; its summary is a note for
		// `sync status`, and a data directory that cannot take it must
		// not fail the sync.
		if werr := s.writeLastRun(sum); werr != nil {
			s.log.Warn("record the sync summary", "err", werr)
		}
	}
	done := event.Event{At: time.Now(), Kind: event.SyncFinished, Subject: source, Actor: actorID(o.By)}
	if err != nil {
		done.Kind, done.Detail = event.SyncFailed, err.Error()
	} else {
		done.Detail = fmt.Sprintf("%s to %s: %d added, %d updated, %d rejected, %d deleted, %d malformed",
			sum.Mode, vulns.ShortCommit(sum.Commit), sum.Added, sum.Updated, sum.Rejected, sum.Deleted, sum.Malformed)
	}
	s.publish(ctx, done)
	s.mu.Lock()
	onSync := s.cfg.OnSync
	s.mu.Unlock()
	if onSync != nil {
		onSync(sum, err, time.Since(start))
	}
	return sum, err
}

// SyncStatus is where the database stands: the last synced commit, its
// records and the problems syncs left, and what the last run that wrote
// it did, when that run was made from this data directory.
type SyncStatus struct {
	Source   string    `json:"source"`
	Commit   string    `json:"commit"`
	SyncedAt time.Time `json:"synced_at"`
	// Records counts the stored records by status.
	Records  map[vulns.Status]int `json:"records"`
	LastRun  *cvesync.Summary     `json:"last_run,omitempty"`
	Problems []cvesync.Problem    `json:"problems"`
}

// lastRun is the note a sync leaves in the data directory. The database
// is named by a hash of its DSN: a note about another database (--db) is
// not this one's, and a DSN may hold a password.
type lastRun struct {
	DB      string          `json:"db"`
	Summary cvesync.Summary `json:"summary"`
}

func (s *Service) lastRunPath() string {
	return filepath.Join(filepath.Dir(s.cfg.MirrorDir), "last-sync.json")
}

func (s *Service) dbKey() string {
	h := sha256.Sum256([]byte(s.cfg.DB))
	return hex.EncodeToString(h[:8])
}

func (s *Service) writeLastRun(sum cvesync.Summary) error {
	sum.Problems = nil // the store keeps them
	data, err := json.MarshalIndent(lastRun{DB: s.dbKey(), Summary: sum}, "", "  ")
	if err != nil {
		return fmt.Errorf("write sync summary: %w", err)
	}
	if err := atomicfile.WriteFile(s.lastRunPath(), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write sync summary: %w", err)
	}
	return nil
}

// SyncStatus reports where the database stands.
func (s *Service) SyncStatus(ctx context.Context) (SyncStatus, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return SyncStatus{}, err
	}
	state, err := st.SyncState(ctx)
	if err != nil {
		return SyncStatus{}, err
	}
	status := SyncStatus{Source: state.Source, Commit: state.Commit, SyncedAt: state.SyncedAt, Records: map[vulns.Status]int{}, Problems: []cvesync.Problem{}}
	recs, err := st.CVEs(ctx, store.Filter{})
	if err != nil {
		return SyncStatus{}, err
	}
	for _, r := range recs {
		status.Records[r.Status]++
	}
	ps, err := st.Problems(ctx)
	if err != nil {
		return SyncStatus{}, err
	}
	for _, p := range ps {
		status.Problems = append(status.Problems, cvesync.Problem(p))
	}
	data, err := os.ReadFile(s.lastRunPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		s.log.Warn("read the sync summary", "err", err)
	default:
		var lr lastRun
		// Only a note about this database's current commit describes it.
		if json.Unmarshal(data, &lr) == nil && lr.DB == s.dbKey() && lr.Summary.Commit == state.Commit && state.Commit != "" {
			status.LastRun = &lr.Summary
		}
	}
	return status, nil
}

// Announce ingests linux-cve-announce mails (an mbox).
func (s *Service) Announce(ctx context.Context, mbox io.Reader) (cvesync.AnnounceSummary, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return cvesync.AnnounceSummary{}, err
	}
	return cvesync.Announce(ctx, st, mbox, time.Now())
}
