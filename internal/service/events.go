package service

import (
	"context"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/event"
)

// eventBell wakes this process's stream followers when it appends events;
// followers also poll, for events other replicas append.
type eventBell struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *eventBell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *eventBell) ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// publish appends events to the stream. What they tell of has happened
// already: a stream that cannot take them is logged, not an error of the
// action.
func (s *Service) publish(ctx context.Context, es ...event.Event) {
	st, err := s.Store(ctx)
	if err == nil {
		err = st.AppendEvents(context.WithoutCancel(ctx), es)
	}
	if err != nil {
		s.log.Warn("append to the event stream", "err", err, "kind", es[0].Kind)
		return
	}
	s.events.ring()
}

// audit writes an audit entry and logs (does not return) a failure, for
// actions that have happened already.
func (s *Service) audit(ctx context.Context, by Actor, action, target, detail string) {
	st, err := s.Store(ctx)
	if err == nil {
		err = st.AddAudit(context.WithoutCancel(ctx), authz.AuditEntry{At: time.Now(), Actor: actorID(by), Action: action, Target: target, From: by.From, Detail: detail})
	}
	if err != nil {
		s.log.Warn("write the audit log", "err", err, "action", action, "target", target)
	}
}

func actorID(by Actor) string {
	if by.ID == "" {
		return LocalActor
	}
	return by.ID
}

// WatchOptions shape a follow of the event stream.
type WatchOptions struct {
	// After is the last seq the follower has; -1 starts with the events
	// that come from now on.
	After int64
	// Kinds keeps events of these kinds or areas ("sync.", "fleet."); all
	// when empty.
	Kinds []string
	// Follow keeps watching for new events; without it Watch returns once
	// it has sent what the stream holds.
	Follow bool
	// Poll is how often a follower looks for other replicas' events.
	// Default: one second.
	Poll time.Duration
}

// watchBatch bounds one read of the stream, so a follower far behind
// catches up in steps.
const watchBatch = 500

// Watch sends the stream's events after o.After to fn, oldest first, until
// ctx ends (returning nil), fn fails, or, without Follow, the stream is
// read to its end.
func (s *Service) Watch(ctx context.Context, o WatchOptions, fn func(event.Event) error) error {
	if o.After < -1 {
		return invalidf("after %d: want -1 (from now), 0 (from the start) or a seq", o.After)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	after := o.After
	if after == -1 {
		if after, err = st.LastEventSeq(ctx); err != nil {
			return err
		}
	}
	poll := o.Poll
	if poll <= 0 {
		poll = time.Second
	}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		// Take the bell before reading, so an append between the read
		// and the wait still wakes this follower.
		bell := s.events.wait()
		es, err := st.Events(ctx, after, watchBatch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range es {
			after = e.Seq
			if !e.Matches(o.Kinds) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(es) == watchBatch {
			continue
		}
		if !o.Follow {
			return nil
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return nil
		case <-bell:
		case <-timer.C:
		}
	}
}
