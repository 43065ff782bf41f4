package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tuxtape/tuxtape/internal/analysis/risk"
	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// MaxPatchDiff bounds a deployable patch's diff (a stable fix is a few KB).
const MaxPatchDiff = 1 << 20

// CreatePatchOptions describe a new deployable patch.
type CreatePatchOptions struct {
	CVE, Kernel string
	Diff        []byte
	Source      string // where the diff came from, for people
	// FixesFrom, when Diff is empty, is the fix source to fetch the raw
	// fix from (see FetchFix).
	FixesFrom string
	// AllowBuildChanges takes a fix that changes the build machinery
	// (Makefiles, Kbuild, Kconfig, scripts/, tools/): such a change runs
	// on the builder, so a person must have read it and said so.
	AllowBuildChanges bool
	// Exercise is the patch's own vetting script (kernel.Kernel.Exercise
	// says how it runs); "" for the kernel's or the default.
	Exercise string
	By       Actor
}

// PatchDetail is a patch with its revisions and reviews, and what its
// newest revision still needs to be approved.
type PatchDetail struct {
	patch.Patch
	Revisions []patch.Revision `json:"revisions"`
	Reviews   []patch.Review   `json:"reviews"`
	// Approvals are the reviewers who approved the newest revision;
	// Required how many must.
	Approvals []string `json:"approvals"`
	Required  int      `json:"required_approvals"`
}

// RequireApprovals sets how many different reviewers must approve a
// revision (the two-person rule is 2; default 1). Call it before serving.
func (s *Service) RequireApprovals(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Approvals = n
}

func (s *Service) approvals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.cfg.Approvals, 1)
}

// CreatePatch records a fix for a CVE on a kernel as a deployable patch
// and queues its build and vetting on a builder: nobody sees it for
// review before a builder has built it and run it in a VM.
func (s *Service) CreatePatch(ctx context.Context, o CreatePatchOptions) (PatchDetail, error) {
	if !vulns.IsCVEID(o.CVE) {
		return PatchDetail{}, invalidf("%q is not a CVE ID (want e.g. CVE-2025-21703)", o.CVE)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return PatchDetail{}, err
	}
	if _, err := st.CVE(ctx, o.CVE); err != nil {
		return PatchDetail{}, notFound("cve", err)
	}
	k, err := st.Kernel(ctx, o.Kernel)
	if err != nil {
		return PatchDetail{}, notFound("kernel", err)
	}
	if k.Debian == nil {
		return PatchDetail{}, invalidf("kernel %s is not a Debian kernel: builders make livepatches for Debian kernels", k.Name)
	}
	fixSource := ""
	if len(o.Diff) == 0 && o.FixesFrom != "" {
		fix, err := s.FetchFix(ctx, o.CVE, k, o.FixesFrom)
		if err != nil {
			return PatchDetail{}, err
		}
		o.Diff, o.Source, fixSource = fix.Diff, fixSourceLine(o.FixesFrom, fix), o.FixesFrom
	}
	r, err := newRevision(o.Diff, o.Source, o.AllowBuildChanges, o.By)
	if err != nil {
		return PatchDetail{}, err
	}
	r.FixSource = fixSource
	if r.Exercise, err = checkExercise(o.Exercise); err != nil {
		return PatchDetail{}, err
	}
	now := time.Now().UTC()
	p := patch.Patch{ID: newJobID(), CVE: o.CVE, Kernel: o.Kernel, Rev: 1, State: patch.Building, Author: actorID(o.By), Created: now, Updated: now}
	r.Patch, r.Rev = p.ID, 1
	if err := st.AddPatch(ctx, p, r, authz.AuditEntry{At: now, Actor: actorID(o.By), Action: "patch.create", Target: p.ID, From: o.By.From,
		Detail: o.CVE + " on " + o.Kernel}); err != nil {
		return PatchDetail{}, err
	}
	s.publish(ctx, event.Event{At: now, Kind: "patch.created", Subject: p.ID, Actor: actorID(o.By), Detail: o.CVE + " on " + o.Kernel})
	if err := s.buildRevision(ctx, st, p, r, o.By); err != nil {
		return PatchDetail{}, err
	}
	return s.Patch(ctx, p.ID)
}

// MaxExercise bounds a vetting script.
const MaxExercise = 64 << 10

