package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/agent/hoststate"
	"github.com/tuxtape/tuxtape/internal/agent/livepatch"
	"github.com/tuxtape/tuxtape/internal/agent/outbox"
	"github.com/tuxtape/tuxtape/internal/agent/watch"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/model/kmsg"
)

const kernel = "6.1.0-50-cloud-amd64"

// fakeFeed serves releases; cached says which versions Fetch finds
// offline.
type fakeFeed struct {
	rels     []Release
	err      error
	fetchErr error
	cached   map[int64]bool
	fetched  []int64
}

func (f *fakeFeed) Versions(_ context.Context, k string, offline bool) ([]Release, error) {
	if f.err != nil {
		return nil, f.err
	}
	if len(f.rels) == 0 {
		return nil, ErrNoPatches
	}
	return f.rels, nil
}

func (f *fakeFeed) Fetch(_ context.Context, r Release, offline bool) (string, error) {
	if f.fetchErr != nil {
		return "", f.fetchErr
	}
	if offline && !f.cached[r.Version] {
		return "", errors.New("not cached")
	}
	f.fetched = append(f.fetched, r.Version)
	return fmt.Sprintf("/cache/%s-%d.ko", r.Module, r.Version), nil
}

// fakePatcher is a kernel with cumulative (replace) livepatches.
type fakePatcher struct {
	unsupported bool
	patches     []livepatch.Patch
	applyErr    map[string]error
	log         []string
}

func (p *fakePatcher) Supported() bool { return !p.unsupported }

func (p *fakePatcher) List() ([]livepatch.Patch, error) {
	if p.unsupported {
		return nil, livepatch.ErrUnsupported
	}
	return slices.Clone(p.patches), nil
}

func (p *fakePatcher) Apply(_ context.Context, path, name string) (livepatch.Patch, error) {
	p.log = append(p.log, "apply "+name)
	if err := p.applyErr[name]; err != nil {
		return livepatch.Patch{}, err
	}
	// replace: the others are unregistered (their modules stay).
	np := livepatch.Patch{Name: name, Enabled: true, Funcs: []string{"vmlinux/cmdline_proc_show,1"}}
	p.patches = []livepatch.Patch{np}
	return np, nil
}

func (p *fakePatcher) Remove(_ context.Context, name string) error {
	p.log = append(p.log, "remove "+name)
	p.patches = slices.DeleteFunc(p.patches, func(q livepatch.Patch) bool { return q.Name == name })
	return nil
}

type fakeReporter struct {
	down   bool
	beats  []fleet.Machine
	events []fleet.Event
}

func (r *fakeReporter) Heartbeat(_ context.Context, m fleet.Machine) error {
	if r.down {
		return errors.New("connection refused")
	}
	if err := fleet.CheckMachine(&m); err != nil {
		return err
	}
	r.beats = append(r.beats, m)
	return nil
}

func (r *fakeReporter) Report(_ context.Context, machine string, es []fleet.Event) error {
	if r.down {
		return errors.New("connection refused")
	}
	if err := fleet.CheckEvents(machine, es); err != nil {
		return err
	}
	r.events = append(r.events, es...)
	return nil
}

type rig struct {
	a    *Agent
	feed *fakeFeed
	lp   *fakePatcher
	srv  *fakeReporter
	now  time.Time
}

func newRig(t *testing.T, rels ...Release) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{feed: &fakeFeed{rels: rels, cached: map[int64]bool{}}, lp: &fakePatcher{}, srv: &fakeReporter{},
		now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	r.a = &Agent{
		Config:   Config{MachineID: "m1", Hostname: "h1", Ring: "stable", Window: time.Minute, StateDir: dir},
		Feed:     r.feed,
		Patcher:  r.lp,
		Reporter: r.srv,
		Outbox:   &outbox.Queue{Dir: dir},
		Store:    hoststate.Store{Dir: dir},
		Release:  func() (string, error) { return kernel, nil },
		Now:      func() time.Time { return r.now },
	}
	return r
}

func (r *rig) state(t *testing.T) *hoststate.Kernel {
	t.Helper()
	st, err := r.a.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st.Kernel(kernel)
}

func rel(v int64, rings ...string) Release {
	return Release{Kernel: kernel, Module: fmt.Sprintf("tt_v%d", v), Version: v, Rings: rings, CVEs: []string{fmt.Sprintf("CVE-2026-%04d", 1000+v)}}
}

func TestChoose(t *testing.T) {
	rels := []Release{rel(5, "canary"), rel(4, "canary", "stable"), rel(3, "stable"), rel(2)}
	tests := []struct {
		ring string
		bad  []int64
		want int64
	}{
		{"stable", nil, 4},
		{"canary", nil, 5},
		{"stable", []int64{4}, 3},
		{"stable", []int64{4, 3}, 2}, // no rings: every ring's
		{"stable", []int64{4, 3, 2}, 0},
		{"", nil, 5},
	}
	for _, tt := range tests {
		ks := &hoststate.Kernel{}
		for _, b := range tt.bad {
			ks.MarkBad(hoststate.Bad{Version: b})
		}
		got := int64(0)
		if r := Choose(rels, tt.ring, ks); r != nil {
			got = r.Version
		}
		if got != tt.want {
			t.Errorf("Choose(ring %q, bad %v) = %d, want %d", tt.ring, tt.bad, got, tt.want)
		}
	}
}

