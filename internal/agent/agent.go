// Package agent is the fleet agent's logic: the poll that picks the
// newest good patch version for this kernel and ring from the signed
// archive and loads it, the rollback when the kernel log condemns a
// patch, the boot-time re-apply from the local cache, and the reports to
// the server. The parts it drives are packages of their own
// (livepatch, hoststate, watch, outbox, fleetclient); the archive comes in
// through the Feed interface.
//
// It links nothing of the server, the store, the generator or the front
// ends (internal/importrules).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/agent/hoststate"
	"github.com/tuxtape/tuxtape/internal/agent/livepatch"
	"github.com/tuxtape/tuxtape/internal/agent/outbox"
	"github.com/tuxtape/tuxtape/internal/agent/watch"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
)

// Release is one patch version the archive offers (the archive feed's
// record, as the agent needs it).
type Release struct {
	Kernel   string
	Module   string // the module, and livepatch, name
	PatchSet string
	Version  int64
	CVEs     []string
	Rings    []string
	Replaces int64
	// Handle is the feed's own record, for Fetch.
	Handle any
}

// Errors a Feed returns (wrapped) for the agent to decide on.
var (
	// ErrNoPatches: the archive has no version for this kernel.
	ErrNoPatches = errors.New("no patches for this kernel")
	// ErrVerify: the archive's metadata or a module failed verification;
	// the server hears of it (a network failure it does not).
	ErrVerify = errors.New("archive verification failed")
)

// Feed is the signed archive. Versions lists a kernel's versions, newest
// first; Fetch returns a verified local copy of one. Offline works from
// the local cache alone (boot).
type Feed interface {
	Versions(ctx context.Context, kernel string, offline bool) ([]Release, error)
	Fetch(ctx context.Context, r Release, offline bool) (string, error)
}

// Patcher is the kernel's livepatch interface (livepatch.Manager).
type Patcher interface {
	Supported() bool
	List() ([]livepatch.Patch, error)
	Apply(ctx context.Context, path, name string) (livepatch.Patch, error)
	Remove(ctx context.Context, name string) error
}

// Reporter is the server (fleetclient.Client).
type Reporter interface {
	Heartbeat(ctx context.Context, m fleet.Machine) error
	Report(ctx context.Context, machine string, es []fleet.Event) error
}

// Result is how a poll ended.
type Result string

// The poll results; status maps them to exit codes.
const (
	ResultUpToDate        Result = "up_to_date"
	ResultUpdated         Result = "updated"
	ResultUpdateAvailable Result = "update_available" // newer version, not loaded (kill switch)
	ResultNoPatches       Result = "no_patches"
	ResultUnsupported     Result = "unsupported"
	ResultDisabled        Result = "disabled"
	ResultFailed          Result = "apply_failed"
	ResultError           Result = "error"
)

// Config is what the agent is told.
type Config struct {
	MachineID, Hostname, AgentVersion string
	Ring                              string // "" takes every ring
	// Window is the rollback window after a load: any oops, BUG, warning
	// or livepatch error in it takes the patch out. Default 60 s.
	Window time.Duration
	// Cmdline is the kernel command line's text (the kill switch).
	Cmdline  string
	StateDir string
}

// Agent is one host's agent.
type Agent struct {
	Config  Config
	Feed    Feed
	Patcher Patcher
	// Reporter is the server; nil when none is configured.
	Reporter Reporter
	Outbox   *outbox.Queue
	Store    hoststate.Store
	Release  func() (string, error) // uname -r
	Now      func() time.Time
	Log      *slog.Logger

	mu      sync.Mutex
	targets []watch.Target
	state   fleet.State
}

func (a *Agent) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

func (a *Agent) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

func (a *Agent) window() time.Duration {
	if a.Config.Window <= 0 {
		return 60 * time.Second
	}
	return a.Config.Window
}

