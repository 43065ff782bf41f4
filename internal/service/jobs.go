package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// Job limits the server keeps.
const (
	DefaultJobAttempts = 3
	// MaxArtifact bounds one uploaded artifact: a livepatch module is
	// kilobytes, a real build profile of a distribution kernel a few MB;
	// an upload is one API message (api.MaxMessage).
	MaxArtifact = 12 << 20
	// MaxLogLine bounds a log line; longer ones are cut.
	MaxLogLine = 4096
	// DefaultJobLease is how long a builder's lease lasts unless renewed.
	DefaultJobLease = 30 * time.Second
)

// newJobID makes a job's ID: 16 hex digits.
func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SubmitOptions shape a job's submission.
type SubmitOptions struct {
	By          Actor
	MaxAttempts int // default DefaultJobAttempts
}

// SubmitKernelBuild queues a kernel's full build: a builder runs it and
// the real build profile it reports back is stored with the kernel.
func (s *Service) SubmitKernelBuild(ctx context.Context, name string, jobs int, o SubmitOptions) (job.Job, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return job.Job{}, err
	}
	k, err := st.Kernel(ctx, name)
	if err != nil {
		return job.Job{}, notFound("kernel", err)
	}
	if jobs < 0 {
		return job.Job{}, invalidf("-j %d: want 0 (the builder's cores) or more", jobs)
	}
	return s.submit(ctx, st, job.KernelBuild, name, job.KernelBuildSpec{Kernel: k, Config: k.Config, Jobs: jobs}, o)
}

// PatchJobOptions describe a livepatch build job.
type PatchJobOptions struct {
	Kernel  string
	Fixes   []job.Fix
	Module  string
	Replace bool
	// Exercises are the patches' own vetting scripts (the kernel's goes
	// first).
	Exercises []string
}

// SubmitPatchBuild queues a livepatch build for a stored Debian kernel.
func (s *Service) SubmitPatchBuild(ctx context.Context, p PatchJobOptions, o SubmitOptions) (job.Job, error) {
	if len(p.Fixes) == 0 {
		return job.Job{}, invalidf("a patch build needs at least one fix")
	}
	st, err := s.Store(ctx)
	if err != nil {
		return job.Job{}, err
	}
	k, err := st.Kernel(ctx, p.Kernel)
	if err != nil {
		return job.Job{}, notFound("kernel", err)
	}
	if k.Debian == nil {
		return job.Job{}, invalidf("kernel %s is not a Debian kernel: builders make livepatches for Debian kernels", k.Name)
	}
	if p.Module == "" {
		p.Module = "livepatch_" + newJobID()[:8]
	}
	return s.submit(ctx, st, job.PatchBuild, p.Kernel, job.PatchBuildSpec{Kernel: k, Config: k.Config, Fixes: p.Fixes, Module: p.Module, Replace: p.Replace}, o)
}