// checkExercise checks a vetting script: text of at most MaxExercise
// bytes (it runs in the VM, never on the builder).
func checkExercise(script string) (string, error) {
	switch {
	case len(script) > MaxExercise:
		return "", invalidf("the exercise is %d bytes: want a shell script of at most %d", len(script), MaxExercise)
	case strings.ContainsRune(script, 0) || !utf8.ValidString(script):
		return "", invalidf("the exercise is not text: want a shell script")
	}
	return script, nil
}

// ErrBuildMachinery: a fix changes the build machinery and nobody allowed
// it.
var ErrBuildMachinery = errors.New("the fix changes the build machinery")

// newRevision checks a diff and scores its risk.
func newRevision(diff []byte, source string, allowBuild bool, by Actor) (patch.Revision, error) {
	if len(diff) == 0 || len(diff) > MaxPatchDiff {
		return patch.Revision{}, invalidf("the fix is %d bytes: want a unified diff of at most %d", len(diff), MaxPatchDiff)
	}
	score, err := risk.Assess(risk.Input{Diff: diff})
	if err != nil {
		return patch.Revision{}, &InvalidError{"the fix is not a usable diff: " + err.Error()}
	}
	if files, _ := risk.ParseDiff(diff); !allowBuild {
		var build []string
		for _, f := range files {
			for _, p := range []string{f.OldPath, f.NewPath} {
				if p != "" && p != "/dev/null" && risk.BuildMachinery(p) && !slices.Contains(build, p) {
					build = append(build, p)
				}
			}
		}
		if len(build) > 0 {
			return patch.Revision{}, &InvalidError{fmt.Sprintf("%v (%s): it would run on the builder at build time; read it, and give --allow-build-changes if it is right",
				ErrBuildMachinery, strings.Join(build, ", "))}
		}
	}
	rj, _ := json.Marshal(score)
	return patch.Revision{Author: actorID(by), Created: time.Now().UTC(), Source: source, Diff: diff, Risk: rj}, nil
}

// ModuleNameFor is a livepatch module's name for a kernel and a number:
// letters, digits and underscores, at most 55 characters (the kernel's
// module name limit).
func ModuleNameFor(prefix, kernel string, n int) string {
	name := prefix + "_" + nonWord.ReplaceAllString(strings.ToLower(kernel), "_")
	suffix := fmt.Sprintf("_%d", n)
	if len(name)+len(suffix) > 55 {
		name = name[:55-len(suffix)]
	}
	return name + suffix
}

var nonWord = regexp.MustCompile(`[^a-z0-9_]+`)

// buildRevision queues a revision's build and vetting.
func (s *Service) buildRevision(ctx context.Context, st store.Store, p patch.Patch, r patch.Revision, by Actor) error {
	spec := PatchJobOptions{Kernel: p.Kernel, Fixes: []job.Fix{{Name: p.CVE + ".diff", Diff: r.Diff}}, Module: fmt.Sprintf("tt_%s_r%d", p.ID[:8], r.Rev)}
	if r.Exercise != "" {
		spec.Exercises = []string{r.Exercise}
	}
	j, err := s.submitPatchJob(ctx, st, spec, true, p.ID, r.Rev, 0, by)
	if err != nil {
		return err
	}
	return st.SetRevision(ctx, p.ID, r.Rev, store.RevisionOutcome{State: patch.Building, Job: j.ID}, time.Now())
}

func (s *Service) submitPatchJob(ctx context.Context, st store.Store, p PatchJobOptions, vet bool, id string, rev, set int, by Actor) (job.Job, error) {
	k, err := st.Kernel(ctx, p.Kernel)
	if err != nil {
		return job.Job{}, notFound("kernel", err)
	}
	// The kernel's exercise first, then the patches' own.
	var exercises []string
	if k.Exercise != "" {
		exercises = append(exercises, k.Exercise)
	}
	exercises = append(exercises, p.Exercises...)
	return s.submit(ctx, st, job.PatchBuild, p.Kernel, job.PatchBuildSpec{Kernel: k, Config: k.Config, Fixes: p.Fixes, Module: p.Module, Replace: p.Replace,
		Vet: vet, Exercises: exercises, Patch: id, Rev: rev, SetVersion: set}, SubmitOptions{By: by})
}

// RevisePatch adds a new revision (an edited fix) to a patch and queues
// its build and vetting; reviews of earlier revisions do not carry over.
func (s *Service) RevisePatch(ctx context.Context, id string, diff []byte, source string, by Actor) (PatchDetail, error) {
	return s.RevisePatchWith(ctx, ReviseOptions{ID: id, Diff: diff, Source: source, By: by})
}

