// Package repo is the write side of the signed patch archive: a TUF
// repository (go-tuf's metadata API) of livepatch modules, one target per
// version, <release>/<patchset>-<version>.ko, whose custom metadata (see
// feed.Meta) says the kernel release, module name, patch set, version,
// CVEs, rings, the version it replaces and the vetting report's digest.
//
// Rings are a custom field, not delegated roles. A version's rings are
// then one fact in one signed file: promotion is a new targets version
// changing that field, atomic with everything else, and a client reads
// one targets file and filters. Delegated roles per ring would buy
// separate keys per ring, at the cost of copying entries between role
// files on every promotion (two files that can disagree half-way), a
// delegation walk on every host, and more keys to rotate; a threshold on
// the targets role gives the stronger control where it is wanted. Rings
// are cumulative: a version promoted to early is in canary and early.
//
// The directory holds config.json (rings and expiries), state.json (the
// highest version ever given per kernel release, so a revoked number is
// never reused), keys/ (FileKeys, 0600 files) and public/, the part to
// serve: public/metadata and public/targets. Consistent snapshots are on:
// every versioned metadata file and every module has a name of its own
// (N.targets.json, <sha256>.<name>.ko) and only timestamp.json is
// replaced, so any static file server or mirror can serve public/ while a
// publish is under way, and a publish that fails half-way leaves the
// previous state published: files are written in the order targets,
// N.targets.json, N.snapshot.json, timestamp.json, each atomically.
//
// Expiries: root a year, targets 30 days, snapshot 7 days, timestamp 6
// hours by default (config.json). The timestamp's short life is what
// stops a mirror from freezing hosts on old metadata; Refresh, run from
// cron, re-signs it (and the others when half their life is gone).
package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/atomicfile"
)