func (s *Service) submit(ctx context.Context, st store.Store, kind job.Kind, kernel string, spec any, o SubmitOptions) (job.Job, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return job.Job{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultJobAttempts
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 20 {
		return job.Job{}, invalidf("--attempts %d: want 1 to 20", o.MaxAttempts)
	}
	now := time.Now().UTC()
	j := job.Job{ID: newJobID(), Kind: kind, State: job.Queued, Kernel: kernel, MaxAttempts: o.MaxAttempts, Created: now, Updated: now,
		By: actorID(o.By), Spec: data}
	if err := st.AddJob(ctx, j); err != nil {
		return job.Job{}, err
	}
	s.audit(ctx, o.By, "job.submit", j.ID, string(kind)+" "+kernel)
	s.publish(ctx, event.Event{At: now, Kind: "job.queued", Subject: j.ID, Actor: actorID(o.By), Detail: string(kind) + " " + kernel})
	return j, nil
}

// JobQuery selects jobs.
type JobQuery struct {
	State  string
	Kernel string
	Limit  int
}

// Jobs lists jobs, newest first.
func (s *Service) Jobs(ctx context.Context, q JobQuery) ([]job.Job, error) {
	f := store.JobFilter{Kernel: q.Kernel, Limit: q.Limit}
	if q.State != "" {
		st, err := job.ParseState(q.State)
		if err != nil {
			return nil, &InvalidError{"--state: " + err.Error()}
		}
		f.State = st
	}
	if q.Limit < 0 {
		return nil, invalidf("--limit %d: want 0 (all) or more", q.Limit)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.Jobs(ctx, f)
}

// JobDetail is a job with its artifacts and result.
type JobDetail struct {
	job.Job
	Artifacts []job.Artifact  `json:"artifacts"`
	Result    json.RawMessage `json:"result,omitempty"`
}

// Job returns one job.
func (s *Service) Job(ctx context.Context, id string) (JobDetail, error) {
	if !job.ValidID(id) {
		return JobDetail{}, invalidf("%q is not a job ID (16 hex digits; see tuxtape job list)", id)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return JobDetail{}, err
	}
	j, err := st.Job(ctx, id)
	if err != nil {
		return JobDetail{}, notFound("job", err)
	}
	arts, err := st.JobArtifacts(ctx, id)
	if err != nil {
		return JobDetail{}, err
	}
	d := JobDetail{Job: j, Artifacts: arts}
	if json.Valid(j.Result) {
		d.Result = j.Result
	}
	return d, nil
}

// JobLogOptions shape a read of a job's log.
type JobLogOptions struct {
	After  int64
	Follow bool          // until the job is over
	Poll   time.Duration // default: half a second
}

// JobLog sends a job's log lines to fn, oldest first; with Follow it
// waits for more until the job is over.
func (s *Service) JobLog(ctx context.Context, id string, o JobLogOptions, fn func(store.JobLogLine) error) error {
	if _, err := s.Job(ctx, id); err != nil {
		return err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	after := o.After
	for {
		// Whether it was over is read before the lines, so that lines
		// written just before the end are not missed.
		j, err := st.Job(ctx, id)
		if err != nil {
			return err
		}
		lines, err := st.JobLog(ctx, id, after, 1000)
		if err != nil {
			return err
		}
		for _, l := range lines {
			after = l.Seq
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(lines) == 1000 {
			continue
		}
		if !o.Follow || j.State.Final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// CancelJob cancels a job that is not over.
func (s *Service) CancelJob(ctx context.Context, id string, by Actor) (job.State, error) {
	if !job.ValidID(id) {
		return "", invalidf("%q is not a job ID (16 hex digits; see tuxtape job list)", id)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return "", err
	}
	state, err := st.CancelJob(ctx, id, time.Now())
	if err != nil {
		return "", notFound("job", err)
	}
	if state == job.Cancelled {
		s.audit(ctx, by, "job.cancel", id, "")
		s.publish(ctx, event.Event{At: time.Now(), Kind: "job.cancelled", Subject: id, Actor: actorID(by)})
		if j, err := st.Job(ctx, id); err == nil && j.Kind == job.PatchBuild {
			s.patchJobDone(ctx, st, j, job.Cancelled, nil, nil, "its build job was cancelled")
		}
	}
	return state, nil
}

// RegisterBuilder records a builder and its capabilities.
func (s *Service) RegisterBuilder(ctx context.Context, b job.Builder) (job.Builder, error) {
	if b.ID == "" || b.Name == "" {
		return job.Builder{}, invalidf("a builder needs an ID and a name")
	}
	if b.Cores < 0 || b.Cores > 4096 || len(b.Kernels) > 1000 {
		return job.Builder{}, invalidf("builder %s: %d cores, %d kernels: out of range", b.Name, b.Cores, len(b.Kernels))
	}
	st, err := s.Store(ctx)
	if err != nil {
		return job.Builder{}, err
	}
	now := time.Now().UTC()
	b.Seen = now
	if b.Register.IsZero() {
		b.Register = now
	}
	if b.Kernels == nil {
		b.Kernels = []string{}
	}
	if err := st.PutBuilder(ctx, b); err != nil {
		return job.Builder{}, err
	}
	return b, nil
}

// Builders lists the registered builders.
func (s *Service) Builders(ctx context.Context) ([]job.Builder, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.Builders(ctx)
}

// ClaimJob leases the oldest waiting job of kinds to builder, waiting up
// to wait for one. It reports false when none came.
func (s *Service) ClaimJob(ctx context.Context, builder string, kinds []job.Kind, lease, wait time.Duration) (job.Job, bool, error) {
	for _, k := range kinds {
		if !k.Valid() {
			return job.Job{}, false, invalidf("job kind %q: want kernel-build or patch-build", k)
		}
	}
	if lease <= 0 {
		lease = DefaultJobLease
	}
	st, err := s.Store(ctx)
	if err != nil {
		return job.Job{}, false, err
	}
	deadline := time.Now().Add(wait)
	for {
		now := time.Now()
		s.failExpired(ctx, st, now)
		j, ok, err := st.ClaimJob(ctx, builder, kinds, now, now.Add(lease))
		if err != nil || ok {
			if ok {
				s.publish(ctx, event.Event{At: now, Kind: "job.leased", Subject: j.ID, Actor: builder, Detail: fmt.Sprintf("%s %s, attempt %d of %d", j.Kind, j.Kernel, j.Attempts, j.MaxAttempts)})
			}
			return j, ok, err
		}
		if !now.Before(deadline) {
			return job.Job{}, false, nil
		}
		select {
		case <-ctx.Done():
			return job.Job{}, false, nil
		case <-time.After(min(time.Second, time.Until(deadline))):
		}
	}
}

// failExpired fails the jobs whose builder stopped reporting on their
// last attempt, and tells what they were for.
func (s *Service) failExpired(ctx context.Context, st store.Store, now time.Time) {
	js, err := st.FailExpired(ctx, now)
	if err != nil {
		s.log.Warn("fail expired jobs", "err", err)
		return
	}
	for _, j := range js {
		s.publish(ctx, event.Event{At: now, Kind: "job.failed", Subject: j.ID, Detail: string(j.Kind) + " " + j.Kernel + ": " + j.Error})
		if j.Kind == job.PatchBuild {
			s.patchJobDone(ctx, st, j, job.Failed, nil, nil, j.Error)
		}
	}
}

// RenewJob extends a builder's lease; cancelled says the job was
// cancelled and the builder should stop.
func (s *Service) RenewJob(ctx context.Context, id, builder string, lease time.Duration) (cancelled bool, err error) {
	if lease <= 0 {
		lease = DefaultJobLease
	}
	st, err := s.Store(ctx)
	if err != nil {
		return false, err
	}
	now := time.Now()
	return st.RenewJob(ctx, id, builder, now, now.Add(lease))
}

// holds checks that builder holds a job's lease.
func (s *Service) holds(ctx context.Context, st store.Store, id, builder string) (job.Job, error) {
	j, err := st.Job(ctx, id)
	if err != nil {
		return job.Job{}, notFound("job", err)
	}
	if j.State != job.Leased || j.Builder != builder {
		return job.Job{}, fmt.Errorf("job %s: %w (it is %s)", id, store.ErrLeaseLost, j.State)
	}
	return j, nil
}

// AppendJobLog adds a builder's log lines to its job.
func (s *Service) AppendJobLog(ctx context.Context, id, builder string, lines []string) error {
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	if _, err := s.holds(ctx, st, id, builder); err != nil {
		return err
	}
	for i, l := range lines {
		if len(l) > MaxLogLine {
			lines[i] = l[:MaxLogLine] + "…"
		}
	}
	return st.AppendJobLog(ctx, id, lines, time.Now())
}

// artifactPath is where an artifact is kept: in the data directory (the
// mirror's parent), by its SHA-256.
func (s *Service) artifactPath(sum string) (string, error) {
	if s.cfg.MirrorDir == "" {
		return "", errors.New("artifacts: this service has no data directory")
	}
	return filepath.Join(filepath.Dir(s.cfg.MirrorDir), "artifacts", sum[:2], sum), nil
}

// PutArtifact stores a file a builder made for its job, content-addressed:
// the data must have the SHA-256 and size the builder declares.
func (s *Service) PutArtifact(ctx context.Context, id, builder string, a job.Artifact, data []byte) error {
	if err := a.Validate(); err != nil {
		return &InvalidError{err.Error()}
	}
	if a.Size > MaxArtifact || int64(len(data)) != a.Size {
		return invalidf("artifact %s: %d bytes sent, %d declared (at most %d)", a.Name, len(data), a.Size, MaxArtifact)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != a.SHA256 {
		return invalidf("artifact %s: its data does not have the SHA-256 declared", a.Name)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	if _, err := s.holds(ctx, st, id, builder); err != nil {
		return err
	}
	p, err := s.artifactPath(a.SHA256)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil // the same content is there already
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	return atomicfile.WriteFile(p, data, 0o644)
}

// OpenArtifact opens a job's artifact by name.
func (s *Service) OpenArtifact(ctx context.Context, id, name string) (io.ReadCloser, job.Artifact, error) {
	d, err := s.Job(ctx, id)
	if err != nil {
		return nil, job.Artifact{}, err
	}
	i := slices.IndexFunc(d.Artifacts, func(a job.Artifact) bool { return a.Name == name })
	if i < 0 {
		return nil, job.Artifact{}, &NotFoundError{Kind: "artifact", err: fmt.Errorf("job %s has no artifact %q: %w", id, name, store.ErrNotFound)}
	}
	p, err := s.artifactPath(d.Artifacts[i].SHA256)
	if err != nil {
		return nil, job.Artifact{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, job.Artifact{}, fmt.Errorf("artifact %s of job %s: %w", name, id, err)
	}
	return f, d.Artifacts[i], nil
}

// FinishOptions are a builder's report of a job's end.
type FinishOptions struct {
	OK        bool
	Error     string
	Result    []byte
	Artifacts []job.Artifact
}

// FinishJob records a job's end. Its artifacts must have been uploaded;
// a kernel build's profile.json becomes the kernel's real build profile.
func (s *Service) FinishJob(ctx context.Context, id, builder string, o FinishOptions) (job.State, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return "", err
	}
	j, err := s.holds(ctx, st, id, builder)
	if err != nil {
		return "", err
	}
	if len(o.Result) > 1<<20 || (len(o.Result) > 0 && !json.Valid(o.Result)) {
		return "", invalidf("job %s: the result is not JSON of at most 1 MB", id)
	}
	if len(o.Error) > MaxLogLine {
		o.Error = o.Error[:MaxLogLine] + "…"
	}
	for _, a := range o.Artifacts {
		if err := a.Validate(); err != nil {
			return "", &InvalidError{err.Error()}
		}
		p, err := s.artifactPath(a.SHA256)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Size() != a.Size {
			return "", invalidf("job %s: artifact %s was not uploaded", id, a.Name)
		}
	}
	if o.OK && j.Kind == job.KernelBuild {
		if err := s.storeBuiltProfile(ctx, st, j, o.Artifacts); err != nil {
			o.OK, o.Error = false, err.Error()
		}
	}
	state, err := st.FinishJob(ctx, id, builder, o.OK, o.Error, o.Result, o.Artifacts, time.Now())
	if err != nil {
		return "", err
	}
	if j.Kind == job.PatchBuild {
		s.patchJobDone(ctx, st, j, state, o.Result, o.Artifacts, o.Error)
	}
	e := event.Event{At: time.Now(), Kind: event.Kind("job." + string(state)), Subject: id, Actor: builder, Detail: string(j.Kind) + " " + j.Kernel}
	if o.Error != "" {
		e.Detail += ": " + o.Error
	}
	s.publish(ctx, e)
	return state, nil
}

func (s *Service) storeBuiltProfile(ctx context.Context, st store.Store, j job.Job, arts []job.Artifact) error {
	i := slices.IndexFunc(arts, func(a job.Artifact) bool { return a.Name == "profile.json" })
	if i < 0 {
		return errors.New("the kernel build reported no profile.json")
	}
	path, err := s.artifactPath(arts[i].SHA256)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var p profile.Profile
	if err := json.Unmarshal(data, &p); err != nil || p.Kind != profile.KindReal || len(p.Units) == 0 {
		return fmt.Errorf("the kernel build's profile.json is not a real build profile (%v)", err)
	}
	return st.PutProfile(ctx, j.Kernel, &p)
}
