package dash

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tuxtape/tuxtape/internal/analysis/priority"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/service"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// now is the tests' clock: machines' "last seen" and event times are
// relative to it.
var now = time.Date(2026, 12, 1, 23, 5, 0, 0, time.UTC)

// fakeSource answers from records cut from a real sync of the CNA bundle
// (testdata/cves.json: `tuxtape cve list --kernel tiny --profile none
// --sort priority --json` and `cve show`), the kernels of that server
// (testdata/kernels.json) and its event stream (testdata/events.jsonl),
// with the query semantics the server has: kernel, needs action, tier,
// status, text, limit.
type fakeSource struct {
	mu       sync.Mutex
	cves     []service.CVE
	kernels  []service.KernelView
	machines []service.MachineDetail
	events   []event.Event
	queries  []service.CVEQuery
	calls    map[string]int
	watchErr error // what Watch returns once it has sent the events
	afters   []int64

	// The patch workflow's records (workflow_test.go).
	wf workflow
	// The kernels added (kernels_test.go).
	added []service.AddKernelOptions
}

func newFake(t *testing.T) *fakeSource {
	t.Helper()
	f := &fakeSource{calls: map[string]int{}}
	readJSON(t, "cves.json", &f.cves)
	readJSON(t, "kernels.json", &f.kernels)
	file, err := os.Open(filepath.Join("testdata", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		f.events = append(f.events, e)
	}
	// The machine TestFleet's agent reports, with its kernel log line
	// that would retitle the terminal, and a silent one.
	f.machines = []service.MachineDetail{
		{Machine: fleet.Machine{ID: "host-1", Hostname: "web-1.example", Kernel: "6.1.0-28-amd64", AgentVersion: "0.1", Ring: "canary",
			State: fleet.StateOK, LastSeen: now.Add(-40 * time.Second), Livepatch: fleet.Livepatch{Level: "tt-6.1.119-3", CVEs: []string{"CVE-2025-21703"},
				Patches: []fleet.Patch{{Name: "livepatch_tt_6_1_119_3", Version: "3", Enabled: true}}}},
			Events: []fleet.Event{{Machine: "host-1", Kind: fleet.EventBugDetected, At: now.Add(-time.Minute), Patch: "livepatch_tt_6_1_119_3",
				Detail: "oops after apply", Log: []string{"BUG: kernel NULL pointer dereference \x1b]0;pwned\x07"}}}},
		{Machine: fleet.Machine{ID: "host-2", Hostname: "db-1.example", Kernel: "6.1.0-28-amd64", AgentVersion: "0.1",
			State: fleet.StateStale, LastSeen: now.Add(-3 * time.Hour), Livepatch: fleet.Livepatch{CVEs: []string{}}}},
	}
	f.wf = newWorkflow(t)
	f.kernelJobs()
	return f
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func (f *fakeSource) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

func (f *fakeSource) lastQuery() service.CVEQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return service.CVEQuery{}
	}
	return f.queries[len(f.queries)-1]
}

