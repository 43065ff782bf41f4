// Package feed is the read side of the signed patch archive, the part a
// host's agent links: it refreshes the archive's TUF metadata with go-tuf's
// updater, lists the livepatch versions published for a kernel release,
// and downloads and verifies a module.
//
// Every call makes a new updater, so each sees the archive as it is now
// (go-tuf refreshes once per updater). The updater works on a copy of the
// local metadata cache, and the copy replaces the cache only when the
// whole refresh and TuxTape's own checks succeeded: a tampered, rolled-back
// or expired archive leaves the last good metadata in place, for the next
// try and for Offline use at boot.
//
// Errors say which kind of failure it was, for errors.Is: ErrVerify (the
// archive's data does not verify: tampering, rollback, expiry, too few
// signatures, too large), ErrNetwork (it could not be reached or did not
// serve a file), ErrNoPatches (nothing published for this kernel or ring)
// and ErrNotCached (Offline, and the cache lacks what is asked for).
package feed

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
)

// Errors a caller decides on (wrapped; test with errors.Is).
var (
	// ErrVerify: the archive's metadata or a module failed verification
	// (bad or too few signatures, tampered bytes, a rollback, expired
	// metadata, more data than declared, or signed metadata that
	// contradicts itself). Do not retry blindly and do not use the data.
	ErrVerify = errors.New("archive verification failed")
	// ErrNetwork: the archive could not be reached or did not serve a
	// file (connection refused, timeout, HTTP 404 or 5xx). Retry later.
	ErrNetwork = errors.New("archive unreachable")
	// ErrNoPatches: no version is published for this kernel (in this ring).
	ErrNoPatches = errors.New("no livepatch published")
	// ErrNotCached: Offline, and the local cache does not hold it.
	ErrNotCached = errors.New("not in the local archive cache")
)

// MaxModuleSize bounds a module's declared length. Signed metadata could
// declare more; a livepatch module is a few hundred kilobytes.
const MaxModuleSize = 256 << 20

// Release is one published livepatch version for a kernel release.
type Release struct {
	Target    string   `json:"target"`     // TUF target path: <release>/<patchset>-<version>.ko
	Kernel    string   `json:"kernel"`     // the uname -r it is for
	Module    string   `json:"module"`     // the module's name (as /sys/kernel/livepatch/<Module>)
	PatchSet  string   `json:"patchset"`   //
	Version   int64    `json:"version"`    // grows per kernel release
	CVEs      []string `json:"cves"`       //
	Rings     []string `json:"rings"`      // the rings it is released to
	Replaces  int64    `json:"replaces"`   // the version it replaces, 0 if none
	VetReport string   `json:"vet_report"` // sha256 hex of the vetting report, may be empty
	Length    int64    `json:"length"`
	SHA256    string   `json:"sha256"`
	// DowngradeOf is the older version whose module this one carries
	// again, 0 if none.
	DowngradeOf int64 `json:"downgrade_of,omitempty"`
}

// Options say where the archive and the local cache are.
type Options struct {
	MetadataURL string // base URL of the metadata (…/metadata/)
	TargetsURL  string // base URL of the targets (…/targets/)
	Root        []byte // the trusted root.json (used only when Dir has none yet)
	Dir         string // local state: Dir/metadata, Dir/targets
	// Offline uses only the local cache (boot-time re-apply; TUF's
	// UnsafeLocalMode). Signatures and hashes are still checked, but not
	// expiry: the cache is trusted as it was when it was last verified,
	// since there is nothing newer to compare with.
	Offline    bool
	HTTPClient *http.Client // default http.DefaultClient
	Log        *slog.Logger // default: discard
}

// Latest refreshes the metadata (a new go-tuf Updater per call) and
// returns the newest version for kernel in ring (a version is in ring R
// when R is among its Rings). It returns ErrNoPatches when there is none.
func Latest(ctx context.Context, o Options, kernel, ring string) (*Release, error) {
	if err := ValidRing(ring); err != nil {
		return nil, fmt.Errorf("latest for %s: %w", kernel, err)
	}
	rels, err := Versions(ctx, o, kernel)
	if err != nil {
		return nil, err
	}
	for i := range rels {
		if slices.Contains(rels[i].Rings, ring) {
			return &rels[i], nil
		}
	}
	return nil, fmt.Errorf("latest for %s in ring %s: %w", kernel, ring, ErrNoPatches)
}