// Errors callers decide on (wrapped; test with errors.Is).
var (
	// ErrInvalid: the request is refused as it is (bad input).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such version, or no archive in the directory.
	ErrNotFound = errors.New("not found")
	// ErrBusy: another process is changing the archive.
	ErrBusy = errors.New("archive busy")
)

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func invalidf(format string, args ...any) error {
	return &kindError{ErrInvalid, fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &kindError{ErrNotFound, fmt.Sprintf(format, args...)}
}

// DefaultRings are the rings of a new archive, first to last.
var DefaultRings = []string{"canary", "early", "stable"}

// Duration is a time.Duration written as "6h" in config.json.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Expiries are how long each role's metadata stays valid once signed.
type Expiries struct {
	Root      Duration `json:"root"`
	Targets   Duration `json:"targets"`
	Snapshot  Duration `json:"snapshot"`
	Timestamp Duration `json:"timestamp"`
}

// DefaultExpiries: see the package comment.
var DefaultExpiries = Expiries{
	Root:      Duration(365 * 24 * time.Hour),
	Targets:   Duration(30 * 24 * time.Hour),
	Snapshot:  Duration(7 * 24 * time.Hour),
	Timestamp: Duration(6 * time.Hour),
}

func (e Expiries) of(role string) time.Duration {
	switch role {
	case metadata.ROOT:
		return time.Duration(e.Root)
	case metadata.TARGETS:
		return time.Duration(e.Targets)
	case metadata.SNAPSHOT:
		return time.Duration(e.Snapshot)
	}
	return time.Duration(e.Timestamp)
}

func (e Expiries) withDefaults() Expiries {
	pick := func(v, d Duration) Duration {
		if v == 0 {
			return d
		}
		return v
	}
	return Expiries{
		Root:      pick(e.Root, DefaultExpiries.Root),
		Targets:   pick(e.Targets, DefaultExpiries.Targets),
		Snapshot:  pick(e.Snapshot, DefaultExpiries.Snapshot),
		Timestamp: pick(e.Timestamp, DefaultExpiries.Timestamp),
	}
}

// Config is the archive's config.json.
type Config struct {
	Rings  []string `json:"rings"`
	Expiry Expiries `json:"expiry"`
}

func (c Config) check() error {
	if len(c.Rings) == 0 {
		return invalidf("no rings")
	}
	for i, r := range c.Rings {
		if err := feed.ValidRing(r); err != nil {
			return invalidf("%v", err)
		}
		if slices.Contains(c.Rings[:i], r) {
			return invalidf("ring %s given twice", r)
		}
	}
	e := c.Expiry
	for _, d := range []Duration{e.Root, e.Targets, e.Snapshot, e.Timestamp} {
		if d < Duration(time.Minute) {
			return invalidf("expiry %v: want a minute or more", time.Duration(d))
		}
	}
	if e.Timestamp > e.Snapshot || e.Snapshot > e.Root || e.Targets > e.Root {
		return invalidf("expiries root %v, targets %v, snapshot %v, timestamp %v: want timestamp ≤ snapshot ≤ root and targets ≤ root",
			time.Duration(e.Root), time.Duration(e.Targets), time.Duration(e.Snapshot), time.Duration(e.Timestamp))
	}
	return nil
}

// Options are for Open.
type Options struct {
	Keys KeyStore         // default FileKeys under DIR/keys
	Log  *slog.Logger     // default: discard
	Now  func() time.Time // default time.Now (tests move it)
}

// InitOptions are for Init.
type InitOptions struct {
	Options
	Rings  []string // default DefaultRings
	Expiry Expiries // zero fields take DefaultExpiries
	// Thresholds per role (root, targets, snapshot, timestamp), default
	// 1; Init makes as many keys as the threshold.
	Thresholds map[string]int
}

// Repo is an archive directory.
type Repo struct {
	dir  string
	cfg  Config
	keys KeyStore
	log  *slog.Logger
	now  func() time.Time
}

// Dir is the archive directory.
func (r *Repo) Dir() string { return r.dir }

// PublicDir is the directory to serve: metadata/ and targets/.
func (r *Repo) PublicDir() string { return filepath.Join(r.dir, "public") }

func (r *Repo) metaDir() string    { return filepath.Join(r.dir, "public", "metadata") }
func (r *Repo) targetsDir() string { return filepath.Join(r.dir, "public", "targets") }

// Config is the archive's configuration.
func (r *Repo) Config() Config { return r.cfg }

func newRepo(dir string, o Options) *Repo {
	r := &Repo{dir: dir, keys: o.Keys, log: o.Log, now: o.Now}
	if r.keys == nil {
		r.keys = FileKeys{Dir: filepath.Join(dir, "keys")}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "archive")
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// Init makes a new archive in dir (empty or missing): keys, config and
// version 1 of the four roles' metadata, with no targets.
func Init(ctx context.Context, dir string, o InitOptions) (*Repo, error) {
	if dir == "" {
		return nil, invalidf("init: no directory")
	}
	r := newRepo(dir, o.Options)
	r.cfg = Config{Rings: o.Rings, Expiry: o.Expiry.withDefaults()}
	if len(r.cfg.Rings) == 0 {
		r.cfg.Rings = DefaultRings
	}
	if err := r.cfg.check(); err != nil {
		return nil, err
	}
	for role, n := range o.Thresholds {
		if err := checkRole(role); err != nil {
			return nil, err
		}
		if n < 1 || n > 16 {
			return nil, invalidf("threshold %d for %s: want 1 to 16", n, role)
		}
	}
	// 0755: a web server's user must reach public/; keys/ is 0700.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	} else if len(ents) > 0 {
		return nil, invalidf("init %s: the directory is not empty", dir)
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, d := range []string{r.metaDir(), r.targetsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	now := r.now().UTC()
	st := &state{
		root:      metadata.Root(r.expires(metadata.ROOT, now)),
		targets:   metadata.Targets(r.expires(metadata.TARGETS, now)),
		snapshot:  metadata.Snapshot(r.expires(metadata.SNAPSHOT, now)),
		timestamp: metadata.Timestamp(r.expires(metadata.TIMESTAMP, now)),
	}
	st.root.Signed.ConsistentSnapshot = true
	for _, role := range roles {
		n := o.Thresholds[role]
		if n == 0 {
			n = 1
		}
		for range n {
			s, err := r.keys.Generate(ctx, role)
			if err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
			k, err := tufKey(s)
			if err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
			if err := st.root.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("init: %w", err)
			}
		}
		st.root.Signed.Roles[role].Threshold = n
	}
	if err := r.writeJSON("config.json", r.cfg, 0o644); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := r.writeRoot(ctx, st, nil, nil); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	// Version 1 of the others: written as they are, not bumped.
	st.targets.Signed.Version, st.snapshot.Signed.Version, st.timestamp.Signed.Version = 0, 0, 0
	if err := r.commit(ctx, st, true, true); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	r.log.Info("archive created", "dir", dir, "rings", r.cfg.Rings)
	return r, nil
}

// Open opens the archive in dir.
func Open(dir string, o Options) (*Repo, error) {
	r := newRepo(dir, o)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundf("no archive in %s (make one with init)", dir)
	} else if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	if err := json.Unmarshal(b, &r.cfg); err != nil {
		return nil, fmt.Errorf("open archive: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	r.cfg.Expiry = r.cfg.Expiry.withDefaults()
	if err := r.cfg.check(); err != nil {
		return nil, fmt.Errorf("open archive: config.json: %w", err)
	}
	return r, nil
}

// state is the published metadata, loaded for a change.
type state struct {
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

// load reads what timestamp.json names: the published state, whatever a
// failed change may have left beside it.
func (r *Repo) load() (*state, error) {
	var st state
	var err error
	n, err := r.rootVersion()
	if err != nil {
		return nil, err
	}
	if st.root, err = metadata.Root().FromFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.root.json", n))); err != nil {
		return nil, fmt.Errorf("load root: %w", err)
	}
	if st.timestamp, err = metadata.Timestamp().FromFile(filepath.Join(r.metaDir(), "timestamp.json")); err != nil {
		return nil, fmt.Errorf("load timestamp: %w", err)
	}
	sm, ok := st.timestamp.Signed.Meta["snapshot.json"]
	if !ok {
		return nil, errors.New("load timestamp: it names no snapshot")
	}
	if st.snapshot, err = metadata.Snapshot().FromFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.snapshot.json", sm.Version))); err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	tm, ok := st.snapshot.Signed.Meta["targets.json"]
	if !ok {
		return nil, errors.New("load snapshot: it names no targets")
	}
	if st.targets, err = metadata.Targets().FromFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.targets.json", tm.Version))); err != nil {
		return nil, fmt.Errorf("load targets: %w", err)
	}
	return &st, nil
}

// rootVersion is the highest N of N.root.json.
func (r *Repo) rootVersion() (int64, error) {
	ents, err := os.ReadDir(r.metaDir())
	if err != nil {
		return 0, fmt.Errorf("load root: %w", err)
	}
	var n int64
	for _, e := range ents {
		v, ok := strings.CutSuffix(e.Name(), ".root.json")
		if !ok {
			continue
		}
		if i, err := strconv.ParseInt(v, 10, 64); err == nil && i > n {
			n = i
		}
	}
	if n == 0 {
		return 0, notFoundf("no root metadata in %s", r.metaDir())
	}
	return n, nil
}

func (r *Repo) expires(role string, now time.Time) time.Time {
	return now.Add(r.cfg.Expiry.of(role)).UTC().Truncate(time.Second)
}

// signers returns the store's signers for role that root lists for it.
func (r *Repo) signers(ctx context.Context, root *metadata.Metadata[metadata.RootType], role string) ([]Signer, error) {
	all, err := r.keys.Signers(ctx, role)
	if err != nil {
		return nil, fmt.Errorf("%s keys: %w", role, err)
	}
	var out []Signer
	for _, s := range all {
		id, err := KeyID(s)
		if err != nil {
			return nil, err
		}
		if slices.Contains(root.Signed.Roles[role].KeyIDs, id) {
			out = append(out, s)
		}
	}
	if need := root.Signed.Roles[role].Threshold; len(out) < need {
		return nil, fmt.Errorf("%s keys: %d of the %d needed are at hand", role, len(out), need)
	}
	return out, nil
}

func sign[T metadata.Roles](md *metadata.Metadata[T], signers []Signer) error {
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s); err != nil {
			return err
		}
	}
	return nil
}

