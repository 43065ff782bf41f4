package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// Group commit defaults: a batch is written when it holds this many
// heartbeats, or this long after its first arrived. One transaction a
// batch instead of one a heartbeat is what lets a single SQLite file take
// tens of thousands of heartbeats a second (bench/fleet.sh).
const (
	DefaultCommitDelay = 2 * time.Millisecond
	DefaultCommitBatch = 512
)

// errClosed: a heartbeat came in while the Service was closing.
var errClosed = errors.New("store heartbeat: the service is closing")

// FleetStats count the heartbeat writer's work since the Service started.
type FleetStats struct {
	Batches    int64 // transactions
	Heartbeats int64 // heartbeats in them
	Largest    int64 // the largest batch
	Failed     int64 // batches that did not commit
}

// groupCommit collects concurrent heartbeats for one writer goroutine,
// which stores each batch in one transaction and only then answers the
// callers: an acknowledged heartbeat is stored, and a failed batch fails
// each of its callers.
type groupCommit struct {
	mu       sync.Mutex
	delay    time.Duration
	maxBatch int
	w        *writer

	batches, heartbeats, largest, failed atomic.Int64
}

type writer struct {
	st     store.Store
	log    *slog.Logger
	in     chan *pending
	quit   chan struct{}
	exited chan struct{}
}

type pending struct {
	m    fleet.Machine
	done chan error // buffered: the writer never waits for a caller
}

// SetGroupCommit sets how long a heartbeat batch may wait for more (0:
// only what is already queued) and how many it may hold. Call it before
// the first heartbeat.
func (s *Service) SetGroupCommit(delay time.Duration, maxBatch int) {
	s.fleet.mu.Lock()
	defer s.fleet.mu.Unlock()
	s.fleet.delay, s.fleet.maxBatch = max(delay, 0), maxBatch
	if delay == 0 {
		s.fleet.delay = -1 // zero is the default
	}
}

// FleetStats says how heartbeats were batched.
func (s *Service) FleetStats() FleetStats {
	g := &s.fleet
	return FleetStats{Batches: g.batches.Load(), Heartbeats: g.heartbeats.Load(), Largest: g.largest.Load(), Failed: g.failed.Load()}
}

// writer returns the running writer for st, starting one on first use
// (and after Close, for the reopened store).
func (g *groupCommit) writer(st store.Store, log *slog.Logger) *writer {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil && g.w.st == st {
		return g.w
	}
	if g.w != nil {
		g.stopLocked()
	}
	delay, size := g.delay, g.maxBatch
	switch {
	case delay == 0:
		delay = DefaultCommitDelay
	case delay < 0:
		delay = 0
	}
	if size <= 0 {
		size = DefaultCommitBatch
	}
	w := &writer{st: st, log: log, in: make(chan *pending, 4*size), quit: make(chan struct{}), exited: make(chan struct{})}
	go w.run(g, delay, size)
	g.w = w
	return w
}

func (g *groupCommit) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopLocked()
}

func (g *groupCommit) stopLocked() {
	if g.w == nil {
		return
	}
	close(g.w.quit)
	<-g.w.exited
	g.w = nil
}

func (w *writer) run(g *groupCommit, delay time.Duration, size int) {
	defer close(w.exited)
	batch := make([]*pending, 0, size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch = batch[:0]
		quitting := false
		select {
		case p := <-w.in:
			batch = append(batch, p)
		case <-w.quit:
			quitting = true
		}
		if delay > 0 && !quitting {
			timer.Reset(delay)
		}
	fill:
		for len(batch) < size && !quitting {
			if delay == 0 {
				select {
				case p := <-w.in:
					batch = append(batch, p)
					continue
				default:
					break fill
				}
			}
			select {
			case p := <-w.in:
				batch = append(batch, p)
			case <-timer.C:
				break fill
			case <-w.quit:
				quitting = true
			}
		}
		timer.Stop()
		if quitting {
			// What was queued was never answered: store it too.
			for drained := false; !drained; {
				select {
				case p := <-w.in:
					batch = append(batch, p)
				default:
					drained = true
				}
			}
		}
		if len(batch) > 0 {
			w.commit(g, batch)
		}
		if quitting {
			return
		}
	}
}

