// Package notify delivers TuxTape's events to webhooks: an HTTP POST of the
// event as JSON (see Event), signed, retried with backoff, and logged.
//
// # Signature scheme
//
// Every request carries
//
//	X-TuxTape-Event:     <kind>
//	X-TuxTape-Delivery:  <event id>            (the same on every retry)
//	X-TuxTape-Timestamp: <unix seconds>         (when this attempt was signed)
//	X-TuxTape-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The MAC covers the timestamp, so a captured request cannot be replayed
// later with a fresh timestamp; a receiver rejects timestamps outside a
// window (Verify, 5 minutes by default) and, to refuse a replay inside the
// window, remembers the delivery ids it has accepted. Each retry is signed
// anew with its own timestamp. A receiver verifies with Verify or
// VerifyRequest over the raw body bytes, before parsing them.
//
// # Delivery
//
// A 2xx answer delivers. A 5xx, 408, 429 or a transport error (refused
// connection, timeout) is retried after an exponential backoff with jitter,
// up to MaxAttempts; any other answer (4xx, a redirect) means the receiver
// will not take the event and is not retried (ErrRejected). Retrying stops
// when the context ends. Every attempt is reported to a Log.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Errors of Send; callers decide on them.
var (
	// ErrRejected: the receiver answered with a status that retrying will
	// not change (4xx other than 408 and 429, 3xx).
	ErrRejected = errors.New("webhook rejected the event")
	// ErrGaveUp: every attempt failed with a retryable error.
	ErrGaveUp = errors.New("webhook delivery attempts exhausted")
)

