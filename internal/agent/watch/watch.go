// Package watch reads the kernel log (/dev/kmsg) as the agent runs and
// decides when a livepatch must come out again: an Oops, BUG, WARNING or
// general protection fault whose RIP or call trace names a patched
// function or the patch module, a livepatch error, or any of those within
// the rollback window after a patch was loaded. Parsing is
// internal/model/kmsg's; this package groups streamed records into
// problems and judges them.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/kmsg"
	"golang.org/x/sys/unix"
)

// DefaultPath is the kernel log device.
const DefaultPath = "/dev/kmsg"

// Problem is a kernel report (an oops, warning, …) or a livepatch error
// line, with its log lines.
type Problem struct {
	Kind   kmsg.Kind
	Report *kmsg.Report // nil for a livepatch error line
	Patch  string       // the patch a livepatch error names
	Lines  []string
}

// Summary is the problem's first line.
func (p Problem) Summary() string {
	if len(p.Lines) == 0 {
		return p.Kind.String()
	}
	if p.Report != nil && p.Report.Header != "" {
		return p.Report.Header
	}
	return p.Lines[0]
}

// Target is a loaded livepatch the watcher guards.
type Target struct {
	Patch    string    // the livepatch (and module) name
	Funcs    []string  // the functions it replaces, bare names
	LoadedAt time.Time // when it was loaded (the agent's clock)
}

// Finding is a decision to roll a patch back.
type Finding struct {
	Patch   string
	Reason  string
	Problem Problem
}

// rollbackKind: the kinds that take a patch out. A hung task or lockup is
// not one by itself (the kernel has them without any patch), unless its
// trace runs through the patch (see Decide).
func rollbackKind(k kmsg.Kind) bool {
	switch k {
	case kmsg.KindOops, kmsg.KindBUG, kmsg.KindWarning, kmsg.KindGPF, kmsg.KindPanic, kmsg.KindLivepatchError:
		return true
	}
	return false
}

// Decide says which target, if any, problem p condemns at now: the one its
// trace or error names; else, for an oops, BUG, warning or livepatch
// error, the newest target still within window of its loading.
func Decide(p Problem, targets []Target, window time.Duration, now time.Time) (Finding, bool) {
	for _, t := range targets {
		switch {
		case p.Report != nil && p.Report.Involves(t.Patch, t.Funcs):
			return Finding{Patch: t.Patch, Problem: p,
				Reason: fmt.Sprintf("%s in patched code (%s)", p.Kind, strings.TrimSpace(p.Summary()))}, true
		case p.Kind == kmsg.KindLivepatchError && p.Patch != "" && normName(p.Patch) == normName(t.Patch):
			return Finding{Patch: t.Patch, Problem: p, Reason: "livepatch error: " + strings.TrimSpace(p.Summary())}, true
		}
	}
	if !rollbackKind(p.Kind) {
		return Finding{}, false
	}
	var newest *Target
	for i, t := range targets {
		if window > 0 && now.Sub(t.LoadedAt) <= window && (newest == nil || t.LoadedAt.After(newest.LoadedAt)) {
			newest = &targets[i]
		}
	}
	if newest == nil {
		return Finding{}, false
	}
	return Finding{Patch: newest.Patch, Problem: p,
		Reason: fmt.Sprintf("%s within %v of loading (%s)", p.Kind, window, strings.TrimSpace(p.Summary()))}, true
}

func normName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// Detector groups streamed kernel records into problems.
type Detector struct {
	pending []kmsg.Record
}

// maxPending bounds the records held for a report still open.
const maxPending = 2 * kmsg.MaxReportLines

// Add takes the next record and returns the problems it completes.
// Records user space wrote into the log (facility other than the
// kernel's) are ignored: only root can write there, but a script's
// "WARNING:" is not the kernel's.
func (d *Detector) Add(r kmsg.Record) []Problem {
	if r.Facility != kmsg.FacilityKernel || !r.Timestamped {
		return nil
	}
	ev := kmsg.Classify(r.Text)
	var out []Problem
	if ev.Kind == kmsg.KindLivepatchError {
		out = append(out, Problem{Kind: ev.Kind, Patch: ev.Patch, Lines: []string{r.Text}})
	}
	if len(d.pending) == 0 && !startsReport(ev.Kind) {
		return out
	}
	d.pending = append(d.pending, r)
	reps := kmsg.Reports(d.pending)
	if len(reps) > 0 && reps[len(reps)-1].Complete || len(d.pending) >= maxPending {
		out = append(out, d.Flush()...)
	}
	return out
}