// Outcome is what a poll did.
type Outcome struct {
	Kernel string
	Result Result
	// Loaded is the version running now (0: none of ours).
	Loaded int64
	// Newest is the newest good version for this kernel and ring.
	Newest int64
	Err    error
}

// PollOptions shape one poll.
type PollOptions struct {
	// Offline works from the local cache (boot): it re-applies the last
	// good version and nothing newer.
	Offline bool
}

// Recover runs once when the agent starts: a version loaded but not yet
// through its rollback window means the machine (or the agent) went down
// inside it. Like the established clients, the agent then never loads
// that version again; if it is still loaded (the agent alone died), it is
// taken out.
func (a *Agent) Recover(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.Store.Load()
	if err != nil {
		return err
	}
	changed := false
	var events []fleet.Event
	for release, ks := range st.Kernels {
		if ks.Loaded == nil || ks.Loaded.Confirmed {
			continue
		}
		l := ks.Loaded
		reason := "the machine or the agent stopped within the rollback window after loading it"
		a.log().Warn("marking version bad", "kernel", release, "version", l.Version, "reason", reason)
		ks.MarkBad(hoststate.Bad{Version: l.Version, Module: l.Module, At: a.now(), Reason: reason})
		ks.Loaded = nil
		changed = true
		if kernel, _ := a.Release(); kernel == release && a.Patcher.Supported() {
			if p, err := a.find(l.Module); err == nil && p != nil {
				if err := a.Patcher.Remove(ctx, l.Module); err != nil {
					a.log().Error("remove unconfirmed patch", "patch", l.Module, "err", err)
				}
			}
		}
		events = append(events, fleet.Event{Kind: fleet.EventRolledBack, At: a.now(), Patch: l.Module,
			Detail: fmt.Sprintf("version %d: %s", l.Version, reason)})
	}
	if changed {
		if err := a.Store.Save(st); err != nil {
			return err
		}
		a.state = fleet.StateRolledBack
	}
	a.queue(events...)
	return nil
}

func (a *Agent) find(name string) (*livepatch.Patch, error) {
	ps, err := a.Patcher.List()
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Name == name {
			return &p, nil
		}
	}
	return nil, nil
}

// Poll runs one poll: kernel, livepatch state, archive, load if newer,
// then the heartbeat and the queued reports.
func (a *Agent) Poll(ctx context.Context, o PollOptions) Outcome {
	a.mu.Lock()
	out := a.poll(ctx, o)
	a.mu.Unlock()
	a.Sync(ctx)
	return out
}

