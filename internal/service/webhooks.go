package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/server/notify"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// webhookLease lets one replica at a time send the webhooks, from the
// cursor (of the same name) the last one left in the database.
const webhookLease = "webhooks"

// WebhookOptions shape the webhook dispatcher.
type WebhookOptions struct {
	Endpoints []notify.Endpoint
	// Tier: a sync that brings a CVE affecting a kernel at or above this
	// priority tier tells the endpoints (default high).
	Tier     string
	Priority PriorityInputs // the server's KEV and EPSS
	Holder   string         // this replica's name in the lease
	// Notifier sends (default: notify.New with the service's logger and
	// a store-backed delivery log).
	Notifier *notify.Notifier
	// Poll is how often a waiting replica asks for the lease, and the
	// stream follower looks for other replicas' events. Default 2 s.
	Poll time.Duration
}

// deliveryLog keeps webhook deliveries in the store.
type deliveryLog struct{ st store.Store }

func (l deliveryLog) Record(ctx context.Context, d notify.Delivery) error {
	attempts, _ := json.Marshal(d.Attempts)
	return l.st.PutDelivery(ctx, store.Delivery{ID: d.ID, EventID: d.EventID, Kind: string(d.Kind), URL: d.URL, State: string(d.State),
		Attempts: string(attempts), Updated: time.Now()})
}