// Versions lists all versions for kernel (newest first), for status and
// for skipping versions the host marked bad. It returns an empty list,
// and no error, when none is published.
func Versions(ctx context.Context, o Options, kernel string) ([]Release, error) {
	if err := ValidRelease(kernel); err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	s, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer s.close()
	rels, err := releasesFor(s.up.GetTopLevelTargets(), kernel)
	if err != nil {
		return nil, fmt.Errorf("list versions for %s: %w", kernel, err)
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	return rels, nil
}

// Fetch downloads (or finds cached) and verifies r's module; it returns the
// local path. It refreshes the metadata again and checks that r is still
// published with the same length and digest: a version withdrawn since is
// ErrNoPatches.
func Fetch(ctx context.Context, o Options, r *Release) (string, error) {
	if r == nil {
		return "", errors.New("fetch: no release")
	}
	if err := ValidRelease(r.Kernel); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	if want := TargetPath(r.Kernel, r.PatchSet, r.Version); r.Target != want {
		return "", fmt.Errorf("fetch %s: not a target path of kernel %s (want %s)", r.Target, r.Kernel, want)
	}
	s, err := open(ctx, o)
	if err != nil {
		return "", err
	}
	defer s.close()
	tf, ok := s.up.GetTopLevelTargets()[r.Target]
	if !ok {
		return "", fmt.Errorf("fetch %s: withdrawn from the archive: %w", r.Target, ErrNoPatches)
	}
	cur, err := ReleaseOf(r.Target, tf)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w: %w", r.Target, ErrVerify, err)
	}
	if cur.Kernel != r.Kernel || cur.SHA256 != r.SHA256 || cur.Length != r.Length {
		return "", fmt.Errorf("fetch %s: %w: the archive now signs %d bytes with sha256 %s, not the %d bytes with %s asked for",
			r.Target, ErrVerify, cur.Length, cur.SHA256, r.Length, r.SHA256)
	}
	if err := s.commit(); err != nil {
		return "", err
	}
	// The path from the signed fields, which ReleaseOf validated.
	local := filepath.Join(o.Dir, "targets", cur.Kernel, filepath.Base(cur.Target))
	if p, _, err := s.up.FindCachedTarget(tf, local); err == nil && p != "" {
		return p, nil
	}
	if o.Offline {
		return "", fmt.Errorf("fetch %s: %w", r.Target, ErrNotCached)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return "", fmt.Errorf("fetch %s: %w", r.Target, err)
	}
	// The updater writes a download in place, without syncing; keep it
	// in memory instead and write it atomically here, so a crash cannot
	// leave a torn module at the path the agent loads from.
	s.cfg.DisableLocalCache = true
	_, data, err := s.up.DownloadTarget(tf, local, "")
	if err != nil {
		return "", s.classify("fetch "+r.Target, err)
	}
	if err := atomicfile.WriteFile(local, data, 0o600); err != nil {
		return "", fmt.Errorf("fetch %s: %w", r.Target, err)
	}
	return local, nil
}

// releasesFor picks kernel's versions out of the targets, newest first.
// A target under kernel/ or claiming kernel that does not parse, or whose
// path and fields disagree, fails the whole list with ErrVerify: it is
// signed, so the archive itself is broken or its key misused, and none of
// its answers should be trusted.
func releasesFor(targets map[string]*metadata.TargetFiles, kernel string) ([]Release, error) {
	var out []Release
	for path, tf := range targets {
		if !strings.HasPrefix(path, kernel+"/") && claimedKernel(tf) != kernel {
			continue
		}
		r, err := ReleaseOf(path, tf)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrVerify, err)
		}
		if r.Kernel != kernel {
			return nil, fmt.Errorf("%w: target %s is for kernel %s", ErrVerify, path, r.Kernel)
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Release) int {
		switch {
		case a.Version > b.Version:
			return -1
		case a.Version < b.Version:
			return 1
		}
		return strings.Compare(a.Target, b.Target)
	})
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("%w: version %d of %s is published twice (%s, %s)", ErrVerify, out[i].Version, kernel, out[i-1].Target, out[i].Target)
		}
	}
	return out, nil
}

