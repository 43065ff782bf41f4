package service

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
)

// syncLease is the lease that lets one replica at a time run the
// periodic sync.
const syncLease = "sync"

// SyncLoopOptions shape the server's periodic sync.
type SyncLoopOptions struct {
	Interval time.Duration // between the end of one run and the next
	Source   string        // default: the configured source
	// Holder names this replica in the lease (host and process, say).
	Holder string
	// LeaseTTL is how long a run's lease lasts unless renewed; a replica
	// that dies mid-run frees it this long after. Default: two minutes.
	LeaseTTL time.Duration
	// Check is how often a replica looks whether a run is due. Default:
	// a tenth of Interval, between one second and a minute.
	Check time.Duration
}

// SyncLoop runs a sync every o.Interval until ctx ends. With several
// replicas on one database, a lease in the database makes them take turns:
// whoever takes it when a run is due runs it, and hands it back closed
// until the next run is due, so the interval holds across replicas.
func (s *Service) SyncLoop(ctx context.Context, o SyncLoopOptions) error {
	if o.Interval <= 0 {
		return invalidf("--sync-interval %v: want a positive duration", o.Interval)
	}
	if o.Holder == "" {
		return invalidf("sync loop: no holder name for the lease")
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	if o.Check <= 0 {
		o.Check = min(max(o.Interval/10, time.Second), time.Minute)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	log := s.log.With("component", "sync-loop", "holder", o.Holder)
	for {
		now := time.Now()
		ok, err := st.AcquireLease(ctx, syncLease, o.Holder, now, now.Add(o.LeaseTTL))
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("take the sync lease", "err", err)
		case ok:
			s.leasedSync(ctx, o, log)
		}
		// Jitter keeps replicas that started together from asking at the
		// same instant every time.
		wait := o.Check + time.Duration(rand.Int64N(int64(o.Check)/4+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// leasedSync runs one sync under the lease, renewing it while the run
// lasts; a lost lease stops the run, since another replica may start one.
func (s *Service) leasedSync(ctx context.Context, o SyncLoopOptions, log *slog.Logger) {
	st, err := s.Store(ctx)
	if err != nil {
		return
	}
	var sum cvesync.Summary
	var cause error
	holdLease(ctx, st, syncLease, o.Holder, o.LeaseTTL, func(runCtx context.Context) {
		log.Info("periodic sync")
		sum, err = s.Sync(runCtx, SyncOptions{Source: o.Source, By: Actor{ID: "sync-loop:" + o.Holder}})
		cause = context.Cause(runCtx)
	})
	next := time.Now().Add(o.Interval)
	switch {
	case errors.Is(err, cvesync.ErrSyncRunning):
		// A sync started by hand on this data directory: try again soon.
		next = time.Now()
	case err != nil:
		log.Warn("periodic sync failed", "err", err, "cause", cause)
	default:
		log.Info("periodic sync done", "mode", sum.Mode, "commit", vulns.ShortCommit(sum.Commit), "took", sum.Duration)
	}
	if err != nil && ctx.Err() != nil {
		// Stopped mid-run: free the lease now so that another replica
		// runs the sync this one did not finish.
		next = time.Time{}
	}
	if err := st.ReleaseLease(context.WithoutCancel(ctx), syncLease, o.Holder, next); err != nil {
		log.Warn("hand back the sync lease", "err", err)
	}
}
