package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/kernelsrc"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/sandbox"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/model/job"
)

// JobServer is what a builder needs of the server: the job calls, made
// over the API by the builder's token.
type JobServer interface {
	Register(ctx context.Context, b job.Builder) (job.Builder, error)
	Claim(ctx context.Context, kinds []job.Kind, lease, wait time.Duration) (job.Job, bool, error)
	Renew(ctx context.Context, id string, lease time.Duration) (cancelled bool, err error)
	Log(ctx context.Context, id string, lines []string) error
	Upload(ctx context.Context, id string, a job.Artifact, data []byte) error
	Finish(ctx context.Context, id string, o FinishOptions) (job.State, error)
}

// BuilderOptions shape a builder worker.
type BuilderOptions struct {
	Server   JobServer
	Builder  job.Builder // its name, arch, cores, prepared kernels
	Parallel int         // jobs at once (default 1)
	Kinds    []job.Kind  // default: all
	Lease    time.Duration
	// Wait is how long one claim waits for a job (default 20 s).
	Wait time.Duration
	// Sandbox confines each patch build's untrusted steps (applying the
	// fixes, compiling before and after them); nil: sandbox.Default().
	Sandbox *sandbox.Config
}

// RunBuilder takes jobs from the server and runs them until ctx ends:
// one at a time per slot, renewing each lease while it works, streaming
// the job's log and uploading its artifacts.
func (s *Service) RunBuilder(ctx context.Context, o BuilderOptions) error {
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if len(o.Kinds) == 0 {
		o.Kinds = job.Kinds
	}
	if o.Lease <= 0 {
		o.Lease = DefaultJobLease
	}
	if o.Wait <= 0 {
		o.Wait = 20 * time.Second
	}
	b, err := o.Server.Register(ctx, o.Builder)
	if err != nil {
		return fmt.Errorf("register with the server: %w", err)
	}
	log := s.log.With("component", "builder", "builder", b.ID)
	log.Info("registered", "name", b.Name, "parallel", o.Parallel)
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				j, ok, err := o.Server.Claim(ctx, o.Kinds, o.Lease, o.Wait)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					log.Warn("claim a job", "err", err)
					time.Sleep(2 * time.Second)
					continue
				}
				if ok {
					s.runJob(ctx, o, j)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// runJob runs one leased job to its report.
func (s *Service) runJob(ctx context.Context, o BuilderOptions, j job.Job) {
	log := s.log.With("component", "builder", "job", j.ID, "kind", j.Kind)
	log.Info("job started", "kernel", j.Kernel, "attempt", j.Attempts)
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lw := newJobLog(jctx, o.Server, j.ID)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(o.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
			}
			cancelled, err := o.Server.Renew(jctx, j.ID, o.Lease)
			switch {
			case jctx.Err() != nil:
				return
			case cancelled:
				cancel(errors.New("the job was cancelled"))
				return
			case err != nil:
				// Lost (or unreachable past the lease): another builder
				// may have it now, so this one stops.
				cancel(fmt.Errorf("renew the lease: %w", err))
				return
			}
		}
	}()
	res, arts, err := s.execute(jctx, j, lw, o.Sandbox)
	lw.close()
	stopped := context.Cause(jctx)
	cancel(nil)
	<-renewed
	if ctx.Err() != nil || stopped != nil {
		log.Info("job stopped", "why", stopped)
		return // not reported: the lease runs out, or it was cancelled
	}
	fo := FinishOptions{OK: err == nil, Result: res}
	if err != nil {
		fo.Error = err.Error()
	}
	for _, a := range arts {
		if uerr := o.Server.Upload(ctx, j.ID, a.Artifact, a.data); uerr != nil {
			fo.OK, fo.Error = false, "upload "+a.Name+": "+uerr.Error()
			break
		}
		fo.Artifacts = append(fo.Artifacts, a.Artifact)
	}
	state, ferr := o.Server.Finish(ctx, j.ID, fo)
	if ferr != nil {
		log.Warn("report the job", "err", ferr)
		return
	}
	log.Info("job reported", "state", state)
}

type artifact struct {
	job.Artifact
	data []byte
}

func newArtifact(name string, data []byte) artifact {
	sum := sha256.Sum256(data)
	return artifact{job.Artifact{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}, data}
}

