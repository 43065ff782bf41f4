// Package service holds TuxTape's use cases: resolve and add kernels,
// their build profiles, CVE queries with verdicts and priorities, VEX,
// sync, livepatch builds and corpus runs. Each is a call that takes an
// options struct and returns a plain result; the CLI renders them, and the
// server will translate the same calls to its API. The JSON shapes of the
// results are the ones front ends print and send.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// Config is what a Service needs to know about its installation.
type Config struct {
	DB        string // a SQLite file or a postgres:// DSN
	CacheDir  string // packages, sources, prepared trees, builds
	MirrorDir string // the CVE repository's mirror
	Source    string // the default CVE repository to sync from
	Log       *slog.Logger
	// Notify, when set, hears what a long step is doing (one line each).
	Notify func(msg string)
	// Approvals is how many different reviewers must approve a patch
	// revision (default 1; 2 is the two-person rule).
	Approvals int
	// HaltAfter is how many machines of a ring reporting a patch failing
	// halt its promotion (default 1).
	HaltAfter int
	// OnSync, when set, hears how each sync run ended (metrics).
	OnSync func(sum cvesync.Summary, err error, took time.Duration)
}

// Service runs the use cases against one installation. It opens the
// database on first use and is safe for concurrent calls.
type Service struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	st store.Store

	tokens tokenCache  // authenticated tokens (tokencache.go)
	fleet  groupCommit // the heartbeat writer (fleet.go)
	prio   prioCache   // the prioritizer's input files, loaded (priosource.go)
	events eventBell   // wakes stream followers (events.go)
}

// New returns a Service; nothing is opened yet.
func New(cfg Config) *Service {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log}
}

// ObserveSyncs sets the hook that hears how each sync run ended (the
// server's metrics); call it before the service is in use.
func (s *Service) ObserveSyncs(fn func(sum cvesync.Summary, err error, took time.Duration)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.OnSync = fn
}

// Close closes the database, if it was opened.
func (s *Service) Close() error {
	s.fleet.stop() // commits the heartbeats it holds first
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil
	}
	err := s.st.Close()
	s.st = nil
	return err
}

// Store is the opened database (opening it on first use).
func (s *Service) Store(ctx context.Context) (store.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != nil {
		return s.st, nil
	}
	st, err := store.Open(ctx, s.cfg.DB)
	if err != nil {
		return nil, err
	}
	s.st = st
	return st, nil
}

func (s *Service) notify(format string, args ...any) {
	if s.cfg.Notify != nil {
		s.cfg.Notify(fmt.Sprintf(format, args...))
	}
}

func (s *Service) debsDir() string  { return filepath.Join(s.cfg.CacheDir, "debs") }
func (s *Service) treesDir() string { return filepath.Join(s.cfg.CacheDir, "trees") }

// InvalidError is a request the service refuses as it is: a bad option
// value or a combination that makes no sense. Front ends show it as a
// usage error.
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is an InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// NotFoundError is a store.ErrNotFound that says what kind of record was
// missing, so a front end can say how to get it: a CVE comes with a sync,
// a kernel with kernel add.
type NotFoundError struct {
	Kind string // "cve" or "kernel"
	err  error
}

func (e *NotFoundError) Error() string { return e.err.Error() }
func (e *NotFoundError) Unwrap() error { return e.err }

// NotFoundKind is the Kind of the NotFoundError in err ("" when none).
func NotFoundKind(err error) string {
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return nf.Kind
	}
	return ""
}

// notFound marks err, when it is a store.ErrNotFound, as a missing kind.
func notFound(kind string, err error) error {
	if err != nil && errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: kind, err: err}
	}
	return err
}