// ReviseOptions describe a new revision.
type ReviseOptions struct {
	ID                string
	Diff              []byte
	Source            string
	AllowBuildChanges bool // see CreatePatchOptions
	// WithPrerequisites makes the new revision the newest one's fix plus
	// the prerequisites its fix source offered (Diff must be empty).
	WithPrerequisites bool
	// Exercise replaces the vetting script the newest revision has (which
	// carries over otherwise); with no Diff the fix stays as it is.
	Exercise string
	By       Actor
}

// RevisePatchWith is RevisePatch with every option.
func (s *Service) RevisePatchWith(ctx context.Context, o ReviseOptions) (PatchDetail, error) {
	id, diff, source, allowBuild, by := o.ID, o.Diff, o.Source, o.AllowBuildChanges, o.By
	st, err := s.Store(ctx)
	if err != nil {
		return PatchDetail{}, err
	}
	p, revs, _, err := st.Patch(ctx, id)
	if err != nil {
		return PatchDetail{}, notFound("patch", err)
	}
	if o.WithPrerequisites {
		if len(diff) > 0 {
			return PatchDetail{}, invalidf("--with-prerequisites takes no diff: it adds the offered prerequisites to revision %d", p.Rev)
		}
		if diff, source, err = withPrerequisites(revs[len(revs)-1]); err != nil {
			return PatchDetail{}, err
		}
	}
	newest := revs[len(revs)-1]
	exercise := newest.Exercise
	if o.Exercise != "" {
		if exercise, err = checkExercise(o.Exercise); err != nil {
			return PatchDetail{}, err
		}
		if len(diff) == 0 {
			diff, source = newest.Diff, fmt.Sprintf("revision %d with a new exercise", newest.Rev)
		}
	}
	r, err := newRevision(diff, source, allowBuild, by)
	if err != nil {
		return PatchDetail{}, err
	}
	r.Patch, r.Exercise = id, exercise
	if len(o.Diff) == 0 {
		// The newest revision's fix (with its prerequisites, or a new
		// exercise): from the same fix source.
		r.FixSource = newest.FixSource
	}
	rev, err := st.AddRevision(ctx, r, authz.AuditEntry{At: r.Created, Actor: actorID(by), Action: "patch.edit", Target: id, From: by.From})
	if err != nil {
		return PatchDetail{}, notFound("patch", err)
	}
	s.publish(ctx, event.Event{At: r.Created, Kind: "patch.revised", Subject: id, Actor: actorID(by), Detail: fmt.Sprintf("revision %d", rev)})
	r.Rev = rev
	if err := s.buildRevision(ctx, st, p, r, by); err != nil {
		return PatchDetail{}, err
	}
	return s.Patch(ctx, id)
}

// PatchQuery selects patches.
type PatchQuery struct {
	Kernel, CVE, State string
}