// writeRoot signs st.root with its own keys and extra (the previous
// root's, on rotation), checks it against prev (nil for the first) and
// writes N.root.json, then root.json for bootstrapping clients.
func (r *Repo) writeRoot(ctx context.Context, st *state, prev *metadata.Metadata[metadata.RootType], extra []Signer) error {
	signers, err := r.signers(ctx, st.root, metadata.ROOT)
	if err != nil {
		return err
	}
	signers = append(signers, extra...)
	// Sign each key once: a key in both the old and new root is one signature.
	seen := map[string]bool{}
	var uniq []Signer
	for _, s := range signers {
		id, err := KeyID(s)
		if err != nil {
			return err
		}
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, s)
		}
	}
	if err := sign(st.root, uniq); err != nil {
		return fmt.Errorf("sign root: %w", err)
	}
	if prev != nil {
		if err := prev.VerifyDelegate(metadata.ROOT, st.root); err != nil {
			return fmt.Errorf("new root does not verify with the old one's keys: %w", err)
		}
	}
	if err := st.root.VerifyDelegate(metadata.ROOT, st.root); err != nil {
		return fmt.Errorf("new root does not verify: %w", err)
	}
	b, err := st.root.ToBytes(true)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.root.json", st.root.Signed.Version)), b, 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(r.metaDir(), "root.json"), b, 0o644)
}

