package service

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/server/notify"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// webhookLease lets one replica at a time send the webhooks, from the
// cursor the last one left in the database.
const (
	webhookLease  = "webhooks"
	webhookCursor = "webhooks"
)

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
	log := s.log.With("component", "webhooks", "holder", o.Holder)
	const ttl = time.Minute
	for ctx.Err() == nil {
		now := time.Now()
		ok, err := st.AcquireLease(ctx, webhookLease, o.Holder, now, now.Add(ttl))
		if err != nil && ctx.Err() == nil {
			log.Warn("take the webhook lease", "err", err)
		}
		if ok {
			s.dispatch(ctx, st, o, ttl, log)
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.Poll):
		}
	}
	return nil
}

// dispatch follows the stream under the lease, renewing it, until the
// lease is lost or ctx ends.
func (s *Service) dispatch(ctx context.Context, st store.Store, o WebhookOptions, ttl time.Duration, log *slog.Logger) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-t.C:
			}
			now := time.Now()
			if ok, err := st.AcquireLease(dctx, webhookLease, o.Holder, now, now.Add(ttl)); err != nil || !ok {
				cancel()
				return
			}
		}
	}()
	after, ran, err := st.Cursor(dctx, webhookCursor)
	if err != nil {
		log.Warn("read the webhook cursor", "err", err)
		return
	}
	if !ran {
		after = -1 // the first dispatcher starts with what comes next
	}
	err = s.Watch(dctx, WatchOptions{After: after, Follow: true, Poll: o.Poll}, func(e event.Event) error {
		for _, ev := range s.notices(dctx, st, o, e) {
			if err := o.Notifier.Dispatch(dctx, o.Endpoints, ev); err != nil {
				if dctx.Err() != nil {
					return dctx.Err() // stopped: this event is sent again next time
				}
				log.Warn("webhook not delivered", "kind", ev.Kind, "err", err)
			}
		}
		return st.SetCursor(context.WithoutCancel(dctx), webhookCursor, e.Seq)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("webhook dispatcher stopped", "err", err)
	}
	if ctx.Err() != nil {
		st.ReleaseLease(context.WithoutCancel(ctx), webhookLease, o.Holder, time.Time{})
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
		code, reason := refusal.Code(""), r.Refusal
		if c, rest, ok := strings.Cut(strings.TrimPrefix(r.Refusal, "["), "] "); ok && strings.HasPrefix(r.Refusal, "[") {
			code, reason = refusal.Code(c), rest
		}
		return []notify.Event{notify.NewPatchRefused(p.CVE, p.Kernel, code, reason)}
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
// notice told about yet. A kernel's first look only records what affects
// it, so that turning webhooks on does not send the whole backlog.
func (s *Service) newlyAffecting(ctx context.Context, st store.Store, tier string, pi PriorityInputs) []notify.Event {
	ks, err := st.Kernels(ctx)
	if err != nil {
		return nil
	}
	var out []notify.Event
	for _, k := range ks {
		q := CVEQuery{Kernel: k.Name, Affected: true, Tier: tier, Sort: "priority", Priority: pi}
		list, err := s.ListCVEs(ctx, q)
		if err != nil && ctx.Err() == nil {
			// No build profile to be had (its source cannot be fetched
			// now): the verdicts by version still say what to look at.
			s.log.Warn("webhooks: no build profile, judging by version only", "kernel", k.Name, "err", err)
			q.Profile = ProfileNone
			list, err = s.ListCVEs(ctx, q)
		}
		if err != nil {
			s.log.Warn("webhooks: CVEs affecting a kernel", "kernel", k.Name, "err", err)
			continue
		}
		ids := make([]string, len(list.CVEs))
		byID := map[string]*CVE{}
		for i := range list.CVEs {
			ids[i] = list.CVEs[i].ID
			byID[ids[i]] = &list.CVEs[i]
		}
		fresh, seeded, err := st.Notified(ctx, k.Name, ids)
		if err != nil || !seeded {
			continue
		}
		for _, id := range fresh {
			c := byID[id]
			out = append(out, notify.NewEvent(notify.KindCVEAffectsKernel, notify.CVEAffectsKernel{CVE: id, Kernel: k.Name, Tier: c.Priority.Tier, Score: int(c.Priority.Score)}))
		}
	}
	return out
}