// RunWebhooks sends the event stream's news to the webhook endpoints
// until ctx ends: a refused patch ("needs a hand-written livepatch"), a
// build or vetting failure, a patch waiting for review, a ring halt, and
// after each sync the CVEs newly affecting a kernel at or above the tier.
// With several replicas one sends at a time (a lease), resuming where the
// last stopped (a cursor in the database): each event is sent at least
// once.
func (s *Service) RunWebhooks(ctx context.Context, o WebhookOptions) error {
	if len(o.Endpoints) == 0 {
		return nil
	}
	if o.Tier == "" {
		o.Tier = "high"
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	if o.Notifier == nil {
		o.Notifier = notify.New(notify.Options{Log: deliveryLog{st}, Logger: s.log})
	}
	first := func(ctx context.Context) { s.freshAffecting(ctx, st, "", o.Tier, o.Priority) }
	return s.followUnderLease(ctx, st, leasedFollow{name: webhookLease, holder: o.Holder, poll: o.Poll, first: first,
		log: s.log.With("component", "webhooks", "holder", o.Holder)}, func(ctx context.Context, e event.Event) error {
		for _, ev := range s.notices(ctx, st, o, e) {
			if err := o.Notifier.Dispatch(ctx, o.Endpoints, ev); err != nil {
				if ctx.Err() != nil {
					return ctx.Err() // stopped: this event is sent again next time
				}
				s.log.Warn("webhook not delivered", "kind", ev.Kind, "err", err)
			}
		}
		return nil
	})
}

// leasedFollow names a follower of the event stream that runs on one
// replica at a time.
type leasedFollow struct {
	name   string // its lease and its cursor
	holder string
	poll   time.Duration
	log    *slog.Logger
	// first, when set, runs before the first follower ever follows (no
	// cursor yet): it records what is there already, so that only what
	// comes later is acted on.
	first func(ctx context.Context)
}

// followUnderLease runs fn on each event of the stream, in order, on the
// replica that holds the follower's lease, from the cursor the last holder
// left: each event is handled at least once, even across replicas and
// restarts. It returns when ctx ends.
func (s *Service) followUnderLease(ctx context.Context, st store.Store, f leasedFollow, fn func(context.Context, event.Event) error) error {
	const ttl = time.Minute
	for ctx.Err() == nil {
		now := time.Now()
		ok, err := st.AcquireLease(ctx, f.name, f.holder, now, now.Add(ttl))
		if err != nil && ctx.Err() == nil {
			f.log.Warn("take the lease", "err", err)
		}
		if ok {
			s.followLeased(ctx, st, f, ttl, fn)
		}
		select {
		case <-ctx.Done():
		case <-time.After(f.poll):
		}
	}
	return nil
}

func (s *Service) followLeased(ctx context.Context, st store.Store, f leasedFollow, ttl time.Duration, fn func(context.Context, event.Event) error) {
	holdLease(ctx, st, f.name, f.holder, ttl, func(dctx context.Context) { s.followHeld(ctx, dctx, st, f, fn) })
}

// followHeld follows the stream while dctx holds the lease.
func (s *Service) followHeld(ctx, dctx context.Context, st store.Store, f leasedFollow, fn func(context.Context, event.Event) error) {
	after, ran, err := st.Cursor(dctx, f.name)
	if err != nil {
		f.log.Warn("read the cursor", "err", err)
		return
	}
	if !ran {
		// The first follower starts with what comes next.
		if after, err = st.LastEventSeq(dctx); err != nil {
			f.log.Warn("read the stream", "err", err)
			return
		}
		if f.first != nil {
			f.first(dctx)
		}
		if err := st.SetCursor(dctx, f.name, after); err != nil {
			f.log.Warn("set the cursor", "err", err)
			return
		}
	}
	// Say so, for operators (and tests) waiting for it to act.
	s.publish(dctx, event.Event{At: time.Now(), Kind: event.Kind(f.name + ".following"), Subject: f.holder, Detail: fmt.Sprintf("from seq %d", after)})
	err = s.Watch(dctx, WatchOptions{After: after, Follow: true, Poll: f.poll}, func(e event.Event) error {
		if err := fn(dctx, e); err != nil {
			return err
		}
		return st.SetCursor(context.WithoutCancel(dctx), f.name, e.Seq)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		f.log.Warn("stopped", "err", err)
	}
	if ctx.Err() != nil {
		st.ReleaseLease(context.WithoutCancel(ctx), f.name, f.holder, time.Time{})
	}
}

// notices are the webhook events a stream event makes.
func (s *Service) notices(ctx context.Context, st store.Store, o WebhookOptions, e event.Event) []notify.Event {
	switch {
	case e.Kind == event.SyncFinished:
		return s.newlyAffecting(ctx, st, o.Tier, o.Priority)
	case e.Kind == "ring.halted":
		ring, _, _ := strings.Cut(strings.TrimPrefix(e.Detail, "ring "), ":")
		return []notify.Event{notify.NewEvent(notify.KindRingHalted, notify.RingHalted{Ring: ring, Reason: e.Subject + ": " + e.Detail})}
	case e.Kind == "job.failed":
		j, err := st.Job(ctx, e.Subject)
		if err != nil || j.Kind == job.PatchBuild {
			return nil // a patch's failure is told with the patch
		}
		return []notify.Event{notify.NewEvent(notify.KindBuildFailed, notify.JobFailed{Kernel: j.Kernel, Job: j.ID, Error: j.Error})}
	case strings.HasPrefix(string(e.Kind), "patch."):
		return s.patchNotice(ctx, st, e)
	}
	return nil
}

func (s *Service) patchNotice(ctx context.Context, st store.Store, e event.Event) []notify.Event {
	p, revs, _, err := st.Patch(ctx, e.Subject)
	if err != nil || len(revs) == 0 {
		return nil
	}
	r := revs[len(revs)-1]
	switch patch.State(strings.TrimPrefix(string(e.Kind), "patch.")) {
	case patch.Refused:
		return []notify.Event{notify.NewPatchRefused(p.CVE, p.Kernel, refusal.Code(r.RefusalCode), r.Refusal)}
	case patch.Vetted:
		var risk struct{ Level string }
		json.Unmarshal(r.Risk, &risk)
		return []notify.Event{notify.NewEvent(notify.KindReviewWaiting, notify.ReviewWaiting{CVE: p.CVE, Kernel: p.Kernel, Patch: p.ID, Revision: r.Rev, Risk: risk.Level})}
	case patch.Failed:
		kind := notify.KindBuildFailed
		if strings.HasPrefix(r.Error, "vetting in the VM") {
			kind = notify.KindVetFailed
		}
		return []notify.Event{notify.NewEvent(kind, notify.JobFailed{CVE: p.CVE, Kernel: p.Kernel, Job: r.Job, Patch: p.ID, Error: r.Error})}
	}
	return nil
}

// newlyAffecting are the CVEs affecting a kernel at or above tier that no
// notice told about yet.
func (s *Service) newlyAffecting(ctx context.Context, st store.Store, tier string, pi PriorityInputs) []notify.Event {
	var out []notify.Event
	for _, a := range s.freshAffecting(ctx, st, "", tier, pi) {
		out = append(out, notify.NewEvent(notify.KindCVEAffectsKernel, notify.CVEAffectsKernel{CVE: a.CVE.ID, Kernel: a.Kernel.Name,
			Tier: a.CVE.Priority.Tier, Score: int(a.CVE.Priority.Score)}))
	}
	return out
}

// affecting is a CVE that affects a kernel.
type affecting struct {
	Kernel *kernel.Kernel
	CVE    *CVE
}

// freshAffecting are the CVEs affecting each kernel at or above tier that
// were not recorded under key before, highest priority first; it records
// them. A kernel's first look only records what affects it, so that
// turning a follower on does not act on the whole backlog.
func (s *Service) freshAffecting(ctx context.Context, st store.Store, key, tier string, pi PriorityInputs) []affecting {
	ks, err := st.Kernels(ctx)
	if err != nil {
		return nil
	}
	var out []affecting
	for _, k := range ks {
		q := CVEQuery{Kernel: k.Name, Affected: true, Tier: tier, Sort: "priority", Priority: pi}
		list, err := s.ListCVEs(ctx, q)
		if err != nil && ctx.Err() == nil {
			// No build profile to be had (its source cannot be fetched
			// now): the verdicts by version still say what to look at.
			s.log.Warn("no build profile, judging by version only", "kernel", k.Name, "err", err)
			q.Profile = ProfileNone
			list, err = s.ListCVEs(ctx, q)
		}
		if err != nil {
			s.log.Warn("CVEs affecting a kernel", "kernel", k.Name, "err", err)
			continue
		}
		ids := make([]string, len(list.CVEs))
		byID := map[string]*CVE{}
		for i := range list.CVEs {
			ids[i] = list.CVEs[i].ID
			byID[ids[i]] = &list.CVEs[i]
		}
		fresh, seeded, err := st.Notified(ctx, key+k.Name, ids)
		if err != nil || !seeded {
			continue
		}
		for _, id := range fresh {
			out = append(out, affecting{Kernel: k, CVE: byID[id]})
		}
	}
	return out
}
