package watch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/kmsg"
)

// The kernel-log captures of internal/model/kmsg: real Debian 6.1 cloud
// kernel output from QEMU (see its testdata/README.md).
const fixtures = "../../model/kmsg/testdata"

func problemsIn(t *testing.T, name string) []Problem {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	var d Detector
	var out []Problem
	for _, r := range kmsg.ParseText(string(b)) {
		out = append(out, d.Add(r)...)
	}
	return append(out, d.Flush()...)
}

func TestDecideOnRealLogs(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	long := now.Add(-time.Hour) // loaded long before: outside the window
	recent := now.Add(-5 * time.Second)
	const window = time.Minute
	tests := []struct {
		name    string
		fixture string
		target  Target
		want    bool
		reason  string
	}{
		{"warning in a patched function", "warning-console.txt", Target{Patch: "tt_x", Funcs: []string{"provoke_warn"}, LoadedAt: long}, true, "WARNING in patched code"},
		{"warning in the patch module", "warning-console.txt", Target{Patch: "provoke", LoadedAt: long}, true, "in patched code"},
		{"warning elsewhere, long after", "warning-console.txt", Target{Patch: "tt_x", Funcs: []string{"cmdline_proc_show"}, LoadedAt: long}, false, ""},
		{"warning elsewhere, in the window", "warning-console.txt", Target{Patch: "tt_x", Funcs: []string{"cmdline_proc_show"}, LoadedAt: recent}, true, "within 1m0s of loading"},
		{"NULL dereference in a patched function", "oops-console.txt", Target{Patch: "tt_x", Funcs: []string{"provoke_oops"}, LoadedAt: long}, true, "in patched code"},
		{"oops elsewhere, long after", "oops-console.txt", Target{Patch: "tt_x", Funcs: []string{"cmdline_proc_show"}, LoadedAt: long}, false, ""},
		{"BUG_ON in a patched function", "bug-on-console.txt", Target{Patch: "tt_x", Funcs: []string{"provoke_bug"}, LoadedAt: long}, true, "BUG in patched code"},
		{"BUG_ON elsewhere, in the window", "bug-on-console.txt", Target{Patch: "tt_x", LoadedAt: recent}, true, "within"},
		{"soft lockup through a patched function", "soft-lockup-console.txt", Target{Patch: "tt_x", Funcs: []string{"provoke_spin"}, LoadedAt: long}, true, "soft lockup in patched code"},
		{"soft lockup elsewhere, in the window", "soft-lockup-console.txt", Target{Patch: "tt_x", Funcs: []string{"cmdline_proc_show"}, LoadedAt: recent}, false, ""},
		{"hung task, in the window", "hung-task-console.txt", Target{Patch: "tt_x", LoadedAt: recent}, false, ""},
		{"RCU stall elsewhere, in the window", "rcu-stall-console.txt", Target{Patch: "tt_x", Funcs: []string{"cmdline_proc_show"}, LoadedAt: recent}, false, ""},
		{"a clean livepatch life, in the window", "livepatch-console.txt", Target{Patch: "livepatch_sample", Funcs: []string{"cmdline_proc_show"}, LoadedAt: recent}, false, ""},
		{"a clean boot, in the window", "boot-console.txt", Target{Patch: "tt_x", LoadedAt: recent}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *Finding
			ps := problemsIn(t, tt.fixture)
			for _, p := range ps {
				if f, ok := Decide(p, []Target{tt.target}, window, now); ok && got == nil {
					got = &f
				}
			}
			if (got != nil) != tt.want {
				t.Fatalf("Decide over %s (%d problems) = %+v, want rollback %v", tt.fixture, len(ps), got, tt.want)
			}
			if got == nil {
				return
			}
			if got.Patch != tt.target.Patch || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("finding = %s: %q, want %s: …%q…", got.Patch, got.Reason, tt.target.Patch, tt.reason)
			}
			if len(got.Problem.Lines) < 5 {
				t.Errorf("finding carries %d log lines, want the report's", len(got.Problem.Lines))
			}
		})
	}
}

func TestDecideLivepatchError(t *testing.T) {
	now := time.Now()
	targets := []Target{{Patch: "p1", LoadedAt: now.Add(-time.Hour)}}
	tests := []struct {
		line string
		want bool
	}{
		{"livepatch: failed to enable patch 'p1'", true},
		{"livepatch: patch 'p1' failed for module 'ext4', refusing to load module 'ext4'", true},
		{"livepatch: failed to enable patch 'other'", false},
		{"livepatch: 'p1': patching complete", false},
	}
	for _, tt := range tests {
		var d Detector
		var got bool
		for _, p := range d.Add(kmsg.Record{Timestamped: true, Text: tt.line}) {
			_, ok := Decide(p, targets, time.Minute, now)
			got = got || ok
		}
		if got != tt.want {
			t.Errorf("Decide(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// TestUserRecordsIgnored: text user space writes into /dev/kmsg (facility
// user) is not the kernel's, however alarming.
func TestUserRecordsIgnored(t *testing.T) {
	recs, err := kmsg.ParseKmsg("12,900,9000000,-;WARNING: CPU: 0 PID: 1 at fake.c:1 cmdline_proc_show+0x1/0x2\n" +
		"12,901,9000001,-;livepatch: failed to enable patch 'p1'\n")
	if err != nil {
		t.Fatal(err)
	}
	var d Detector
	for _, r := range recs {
		if ps := d.Add(r); len(ps) > 0 {
			t.Errorf("Add(%q) = %+v, want nothing", r.Text, ps)
		}
	}
	if ps := d.Flush(); len(ps) > 0 {
		t.Errorf("Flush = %+v, want nothing", ps)
	}
}

// TestWatcherReadsRecords runs the watcher over the captured /dev/kmsg
// records (a regular file is read from its start).
func TestWatcherReadsRecords(t *testing.T) {
	w := &Watcher{Path: filepath.Join(fixtures, "kmsg-records.txt"), Idle: 10 * time.Millisecond}
	s, err := w.Open()
	if err != nil {
		t.Fatal(err)
	}
	var got []Problem
	if err := s.Run(context.Background(), func(p Problem) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	var warnings int
	for _, p := range got {
		if p.Kind == kmsg.KindWarning && p.Report.Involves("provoke", nil) {
			warnings++
		}
	}
	if warnings == 0 {
		t.Errorf("watcher found %d problems, none a WARNING in provoke: %+v", len(got), got)
	}
}

// TestWatcherStops: a watcher on a device that never speaks stops when
// its context ends.
func TestWatcherStops(t *testing.T) {
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skip("no /dev/kmsg")
	}
	s, err := (&Watcher{}).Open()
	if err != nil {
		t.Skipf("open /dev/kmsg: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(Problem) {}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after its context ended")
	}
}