func (w *writer) commit(g *groupCommit, batch []*pending) {
	ms := make([]fleet.Machine, len(batch))
	for i, p := range batch {
		ms[i] = p.m
	}
	// Not a caller's context: one caller giving up must not fail the
	// others' heartbeats.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := w.st.PutMachines(ctx, ms)
	cancel()
	g.batches.Add(1)
	g.heartbeats.Add(int64(len(batch)))
	if n := int64(len(batch)); n > g.largest.Load() {
		g.largest.Store(n) // only this goroutine writes it
	}
	if err != nil {
		g.failed.Add(1)
		w.log.Error("heartbeat batch failed", "heartbeats", len(batch), "err", err)
	}
	for _, p := range batch {
		p.done <- err
	}
}

// Heartbeat records a machine's state, stamped with the server's clock,
// and returns that time once the heartbeat is stored. Concurrent
// heartbeats share transactions (group commit).
func (s *Service) Heartbeat(ctx context.Context, m fleet.Machine) (time.Time, error) {
	if err := fleet.CheckMachine(&m); err != nil {
		return time.Time{}, &InvalidError{err.Error()}
	}
	st, err := s.Store(ctx)
	if err != nil {
		return time.Time{}, err
	}
	m.LastSeen = time.Now().UTC()
	w := s.fleet.writer(st, s.log)
	p := &pending{m: m, done: make(chan error, 1)}
	select {
	case w.in <- p:
	case <-w.quit:
		return time.Time{}, errClosed
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("store heartbeat: %w", ctx.Err())
	}
	select {
	case err = <-p.done:
	case <-w.exited:
		// The writer stores what was queued before it exits; a heartbeat
		// queued after that was not stored.
		select {
		case err = <-p.done:
		default:
			err = errClosed
		}
	case <-ctx.Done():
		// It may still be stored; unacknowledged, that is allowed.
		return time.Time{}, fmt.Errorf("store heartbeat: %w", ctx.Err())
	}
	if err != nil {
		return time.Time{}, err
	}
	return m.LastSeen, nil
}

// Report stores a machine's events; one without a time gets the
// server's. It returns how many were stored.
func (s *Service) Report(ctx context.Context, machine string, es []fleet.Event) (int, error) {
	if err := fleet.CheckEvents(machine, es); err != nil {
		return 0, &InvalidError{err.Error()}
	}
	st, err := s.Store(ctx)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	out := make([]fleet.Event, len(es))
	for i, e := range es {
		e.Machine = machine
		if e.At.IsZero() {
			e.At = now
		}
		out[i] = e
	}
	before := s.failing(ctx, out)
	if err := st.AddEvents(ctx, out); err != nil {
		return 0, err
	}
	s.events.ring()
	s.checkHalts(ctx, st, machine, before)
	return len(out), nil
}

// RingHealth is how a patch fares in one ring of the fleet.
type RingHealth struct {
	Ring    string `json:"ring"`
	Applied int    `json:"applied"` // machines that applied it
	Failed  int    `json:"failed"`  // machines that reported it failing
	// Halted: failures reached the halt threshold, so the patch may not
	// be promoted out of this ring.
	Halted bool `json:"halted"`
	// FirstApplied is when a machine of the ring first applied it.
	FirstApplied time.Time `json:"first_applied,omitzero"`
}

// HaltAfter sets how many machines of a ring reporting a patch failing
// halt its promotion (default 1). Call it before serving.
func (s *Service) HaltAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.HaltAfter = n
}

func (s *Service) haltAfter() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.cfg.HaltAfter, 1)
}

