// Package store keeps TuxTape's state (CVE records, sync progress) in SQLite
// (one file, the default) or PostgreSQL (shared by several servers) behind
// one interface, with the same schema and migrations on both.
package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when a record to add is already there.
var ErrExists = errors.New("already exists")

// Store is what the rest of TuxTape needs from a database.
type Store interface {
	// SyncState is where the last sync stopped; zero when none ran.
	SyncState(ctx context.Context) (SyncState, error)
	// ApplySync writes one sync run in a single transaction: either all of
	// it lands, or none of it does.
	ApplySync(ctx context.Context, b *SyncBatch) (SyncCounts, error)
	// ApplyAnnouncements stores records known only from announcement mails;
	// a record the repository already has is left as it is.
	ApplyAnnouncements(ctx context.Context, recs []vulns.Record) (AnnounceCounts, error)
	// CVE returns one record, or ErrNotFound.
	CVE(ctx context.Context, id string) (vulns.Record, error)
	// CVEs lists records matching f, ordered by CVE number.
	CVEs(ctx context.Context, f Filter) ([]vulns.Record, error)
	// Problems lists the malformed records the last syncs skipped.
	Problems(ctx context.Context) ([]Problem, error)
	// AddKernel stores a new kernel record; ErrExists if the name is taken.
	AddKernel(ctx context.Context, k *kernel.Kernel) error
	// Kernel returns one kernel record, or ErrNotFound.
	Kernel(ctx context.Context, name string) (*kernel.Kernel, error)
	// Kernels lists kernel records by name.
	Kernels(ctx context.Context) ([]*kernel.Kernel, error)
	// RemoveKernel deletes a kernel and its profiles, or says ErrNotFound.
	RemoveKernel(ctx context.Context, name string) error
	// PutProfile stores a kernel's build profile of p.Kind, replacing an
	// older one of that kind.
	PutProfile(ctx context.Context, kernel string, p *profile.Profile) error
	// Profile returns a kernel's profile of a kind and when it was made,
	// or ErrNotFound.
	Profile(ctx context.Context, kernel string, kind profile.Kind) (*profile.Profile, time.Time, error)
	// ProfileKinds says which profiles a kernel has, and when each was made.
	ProfileKinds(ctx context.Context, kernel string) (map[profile.Kind]time.Time, error)
	// Backend names the database kind ("sqlite" or "postgres").
	Backend() string
	Close() error
}

// SyncState records the last synced commit of the CVE repository.
type SyncState struct {
	Source   string
	Commit   string
	SyncedAt time.Time
}

// SyncBatch is one sync run's changes.
type SyncBatch struct {
	// Full means Upserts are every record of the repository at State.Commit:
	// repository records not among them are deleted.
	Full     bool
	Upserts  []vulns.Record
	Deletes  []string // CVE IDs no longer in the repository
	Problems []Problem
	// ProblemIDs are the records this run looked at; their old problems are
	// cleared before Problems are written (all of them when Full).
	ProblemIDs []string
	State      SyncState
}

// Problem is a record that could not be parsed.
type Problem struct {
	ID     string
	File   string
	Reason string
}

// SyncCounts says what a sync changed. A record counts as Rejected when it
// became rejected in this run.
type SyncCounts struct {
	Added, Updated, Rejected, Deleted int
}

// AnnounceCounts summarizes an ApplyAnnouncements call.
type AnnounceCounts struct {
	Added, Updated, Known int
}

// Filter selects records for CVEs.
type Filter struct {
	Since   time.Time // first seen at or after
	File    string    // a programFile, or a directory prefix of one
	MinCVSS float64   // >0: only scored records with at least this score
	Status  vulns.Status
	Limit   int
}

// Open connects to dsn: a postgres:// or postgresql:// URL selects
// PostgreSQL; anything else is a SQLite file path (optionally "sqlite:" or
// "file:" prefixed). The schema is migrated to the current version.
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case dsn == "":
		return nil, errors.New("open store: empty database DSN")
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
		return openSQLite(ctx, path)
	}
}

// Redact hides the password of a PostgreSQL DSN for messages.
func Redact(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":xxx" + dsn[at:]
	}
	return dsn
}