// StatusError is a receiver's non-2xx answer.
type StatusError struct {
	Code int
	Body string // the start of the answer's body, for the log
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// retryable says whether a status is worth another attempt.
func retryable(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	URL    string
	Secret []byte
	// Kinds the endpoint wants; empty means all.
	Kinds []Kind
}

// Wants reports whether the endpoint subscribes to kind.
func (e Endpoint) Wants(kind Kind) bool { return len(e.Kinds) == 0 || slices.Contains(e.Kinds, kind) }

// Options shape a Notifier. The zero value works (no log, default timings).
type Options struct {
	// Client sends the requests. Default: a client that follows no
	// redirects (a signed event goes where it was configured to, or not at
	// all).
	Client *http.Client
	// Log records every attempt. Default: none.
	Log Log
	// Logger gets a line per failed attempt. Default: discard.
	Logger *slog.Logger
	// MaxAttempts bounds the attempts per delivery. Default 6.
	MaxAttempts int
	// Backoff: the n-th retry waits about BackoffBase·2^(n-1), at most
	// BackoffMax, jittered down by up to half so that receivers coming back
	// are not hit by every sender at once. Defaults 1 s and 5 min.
	BackoffBase, BackoffMax time.Duration
	// Timeout bounds one attempt. Default 15 s.
	Timeout time.Duration
	// Sleep waits between attempts; it must return early with the
	// context's error when ctx ends. Default: a timer. Tests replace it to
	// control when a retry happens without depending on the clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now stamps attempts and signatures. Default time.Now.
	Now func() time.Time
}

// Notifier sends events to endpoints.
type Notifier struct {
	opts Options
	log  *slog.Logger
	// mu guards rnd, which jitters the backoff.
	mu  sync.Mutex
	rnd *rand.Rand
}

// New returns a Notifier with opts' defaults filled in.
func New(opts Options) *Notifier {
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{opts: opts, log: log.With("component", "notify"), rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is the wait before retry n (1 for the first retry): exponential
// from base, capped at max, with "equal jitter" (a random point in the
// upper half), so waits still grow but senders spread out. r is in [0, 1).
func Backoff(n int, base, max time.Duration, r float64) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(r*float64(d/2))
}

func (n *Notifier) backoff(retry int) time.Duration {
	n.mu.Lock()
	r := n.rnd.Float64()
	n.mu.Unlock()
	return Backoff(retry, n.opts.BackoffBase, n.opts.BackoffMax, r)
}

// State is where a delivery stands.
type State string

const (
	StateRetrying  State = "retrying"
	StateDelivered State = "delivered"
	StateFailed    State = "failed"
)

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	ID       string // event id + endpoint: the key a log upserts on
	EventID  string
	Kind     Kind
	URL      string
	State    State
	Attempts []Attempt
}

// Attempt is one POST of a delivery.
type Attempt struct {
	N        int
	At       time.Time
	Duration time.Duration
	Status   int    // 0 when no answer came
	Error    string // "" when delivered
}

// Log keeps deliveries. Record is called after every attempt with the
// delivery so far (the same ID each time, State last), so a store upserts
// on ID and a crash mid-retry still leaves the attempts made.
type Log interface {
	Record(ctx context.Context, d Delivery) error
}

// Send delivers ev to ep, retrying as the package doc says, and returns
// the delivery with its attempts. Its error wraps ErrRejected, ErrGaveUp
// or the context's error, and the last attempt's error.
func (n *Notifier) Send(ctx context.Context, ep Endpoint, ev Event) (Delivery, error) {
	d := Delivery{ID: ev.ID + " " + ep.URL, EventID: ev.ID, Kind: ev.Kind, URL: ep.URL, State: StateRetrying}
	u, err := url.Parse(ep.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return d, fmt.Errorf("send %s to %q: want an http(s) URL", ev.Kind, ep.URL)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return d, fmt.Errorf("send %s: encode event: %w", ev.Kind, err)
	}
	log := n.log.With("event", ev.ID, "kind", ev.Kind, "url", ep.URL)
	for attempt := 1; ; attempt++ {
		a, err := n.post(ctx, ep, ev, body, attempt)
		d.Attempts = append(d.Attempts, a)
		var se *StatusError
		switch {
		case err == nil:
			d.State = StateDelivered
		case ctx.Err() != nil:
			d.State = StateFailed
			err = fmt.Errorf("send %s to %s: %w (after %d attempts: %v)", ev.Kind, ep.URL, ctx.Err(), attempt, err)
		case errors.As(err, &se) && !retryable(se.Code):
			d.State = StateFailed
			err = fmt.Errorf("send %s to %s: %w: %w", ev.Kind, ep.URL, ErrRejected, err)
		case attempt >= n.opts.MaxAttempts:
			d.State = StateFailed
			err = fmt.Errorf("send %s to %s: %w (%d): %w", ev.Kind, ep.URL, ErrGaveUp, attempt, err)
		}
		n.record(ctx, log, d)
		if d.State != StateRetrying {
			return d, err
		}
		wait := n.backoff(attempt)
		log.Warn("webhook attempt failed; retrying", "attempt", attempt, "err", err, "wait", wait)
		if serr := n.opts.Sleep(ctx, wait); serr != nil || ctx.Err() != nil {
			if ctx.Err() != nil {
				serr = context.Cause(ctx)
			}
			d.State = StateFailed
			n.record(ctx, log, d)
			return d, fmt.Errorf("send %s to %s: %w (after %d attempts: %v)", ev.Kind, ep.URL, serr, attempt, err)
		}
	}
}

// record logs d; a failing log does not stop a delivery (the receiver
// matters more than the bookkeeping), it is reported instead.
func (n *Notifier) record(ctx context.Context, log *slog.Logger, d Delivery) {
	if n.opts.Log == nil {
		return
	}
	d.Attempts = slices.Clone(d.Attempts)
	if err := n.opts.Log.Record(context.WithoutCancel(ctx), d); err != nil {
		log.Error("record webhook delivery", "err", err)
	}
}

// post makes one attempt.
func (n *Notifier) post(ctx context.Context, ep Endpoint, ev Event, body []byte, attempt int) (Attempt, error) {
	start := n.opts.Now()
	a := Attempt{N: attempt, At: start}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		a.Error = err.Error()
		return a, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tuxtape-webhook/1")
	req.Header.Set(HeaderEvent, string(ev.Kind))
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(start.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(ep.Secret, start, body))
	resp, err := n.opts.Client.Do(req)
	a.Duration = n.opts.Now().Sub(start)
	if err != nil {
		a.Error = err.Error()
		return a, err
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Drain a little more so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return a, nil
	}
	se := &StatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(excerpt))}
	a.Error = se.Error()
	return a, se
}

// Dispatch sends ev to every endpoint that wants it, concurrently, and
// returns when all are done; the error joins each endpoint's.
func (n *Notifier) Dispatch(ctx context.Context, eps []Endpoint, ev Event) error {
	var wg sync.WaitGroup
	errs := make([]error, len(eps))
	for i, ep := range eps {
		if !ep.Wants(ev.Kind) {
			continue
		}
		wg.Go(func() {
			_, errs[i] = n.Send(ctx, ep, ev)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// MemoryLog is a Log in memory, for use without a store and in tests.
type MemoryLog struct {
	mu    sync.Mutex
	order []string
	byID  map[string]Delivery
}

// Record implements Log.
func (l *MemoryLog) Record(_ context.Context, d Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]Delivery{}
	}
	if _, ok := l.byID[d.ID]; !ok {
		l.order = append(l.order, d.ID)
	}
	l.byID[d.ID] = d
	return nil
}

// Deliveries returns the latest state of every delivery, oldest first.
func (l *MemoryLog) Deliveries() []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Delivery, 0, len(l.order))
	for _, id := range l.order {
		out = append(out, l.byID[id])
	}
	return out
}
