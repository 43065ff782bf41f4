package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

var secret = []byte("s3cret-for-tests")

// request is what the receiver got.
type request struct {
	header http.Header
	body   []byte
	err    error // Verify's verdict
}

// receiver is a real HTTP server on a loopback TCP port. status picks the
// answer to the n-th request (1-based).
type receiver struct {
	t      *testing.T
	addr   string
	status func(n int) int
	onReq  func(n int)

	mu   sync.Mutex
	reqs []request
	srv  *http.Server
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: ln.Addr().String(), status: status}
	r.serve(ln)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
	r.t.Cleanup(func() { srv.Close() })
}

// down closes the listener: connections are refused from now on.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	if err := srv.Close(); err != nil {
		r.t.Fatal(err)
	}
}

// up listens again on the same port.
func (r *receiver) up() error {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.serve(ln)
	return nil
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("receiver: read body: %v", err)
	}
	verr := Verify(req.Header, body, time.Now(), 0, secret)
	r.mu.Lock()
	r.reqs = append(r.reqs, request{header: req.Header.Clone(), body: body, err: verr})
	n := len(r.reqs)
	onReq := r.onReq
	r.mu.Unlock()
	if onReq != nil {
		onReq(n)
	}
	code := http.StatusNoContent
	if r.status != nil {
		code = r.status(n)
	}
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code))
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// noSleep retries at once: the tests decide when a receiver is reachable,
// not the clock.
func noSleep(context.Context, time.Duration) error { return nil }