// Patches lists patches, oldest first.
func (s *Service) Patches(ctx context.Context, q PatchQuery) ([]patch.Patch, error) {
	f := store.PatchFilter{Kernel: q.Kernel, CVE: q.CVE}
	if q.State != "" {
		st, err := patch.ParseState(q.State)
		if err != nil {
			return nil, &InvalidError{"--state: " + err.Error()}
		}
		f.State = st
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.Patches(ctx, f)
}

// Patch returns a patch with its revisions and reviews.
func (s *Service) Patch(ctx context.Context, id string) (PatchDetail, error) {
	if !job.ValidID(id) {
		return PatchDetail{}, invalidf("%q is not a patch ID (16 hex digits; see tuxtape patch list)", id)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return PatchDetail{}, err
	}
	p, revs, reviews, err := st.Patch(ctx, id)
	if err != nil {
		return PatchDetail{}, notFound("patch", err)
	}
	d := PatchDetail{Patch: p, Revisions: revs, Reviews: reviews, Approvals: []string{}, Required: s.approvals()}
	for _, r := range reviews {
		if r.Rev == p.Rev && r.Verdict == patch.Approve && !slices.Contains(d.Approvals, r.Reviewer) {
			d.Approvals = append(d.Approvals, r.Reviewer)
		}
	}
	return d, nil
}

// ReviewOptions are one reviewer's verdict.
type ReviewOptions struct {
	ID      string
	Rev     int // the revision reviewed; 0: the newest
	Verdict patch.Verdict
	Comment string
	By      Actor
}

// Review errors a caller decides on.
var (
	ErrOwnRevision = errors.New("the author of a revision may not approve it")
	ErrNotVetted   = errors.New("only a vetted revision can be approved")
)

// ReviewPatch records an approval or rejection of a patch's newest
// revision. The two-person rule: a revision's author cannot approve it,
// each reviewer counts once, and it is approved when RequireApprovals
// different reviewers approved it. A rejection rejects it.
func (s *Service) ReviewPatch(ctx context.Context, o ReviewOptions) (PatchDetail, error) {
	if o.Verdict != patch.Approve && o.Verdict != patch.Reject {
		return PatchDetail{}, invalidf("a review approves or rejects (--approve or --reject)")
	}
	if strings.TrimSpace(o.Comment) == "" || len(o.Comment) > 4096 {
		return PatchDetail{}, invalidf("a review needs a comment (-m TEXT, at most 4096 bytes)")
	}
	d, err := s.Patch(ctx, o.ID)
	if err != nil {
		return PatchDetail{}, err
	}
	if o.Rev == 0 {
		o.Rev = d.Rev
	}
	rev := d.Revisions[len(d.Revisions)-1]
	reviewer := actorID(o.By)
	var state patch.State
	switch o.Verdict {
	case patch.Approve:
		switch {
		case d.State != patch.Vetted && d.State != patch.Approved:
			return PatchDetail{}, fmt.Errorf("patch %s is %s: %w", o.ID, d.State, ErrNotVetted)
		case rev.Author == reviewer:
			return PatchDetail{}, fmt.Errorf("patch %s revision %d: %w (the two-person rule)", o.ID, rev.Rev, ErrOwnRevision)
		case slices.Contains(d.Approvals, reviewer):
			return PatchDetail{}, invalidf("%s approved revision %d of patch %s already: another reviewer must", reviewer, rev.Rev, o.ID)
		}
		if len(d.Approvals)+1 >= d.Required {
			state = patch.Approved
		}
	case patch.Reject:
		state = patch.Rejected
	}
	st, err := s.Store(ctx)
	if err != nil {
		return PatchDetail{}, err
	}
	now := time.Now().UTC()
	err = st.AddReview(ctx, patch.Review{Patch: o.ID, Rev: o.Rev, Reviewer: reviewer, Verdict: o.Verdict, Comment: o.Comment, At: now}, state,
		authz.AuditEntry{At: now, Actor: reviewer, Action: "patch." + string(o.Verdict), Target: o.ID, From: o.By.From, Detail: fmt.Sprintf("revision %d: %s", o.Rev, o.Comment)})
	if errors.Is(err, store.ErrConflict) {
		return PatchDetail{}, &InvalidError{err.Error()}
	}
	if err != nil {
		return PatchDetail{}, err
	}
	detail := fmt.Sprintf("revision %d %sd by %s", o.Rev, o.Verdict, reviewer)
	if state != "" {
		detail += ": " + string(state)
	}
	s.publish(ctx, event.Event{At: now, Kind: event.Kind("patch." + string(o.Verdict) + "d"), Subject: o.ID, Actor: reviewer, Detail: detail})
	return s.Patch(ctx, o.ID)
}

// BuildPatchSet queues the next version of a kernel's cumulative
// livepatch: every approved patch's newest revision in one replace=true
// module, built and vetted on a builder.
func (s *Service) BuildPatchSet(ctx context.Context, kernel string, by Actor) (patch.Set, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return patch.Set{}, err
	}
	if _, err := st.Kernel(ctx, kernel); err != nil {
		return patch.Set{}, notFound("kernel", err)
	}
	ps, err := st.Patches(ctx, store.PatchFilter{Kernel: kernel, State: patch.Approved})
	if err != nil {
		return patch.Set{}, err
	}
	if len(ps) == 0 {
		return patch.Set{}, invalidf("kernel %s has no approved patch: nothing to put in a patch set", kernel)
	}
	set := patch.Set{Kernel: kernel, State: patch.SetBuilding, Created: time.Now().UTC(), CVEs: []string{}, Patches: []string{}}
	var fixes []job.Fix
	var exercises []string
	for _, p := range ps {
		_, revs, _, err := st.Patch(ctx, p.ID)
		if err != nil {
			return patch.Set{}, err
		}
		r := revs[len(revs)-1]
		fixes = append(fixes, job.Fix{Name: p.CVE + ".diff", Diff: r.Diff})
		if r.Exercise != "" {
			exercises = append(exercises, r.Exercise)
		}
		if !slices.Contains(set.CVEs, p.CVE) {
			set.CVEs = append(set.CVEs, p.CVE)
		}
		set.Patches = append(set.Patches, fmt.Sprintf("%s@%d", p.ID, r.Rev))
	}
	slices.Sort(set.CVEs)
	if set, err = st.AddPatchSet(ctx, set, func(v int) string { return ModuleNameFor("tt", kernel, v) }); err != nil {
		return patch.Set{}, err
	}
	j, err := s.submitPatchJob(ctx, st, PatchJobOptions{Kernel: kernel, Fixes: fixes, Module: set.Module, Replace: true, Exercises: exercises}, true, "", 0, set.Version, by)
	if err != nil {
		st.SetPatchSet(context.WithoutCancel(ctx), kernel, set.Version, "", patch.SetFailed, "", err.Error())
		return patch.Set{}, err
	}
	set.Job = j.ID
	if err := st.SetPatchSet(ctx, kernel, set.Version, j.ID, patch.SetBuilding, "", ""); err != nil {
		return patch.Set{}, err
	}
	s.audit(ctx, by, "patchset.build", fmt.Sprintf("%s v%d", kernel, set.Version), strings.Join(set.CVEs, " "))
	s.publish(ctx, event.Event{At: set.Created, Kind: "patchset.queued", Subject: fmt.Sprintf("%s v%d", kernel, set.Version), Actor: actorID(by),
		Detail: fmt.Sprintf("%d patch(es): %s", len(set.Patches), strings.Join(set.CVEs, " "))})
	return set, nil
}