// FleetHealth says, ring by ring, how a patch (a livepatch module's name)
// fares: which rings it applied in, which reported it failing, and where
// its promotion is halted.
func (s *Service) FleetHealth(ctx context.Context, patchName string) ([]RingHealth, error) {
	if patchName == "" || len(patchName) > 64 {
		return nil, invalidf("--patch %q: give a livepatch module's name", patchName)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := st.PatchHealth(ctx, patchName)
	if err != nil {
		return nil, err
	}
	limit := s.haltAfter()
	out := make([]RingHealth, 0, len(counts))
	for _, c := range counts {
		out = append(out, RingHealth{Ring: c.Ring, Applied: c.Applied, Failed: c.Failed, Halted: c.Failed >= limit, FirstApplied: c.FirstApplied})
	}
	return out, nil
}

// failing is, for each patch the events report failing, its rings'
// health before they are stored.
func (s *Service) failing(ctx context.Context, es []fleet.Event) map[string][]RingHealth {
	out := map[string][]RingHealth{}
	for _, e := range es {
		if _, seen := out[e.Patch]; !e.Kind.Failure() || e.Patch == "" || seen {
			continue
		}
		hs, err := s.FleetHealth(ctx, e.Patch)
		if err != nil {
			s.log.Warn("fleet health", "patch", e.Patch, "err", err)
			continue
		}
		out[e.Patch] = hs
	}
	return out
}

// checkHalts announces a ring halt when a report makes a patch's failures
// in the machine's ring reach the threshold: once, as they reach it.
func (s *Service) checkHalts(ctx context.Context, st store.Store, machine string, before map[string][]RingHealth) {
	if len(before) == 0 {
		return
	}
	m, _, err := st.Machine(ctx, machine, 0)
	if err != nil {
		return
	}
	for name, old := range before {
		hs, err := s.FleetHealth(ctx, name)
		if err != nil {
			continue
		}
		for _, h := range hs {
			if h.Ring != m.Ring || !h.Halted {
				continue
			}
			if i := slices.IndexFunc(old, func(o RingHealth) bool { return o.Ring == h.Ring }); i >= 0 && old[i].Halted {
				continue // halted already
			}
			s.publish(ctx, event.Event{At: time.Now(), Kind: "ring.halted", Subject: name,
				Detail: fmt.Sprintf("ring %s: %d of %d machine(s) reported it failing: promotion halted", h.Ring, h.Failed, max(h.Applied, h.Failed))})
		}
	}
}

// FleetCounts counts machines by kernel and state (stale when silent for
// fleet.StaleAfter).
func (s *Service) FleetCounts(ctx context.Context) ([]store.MachineCount, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.MachineCounts(ctx, time.Now().Add(-fleet.StaleAfter))
}

// MachineQuery selects machines for ListMachines.
type MachineQuery struct {
	Kernel string      // a kernel release (uname -r), exactly
	State  fleet.State // "": any; stale: not heard from for fleet.StaleAfter
	After  string      // paging: machines with IDs after this one
	Limit  int         // 0: all
}

// ListMachines lists machines by ID, with their state as shown (stale
// when silent for fleet.StaleAfter).
func (s *Service) ListMachines(ctx context.Context, q MachineQuery) ([]fleet.Machine, error) {
	if q.State != "" {
		if _, err := fleet.ParseState(string(q.State)); err != nil {
			return nil, &InvalidError{"--state: " + err.Error()}
		}
	}
	if q.Limit < 0 {
		return nil, invalidf("limit %d: want 0 (all) or more", q.Limit)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ms, err := st.Machines(ctx, store.MachineFilter{Kernel: q.Kernel, State: q.State, StaleBefore: now.Add(-fleet.StaleAfter), After: q.After, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	for i := range ms {
		ms[i].State = ms[i].EffectiveState(now)
	}
	return ms, nil
}

// MachineDetail is a machine with its recent events, newest first.
type MachineDetail struct {
	fleet.Machine
	Events []fleet.Event `json:"events"`
}

// DefaultEvents is how many recent events Machine shows by default.
const DefaultEvents = 20

// MaxEvents bounds the events Machine returns.
const MaxEvents = 1000

// Machine returns one machine and its newest events (at most events).
func (s *Service) Machine(ctx context.Context, id string, events int) (MachineDetail, error) {
	if err := authz.ValidMachine(id); err != nil {
		return MachineDetail{}, &InvalidError{err.Error()}
	}
	if events < 0 || events > MaxEvents {
		return MachineDetail{}, invalidf("--events %d: want 0 up to %d", events, MaxEvents)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return MachineDetail{}, err
	}
	m, es, err := st.Machine(ctx, id, events)
	if err != nil {
		return MachineDetail{}, notFound("machine", err)
	}
	m.State = m.EffectiveState(time.Now())
	return MachineDetail{Machine: m, Events: es}, nil
}

// EnrollAgents makes an agent token for each machine in one transaction,
// with one audit entry, and returns the tokens and their secrets in the
// same order: for a fleet's first rollout, or a benchmark, where one
// CreateToken a machine would take minutes.
func (s *Service) EnrollAgents(ctx context.Context, machines []string, by Actor) ([]authz.Token, []string, error) {
	now := time.Now()
	ts := make([]authz.Token, len(machines))
	secrets := make([]string, len(machines))
	for i, m := range machines {
		t, secret, err := authz.New(nil, authz.Agent, m, now, 0)
		if err != nil {
			return nil, nil, &InvalidError{err.Error()}
		}
		ts[i], secrets[i] = t, secret
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := st.AddTokens(ctx, ts, audit(by, "token.enroll", "", fmt.Sprintf("%d agent tokens", len(ts)))); err != nil {
		return nil, nil, err
	}
	return ts, secrets, nil
}