func (a *Agent) poll(ctx context.Context, o PollOptions) Outcome {
	out := Outcome{}
	st, err := a.Store.Load()
	if err != nil {
		out.Result, out.Err = ResultError, err
		return out
	}
	finish := func() Outcome {
		p := &hoststate.Poll{At: a.now(), Kernel: out.Kernel, Result: string(out.Result), Newest: out.Newest}
		if out.Err != nil {
			p.Error = out.Err.Error()
		}
		// A boot-time pass sees only the cache: it says nothing about
		// what the archive offers now.
		if !o.Offline {
			st.LastPoll = p
		}
		if err := a.Store.Save(st); err != nil && out.Err == nil {
			out.Result, out.Err = ResultError, err
		}
		a.log().Info("poll", "kernel", out.Kernel, "result", out.Result, "loaded", out.Loaded, "newest", out.Newest, "err", out.Err)
		return out
	}
	if out.Kernel, err = a.Release(); err != nil {
		out.Result, out.Err = ResultError, fmt.Errorf("kernel release: %w", err)
		return finish()
	}
	if !a.Patcher.Supported() {
		out.Result, out.Err = ResultUnsupported, livepatch.ErrUnsupported
		return finish()
	}
	ks := st.Kernel(out.Kernel)
	if err := a.reconcile(ks); err != nil {
		out.Result, out.Err = ResultError, err
		return finish()
	}
	if ks.Loaded != nil {
		out.Loaded = ks.Loaded.Version
	}
	rels, err := a.Feed.Versions(ctx, out.Kernel, o.Offline)
	if errors.Is(err, ErrNoPatches) {
		out.Result = ResultNoPatches
		return finish()
	}
	if err != nil {
		out.Result, out.Err = ResultError, fmt.Errorf("archive: %w", err)
		return finish()
	}
	cand := Choose(rels, a.Config.Ring, ks)
	if cand == nil {
		out.Result = ResultNoPatches
		return finish()
	}
	out.Newest = cand.Version
	if o.Offline {
		// Boot: only what proved good before, never something new.
		cand = nil
		if ks.Good != nil {
			for i := range rels {
				if rels[i].Version == ks.Good.Version && !ks.IsBad(rels[i].Version) {
					cand = &rels[i]
				}
			}
		}
		if cand == nil {
			out.Result = ResultUpToDate
			return finish()
		}
	}
	if ks.Loaded != nil && cand.Version <= ks.Loaded.Version {
		out.Result = ResultUpToDate
		return finish()
	}
	if off, why := hoststate.Disabled(a.Config.Cmdline, a.Config.StateDir); off {
		a.log().Warn("kill switch on: not loading", "version", cand.Version, "why", why)
		out.Result = ResultDisabled
		if !o.Offline {
			out.Result = ResultUpdateAvailable
		}
		return finish()
	}
	path, err := a.Feed.Fetch(ctx, *cand, o.Offline)
	if err != nil {
		// Nothing was loaded: a fetch or verification failure is the
		// archive's or the network's, retried at the next poll.
		out.Result, out.Err = ResultError, fmt.Errorf("fetch version %d: %w", cand.Version, err)
		if errors.Is(err, ErrVerify) {
			a.queue(fleet.Event{Kind: fleet.EventApplyFailed, At: a.now(), Patch: cand.Module, Detail: outbox.ClipText(out.Err.Error(), fleet.MaxDetail)})
		}
		return finish()
	}
	confirmed := o.Offline // it proved good before this boot
	if err := a.apply(ctx, st, ks, *cand, path, confirmed); err != nil {
		out.Result, out.Err = ResultFailed, err
		if ks.Loaded != nil {
			out.Loaded = ks.Loaded.Version
		} else {
			out.Loaded = 0
		}
		return finish()
	}
	out.Result, out.Loaded = ResultUpdated, cand.Version
	return finish()
}

// Choose picks the newest version of rels (newest first) in ring that the
// host did not mark bad; nil when there is none.
func Choose(rels []Release, ring string, ks *hoststate.Kernel) *Release {
	for i := range rels {
		r := &rels[i]
		if ring != "" && len(r.Rings) > 0 && !slices.Contains(r.Rings, ring) {
			continue
		}
		if ks.IsBad(r.Version) {
			continue
		}
		return r
	}
	return nil
}

// reconcile drops what the state says is loaded when the kernel does not
// run it (a reboot, or an operator's rmmod), and refreshes the watched
// targets.
func (a *Agent) reconcile(ks *hoststate.Kernel) error {
	ps, err := a.Patcher.List()
	if err != nil {
		return err
	}
	a.targets = a.targets[:0]
	if ks.Loaded == nil {
		return nil
	}
	for _, p := range ps {
		if p.Name == ks.Loaded.Module && p.Enabled {
			a.targets = append(a.targets, target(p, ks.Loaded))
			return nil
		}
	}
	a.log().Info("patch no longer loaded", "patch", ks.Loaded.Module, "version", ks.Loaded.Version)
	ks.Loaded = nil
	return nil
}

// target is what the watcher guards for a loaded patch. A version that
// already proved good (the fallback, the boot-time re-apply) gets no
// rollback window: only trouble in its own code takes it out, not the
// aftermath of the bad version it replaced.
func target(p livepatch.Patch, l *hoststate.Applied) watch.Target {
	t := watch.Target{Patch: p.Name, Funcs: p.FuncNames()}
	if !l.Confirmed {
		t.LoadedAt = l.At
	}
	return t
}