// PatchSets lists a kernel's patch sets (all kernels' when empty).
func (s *Service) PatchSets(ctx context.Context, kernel string) ([]patch.Set, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.PatchSets(ctx, kernel)
}

// patchJobDone updates the patch or patch set a finished patch-build job
// was for.
func (s *Service) patchJobDone(ctx context.Context, st store.Store, j job.Job, state job.State, result []byte, arts []job.Artifact, errMsg string) {
	if !state.Final() {
		return // queued again: another attempt comes
	}
	var spec job.PatchBuildSpec
	if json.Unmarshal(j.Spec, &spec) != nil || (spec.Patch == "" && spec.SetVersion == 0) {
		return
	}
	var res job.PatchBuildResult
	json.Unmarshal(result, &res)
	module := ""
	for _, a := range arts {
		if a.Name == "module.ko" {
			module = a.SHA256
		}
	}
	now := time.Now()
	var out store.RevisionOutcome
	switch {
	case state != job.Done:
		out = store.RevisionOutcome{State: patch.Failed, Error: errMsg}
	case res.Refusal != "":
		out = store.RevisionOutcome{State: patch.Refused, Refusal: res.Reason, RefusalCode: res.Refusal}
	case spec.Vet && !res.VetOK:
		out = store.RevisionOutcome{State: patch.Failed, Module: module, Vet: res.Vet, Error: "vetting in the VM: " + res.VetProblem}
	default:
		out = store.RevisionOutcome{State: patch.Vetted, Module: module, Vet: res.Vet}
	}
	out.Job = j.ID
	if spec.Patch != "" {
		if err := st.SetRevision(ctx, spec.Patch, spec.Rev, out, now); err != nil {
			s.log.Warn("record a patch's build", "patch", spec.Patch, "err", err)
			return
		}
		detail := fmt.Sprintf("revision %d %s", spec.Rev, out.State)
		if why := out.Refusal + out.Error; why != "" {
			detail += ": " + why
		}
		if out.State == patch.Refused {
			detail += " (" + refusal.Code(res.Refusal).Action() + ")"
		}
		s.publish(ctx, event.Event{At: now, Kind: event.Kind("patch." + string(out.State)), Subject: spec.Patch, Detail: detail})
		if refusal.Code(res.Refusal) == refusal.FixDoesNotCompile {
			s.offerPrerequisites(ctx, st, spec.Patch, spec.Rev, res.Errors)
		}
		return
	}
	setState, why := patch.SetReady, ""
	if out.State != patch.Vetted {
		setState, why = patch.SetFailed, string(out.State)+": "+out.Refusal+out.Error
	}
	if err := st.SetPatchSet(ctx, j.Kernel, spec.SetVersion, j.ID, setState, module, why); err != nil {
		s.log.Warn("record a patch set's build", "kernel", j.Kernel, "err", err)
		return
	}
	s.publish(ctx, event.Event{At: now, Kind: event.Kind("patchset." + string(setState)), Subject: fmt.Sprintf("%s v%d", j.Kernel, spec.SetVersion), Detail: why})
}