// Flush returns the reports of the records held, complete or not (the
// log went quiet in the middle of one), and forgets them.
func (d *Detector) Flush() []Problem {
	var out []Problem
	for _, rep := range kmsg.Reports(d.pending) {
		rep := rep
		out = append(out, Problem{Kind: rep.Kind, Report: &rep, Lines: rep.Lines})
	}
	d.pending = d.pending[:0]
	return out
}

// Pending reports whether a report is open.
func (d *Detector) Pending() bool { return len(d.pending) > 0 }

func startsReport(k kmsg.Kind) bool {
	switch k {
	case kmsg.KindPanic, kmsg.KindOops, kmsg.KindBUG, kmsg.KindWarning, kmsg.KindGPF,
		kmsg.KindHungTask, kmsg.KindSoftLockup, kmsg.KindRCUStall:
		return true
	}
	return false
}

// Watcher streams the kernel log into problems.
type Watcher struct {
	// Path is the log: /dev/kmsg (the default), or a file of /dev/kmsg
	// records (tests), which is read from its start.
	Path string
	// Idle is how long an open report may wait for more lines before it
	// is judged as it is; default 1 s.
	Idle time.Duration
	Log  *slog.Logger
}

// recordBuf holds one /dev/kmsg record: a read with a smaller buffer
// fails with EINVAL.
const recordBuf = 16 << 10

// Stream is an open kernel log.
type Stream struct {
	w      *Watcher
	f      *os.File
	device bool
}

// Open opens the log. On /dev/kmsg it starts at the end: what was logged
// before the agent started is not its business (a crash inside a
// rollback window is caught at the next start from the state file).
// Open before loading a patch, so that nothing it logs is missed.
func (w *Watcher) Open() (*Stream, error) {
	path := w.Path
	if path == "" {
		path = DefaultPath
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("watch kernel log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("watch kernel log: %w", err)
	}
	device := st.Mode()&os.ModeCharDevice != 0
	if device {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, fmt.Errorf("watch kernel log: seek to the end of %s: %w", path, err)
		}
	}
	return &Stream{w: w, f: f, device: device}, nil
}

// Run reads the log until ctx is done (or a file's end), calling found
// for each problem, and closes the stream.
func (s *Stream) Run(ctx context.Context, found func(Problem)) error {
	idle := s.w.Idle
	if idle <= 0 {
		idle = time.Second
	}
	recs := make(chan kmsg.Record, 64)
	readErr := make(chan error, 1)
	go func() {
		defer close(recs)
		readErr <- s.w.read(s.f, s.device, recs)
	}()
	stop := context.AfterFunc(ctx, func() { s.f.Close() }) // unblocks the read
	defer stop()
	defer s.f.Close()
	var d Detector
	timer := time.NewTimer(idle)
	timer.Stop()
	for {
		select {
		case r, ok := <-recs:
			if !ok {
				for _, p := range d.Flush() {
					found(p)
				}
				err := <-readErr
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, p := range d.Add(r) {
				found(p)
			}
			if d.Pending() {
				timer.Reset(idle)
			}
		case <-timer.C:
			for _, p := range d.Flush() {
				found(p)
			}
		}
	}
}

func (w *Watcher) read(f *os.File, device bool, out chan<- kmsg.Record) error {
	if !device {
		s := kmsg.NewKmsgScanner(f)
		for s.Scan() {
			out <- s.Record()
		}
		if err := s.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("watch kernel log: %w", err)
		}
		return nil
	}
	buf := make([]byte, recordBuf)
	for {
		n, err := f.Read(buf)
		switch {
		case errors.Is(err, unix.EPIPE):
			// Records were overwritten before we read them; go on from
			// the oldest one left.
			if w.Log != nil {
				w.Log.Warn("kernel log records lost (the ring buffer wrapped)")
			}
			continue
		case errors.Is(err, os.ErrClosed), errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("watch kernel log: %w", err)
		}
		r, perr := kmsg.ParseRecord(buf[:n])
		if perr != nil {
			continue
		}
		out <- r
	}
}