// apply loads release r from path. The state says "loaded, unconfirmed"
// on disk before the module goes in, so that a crash during the load or
// the window marks the version bad at the next start.
func (a *Agent) apply(ctx context.Context, st *hoststate.State, ks *hoststate.Kernel, r Release, path string, confirmed bool) error {
	prev := ks.Loaded
	name := strings.TrimSuffix(r.Module, ".ko")
	if name == "" {
		return fmt.Errorf("version %d names no module", r.Version)
	}
	// A cumulative patch replaces its predecessor atomically, unless both
	// have the same module name: then the old one must go first (the
	// kernel refuses a second module of one name).
	if p, _ := a.find(name); p != nil {
		a.log().Warn("a patch of the same name is loaded; removing it first", "patch", name)
		if err := a.Patcher.Remove(ctx, name); err != nil {
			return fmt.Errorf("remove %s before loading version %d: %w", name, r.Version, err)
		}
	}
	now := a.now()
	ks.Loaded = &hoststate.Applied{Version: r.Version, Module: name, PatchSet: r.PatchSet, CVEs: r.CVEs, At: now, Confirmed: confirmed}
	if err := a.Store.Save(st); err != nil {
		ks.Loaded = prev
		return err
	}
	a.state = fleet.StatePatching
	a.log().Info("loading", "patch", name, "version", r.Version, "path", path)
	p, err := a.Patcher.Apply(ctx, path, name)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			// Stopped mid-apply: Recover sorts it out at the next start.
			return err
		}
		reason := err.Error()
		ks.MarkBad(hoststate.Bad{Version: r.Version, Module: name, At: a.now(), Reason: "apply failed: " + reason})
		ks.Loaded = nil
		if prev != nil {
			if pp, _ := a.find(prev.Module); pp != nil && pp.Enabled {
				ks.Loaded = prev
			}
		}
		a.state = fleet.StateFailed
		a.queue(fleet.Event{Kind: fleet.EventApplyFailed, At: a.now(), Patch: name, Detail: outbox.ClipText(fmt.Sprintf("version %d: %s", r.Version, reason), fleet.MaxDetail)})
		if err := a.Store.Save(st); err != nil {
			a.log().Error("save state", "err", err)
		}
		a.reconcile(ks)
		return fmt.Errorf("apply version %d: %w", r.Version, err)
	}
	// The replaced patch is out of the kernel's list; its module stays
	// loaded until unloaded.
	if prev != nil && prev.Module != name {
		if err := a.Patcher.Remove(ctx, prev.Module); err != nil {
			a.log().Warn("unload replaced patch", "patch", prev.Module, "err", err)
		}
	}
	a.targets = []watch.Target{target(p, ks.Loaded)}
	if confirmed {
		ks.Good = ks.Loaded
	}
	if err := a.Store.Save(st); err != nil {
		return err
	}
	a.state = fleet.StateOK
	detail := fmt.Sprintf("version %d", r.Version)
	if len(r.CVEs) > 0 {
		detail += ": " + strings.Join(r.CVEs, " ")
	}
	a.queue(fleet.Event{Kind: fleet.EventApplied, At: now, Patch: name, Detail: outbox.ClipText(detail, fleet.MaxDetail)})
	return nil
}

// ApplyFile loads a module file as version v, without the archive (the
// hidden load command: tests and debugging). The rollback window and the
// watcher treat it like any other load.
func (a *Agent) ApplyFile(ctx context.Context, path, module string, v int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.Store.Load()
	if err != nil {
		return err
	}
	kernel, err := a.Release()
	if err != nil {
		return err
	}
	ks := st.Kernel(kernel)
	if ks.IsBad(v) {
		return fmt.Errorf("version %d is marked bad on this host", v)
	}
	if off, why := hoststate.Disabled(a.Config.Cmdline, a.Config.StateDir); off {
		return fmt.Errorf("not loading: %s", why)
	}
	if err := a.reconcile(ks); err != nil {
		return err
	}
	return a.apply(ctx, st, ks, Release{Kernel: kernel, Module: module, Version: v}, path, false)
}

