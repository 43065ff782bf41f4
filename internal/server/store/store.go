// Package store keeps TuxTape's state (CVE records, sync progress) in SQLite
// (one file, the default) or PostgreSQL (shared by several servers) behind
// one interface, with the same schema and migrations on both.
package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/patch"
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
	// AddToken stores a new token, and its audit entry with it.
	AddToken(ctx context.Context, t authz.Token, audit authz.AuditEntry) error
	// Token returns one token, or ErrNotFound.
	Token(ctx context.Context, id string) (authz.Token, error)
	// Revocations says where the revocations stand: it changes with each
	// one, so a server that caches tokens learns when to drop them.
	Revocations(ctx context.Context) (RevocationMark, error)
	// Tokens lists the tokens, oldest first.
	Tokens(ctx context.Context) ([]authz.Token, error)
	// RevokeToken marks a token revoked at audit.At (ErrNotFound if there
	// is no such token), and writes the audit entry with it.
	RevokeToken(ctx context.Context, id string, audit authz.AuditEntry) error
	// AddAudit writes an audit entry.
	AddAudit(ctx context.Context, e authz.AuditEntry) error
	// Audit lists audit entries, newest first, at most limit (0: all).
	Audit(ctx context.Context, limit int) ([]authz.AuditEntry, error)
	// AddTokens stores many new tokens and one audit entry for them, in
	// one transaction: enrolling a fleet's agents at once.
	AddTokens(ctx context.Context, ts []authz.Token, audit authz.AuditEntry) error
	// PutMachines stores heartbeats, in one transaction: a machine's row is
	// replaced unless it holds a newer heartbeat already.
	PutMachines(ctx context.Context, ms []fleet.Machine) error
	// AddEvents stores machines' events, and their entries in the event
	// stream, in one transaction.
	AddEvents(ctx context.Context, es []fleet.Event) error
	// Machines lists machines matching f, by ID.
	Machines(ctx context.Context, f MachineFilter) ([]fleet.Machine, error)
	// Machine returns one machine and its newest events (at most events),
	// or ErrNotFound.
	Machine(ctx context.Context, id string, events int) (fleet.Machine, []fleet.Event, error)
	// AppendEvents adds events to the stream, numbered after the last
	// committed one, in one transaction.
	AppendEvents(ctx context.Context, es []event.Event) error
	// Events lists the stream's events after seq, oldest first, at most
	// limit (0: all).
	Events(ctx context.Context, after int64, limit int) ([]event.Event, error)
	// LastEventSeq is the newest event's seq (0 with none).
	LastEventSeq(ctx context.Context) (int64, error)
	// AcquireLease takes or renews the lease called name for holder until
	// until, if it is free, expired at now, or holder's already.
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// ReleaseLease gives the lease up if holder has it, keeping it closed
	// to everyone until until (the zero time: free now). A periodic job
	// hands its lease back this way until its next run is due.
	ReleaseLease(ctx context.Context, name, holder string, until time.Time) error
	// PatchHealth counts, per ring, the machines that applied a patch (a
	// module name) and those that reported it failing.
	PatchHealth(ctx context.Context, patch string) ([]RingCount, error)
	// MachineCounts counts machines by kernel and state; machines last
	// seen before staleBefore count as stale.
	MachineCounts(ctx context.Context, staleBefore time.Time) ([]MachineCount, error)
	// AddJob queues a job.
	AddJob(ctx context.Context, j job.Job) error
	// Job returns one job, or ErrNotFound.
	Job(ctx context.Context, id string) (job.Job, error)
	// Jobs lists jobs matching f, newest first.
	Jobs(ctx context.Context, f JobFilter) ([]job.Job, error)
	// ClaimJob leases the oldest waiting job of kinds to builder until
	// until; false when there is none. Servers sharing a database never
	// hand one job to two builders.
	ClaimJob(ctx context.Context, builder string, kinds []job.Kind, now, until time.Time) (job.Job, bool, error)
	// FailExpired fails the jobs whose lease ran out on their last
	// attempt and returns them.
	FailExpired(ctx context.Context, now time.Time) ([]job.Job, error)
	// RenewJob extends a builder's lease (cancelled: the job was
	// cancelled, stop), or ErrLeaseLost.
	RenewJob(ctx context.Context, id, builder string, now, until time.Time) (cancelled bool, err error)
	// FinishJob ends a leased job (ok: done; else failed, or queued again
	// before its last attempt) and returns its new state, or ErrLeaseLost.
	FinishJob(ctx context.Context, id, builder string, ok bool, errMsg string, result []byte, arts []job.Artifact, now time.Time) (job.State, error)
	// CancelJob cancels a job that is not over; it returns the job's state.
	CancelJob(ctx context.Context, id string, now time.Time) (job.State, error)
	// AppendJobLog adds lines to a job's log.
	AppendJobLog(ctx context.Context, id string, lines []string, now time.Time) error
	// JobLog returns a job's log lines after seq, at most limit (0: all).
	JobLog(ctx context.Context, id string, after int64, limit int) ([]JobLogLine, error)
	// JobArtifacts lists a job's artifacts by name.
	JobArtifacts(ctx context.Context, id string) ([]job.Artifact, error)
	// PutBuilder registers a builder, or updates its record.
	PutBuilder(ctx context.Context, b job.Builder) error
	// Builders lists the builders.
	Builders(ctx context.Context) ([]job.Builder, error)
	// AddPatch stores a new patch with its first revision and audit entry.
	AddPatch(ctx context.Context, p patch.Patch, r patch.Revision, audit authz.AuditEntry) error
	// AddRevision adds a patch's next revision and returns its number.
	AddRevision(ctx context.Context, r patch.Revision, audit authz.AuditEntry) (int, error)
	// SetRevision records a revision's job or outcome.
	SetRevision(ctx context.Context, id string, rev int, o RevisionOutcome, now time.Time) error
	// SetPrerequisites records the prerequisites (JSON) found for a
	// revision that does not compile.
	SetPrerequisites(ctx context.Context, id string, rev int, data []byte) error
	// Patches lists patches matching f, oldest first.
	Patches(ctx context.Context, f PatchFilter) ([]patch.Patch, error)
	// Patch returns a patch with its revisions and reviews, or ErrNotFound.
	Patch(ctx context.Context, id string) (patch.Patch, []patch.Revision, []patch.Review, error)
	// AddReview records a review of a patch's newest revision (ErrConflict
	// for an older one) and the patch's new state, if any.
	AddReview(ctx context.Context, r patch.Review, state patch.State, audit authz.AuditEntry) error
	// AddPatchSet stores a kernel's next patch set, numbered here, its
	// module named by name from its number.
	AddPatchSet(ctx context.Context, s patch.Set, name func(version int) string) (patch.Set, error)
	// SetPatchSet records a patch set's job and outcome.
	SetPatchSet(ctx context.Context, kernel string, version int, job string, state patch.SetState, sha, errMsg string) error
	// PatchSets lists patch sets (of a kernel, or all) by kernel and version.
	PatchSets(ctx context.Context, kernel string) ([]patch.Set, error)
	// Cursor is where a follower of the event stream stopped (false: it
	// never ran); SetCursor moves it.
	Cursor(ctx context.Context, name string) (int64, bool, error)
	SetCursor(ctx context.Context, name string, seq int64) error
	// PutDelivery records a webhook delivery (upserted on its ID);
	// Deliveries lists them, newest first.
	PutDelivery(ctx context.Context, d Delivery) error
	Deliveries(ctx context.Context, limit int) ([]Delivery, error)
	// Notified records the CVEs told about for a kernel and returns the
	// new ones, and whether the kernel had records before.
	Notified(ctx context.Context, kernel string, cves []string) (fresh []string, seeded bool, err error)
	// Backend names the database kind ("sqlite" or "postgres").
	Backend() string
	Close() error
}