// execute does a job's work. A livepatch the generator refuses is a
// result (done, with the refusal), not a failure: a retry would refuse
// it again.
func (s *Service) execute(ctx context.Context, j job.Job, out io.Writer, sb *sandbox.Config) ([]byte, []artifact, error) {
	switch j.Kind {
	case job.KernelBuild:
		var spec job.KernelBuildSpec
		if err := json.Unmarshal(j.Spec, &spec); err != nil || spec.Kernel == nil {
			return nil, nil, fmt.Errorf("job %s: bad kernel-build spec: %v", j.ID, err)
		}
		spec.Kernel.Config = spec.Config
		fmt.Fprintf(out, "building kernel %s (%s) in %s\n", spec.Kernel.Name, spec.Kernel.Release, s.BuildDir(spec.Kernel.Name))
		src := kernelsrc.Sources{CacheDir: s.cfg.CacheDir, Log: s.log}
		p, err := src.Build(ctx, spec.Kernel, kernelsrc.BuildOptions{Dir: s.BuildDir(spec.Kernel.Name), Jobs: spec.Jobs, Output: out})
		if err != nil {
			return nil, nil, err
		}
		data, err := json.Marshal(p)
		if err != nil {
			return nil, nil, err
		}
		res, _ := json.Marshal(map[string]int{"units": len(p.Units)})
		fmt.Fprintf(out, "real build profile: %d units\n", len(p.Units))
		return res, []artifact{newArtifact("profile.json", data)}, nil
	case job.PatchBuild:
		var spec job.PatchBuildSpec
		if err := json.Unmarshal(j.Spec, &spec); err != nil || spec.Kernel == nil || spec.Kernel.Debian == nil {
			return nil, nil, fmt.Errorf("job %s: bad patch-build spec: %v", j.ID, err)
		}
		spec.Kernel.Config = spec.Config
		log := s.log.With("component", "klp")
		k, err := target.Debian(ctx, debpkg.Options{CacheDir: s.debsDir(), Logger: log}, spec.Kernel.Release, spec.Kernel.Debian.Version, s.treesDir(), log)
		if err != nil {
			return nil, nil, err
		}
		// Set-up (packages, the prepared tree) ran as the builder; what
		// runs the fix's code runs in the sandbox.
		k.Kernel.Tree.Sandbox = sb
		work, err := os.MkdirTemp("", "tuxtape-job-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(work)
		ko := filepath.Join(work, spec.Module+".ko")
		fixes := make([]klp.Fix, len(spec.Fixes))
		for i, f := range spec.Fixes {
			fixes[i] = klp.Fix{Name: f.Name, Diff: f.Diff}
		}
		fmt.Fprintf(out, "building livepatch %s for %s from %d fix(es)\n", spec.Module, spec.Kernel.Release, len(fixes))
		r, err := s.BuildPatch(ctx, k, PatchOptions{Fixes: fixes, Name: spec.Module, Replace: spec.Replace, Out: ko, WorkDir: filepath.Join(work, "w")})
		var ref *klp.Refusal
		if errors.As(err, &ref) {
			fmt.Fprintf(out, "refused: %v\n", err)
			res, _ := json.Marshal(job.PatchBuildResult{Refusal: string(ref.Code), Reason: err.Error(), Errors: ref.Errors})
			return res, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		data, err := os.ReadFile(ko)
		if err != nil {
			return nil, nil, err
		}
		pr := job.PatchBuildResult{Module: "module.ko", Units: len(r.Units), Functions: map[string][]string{}}
		var objects []string
		for _, u := range r.Units {
			pr.Funcs += len(u.Funcs)
			for _, f := range u.Funcs {
				if !f.New {
					pr.Functions[u.Object] = append(pr.Functions[u.Object], f.Name)
				}
			}
			if u.Object != "vmlinux" && !slices.Contains(objects, u.Object) {
				objects = append(objects, u.Object)
			}
			fmt.Fprintf(out, "%s: %d function(s) patched in %s\n", u.Unit, len(u.Funcs), u.Object)
		}
		arts := []artifact{newArtifact("module.ko", data)}
		if spec.Vet {
			fmt.Fprintf(out, "vetting %s in a VM of %s\n", spec.Module, spec.Kernel.Release)
			inner, body := vmcheck.Scripts(spec.Exercises)
			rep, err := s.TryPatch(ctx, k, ko, spec.Module, objects, vmcheck.Traced(spec.Module, inner, body))
			if err != nil {
				return nil, nil, fmt.Errorf("vet in a VM: %w", err)
			}
			pr.VetOK, pr.VetProblem = rep.OK(), rep.Summary()
			ran := map[string]bool{}
			for _, sym := range strings.Fields(rep.Values["ran"]) {
				ran[sym] = true
			}
			for _, u := range r.Units {
				for _, f := range u.Funcs {
					if f.New {
						continue
					}
					id := u.Object + ":" + f.Name
					if ran[f.NewSym] || ran[f.Name] {
						pr.Ran = append(pr.Ran, id)
					} else {
						pr.NotRan = append(pr.NotRan, id)
					}
				}
			}
			which := "the default exercise"
			if len(spec.Exercises) > 0 {
				which = fmt.Sprintf("the configured exercise (%d script(s))", len(spec.Exercises))
			}
			fmt.Fprintf(out, "%s ran %d of %d patched function(s) (function tracing limited to %s)\n", which, len(pr.Ran), len(pr.Ran)+len(pr.NotRan), spec.Module)
			pr.Vet, _ = json.Marshal(struct {
				*vmcheck.Report
				Ran    []string `json:"ran"`
				NotRan []string `json:"not_ran"`
			}{rep, nonNil(pr.Ran), nonNil(pr.NotRan)})
			fmt.Fprintf(out, "vetted: enabled %v, transitioned %v, unloaded %v, %d function(s) registered%s\n", rep.Enabled, rep.Transition, rep.Unloaded,
				len(rep.Functions), map[bool]string{true: "", false: ": " + rep.Summary()}[rep.OK()])
			// The end of the guest's kernel log: the livepatch's life.
			lines := strings.Split(strings.TrimSpace(rep.Dmesg), "\n")
			for _, l := range lines[max(0, len(lines)-40):] {
				if l != "" {
					fmt.Fprintf(out, "vm: %s\n", l)
				}
			}
			arts = append(arts, newArtifact("vet-report.json", pr.Vet))
		}
		res, _ := json.Marshal(pr)
		return res, arts, nil
	}
	return nil, nil, fmt.Errorf("job %s: this builder does not run %s jobs", j.ID, j.Kind)
}

// jobLog is the io.Writer a job's output goes to: lines are sent to the
// server in batches, at least every second. Sending never blocks the job
// for long: lines past a bound are dropped, and the log says so.
type jobLog struct {
	ctx    context.Context
	server JobServer
	id     string

	mu      sync.Mutex
	partial bytes.Buffer
	lines   []string
	dropped int
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

const maxPendingLines = 10_000

func newJobLog(ctx context.Context, server JobServer, id string) *jobLog {
	l := &jobLog{ctx: ctx, server: server, id: id, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.send()
	return l
}

func (l *jobLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial.Write(p)
	data := l.partial.Bytes()
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		return len(p), nil
	}
	for _, line := range bytes.Split(data[:last], []byte("\n")) {
		if len(l.lines) >= maxPendingLines {
			l.dropped++
			continue
		}
		l.lines = append(l.lines, string(line))
	}
	rest := append([]byte(nil), data[last+1:]...)
	l.partial.Reset()
	l.partial.Write(rest)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *jobLog) take(final bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if final && l.partial.Len() > 0 {
		l.lines = append(l.lines, l.partial.String())
		l.partial.Reset()
	}
	out := l.lines
	if l.dropped > 0 {
		out = append(out, fmt.Sprintf("[%d log lines dropped: the server did not keep up]", l.dropped))
		l.dropped = 0
	}
	l.lines = nil
	return out
}

func (l *jobLog) send() {
	defer close(l.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		final := false
		select {
		case <-l.ctx.Done():
			final = true
		case <-l.stop:
			final = true
		case <-l.wake:
		case <-t.C:
		}
		if lines := l.take(final); len(lines) > 0 {
			// The last lines go even when the job was stopped: they say
			// how it ended.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 10*time.Second)
			if err := l.server.Log(ctx, l.id, lines); err != nil && !final {
				l.mu.Lock()
				l.dropped += len(lines)
				l.mu.Unlock()
			}
			cancel()
		}
		if final {
			return
		}
	}
}

// close sends what is left and stops.
func (l *jobLog) close() {
	close(l.stop)
	<-l.done
}