// claimedKernel is the kernel a target's custom metadata names, read
// loosely: it only decides whether the target concerns a kernel at all.
func claimedKernel(tf *metadata.TargetFiles) string {
	if tf.Custom == nil {
		return ""
	}
	var v struct {
		T struct {
			Kernel string `json:"kernel"`
		} `json:"tuxtape"`
	}
	if json.Unmarshal(*tf.Custom, &v) != nil {
		return ""
	}
	return v.T.Kernel
}

// ReleaseOf turns a signed target into a Release, checking its fields.
func ReleaseOf(path string, tf *metadata.TargetFiles) (*Release, error) {
	var custom []byte
	if tf.Custom != nil {
		custom = *tf.Custom
	}
	m, err := ParseMeta(path, custom)
	if err != nil {
		return nil, err
	}
	sum, ok := tf.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return nil, fmt.Errorf("target %s: no sha256 digest", path)
	}
	if tf.Length <= 0 || tf.Length > MaxModuleSize {
		return nil, fmt.Errorf("target %s: length %d (want 1 to %d)", path, tf.Length, MaxModuleSize)
	}
	return &Release{
		Target: path, Kernel: m.Kernel, Module: m.Module, PatchSet: m.PatchSet, Version: m.Version,
		CVEs: m.CVEs, Rings: m.Rings, Replaces: m.Replaces, VetReport: m.VetReport, DowngradeOf: m.DowngradeOf,
		Length: tf.Length, SHA256: hex.EncodeToString(sum),
	}, nil
}

// session is one refreshed updater over a staged copy of the cache.
type session struct {
	ctx     context.Context
	o       Options
	log     *slog.Logger
	cfg     *config.UpdaterConfig
	up      *updater.Updater
	metaDir string
	stage   string // the updater's metadata directory when online
	unlock  func()
}

// metadataFiles are the cached roles, in the order a commit moves them:
// root first (the others are verified by it), timestamp last (it names
// the snapshot, which names the targets).
var metadataFiles = []string{"root.json", "targets.json", "snapshot.json", "timestamp.json"}