func TestPollDecisions(t *testing.T) {
	tests := []struct {
		name      string
		rels      []Release
		setup     func(r *rig)
		want      Result
		wantLog   []string
		wantLevel int64
	}{
		{"first load", []Release{rel(2, "stable"), rel(1, "stable")}, nil, ResultUpdated, []string{"apply tt_v2"}, 2},
		{"nothing published", nil, nil, ResultNoPatches, nil, 0},
		{"only other rings", []Release{rel(2, "canary")}, nil, ResultNoPatches, nil, 0},
		{"unsupported kernel", []Release{rel(1)}, func(r *rig) { r.lp.unsupported = true }, ResultUnsupported, nil, 0},
		{"archive down", nil, func(r *rig) { r.feed.err = errors.New("archive unreachable") }, ResultError, nil, 0},
		{"kill switch", []Release{rel(1)}, func(r *rig) { r.a.Config.Cmdline = "ro tuxtape.disable=1" }, ResultUpdateAvailable, nil, 0},
		{"skips a bad version", []Release{rel(3), rel(2)}, func(r *rig) {
			st, _ := r.a.Store.Load()
			st.Kernel(kernel).MarkBad(hoststate.Bad{Version: 3, Reason: "oops"})
			r.a.Store.Save(st)
		}, ResultUpdated, []string{"apply tt_v2"}, 2},
		{"up to date", []Release{rel(2)}, func(r *rig) {
			r.a.Poll(context.Background(), PollOptions{})
			r.lp.log = nil
		}, ResultUpToDate, nil, 2},
		{"newer replaces older", []Release{rel(3), rel(2)}, func(r *rig) {
			r.feed.rels = []Release{rel(2)}
			r.a.Poll(context.Background(), PollOptions{})
			r.feed.rels = []Release{rel(3), rel(2)}
			r.lp.log = nil
		}, ResultUpdated, []string{"apply tt_v3", "remove tt_v2"}, 3},
		{"fetch fails verification", []Release{rel(1)}, func(r *rig) { r.feed.fetchErr = fmt.Errorf("fetch: %w: bad signature", ErrVerify) }, ResultError, nil, 0},
		{"load fails", []Release{rel(1)}, func(r *rig) {
			r.lp.applyErr = map[string]error{"tt_v1": livepatch.ErrTransitionStuck}
		}, ResultFailed, []string{"apply tt_v1"}, 0},
		{"rebooted: loaded patch gone", []Release{rel(2)}, func(r *rig) {
			r.a.Poll(context.Background(), PollOptions{})
			r.lp.patches = nil // the reboot
			r.lp.log = nil
		}, ResultUpdated, []string{"apply tt_v2"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.rels...)
			if tt.setup != nil {
				tt.setup(r)
			}
			out := r.a.Poll(context.Background(), PollOptions{})
			if out.Result != tt.want {
				t.Fatalf("Poll = %+v, want %s", out, tt.want)
			}
			if !slices.Equal(r.lp.log, tt.wantLog) {
				t.Errorf("kernel calls = %q, want %q", r.lp.log, tt.wantLog)
			}
			m, err := r.a.Machine()
			if err != nil {
				t.Fatal(err)
			}
			lv := Level(r.state(t), r.lp.patches)
			if lv.Version != tt.wantLevel {
				t.Errorf("level = %+v, want version %d", lv, tt.wantLevel)
			}
			if err := fleet.CheckMachine(&m); err != nil {
				t.Errorf("heartbeat %+v: %v", m, err)
			}
			if tt.want == ResultFailed && !r.state(t).IsBad(1) {
				t.Errorf("a version that failed to apply is not marked bad")
			}
		})
	}
}