func TestDeliverAndVerify(t *testing.T) {
	rcv := newReceiver(t, nil)
	log := &MemoryLog{}
	n := New(Options{Log: log, Sleep: noSleep})
	ev := NewPatchRefused("CVE-2026-43216", "cloud", refusal.ChangedData, "net/core/skbuff.c: changed data sysctl_tstamp_allow_data")
	d, err := n.Send(context.Background(), Endpoint{URL: rcv.url(), Secret: secret}, ev)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if d.State != StateDelivered || len(d.Attempts) != 1 || d.Attempts[0].Status != http.StatusNoContent {
		t.Errorf("Send = %+v, want delivered in one attempt", d)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.err != nil {
		t.Errorf("Verify at the receiver: %v", r.err)
	}
	if r.header.Get(HeaderEvent) != string(KindPatchRefused) || r.header.Get(HeaderDelivery) != ev.ID {
		t.Errorf("headers %v", r.header)
	}
	var got struct {
		ID      string       `json:"id"`
		Kind    Kind         `json:"kind"`
		Time    time.Time    `json:"time"`
		Payload PatchRefused `json:"payload"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	want := PatchRefused{CVE: "CVE-2026-43216", Kernel: "cloud", Code: refusal.ChangedData, Class: "not_livepatchable",
		Reason: "net/core/skbuff.c: changed data sysctl_tstamp_allow_data", Action: "needs a hand-written livepatch"}
	if got.ID != ev.ID || got.Kind != KindPatchRefused || got.Time.IsZero() || got.Payload != want {
		t.Errorf("event = %+v, want payload %+v", got, want)
	}
	if ds := log.Deliveries(); len(ds) != 1 || ds[0].State != StateDelivered || len(ds[0].Attempts) != 1 {
		t.Errorf("log = %+v, want one delivered delivery", ds)
	}
}

func TestVerifyRefuses(t *testing.T) {
	rcv := newReceiver(t, nil)
	n := New(Options{Sleep: noSleep})
	ev := NewEvent(KindCVEAffectsKernel, CVEAffectsKernel{CVE: "CVE-2026-64547", Kernel: "cloud", Tier: "high"})
	if _, err := n.Send(context.Background(), Endpoint{URL: rcv.url(), Secret: secret}, ev); err != nil {
		t.Fatal(err)
	}
	r := rcv.requests()[0]
	now := time.Now()
	tampered := append([]byte(nil), r.body...)
	tampered[len(tampered)-3] ^= 1
	ts, _ := strconv.ParseInt(r.header.Get(HeaderTimestamp), 10, 64)
	later := r.header.Clone()
	later.Set(HeaderTimestamp, strconv.FormatInt(ts+1, 10))
	unsigned := r.header.Clone()
	unsigned.Del(HeaderSignature)
	rotated := r.header.Clone()
	rotated.Set(HeaderSignature, "sha256=00ff, "+r.header.Get(HeaderSignature))
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		now     time.Time
		secrets [][]byte
		want    error
	}{
		{"authentic", r.header, r.body, now, [][]byte{secret}, nil},
		{"second secret", r.header, r.body, now, [][]byte{[]byte("new"), secret}, nil},
		{"several values", rotated, r.body, now, [][]byte{secret}, nil},
		{"tampered body", r.header, tampered, now, [][]byte{secret}, ErrBadSignature},
		{"timestamp changed", later, r.body, now, [][]byte{secret}, ErrBadSignature},
		{"wrong secret", r.header, r.body, now, [][]byte{[]byte("other")}, ErrBadSignature},
		{"unsigned", unsigned, r.body, now, [][]byte{secret}, ErrNoSignature},
		{"replayed later", r.header, r.body, now.Add(DefaultMaxAge + time.Minute), [][]byte{secret}, ErrStale},
		{"from the future", r.header, r.body, now.Add(-DefaultMaxAge - time.Minute), [][]byte{secret}, ErrStale},
	}
	for _, tt := range tests {
		err := Verify(tt.h, tt.body, tt.now, 0, tt.secrets...)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestReceiverDownThenUp: the receiver's port refuses connections for two
// attempts, then listens again on the same port and gets the event.
func TestReceiverDownThenUp(t *testing.T) {
	rcv := newReceiver(t, nil)
	rcv.down()
	var waits []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 2 {
			if err := rcv.up(); err != nil {
				return err
			}
		}
		return nil
	}
	log := &MemoryLog{}
	n := New(Options{Log: log, Sleep: sleep, BackoffBase: time.Second, BackoffMax: time.Minute, MaxAttempts: 5})
	ev := NewEvent(KindBuildFailed, JobFailed{Kernel: "cloud", Job: "17", Error: "make: *** [Makefile:2012: .] Error 2"})
	d, err := n.Send(context.Background(), Endpoint{URL: rcv.url(), Secret: secret}, ev)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(d.Attempts) != 3 || d.State != StateDelivered {
		t.Fatalf("delivery = %+v, want delivered at the third attempt", d)
	}
	for i, a := range d.Attempts[:2] {
		if a.Status != 0 || a.Error == "" {
			t.Errorf("attempt %d = %+v, want a connection error", i+1, a)
		}
	}
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].err != nil || reqs[0].header.Get(HeaderDelivery) != ev.ID {
		t.Errorf("receiver got %d requests (%+v), want the event once, verified", len(reqs), reqs)
	}
	// Exponential with jitter: 1st retry in [0.5s, 1s], 2nd in [1s, 2s].
	if len(waits) != 2 || waits[0] < 500*time.Millisecond || waits[0] > time.Second || waits[1] < time.Second || waits[1] > 2*time.Second {
		t.Errorf("waits = %v, want about 1s then 2s", waits)
	}
	if ds := log.Deliveries(); len(ds) != 1 || len(ds[0].Attempts) != 3 || ds[0].State != StateDelivered {
		t.Errorf("log = %+v", ds)
	}
}

func TestStatusRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int // answers in order; the last repeats
		attempts int
		want     error
	}{
		{"ok", []int{200}, 1, nil},
		{"bad request not retried", []int{400}, 1, ErrRejected},
		{"gone not retried", []int{410}, 1, ErrRejected},
		{"redirect not followed", []int{307}, 1, ErrRejected},
		{"503 then ok", []int{503, 503, 202}, 3, nil},
		{"429 retried", []int{429, 200}, 2, nil},
		{"500 then 404", []int{500, 404}, 2, ErrRejected},
		{"always 502", []int{502}, 4, ErrGaveUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, func(n int) int { return tt.statuses[min(n, len(tt.statuses))-1] })
			n := New(Options{Sleep: noSleep, MaxAttempts: 4})
			d, err := n.Send(context.Background(), Endpoint{URL: rcv.url(), Secret: secret}, NewEvent(KindVetFailed, JobFailed{Kernel: "k", Error: "x"}))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
			if len(d.Attempts) != tt.attempts || len(rcv.requests()) != tt.attempts {
				t.Errorf("Send made %d attempts (receiver saw %d), want %d", len(d.Attempts), len(rcv.requests()), tt.attempts)
			}
			var se *StatusError
			if tt.want != nil && (!errors.As(err, &se) || se.Code != tt.statuses[len(tt.statuses)-1]) {
				t.Errorf("Send error %v does not carry the last status", err)
			}
		})
	}
}

// TestCancelStopsRetrying uses the real timer with an hour's backoff: only
// the cancel can end the wait.
func TestCancelStopsRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rcv := newReceiver(t, func(int) int { return 500 })
	rcv.onReq = func(int) { cancel() }
	log := &MemoryLog{}
	n := New(Options{Log: log, BackoffBase: time.Hour, MaxAttempts: 10})
	done := make(chan struct{})
	var d Delivery
	var err error
	go func() {
		d, err = n.Send(ctx, Endpoint{URL: rcv.url(), Secret: secret}, NewEvent(KindRingHalted, RingHalted{Ring: "canary", Reason: "oops on 2 hosts"}))
		close(done)
	}()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	if len(d.Attempts) != 1 || len(rcv.requests()) != 1 {
		t.Errorf("%d attempts, receiver saw %d; want 1", len(d.Attempts), len(rcv.requests()))
	}
	if ds := log.Deliveries(); len(ds) != 1 || ds[0].State != StateFailed {
		t.Errorf("log = %+v, want a failed delivery", ds)
	}
}

func TestDispatch(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, func(int) int { return 403 })
	c := newReceiver(t, nil)
	n := New(Options{Sleep: noSleep})
	eps := []Endpoint{
		{URL: a.url(), Secret: secret},
		{URL: b.url(), Secret: secret},
		{URL: c.url(), Secret: secret, Kinds: []Kind{KindRingHalted}},
	}
	err := n.Dispatch(context.Background(), eps, NewEvent(KindReviewWaiting, ReviewWaiting{CVE: "CVE-2026-64547", Kernel: "cloud", Patch: "p1", Revision: 2}))
	if !errors.Is(err, ErrRejected) {
		t.Errorf("Dispatch = %v, want b's rejection", err)
	}
	if len(a.requests()) != 1 || len(b.requests()) != 1 || len(c.requests()) != 0 {
		t.Errorf("requests a=%d b=%d c=%d, want 1 1 0", len(a.requests()), len(b.requests()), len(c.requests()))
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n         int
		base, max time.Duration
		r         float64
		want      time.Duration
	}{
		{1, time.Second, time.Minute, 0, 500 * time.Millisecond},
		{1, time.Second, time.Minute, 0.999999, time.Second - time.Microsecond/2},
		{3, time.Second, time.Minute, 0, 2 * time.Second},
		{10, time.Second, time.Minute, 0, 30 * time.Second},
		{1000, time.Second, time.Minute, 0.5, 45 * time.Second},
	}
	for _, tt := range tests {
		got := Backoff(tt.n, tt.base, tt.max, tt.r)
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("Backoff(%d, %v, %v, %v) = %v, want %v", tt.n, tt.base, tt.max, tt.r, got, tt.want)
		}
	}
}

func TestBadURL(t *testing.T) {
	n := New(Options{})
	for _, u := range []string{"", "ftp://x/", "file:///etc/passwd", "http://"} {
		if _, err := n.Send(context.Background(), Endpoint{URL: u}, NewEvent(KindRingHalted, nil)); err == nil {
			t.Errorf("Send(%q) = nil error", u)
		}
	}
}