// commit publishes st: a new targets version when targetsChanged, a new
// snapshot when that or snapshotChanged, and always a new timestamp —
// each signed, verified and written in that order.
func (r *Repo) commit(ctx context.Context, st *state, targetsChanged, snapshotChanged bool) error {
	now := r.now().UTC()
	if targetsChanged {
		st.targets.Signed.Version++
		st.targets.Signed.Expires = r.expires(metadata.TARGETS, now)
		b, err := r.signRole(ctx, st, metadata.TARGETS, st.targets)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.targets.json", st.targets.Signed.Version)), b, 0o644); err != nil {
			return err
		}
		st.snapshot.Signed.Meta["targets.json"] = metaFile(st.targets.Signed.Version, b)
		snapshotChanged = true
	}
	if snapshotChanged {
		st.snapshot.Signed.Version++
		st.snapshot.Signed.Expires = r.expires(metadata.SNAPSHOT, now)
		b, err := r.signRole(ctx, st, metadata.SNAPSHOT, st.snapshot)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.snapshot.json", st.snapshot.Signed.Version)), b, 0o644); err != nil {
			return err
		}
		st.timestamp.Signed.Meta["snapshot.json"] = metaFile(st.snapshot.Signed.Version, b)
	}
	st.timestamp.Signed.Version++
	st.timestamp.Signed.Expires = r.expires(metadata.TIMESTAMP, now)
	b, err := r.signRole(ctx, st, metadata.TIMESTAMP, st.timestamp)
	if err != nil {
		return err
	}
	// The one file replaced in place: this rename is the publication.
	return atomicfile.WriteFile(filepath.Join(r.metaDir(), "timestamp.json"), b, 0o644)
}

// metaFile describes a metadata file with its length and digest, so that
// a client refuses other bytes under the same version (and caps the size
// it downloads).
func metaFile(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	mf := metadata.MetaFile(version)
	mf.Length = int64(len(b))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}

func (r *Repo) signRole(ctx context.Context, st *state, role string, md any) ([]byte, error) {
	signers, err := r.signers(ctx, st.root, role)
	if err != nil {
		return nil, err
	}
	switch m := md.(type) {
	case *metadata.Metadata[metadata.TargetsType]:
		if err := sign(m, signers); err != nil {
			return nil, fmt.Errorf("sign %s: %w", role, err)
		}
	case *metadata.Metadata[metadata.SnapshotType]:
		if err := sign(m, signers); err != nil {
			return nil, fmt.Errorf("sign %s: %w", role, err)
		}
	case *metadata.Metadata[metadata.TimestampType]:
		if err := sign(m, signers); err != nil {
			return nil, fmt.Errorf("sign %s: %w", role, err)
		}
	}
	if err := st.root.VerifyDelegate(role, md); err != nil {
		return nil, fmt.Errorf("signed %s does not verify: %w", role, err)
	}
	var b []byte
	switch m := md.(type) {
	case *metadata.Metadata[metadata.TargetsType]:
		b, err = m.ToBytes(true)
	case *metadata.Metadata[metadata.SnapshotType]:
		b, err = m.ToBytes(true)
	case *metadata.Metadata[metadata.TimestampType]:
		b, err = m.ToBytes(true)
	}
	return b, err
}

func (r *Repo) writeJSON(name string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(r.dir, name), append(b, '\n'), perm)
}

// change runs fn on the published state under the archive's lock.
func (r *Repo) change(fn func(st *state) error) error {
	unlock, err := lock(r.dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.load()
	if err != nil {
		return err
	}
	return fn(st)
}

// lock takes DIR/.lock: one writer at a time; a second one is told, not
// queued, since a cron refresh and a publish should not wait on each other
// unseen.
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock archive: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &kindError{ErrBusy, fmt.Sprintf("archive %s is being changed by another process", dir)}
		}
		return nil, fmt.Errorf("lock archive: %w", err)
	}
	return func() { f.Close() }, nil
}

// versionState is state.json.
type versionState struct {
	// Highest is the highest version ever given, per kernel release.
	Highest map[string]int64 `json:"highest"`
}

func (r *Repo) loadVersions() (versionState, error) {
	vs := versionState{Highest: map[string]int64{}}
	b, err := os.ReadFile(filepath.Join(r.dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return vs, nil
	} else if err != nil {
		return vs, err
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		return vs, fmt.Errorf("state.json: %w", err)
	}
	if vs.Highest == nil {
		vs.Highest = map[string]int64{}
	}
	return vs, nil
}

// releases are the published versions of kernel, newest first.
func releases(st *state, kernel string) ([]feed.Release, error) {
	var out []feed.Release
	for path, tf := range st.targets.Signed.Targets {
		if !strings.HasPrefix(path, kernel+"/") {
			continue
		}
		rel, err := feed.ReleaseOf(path, tf)
		if err != nil {
			return nil, fmt.Errorf("published target: %w", err)
		}
		out = append(out, *rel)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

func find(st *state, kernel string, version int64) (*feed.Release, *metadata.TargetFiles, error) {
	if err := feed.ValidRelease(kernel); err != nil {
		return nil, nil, invalidf("%v", err)
	}
	rels, err := releases(st, kernel)
	if err != nil {
		return nil, nil, err
	}
	for i := range rels {
		if rels[i].Version == version {
			return &rels[i], st.targets.Signed.Targets[rels[i].Target], nil
		}
	}
	return nil, nil, notFoundf("version %d of kernel %s is not published (see status)", version, kernel)
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