// TestRollbackAndFallback: a WARNING in the patched function (real log
// text) takes the new version out, marks it bad, and the last good one
// comes back from the cache; the server hears of it all.
func TestRollbackAndFallback(t *testing.T) {
	r := newRig(t, rel(1, "stable"))
	ctx := context.Background()
	if out := r.a.Poll(ctx, PollOptions{}); out.Result != ResultUpdated {
		t.Fatalf("first poll: %+v", out)
	}
	r.now = r.now.Add(2 * time.Minute)
	if err := r.a.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	if g := r.state(t).Good; g == nil || g.Version != 1 {
		t.Fatalf("good = %+v, want 1 after its window", g)
	}
	r.feed.rels = []Release{rel(2, "stable"), rel(1, "stable")}
	r.feed.cached[1] = true
	if out := r.a.Poll(ctx, PollOptions{}); out.Result != ResultUpdated || out.Loaded != 2 {
		t.Fatalf("second poll: %+v", out)
	}
	r.now = r.now.Add(10 * time.Second)
	warn := kmsg.ParseText(`[   12.000001] ------------[ cut here ]------------
[   12.000002] WARNING: CPU: 0 PID: 136 at fs/proc/cmdline.c:9 cmdline_proc_show+0x9/0xff0 [tt_v2]
[   12.000003] Modules linked in: tt_v2(OEK) virtio_net
[   12.000004] CPU: 0 PID: 136 Comm: cat Tainted: G           OE K    6.1.0-50-cloud-amd64 #1  Debian 6.1.176-1
[   12.000005] RIP: 0010:cmdline_proc_show+0x9/0xff0 [tt_v2]
[   12.000006] Call Trace:
[   12.000007]  <TASK>
[   12.000008]  seq_read_iter+0x11f/0x460
[   12.000009]  vfs_read+0x1f7/0x2e0
[   12.000010]  </TASK>
[   12.000011] ---[ end trace 0000000000000000 ]---
`)
	var d watch.Detector
	for _, rec := range warn {
		for _, p := range d.Add(rec) {
			r.a.Problem(ctx, p)
		}
	}
	ks := r.state(t)
	if !ks.IsBad(2) || ks.IsBad(1) {
		t.Errorf("bad = %+v, want 2 only", ks.Bad)
	}
	if ks.Loaded == nil || ks.Loaded.Version != 1 || !ks.Loaded.Confirmed {
		t.Errorf("loaded = %+v, want version 1 back, confirmed", ks.Loaded)
	}
	if want := []string{"apply tt_v1", "apply tt_v2", "remove tt_v1", "remove tt_v2", "apply tt_v1"}; !slices.Equal(r.lp.log, want) {
		t.Errorf("kernel calls = %q, want %q", r.lp.log, want)
	}
	// The next poll does not take 2 again.
	r.lp.log = nil
	if out := r.a.Poll(ctx, PollOptions{}); out.Result != ResultUpToDate || len(r.lp.log) > 0 {
		t.Errorf("poll after the rollback = %+v, calls %q; want up to date, nothing loaded", out, r.lp.log)
	}
	var kinds []string
	for _, e := range r.srv.events {
		kinds = append(kinds, string(e.Kind))
		if e.Kind == fleet.EventBugDetected && (len(e.Log) < 5 || !strings.HasPrefix(e.Log[0], "WARNING: ")) {
			t.Errorf("bug_detected log = %q, want the report's lines", e.Log)
		}
	}
	if want := []string{"applied", "applied", "bug_detected", "rolled_back", "applied"}; !slices.Equal(kinds, want) {
		t.Errorf("events = %q, want %q", kinds, want)
	}
}

// TestRecoverAfterCrashInWindow: a version loaded but never confirmed
// (the machine went down inside its window) is bad at the next start, and
// the boot-time pass brings back the last good one from the cache.
func TestRecoverAfterCrashInWindow(t *testing.T) {
	r := newRig(t, rel(1, "stable"))
	ctx := context.Background()
	r.a.Poll(ctx, PollOptions{})
	r.now = r.now.Add(2 * time.Minute)
	r.a.Confirm(ctx)
	r.feed.rels = []Release{rel(2, "stable"), rel(1, "stable")}
	r.a.Poll(ctx, PollOptions{})
	// Crash: a new agent, a kernel with no patches.
	r.lp.patches, r.lp.log = nil, nil
	r2 := *r
	r2.a = &Agent{Config: r.a.Config, Feed: r.feed, Patcher: r.lp, Reporter: r.srv, Outbox: r.a.Outbox, Store: r.a.Store,
		Release: r.a.Release, Now: r.a.Now}
	if err := r2.a.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if ks := r.state(t); !ks.IsBad(2) {
		t.Errorf("bad = %+v, want 2 (unconfirmed at the crash)", ks.Bad)
	}
	r.feed.cached[1] = true
	out := r2.a.Poll(ctx, PollOptions{Offline: true})
	if out.Result != ResultUpdated || out.Loaded != 1 {
		t.Errorf("boot-time poll = %+v, want version 1 re-applied", out)
	}
	if !slices.Equal(r.lp.log, []string{"apply tt_v1"}) {
		t.Errorf("kernel calls = %q", r.lp.log)
	}
}

// TestServerDown: reports wait in the outbox while the server is down and
// go out once it is back; patching goes on regardless.
func TestServerDown(t *testing.T) {
	r := newRig(t, rel(1))
	r.srv.down = true
	ctx := context.Background()
	if out := r.a.Poll(ctx, PollOptions{}); out.Result != ResultUpdated {
		t.Fatalf("poll with the server down: %+v", out)
	}
	if n, _ := r.a.Outbox.Len(); n != 1 {
		t.Errorf("outbox holds %d events, want 1", n)
	}
	r.srv.down = false
	r.a.Sync(ctx)
	if n, _ := r.a.Outbox.Len(); n != 0 || len(r.srv.events) != 1 || r.srv.events[0].Kind != fleet.EventApplied {
		t.Errorf("after the server came back: outbox %d, sent %+v", n, r.srv.events)
	}
}