// RevocationMark is the number of revoked tokens and the newest
// revocation's time (Unix seconds).
type RevocationMark struct {
	Count int64
	Last  int64
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

// ErrUnsupportedDSN is returned by Open for a DSN that names a database
// it cannot use (mysql://…, a misspelt postgres://, a file: URI).
var ErrUnsupportedDSN = errors.New("unsupported database DSN")

// acceptedDSNs says what Open takes, for its errors.
const acceptedDSNs = "want a SQLite file path, or postgres://user@host/db (postgresql://)"

// urlScheme matches a DSN that starts like a URL: such a DSN is never meant
// as a file name, so it must not become one.
var urlScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// Open connects to dsn: a postgres:// or postgresql:// URL selects
// PostgreSQL; a path, optionally "sqlite:" prefixed, is a SQLite file. Any
// other URL, and file: URIs (their parameters would clash with ours), are
// refused with ErrUnsupportedDSN. The schema is migrated to the current
// version.
func Open(ctx context.Context, dsn string) (Store, error) {
	scheme, _, _ := strings.Cut(dsn, ":")
	scheme = strings.ToLower(scheme)
	switch {
	case dsn == "":
		return nil, errors.New("open store: empty database DSN")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case urlScheme.MatchString(dsn), scheme == "file", scheme == "postgres", scheme == "postgresql":
		return nil, fmt.Errorf("open store %s: %w: %s", Redact(dsn), ErrUnsupportedDSN, acceptedDSNs)
	default:
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	}
}

// Redact hides the password of a PostgreSQL DSN, in its user information
// or its query, for messages.
func Redact(dsn string) string {
	scheme := strings.Index(dsn, "://")
	if scheme < 0 {
		return dsn
	}
	// The last '@' ends the user information even when an unescaped '@'
	// in the password (or later in the query) confuses a URL parser: better
	// to hide too much than too little.
	if at := strings.LastIndex(dsn, "@"); at > scheme {
		if user, _, ok := strings.Cut(dsn[scheme+3:at], ":"); ok {
			dsn = dsn[:scheme+3] + user + ":xxx" + dsn[at:]
		}
	}
	base, query, ok := strings.Cut(dsn, "?")
	if !ok {
		return dsn
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if k, _, ok := strings.Cut(p, "="); ok && strings.EqualFold(k, "password") {
			params[i] = k + "=xxx"
		}
	}
	return base + "?" + strings.Join(params, "&")
}