// WindowLeft is how long the newest load still has in its window (0: none
// in one).
func (a *Agent) WindowLeft() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	left := time.Duration(0)
	for _, t := range a.targets {
		if d := t.LoadedAt.Add(a.window()).Sub(a.now()); d > left {
			left = d
		}
	}
	return left
}

// Confirm marks a load that ran through its window as good.
func (a *Agent) Confirm(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.Store.Load()
	if err != nil {
		return err
	}
	kernel, err := a.Release()
	if err != nil {
		return err
	}
	ks := st.Kernel(kernel)
	l := ks.Loaded
	if l == nil || l.Confirmed || a.now().Sub(l.At) < a.window() {
		return nil
	}
	if p, _ := a.find(l.Module); p == nil || !p.Enabled {
		return nil // taken out meanwhile; the next poll sees it
	}
	l.Confirmed = true
	ks.Good = l
	a.log().Info("version confirmed good", "patch", l.Module, "version", l.Version)
	return a.Store.Save(st)
}

// Problem judges a kernel-log problem from the watcher and rolls back the
// patch it condemns.
func (a *Agent) Problem(ctx context.Context, p watch.Problem) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := watch.Decide(p, a.targets, a.window(), a.now())
	if !ok {
		a.log().Info("kernel problem, not ours", "kind", p.Kind, "line", p.Summary())
		return
	}
	a.log().Warn("rolling back", "patch", f.Patch, "reason", f.Reason)
	if err := a.rollback(ctx, f); err != nil {
		a.log().Error("roll back", "patch", f.Patch, "err", err)
	}
}

func (a *Agent) rollback(ctx context.Context, f watch.Finding) error {
	st, err := a.Store.Load()
	if err != nil {
		return err
	}
	kernel, err := a.Release()
	if err != nil {
		return err
	}
	ks := st.Kernel(kernel)
	now := a.now()
	logLines := clipLog(f.Problem.Lines)
	version := int64(-1)
	if ks.Loaded != nil && ks.Loaded.Module == f.Patch {
		version = ks.Loaded.Version
	}
	a.queue(fleet.Event{Kind: fleet.EventBugDetected, At: now, Patch: f.Patch, Detail: outbox.ClipText(f.Reason, fleet.MaxDetail), Log: logLines})
	// Mark it bad first: if removing it crashes the machine, it stays out.
	if version >= 0 {
		ks.MarkBad(hoststate.Bad{Version: version, Module: f.Patch, At: now, Reason: outbox.ClipText(f.Reason, 512)})
		if err := a.Store.Save(st); err != nil {
			return err
		}
	}
	rmErr := a.Patcher.Remove(ctx, f.Patch)
	a.targets = slices.DeleteFunc(a.targets, func(t watch.Target) bool { return t.Patch == f.Patch })
	if version >= 0 {
		ks.Loaded = nil
	}
	a.state = fleet.StateRolledBack
	detail := fmt.Sprintf("version %d taken out: %s", version, f.Reason)
	if rmErr != nil {
		detail += "; removing it failed: " + rmErr.Error()
	}
	a.queue(fleet.Event{Kind: fleet.EventRolledBack, At: a.now(), Patch: f.Patch, Detail: outbox.ClipText(detail, fleet.MaxDetail)})
	if err := a.Store.Save(st); err != nil {
		return err
	}
	if rmErr != nil {
		return rmErr
	}
	// Fall back to the last good version, from the local cache.
	if g := ks.Good; g != nil && !ks.IsBad(g.Version) {
		rels, err := a.Feed.Versions(ctx, kernel, true)
		if err != nil {
			return fmt.Errorf("fall back to version %d: %w", g.Version, err)
		}
		for _, r := range rels {
			if r.Version != g.Version {
				continue
			}
			path, err := a.Feed.Fetch(ctx, r, true)
			if err != nil {
				return fmt.Errorf("fall back to version %d: %w", g.Version, err)
			}
			err = a.apply(ctx, st, ks, r, path, true)
			// The machine runs its previous level again, but the
			// server should see that something was taken out.
			a.state = fleet.StateRolledBack
			return err
		}
		return fmt.Errorf("fall back to version %d: not in the local cache", g.Version)
	}
	return nil
}