func open(ctx context.Context, o Options) (_ *session, err error) {
	if o.Dir == "" {
		return nil, errors.New("archive feed: no local directory (Options.Dir)")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &session{ctx: ctx, o: o, log: log.With("component", "archive-feed"), metaDir: filepath.Join(o.Dir, "metadata")}
	if err := os.MkdirAll(s.metaDir, 0o700); err != nil {
		return nil, fmt.Errorf("archive cache: %w", err)
	}
	if s.unlock, err = lockDir(ctx, o.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	root, err := os.ReadFile(filepath.Join(s.metaDir, "root.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if len(o.Root) == 0 {
			return nil, errors.New("archive feed: no trusted root.json (give Options.Root on first use)")
		}
		root = o.Root
	} else if err != nil {
		return nil, fmt.Errorf("archive cache: %w", err)
	}
	if o.Offline {
		return s, s.openOffline(root)
	}
	return s, s.openOnline(root)
}

func (s *session) openOnline(root []byte) error {
	if s.o.MetadataURL == "" {
		return errors.New("archive feed: no metadata URL (Options.MetadataURL)")
	}
	// Stages left by a crash: unused, since we hold the lock.
	if old, _ := filepath.Glob(filepath.Join(s.o.Dir, ".metadata-*")); len(old) > 0 {
		for _, d := range old {
			os.RemoveAll(d)
		}
	}
	stage, err := os.MkdirTemp(s.o.Dir, ".metadata-")
	if err != nil {
		return fmt.Errorf("archive cache: %w", err)
	}
	s.stage = stage
	for _, name := range metadataFiles {
		b, err := os.ReadFile(filepath.Join(s.metaDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("archive cache: %w", err)
		}
		if err := os.WriteFile(filepath.Join(stage, name), b, 0o600); err != nil {
			return fmt.Errorf("archive cache: %w", err)
		}
	}
	cfg, err := config.New(s.o.MetadataURL, root)
	if err != nil {
		return fmt.Errorf("archive feed: metadata URL %q: %w", s.o.MetadataURL, err)
	}
	cfg.LocalMetadataDir = stage
	cfg.LocalTargetsDir = filepath.Join(s.o.Dir, "targets")
	if s.o.TargetsURL != "" {
		cfg.RemoteTargetsURL = s.o.TargetsURL
	}
	client := s.o.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	cfg.Fetcher = &fetcher{ctx: s.ctx, client: client}
	s.cfg = cfg
	if s.up, err = updater.New(cfg); err != nil {
		return s.classify("load trusted root", err)
	}
	if err := s.up.Refresh(); err != nil {
		return s.classify("refresh archive metadata", err)
	}
	return nil
}

func (s *session) openOffline(root []byte) error {
	if _, err := os.Stat(filepath.Join(s.metaDir, "timestamp.json")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive metadata: %w (no refresh has succeeded yet)", ErrNotCached)
	}
	cfg, err := config.New("file:///offline", root)
	if err != nil {
		return err
	}
	cfg.LocalMetadataDir = s.metaDir
	cfg.LocalTargetsDir = filepath.Join(s.o.Dir, "targets")
	cfg.UnsafeLocalMode = true
	cfg.Fetcher = offlineFetcher{}
	s.cfg = cfg
	if s.up, err = updater.New(cfg); err != nil {
		return s.classify("load trusted root", err)
	}
	s.up.UnsafeSetRefTime(offlineRefTime(s.metaDir, time.Now()))
	if err := s.up.Refresh(); err != nil {
		return s.classify("load cached archive metadata", err)
	}
	return nil
}

// offlineRefTime is the time to check the cache's expiry against: now, or
// just before the first cached role expired, since expiry guards against
// being kept from updates, and offline there are none to be kept from.
func offlineRefTime(dir string, now time.Time) time.Time {
	ref := now
	for _, name := range metadataFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var v struct {
			Signed struct {
				Expires time.Time `json:"expires"`
			} `json:"signed"`
		}
		if json.Unmarshal(b, &v) == nil && !v.Signed.Expires.IsZero() && !ref.Before(v.Signed.Expires) {
			ref = v.Signed.Expires.Add(-time.Second)
		}
	}
	return ref
}

// commit moves the staged, verified metadata into the cache.
func (s *session) commit() error {
	if s.stage == "" {
		return nil
	}
	for _, name := range metadataFiles {
		src := filepath.Join(s.stage, name)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(src, filepath.Join(s.metaDir, name)); err != nil {
			return fmt.Errorf("archive cache: %w", err)
		}
	}
	if d, err := os.Open(s.metaDir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (s *session) close() {
	if s.stage != "" {
		os.RemoveAll(s.stage)
		s.stage = ""
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// classify sorts an updater error into the package's kinds.
func (s *session) classify(what string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case s.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, ErrNetwork):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		return fmt.Errorf("%s: %w: %w", what, ErrVerify, err)
	case errors.Is(err, &metadata.ErrDownloadHTTP{}):
		return fmt.Errorf("%s: %w: %w", what, ErrNetwork, err)
	case errors.As(err, &pe), errors.As(err, &le):
		// The local cache, not the archive.
		return fmt.Errorf("%s: %w", what, err)
	}
	s.log.Warn("archive refused", "what", what, "err", err)
	return fmt.Errorf("%s: %w: %w", what, ErrVerify, err)
}

// fetcher is go-tuf's download hook: a GET bound to the caller's context,
// reading at most maxLength bytes (endless data).
type fetcher struct {
	ctx    context.Context
	client *http.Client
}

func (f *fetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNetwork, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if f.ctx.Err() != nil {
			return nil, f.ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrNetwork, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The updater looks for a 404 to end its walk over root versions.
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: %d bytes, more than the %d expected", url, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		if f.ctx.Err() != nil {
			return nil, f.ctx.Err()
		}
		return nil, fmt.Errorf("%w: read %s: %w", ErrNetwork, url, err)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than the %d bytes expected", url, maxLength)}
	}
	return data, nil
}

// offlineFetcher makes sure Offline never touches the network.
type offlineFetcher struct{}

func (offlineFetcher) DownloadFile(url string, _ int64, _ time.Duration) ([]byte, error) {
	return nil, fmt.Errorf("offline: not downloading %s: %w", url, ErrNotCached)
}

// lockDir holds an exclusive lock on dir/.lock, so that two callers on one
// cache (a poll and a status query) do not interleave their commits.
func lockDir(ctx context.Context, dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive cache: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("archive cache: lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