func (f *fakeSource) ListCVEs(ctx context.Context, q service.CVEQuery) (*service.CVEList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["ListCVEs"]++
	f.queries = append(f.queries, q)
	out := &service.CVEList{CVEs: []service.CVE{}, Summary: &service.VerdictSummary{By: map[string]int{}}}
	minTier, _ := priority.ParseTier(q.Tier)
	for _, c := range f.cves {
		if q.Kernel != "" && c.Verdict != nil {
			v := *c.Verdict
			v.Kernel = q.Kernel
			c.Verdict = &v
			out.Summary.Total++
			key := string(v.Status)
			if !v.Counts() {
				key += " (" + string(v.Reason) + ")"
			}
			out.Summary.By[key]++
		}
		if q.Affected && (c.Verdict == nil || !c.Verdict.Counts()) {
			continue
		}
		if t, _ := priority.ParseTier(c.Priority.Tier); q.Tier != "" && t < minTier {
			continue
		}
		if q.Status != "" && c.Status != string(q.Status) {
			continue
		}
		if q.Text != "" && !strings.Contains(strings.ToLower(strings.Join(append([]string{c.ID, c.Title, c.Description}, c.ProgramFiles...), "\n")), strings.ToLower(q.Text)) {
			continue
		}
		out.CVEs = append(out.CVEs, c)
	}
	slices.SortStableFunc(out.CVEs, func(a, b service.CVE) int {
		if a.Priority.Score != b.Priority.Score {
			if a.Priority.Score > b.Priority.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	if q.Limit > 0 && len(out.CVEs) > q.Limit {
		out.CVEs = out.CVEs[:q.Limit]
	}
	return out, nil
}

func (f *fakeSource) ShowCVE(ctx context.Context, id string, o service.ShowOptions) (*service.CVE, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["ShowCVE"]++
	for _, c := range f.cves {
		if c.ID == id {
			return &c, nil
		}
	}
	return nil, fmt.Errorf("cve %s: not found", id)
}

func (f *fakeSource) Kernels(ctx context.Context) ([]service.KernelView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Kernels"]++
	return slices.Clone(f.kernels), nil
}

func (f *fakeSource) Kernel(ctx context.Context, name string) (service.KernelView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Kernel"]++
	for _, k := range f.kernels {
		if k.Name == name {
			return k, nil
		}
	}
	return service.KernelView{}, fmt.Errorf("kernel %s: not found", name)
}

func (f *fakeSource) ListMachines(ctx context.Context, q service.MachineQuery) ([]fleet.Machine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["ListMachines"]++
	var out []fleet.Machine
	for _, d := range f.machines {
		if q.State == "" || d.State == q.State {
			out = append(out, d.Machine)
		}
	}
	return out, nil
}

func (f *fakeSource) Machine(ctx context.Context, id string, events int) (service.MachineDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Machine"]++
	for _, d := range f.machines {
		if d.ID == id {
			return d, nil
		}
	}
	return service.MachineDetail{}, fmt.Errorf("machine %s: not found", id)
}

func (f *fakeSource) Watch(ctx context.Context, o service.WatchOptions, fn func(event.Event) error) error {
	f.mu.Lock()
	f.calls["Watch"]++
	f.afters = append(f.afters, o.After)
	var send []event.Event
	for _, e := range f.events {
		if o.After >= 0 && e.Seq > o.After {
			send = append(send, e)
		}
	}
	err := f.watchErr
	f.watchErr = nil
	f.mu.Unlock()
	for _, e := range send {
		if err := fn(e); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// driver runs a model the way Bubble Tea does, synchronously: each
// command's message goes back to Update until none is left. Timers (the
// spinner's ticks, the cursor's blink) are dropped: a command that has
// not answered within a moment is one.
type driver struct {
	t    *testing.T
	m    *Model
	quit bool
	// late are the commands that did not answer in time (timers, and
	// work slower than a moment: until waits for the latter).
	late []chan tea.Msg
}

func newDriver(t *testing.T, src Source, w, h int) *driver {
	t.Helper()
	m := New(t.Context(), src, Options{Profile: service.ProfileNone, Now: func() time.Time { return now }, Location: time.UTC})
	d := &driver{t: t, m: m}
	d.send(tea.WindowSizeMsg{Width: w, Height: h})
	d.run(m.Init())
	return d
}

func (d *driver) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	got := make(chan tea.Msg, 1)
	go func() { got <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-got:
	case <-time.After(100 * time.Millisecond):
		d.late = append(d.late, got)
		return
	}
	d.deliver(msg)
}

// until delivers the late commands' answers as they come, until done
// says so or limit passes.
func (d *driver) until(done func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			return false
		}
		late := d.late
		d.late = nil
		for _, ch := range late {
			select {
			case msg := <-ch:
				d.deliver(msg)
			default:
				d.late = append(d.late, ch)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (d *driver) deliver(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil, spinner.TickMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	case tea.QuitMsg:
		d.quit = true
	default:
		d.send(msg)
	}
}

func (d *driver) send(msg tea.Msg) {
	_, cmd := d.m.Update(msg)
	d.run(cmd)
}

// keys types each key: a name (enter, esc, tab, shift+tab) or text;
// pasted(s) pastes s.
func (d *driver) keys(keys ...string) {
	for _, k := range keys {
		if s, ok := strings.CutPrefix(k, pastePrefix); ok {
			d.send(tea.PasteMsg{Content: s})
			continue
		}
		d.send(keyPress(k))
	}
}

// pastePrefix marks a "key" that is pasted text.
const pastePrefix = "\x00paste:"

func pasted(s string) string { return pastePrefix + s }

func keyPress(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// screen is what a terminal shows: the styles taken out, trailing blanks
// trimmed.
func (d *driver) screen() string {
	lines := strings.Split(ansi.Strip(d.m.Render()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestQueueQueries(t *testing.T) {
	base := service.CVEQuery{Kernel: "tiny", Affected: true, Sort: "priority", Limit: queueLimit, Profile: service.ProfileNone}
	tests := []struct {
		name string
		keys []string
		want func(q *service.CVEQuery)
	}{
		{"start", nil, func(q *service.CVEQuery) {}},
		{"tier critical", []string{"t"}, func(q *service.CVEQuery) { q.Tier = "critical" }},
		{"tier medium", []string{"t", "t", "t"}, func(q *service.CVEQuery) { q.Tier = "medium" }},
		{"tier back to any", []string{"t", "t", "t", "t", "t"}, func(q *service.CVEQuery) {}},
		{"all verdicts", []string{"a"}, func(q *service.CVEQuery) { q.Affected = false }},
		{"status", []string{"s", "s"}, func(q *service.CVEQuery) { q.Status = "rejected" }},
		{"next kernel", []string{"K"}, func(q *service.CVEQuery) { q.Kernel = "tiny2" }},
		{"kernels wrap", []string{"K", "K"}, func(q *service.CVEQuery) {}},
		{"profile", []string{"p"}, func(q *service.CVEQuery) { q.Profile = service.ProfileAuto }},
		{"search", []string{"/", "n", "e", "t", "e", "m", "enter"}, func(q *service.CVEQuery) { q.Text = "netem" }},
		{"search keeps q and digits as text", []string{"/", "q", "1", "enter"}, func(q *service.CVEQuery) { q.Text = "q1" }},
		{"search cancelled", []string{"/", "x", "esc"}, func(q *service.CVEQuery) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			d := newDriver(t, f, 80, 24)
			d.keys(tt.keys...)
			want := base
			tt.want(&want)
			if got := f.lastQuery(); !queryEqual(got, want) {
				t.Errorf("after %q: ListCVEs(%+v), want %+v", tt.keys, got, want)
			}
			if d.quit {
				t.Errorf("after %q: the dashboard quit", tt.keys)
			}
		})
	}
}

func queryEqual(a, b service.CVEQuery) bool {
	return a.Kernel == b.Kernel && a.Affected == b.Affected && a.Sort == b.Sort && a.Tier == b.Tier && a.Status == b.Status &&
		a.Text == b.Text && a.Limit == b.Limit && a.Profile == b.Profile
}

// TestPages walks the pages and compares each screen with its golden
// file, at the smallest size the dashboard promises and a larger one.
func TestPages(t *testing.T) {
	walks := []struct {
		name string
		keys []string
	}{
		{"queue", nil},
		{"queue-all-high", []string{"a", "t", "t"}},
		{"queue-search", []string{"/", "n", "e", "t", "e", "m", "enter"}},
		{"queue-search-typing", []string{"a", "/", "s", "c", "h"}},
		{"queue-empty", []string{"/", "n", "o", "-", "s", "u", "c", "h", "enter"}},
		{"cve", []string{"a", "/", "2", "1", "7", "0", "3", "enter", "enter"}},
		{"cve-scrolled", []string{"enter", "f"}},
		{"cve-none", []string{"2"}},
		{"fleet", []string{"3"}},
		{"machine", []string{"3", "enter"}},
		{"kernels", []string{"4"}},
		{"kernel", []string{"tab", "tab", "tab", "down", "enter"}},
		{"kernel-add", keysOf([]string{"4", "n"}, typed("cloud"), []string{"tab"}, []string{pasted("6.1.0-50-cloud-amd64")}, []string{"tab"},
			[]string{pasted("debian:linux-source-6.1=6.1.176-1")}, []string{"tab", "tab"})},
		{"kernel-add-refused", keysOf([]string{"4", "n"}, typed("tiny"), []string{"tab"}, []string{pasted("6.1.176-tiny")}, []string{"tab"},
			[]string{pasted("https://example.org/linux-6.1.176.tar.xz")}, []string{"tab", "tab", "enter", "enter"})},
		{"kernel-where", keysOf([]string{"4", "enter", "/"}, typed("isofs"), []string{"enter"})},
		{"kernel-where-none", keysOf([]string{"4", "enter", "/"}, typed("fs/ext4/inode.c"), []string{"enter"})},
		{"kernel-jobs", []string{"4", "enter", "b"}},
		{"kernel-job-log", []string{"4", "enter", "b", "down", "down", "down", "enter"}},
		{"kernel-config-name", []string{"4", "c"}},
		{"kernel-config-fetching", []string{"4", "down", "c", "enter", "enter"}},
		{"cve-fix", keysOf(toCVE, []string{"p"}, typed("testdata/CVE-2026-64317.patch"), []string{"enter", "2"})},
		{"events", []string{"5"}},
		{"help", []string{"?"}},
		{"patch-list", []string{"6"}},
		{"patch-ask", keysOf(toCVE, []string{"p"})},
		{"patch-building", keysOf(toCVE, []string{"p"}, typed("testdata/CVE-2026-64317.patch"), []string{"enter"})},
		{"patch-vetted", []string{"6", "enter"}},
		{"patch-refused", []string{"6", "down", "enter"}},
		{"review-list", []string{"7"}},
		{"review", []string{"7", "enter"}},
		{"review-comment", keysOf([]string{"7", "enter", "a"}, typed("bounds check is right"))},
		{"review-help", []string{"7", "enter", "?"}},
		{"publish", []string{"8"}},
		{"publish-set", []string{"8", "down", "enter"}},
	}
	// Walks that end with menuconfig's source still on its way (a query
	// in flight).
	fetching := map[string]bool{"kernel-config-fetching": true}
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		for _, wk := range walks {
			name := fmt.Sprintf("%s-%dx%d", wk.name, size[0], size[1])
			t.Run(name, func(t *testing.T) {
				f := newFake(t)
				// A source tree that is on its way until the test ends.
				d := kernelDriver(t, f, size[0], size[1], func(ctx context.Context, k *kernel.Kernel) (string, error) {
					<-ctx.Done()
					return "", ctx.Err()
				})
				for _, e := range f.events {
					d.send(eventMsg{e})
				}
				d.keys(wk.keys...)
				d.settle()
				if d.m.loading != 0 && !fetching[wk.name] {
					t.Errorf("%d queries in flight after the walk", d.m.loading)
				}
				raw := d.m.Render()
				checkFrame(t, raw, size[0], size[1])
				golden(t, name, d.screen())
			})
		}
	}
}

// checkFrame: exactly the window's lines, none wider than it.
func checkFrame(t *testing.T, raw string, w, h int) {
	t.Helper()
	lines := strings.Split(raw, "\n")
	if len(lines) != h {
		t.Errorf("screen has %d lines; the window %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide; the window %d: %q", i+1, n, w, ansi.Strip(l))
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("screen differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestEventsReload: a sync finishing and a kernel change make the queue
// ask again (a kernel change the kernels first); other events do not.
func TestEventsReload(t *testing.T) {
	tests := []struct {
		kind    event.Kind
		subject string
		keys    []string // where the user is when it comes
		// the calls it makes
		queries, kernels, cves, machines, machine int
	}{
		{kind: event.SyncFinished, queries: 1},
		{kind: event.SyncFinished, keys: []string{"enter"}, queries: 1, cves: 1},
		{kind: event.SyncStarted},
		{kind: event.KernelAdded, queries: 1, kernels: 1},
		{kind: event.KernelRemoved, queries: 1, kernels: 1},
		{kind: "fleet.applied", subject: "host-1"},
		{kind: "fleet.applied", subject: "host-1", keys: []string{"3"}, machines: 1},
		{kind: "fleet.applied", subject: "host-1", keys: []string{"3", "enter"}, machine: 1},
		{kind: "fleet.applied", subject: "host-2", keys: []string{"3", "enter"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s after %q", tt.kind, tt.subject, tt.keys), func(t *testing.T) {
			f := newFake(t)
			d := newDriver(t, f, 80, 24)
			d.keys(tt.keys...)
			calls := func() []int {
				return []int{f.count("ListCVEs"), f.count("Kernels"), f.count("ShowCVE"), f.count("ListMachines"), f.count("Machine")}
			}
			before := calls()
			d.send(eventMsg{event.Event{Seq: 9, At: now, Kind: tt.kind, Subject: tt.subject}})
			got := calls()
			for i := range got {
				got[i] -= before[i]
			}
			if want := []int{tt.queries, tt.kernels, tt.cves, tt.machines, tt.machine}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("calls (ListCVEs, Kernels, ShowCVE, ListMachines, Machine) = %v, want %v", got, want)
			}
			if d.m.events.events[len(d.m.events.events)-1].Seq != 9 {
				t.Error("the event is not in the feed")
			}
		})
	}
}

// TestNonBlocking: an event's reload is a command, run by Bubble Tea
// apart from Update: Update returns at once even when the server is slow,
// and the keys keep working meanwhile.
func TestNonBlocking(t *testing.T) {
	slow := &slowSource{fakeSource: newFake(t), release: make(chan struct{})}
	defer close(slow.release)
	m := newDriver(t, slow.fakeSource, 80, 24).m
	m.src = slow
	done := make(chan tea.Cmd, 1)
	go func() {
		_, cmd := m.Update(eventMsg{event.Event{Seq: 1, At: now, Kind: event.SyncFinished}})
		m.Update(keyPress("3"))
		done <- cmd
	}()
	var cmd tea.Cmd
	select {
	case cmd = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Update blocked on a query")
	}
	if m.page != pageFleet || m.loading == 0 {
		t.Errorf("after the event and a key: page %d, %d queries in flight; want the fleet page, loading", m.page, m.loading)
	}
	if !strings.Contains(ansi.Strip(m.Render()), "|") {
		t.Errorf("no spinner while loading:\n%s", ansi.Strip(m.Render()))
	}
	if cmd == nil {
		t.Error("sync.finished gave no reload")
	}
}

type slowSource struct {
	*fakeSource
	release chan struct{}
}

func (s *slowSource) ListCVEs(ctx context.Context, q service.CVEQuery) (*service.CVEList, error) {
	<-s.release
	return s.fakeSource.ListCVEs(ctx, q)
}

// TestStaleAnswer: an answer to a query the filters have replaced is
// dropped, whatever order the answers come in.
func TestStaleAnswer(t *testing.T) {
	f := newFake(t)
	d := newDriver(t, f, 80, 24)
	first := d.m.queue.load(d.m)
	second := d.m.queue.load(d.m)
	// Take the answers by hand and deliver the newer query's first.
	a1 := runQuery(t, first)
	a2 := runQuery(t, second)
	all, narrow := a1.(cvesMsg), a2.(cvesMsg)
	narrow.list = &service.CVEList{CVEs: all.list.CVEs[:1], Summary: all.list.Summary}
	d.send(narrow)
	d.send(all)
	if n := len(d.m.queue.list.CVEs); n != 1 {
		t.Errorf("the older query's answer replaced the newer one's: %d CVEs shown, want 1", n)
	}
}

// runQuery runs the query inside a command made by Model.query (it may be
// batched with the spinner's tick).
func runQuery(t *testing.T, cmd tea.Cmd) tea.Msg {
	t.Helper()
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		for _, c := range b {
			if m := c(); m != nil {
				if _, tick := m.(spinner.TickMsg); !tick {
					return m
				}
			}
		}
		t.Fatal("no query in the batch")
	}
	return msg
}

// TestEscapes: text from outside (a CVE record, a kernel log line, an
// event's detail) reaches the screen escaped, never as a control
// sequence.
func TestEscapes(t *testing.T) {
	const evil = "\x1b]0;pwned\x07"
	f := newFake(t)
	f.cves[0].Title = evil + f.cves[0].Title
	f.cves[0].Description += evil
	f.cves[0].ProgramFiles = []string{"net/" + evil + "/x.c"}
	d := newDriver(t, f, 120, 40)
	d.send(eventMsg{event.Event{Seq: 7, At: now, Kind: event.KernelAdded, Subject: "k" + evil, Detail: evil}})
	for _, keys := range [][]string{{"a"}, {"enter"}, {"3", "enter"}, {"5"}} {
		d.keys(keys...)
		raw := d.m.Render()
		if strings.Contains(raw, "\x1b]") || strings.Contains(raw, "\x07") {
			t.Errorf("after %q the screen holds a raw OSC sequence:\n%q", keys, raw)
		}
		if !strings.Contains(ansi.Strip(raw), `\e]0;pwned\x07`) {
			t.Errorf("after %q the escaped text is not shown:\n%s", keys, ansi.Strip(raw))
		}
	}
}

func TestResizeAndQuit(t *testing.T) {
	f := newFake(t)
	d := newDriver(t, f, 80, 24)
	if cols := len(d.m.queue.rows.t.Columns()); cols != 7 {
		t.Errorf("80 columns: %d table columns, want 7", cols)
	}
	d.send(tea.WindowSizeMsg{Width: 132, Height: 50})
	checkFrame(t, d.m.Render(), 132, 50)
	if cols := d.m.queue.rows.t.Columns(); len(cols) != 8 || cols[6].Title != "TITLE" {
		t.Errorf("132 columns: %v, want a TITLE column", cols)
	}
	if got := d.m.queue.rows.t.Cursor(); got != 0 {
		t.Errorf("cursor after resize: %d", got)
	}
	d.send(tea.WindowSizeMsg{Width: 50, Height: 10})
	if s := d.screen(); !strings.Contains(s, "needs at least 60×12") {
		t.Errorf("50×10: %q", s)
	}
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	d.keys("/", "q")
	if d.quit {
		t.Error("q in the search line quit")
	}
	d.keys("esc", "q")
	if !d.quit {
		t.Error("q did not quit")
	}
	d2 := newDriver(t, f, 80, 24)
	d2.keys("/", "ctrl+c")
	if !d2.quit {
		t.Error("ctrl+c in the search line did not quit")
	}
}

// TestFollow: the follower sends the stream's events, and after a broken
// stream resumes after the last one it saw.
func TestFollow(t *testing.T) {
	f := newFake(t)
	f.watchErr = errors.New("connection reset")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	feed := make(chan tea.Msg)
	go follow(ctx, f, 0, time.Millisecond, feed)
	var got []string
	for len(got) < len(f.events)+3 {
		switch msg := (<-feed).(type) {
		case eventMsg:
			got = append(got, fmt.Sprint(msg.e.Seq))
		case feedMsg:
			got = append(got, fmt.Sprint("feed:", msg.err))
		}
	}
	want := []string{"feed:<nil>", "1", "2", "3", "4", "feed:event stream: connection reset", "feed:<nil>"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("follow sent %q, want %q", got, want)
	}
	// Resumed after the last event seen: nothing is sent twice.
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.afters) != "[0 4]" {
		t.Errorf("Watch called after %v, want [0 4]", f.afters)
	}
}

func TestSubsystem(t *testing.T) {
	tests := []struct {
		files []string
		want  string
	}{
		{nil, "-"},
		{[]string{"net/core/dev.c"}, "net/core"},
		{[]string{"net/netfilter/ipvs/ip_vs_xmit.c", "x/y.c"}, "net/netfilter"},
		{[]string{"drivers/net/wireless/ath/ath11k/dp_rx.c"}, "drivers/net/wireless"},
		{[]string{"drivers/iommu/intel/dmar.c"}, "drivers/iommu/intel"},
		{[]string{"kernel/fork.c"}, "kernel"},
		{[]string{"Makefile"}, "Makefile"},
	}
	for _, tt := range tests {
		if got := subsystem(tt.files); got != tt.want {
			t.Errorf("subsystem(%q) = %q, want %q", tt.files, got, tt.want)
		}
	}
}

func TestTabs(t *testing.T) {
	tests := []struct {
		keys []string
		want page
	}{
		{nil, pageQueue},
		{[]string{"tab"}, pageCVE},
		{[]string{"shift+tab"}, pagePublish},
		{[]string{"tab", "tab", "tab", "tab", "tab"}, pagePatch},
		{[]string{"tab", "tab", "tab", "tab", "tab", "tab", "tab", "tab"}, pageQueue},
		{[]string{"6"}, pagePatch},
		{[]string{"7"}, pageReview},
		{[]string{"8"}, pagePublish},
		{[]string{"8", "esc"}, pagePublish},
		{[]string{"4"}, pageKernels},
		{[]string{"5", "1"}, pageQueue},
		{[]string{"enter"}, pageCVE},
		{[]string{"enter", "esc"}, pageQueue},
		{[]string{"3", "enter", "esc"}, pageFleet},
		{[]string{"/", "3", "enter"}, pageQueue},
	}
	for _, tt := range tests {
		d := newDriver(t, newFake(t), 80, 24)
		d.keys(tt.keys...)
		if d.m.page != tt.want {
			t.Errorf("after %q: page %s, want %s", tt.keys, pageNames[d.m.page], pageNames[tt.want])
		}
	}
}

// TestReloadsCoalesce: a burst of events (a replay of the stream) costs
// one query and one more for what came meanwhile, not one per event.
func TestReloadsCoalesce(t *testing.T) {
	f := newFake(t)
	d := newDriver(t, f, 80, 24)
	k0, q0 := f.count("Kernels"), f.count("ListCVEs")
	var cmds []tea.Cmd
	for i := range 5 {
		_, cmd := d.m.Update(eventMsg{event.Event{Seq: int64(10 + i), At: now, Kind: event.KernelAdded, Subject: fmt.Sprint("k", i)}})
		if cmd != nil {
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) != 1 {
		t.Fatalf("5 kernel events gave %d queries at once, want 1", len(cmds))
	}
	d.run(cmds[0])
	if k, q := f.count("Kernels")-k0, f.count("ListCVEs")-q0; k != 2 || q != 1 {
		t.Errorf("5 kernel events: %d kernel and %d queue queries, want 2 and 1", k, q)
	}
	if d.m.kernelsBusy || d.m.queue.busy || d.m.loading != 0 {
		t.Errorf("after the burst: busy %v %v, %d loading", d.m.kernelsBusy, d.m.queue.busy, d.m.loading)
	}
}