func clipLog(lines []string) []string {
	if len(lines) > fleet.MaxLogLines {
		lines = lines[:fleet.MaxLogLines]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = outbox.ClipText(strings.ReplaceAll(l, "\x00", ""), fleet.MaxLogLine)
	}
	return out
}

func (a *Agent) queue(es ...fleet.Event) {
	if len(es) == 0 || a.Outbox == nil {
		return
	}
	for i := range es {
		es[i].Machine = a.Config.MachineID
	}
	if err := a.Outbox.Add(es...); err != nil {
		a.log().Error("queue report", "err", err)
	}
}

// Machine is the heartbeat: the kernel, the patches sysfs shows, the
// effective level and the CVEs it fixes.
func (a *Agent) Machine() (fleet.Machine, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := fleet.Machine{ID: a.Config.MachineID, Hostname: a.Config.Hostname, AgentVersion: a.Config.AgentVersion,
		Ring: a.Config.Ring, State: a.state}
	if m.State == "" {
		m.State = fleet.StateOK
	}
	kernel, err := a.Release()
	if err != nil {
		return m, err
	}
	m.Kernel = kernel
	st, err := a.Store.Load()
	if err != nil {
		return m, err
	}
	lvl := Level(st.Kernel(kernel), nil)
	if a.Patcher.Supported() {
		ps, err := a.Patcher.List()
		if err != nil {
			return m, err
		}
		lvl = Level(st.Kernel(kernel), ps)
	}
	m.Livepatch = lvl.Livepatch
	return m, nil
}

// PatchLevel is the effective patch level.
type PatchLevel struct {
	fleet.Livepatch
	Version int64 // ours that runs (0: none)
}

// Level says what runs: the patches, and ours if it is enabled and out of
// its transition.
func Level(ks *hoststate.Kernel, ps []livepatch.Patch) PatchLevel {
	var lv PatchLevel
	lv.Patches = []fleet.Patch{}
	lv.CVEs = []string{}
	for _, p := range ps {
		fp := fleet.Patch{Name: p.Name, Enabled: p.Enabled, Transition: p.Transition}
		if l := ks.Loaded; l != nil && l.Module == p.Name {
			fp.Version = strconv.FormatInt(l.Version, 10)
			if p.Enabled && !p.Transition {
				lv.Version = l.Version
				lv.Level = l.Module + "@" + fp.Version
				lv.CVEs = append(lv.CVEs, l.CVEs...)
			}
		}
		lv.Patches = append(lv.Patches, fp)
	}
	return lv
}

// Sync sends the heartbeat and the queued reports. A server that is down
// only delays them.
func (a *Agent) Sync(ctx context.Context) {
	if a.Reporter == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := a.Machine()
	if err != nil {
		a.log().Warn("heartbeat", "err", err)
		return
	}
	if err := a.Reporter.Heartbeat(ctx, m); err != nil {
		a.log().Warn("server unreachable; reports stay queued", "err", err)
		return
	}
	if a.Outbox == nil {
		return
	}
	n, err := a.Outbox.Flush(ctx, func(ctx context.Context, es []fleet.Event) error {
		return a.Reporter.Report(ctx, a.Config.MachineID, es)
	})
	if err != nil {
		a.log().Warn("report", "sent", n, "err", err)
	}
}
