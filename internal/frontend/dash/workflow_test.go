package dash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tuxtape/tuxtape/internal/analysis/risk"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// workflow is the fake server's patch workflow, with the rules the
// server has: the two-person rule (the author may not approve, each
// reviewer once, Required different ones), only vetted revisions are
// approved, a patch set needs an approved patch.
type workflow struct {
	who      string // the caller: the token's ID
	required int
	patches  []*service.PatchDetail
	sets     []patch.Set
	jobs     map[string]service.JobDetail
	logs     map[string][]string
	// running jobs' logs stay open after their lines, as a job's that
	// is still building.
	running map[string]bool
	health  map[string][]service.RingHealth
	nextID  int

	created []service.CreatePatchOptions
	revised []string // ID: diff
	reviews []service.ReviewOptions
	builds  []string
	healths []string
	logReqs []string
}

// The fixture's fix is the real corpus fix for CVE-2026-64317 (isofs);
// its risk is the real score of it.
func newWorkflow(t *testing.T) workflow {
	t.Helper()
	diff, err := os.ReadFile(filepath.Join("testdata", "CVE-2026-64317.patch"))
	if err != nil {
		t.Fatal(err)
	}
	rs := riskOf(t, diff)
	vet, _ := json.Marshal(map[string]any{"enabled": true, "transitioned": true, "unloaded": true,
		"functions": []string{"isofs/get_symlink_chunk,1", "isofs/parse_rock_ridge_inode_internal,1"}, "duration_ns": 41e9})
	at := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }
	w := workflow{who: "r2", required: 2, jobs: map[string]service.JobDetail{}, logs: map[string][]string{}, running: map[string]bool{},
		health: map[string][]service.RingHealth{
			"tt_tiny_1": {{Ring: "canary", Applied: 2}, {Ring: "early", Applied: 1, Failed: 1, Halted: true}},
		}}
	addJob := func(id, module string, res job.PatchBuildResult) {
		spec, _ := json.Marshal(job.PatchBuildSpec{Module: module, Vet: true})
		rj, _ := json.Marshal(res)
		w.jobs[id] = service.JobDetail{Job: job.Job{ID: id, Kind: job.PatchBuild, State: job.Done, Kernel: "tiny", Spec: spec, Result: rj}}
		w.logs[id] = []string{"fetch linux-source-6.1 6.1.176-1", "build: livepatch " + module, "vm: boot 6.1.0-50-cloud-amd64", "vm: enabled, transitioned, unloaded"}
	}
	funcs := map[string][]string{"isofs": {"get_symlink_chunk", "parse_rock_ridge_inode_internal"}}
	addJob("00000000000000j1", "tt_a1b2c3d4_r1", job.PatchBuildResult{Module: "module.ko", Units: 1, Funcs: 2, Functions: funcs, Vet: vet, VetOK: true})
	addJob("00000000000000j2", "tt_b1b2c3d4_r1", job.PatchBuildResult{Refusal: "init-only", Reason: "only __init code changes: the code ran at boot, a livepatch cannot replace it"})
	w.logs["00000000000000j2"] = []string{"fetch linux-source-6.1 6.1.176-1", "build: livepatch tt_b1b2c3d4_r1", "refused (init-only): only __init code changes"}
	addJob("00000000000000j3", "tt_c1b2c3d4_r1", job.PatchBuildResult{Module: "module.ko", Units: 1, Funcs: 2, Functions: funcs, Vet: vet, VetOK: true})
	rev := func(id string, n int, author, job string, m int) patch.Revision {
		return patch.Revision{Patch: id, Rev: n, Author: author, Created: at(m), Source: "CVE-2026-64317.patch", Diff: diff, Job: job, Risk: rs}
	}
	p1 := rev("a1b2c3d4e5f60001", 1, "r1", "00000000000000j1", 300)
	p1.Module, p1.Vet = strings.Repeat("ab", 32), vet
	p2 := rev("b1b2c3d4e5f60002", 1, "r1", "00000000000000j2", 200)
	p2.RefusalCode = "init-only"
	p2.Source, p2.Diff, p2.Refusal = "init.diff", []byte("--- a/fs/isofs/inode.c\n+++ b/fs/isofs/inode.c\n@@ -1598,5 +1598,6 @@\n+\tpr_debug(\"isofs: init\\n\");\n"),
		"only __init code changes: the code ran at boot, a livepatch cannot replace it"
	p3 := rev("c1b2c3d4e5f60003", 1, "r1", "00000000000000j3", 100)
	p3.Module, p3.Vet = strings.Repeat("cd", 32), vet
	w.patches = []*service.PatchDetail{
		{Patch: patch.Patch{ID: p1.Patch, CVE: "CVE-2026-64317", Kernel: "tiny", Rev: 1, State: patch.Approved, Author: "r1", Created: at(300), Updated: at(250)},
			Revisions: []patch.Revision{p1}, Approvals: []string{"r2", "r3"}, Required: 2,
			Reviews: []patch.Review{{Patch: p1.Patch, Rev: 1, Reviewer: "r2", Verdict: patch.Approve, Comment: "bounds check is right", At: at(260)},
				{Patch: p1.Patch, Rev: 1, Reviewer: "r3", Verdict: patch.Approve, Comment: "agreed", At: at(250)}}},
		{Patch: patch.Patch{ID: p2.Patch, CVE: "CVE-2024-42133", Kernel: "tiny", Rev: 1, State: patch.Refused, Author: "r1", Created: at(200), Updated: at(190)},
			Revisions: []patch.Revision{p2}, Approvals: []string{}, Required: 2},
		{Patch: patch.Patch{ID: p3.Patch, CVE: "CVE-2026-64317", Kernel: "tiny", Rev: 1, State: patch.Vetted, Author: "r1", Created: at(100), Updated: at(60)},
			Revisions: []patch.Revision{p3}, Approvals: []string{}, Required: 2},
	}
	w.sets = []patch.Set{
		{Kernel: "tiny", Version: 1, State: patch.SetReady, Module: "tt_tiny_1", SHA256: strings.Repeat("ef", 32), Job: "00000000000000s1",
			CVEs: []string{"CVE-2026-64317"}, Patches: []string{"a1b2c3d4e5f60001@1"}, Created: at(240)},
		{Kernel: "tiny", Version: 2, State: patch.SetFailed, Module: "tt_tiny_2", Job: "00000000000000s2",
			CVEs: []string{"CVE-2026-64317"}, Patches: []string{"a1b2c3d4e5f60001@1"}, Created: at(30), Error: "failed: vetting in the VM: not transitioned"},
	}
	return w
}

func riskOf(t *testing.T, diff []byte) json.RawMessage {
	t.Helper()
	s, err := risk.Assess(risk.Input{Diff: diff})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	return b
}

func (f *fakeSource) find(id string) *service.PatchDetail {
	for _, p := range f.wf.patches {
		if p.ID == id {
			return p
		}
	}
	return nil
}

func clone(d *service.PatchDetail) service.PatchDetail {
	c := *d
	c.Revisions = slices.Clone(d.Revisions)
	c.Reviews = slices.Clone(d.Reviews)
	c.Approvals = slices.Clone(d.Approvals)
	return c
}

// newBuild queues a fake build: its log has lines and stays open (the
// job runs) until the test's context ends.
func (f *fakeSource) newBuild(id string, rev int) string {
	f.wf.nextID++
	jid := fmt.Sprintf("00000000000000%02d", f.wf.nextID)
	spec, _ := json.Marshal(job.PatchBuildSpec{Module: fmt.Sprintf("tt_%s_r%d", id[:8], rev), Vet: true, Patch: id, Rev: rev})
	f.wf.jobs[jid] = service.JobDetail{Job: job.Job{ID: jid, Kind: job.PatchBuild, State: job.Leased, Kernel: "tiny", Spec: spec}}
	f.wf.logs[jid] = []string{"fetch linux-source-6.1 6.1.176-1", "prepare the tree \x1b]0;pwned\x07", "build: kpatch-build " + id[:8]}
	f.wf.running[jid] = true
	return jid
}

func (f *fakeSource) CreatePatch(ctx context.Context, o service.CreatePatchOptions) (service.PatchDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["CreatePatch"]++
	f.wf.created = append(f.wf.created, o)
	if !slices.ContainsFunc(f.kernels, func(k service.KernelView) bool { return k.Name == o.Kernel }) {
		return service.PatchDetail{}, fmt.Errorf("kernel %s: not found", o.Kernel)
	}
	id := fmt.Sprintf("d%015x", len(f.wf.patches)+1)
	jid := f.newBuild(id, 1)
	rs, _ := risk.Assess(risk.Input{Diff: o.Diff})
	rj, _ := json.Marshal(rs)
	d := &service.PatchDetail{Patch: patch.Patch{ID: id, CVE: o.CVE, Kernel: o.Kernel, Rev: 1, State: patch.Building, Author: f.wf.who, Created: now, Updated: now},
		Revisions: []patch.Revision{{Patch: id, Rev: 1, Author: f.wf.who, Created: now, Source: o.Source, Diff: o.Diff, Job: jid, Risk: rj}},
		Reviews:   []patch.Review{}, Approvals: []string{}, Required: f.wf.required}
	f.wf.patches = append(f.wf.patches, d)
	return clone(d), nil
}

func (f *fakeSource) RevisePatch(ctx context.Context, id string, diff []byte, source string, by service.Actor) (service.PatchDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["RevisePatch"]++
	f.wf.revised = append(f.wf.revised, id+": "+string(diff))
	d := f.find(id)
	if d == nil {
		return service.PatchDetail{}, fmt.Errorf("patch %s: not found", id)
	}
	d.Rev++
	jid := f.newBuild(id, d.Rev)
	d.State, d.Approvals = patch.Building, []string{}
	d.Revisions = append(d.Revisions, patch.Revision{Patch: id, Rev: d.Rev, Author: f.wf.who, Created: now, Source: source, Diff: diff, Job: jid})
	return clone(d), nil
}

func (f *fakeSource) Patches(ctx context.Context, q service.PatchQuery) ([]patch.Patch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Patches"]++
	f.calls["Patches "+q.Kernel+" "+q.CVE+" "+q.State]++
	out := []patch.Patch{}
	for _, p := range f.wf.patches {
		if (q.Kernel == "" || p.Kernel == q.Kernel) && (q.CVE == "" || p.CVE == q.CVE) && (q.State == "" || string(p.State) == q.State) {
			out = append(out, p.Patch)
		}
	}
	return out, nil
}

func (f *fakeSource) Patch(ctx context.Context, id string) (service.PatchDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Patch"]++
	d := f.find(id)
	if d == nil {
		return service.PatchDetail{}, fmt.Errorf("patch %s: not found", id)
	}
	return clone(d), nil
}

func (f *fakeSource) ReviewPatch(ctx context.Context, o service.ReviewOptions) (service.PatchDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["ReviewPatch"]++
	d := f.find(o.ID)
	if d == nil {
		return service.PatchDetail{}, fmt.Errorf("patch %s: not found", o.ID)
	}
	rev := d.Revisions[len(d.Revisions)-1]
	switch {
	case o.Rev != d.Rev:
		return service.PatchDetail{}, errors.New("revision is no longer the newest")
	case o.Verdict == patch.Approve && d.State != patch.Vetted:
		return service.PatchDetail{}, fmt.Errorf("patch %s is %s: %w", o.ID, d.State, service.ErrNotVetted)
	case o.Verdict == patch.Approve && rev.Author == f.wf.who:
		return service.PatchDetail{}, fmt.Errorf("rpc error: code = PermissionDenied desc = patch %s revision %d: %w (the two-person rule)", o.ID, rev.Rev, service.ErrOwnRevision)
	case o.Verdict == patch.Approve && slices.Contains(d.Approvals, f.wf.who):
		return service.PatchDetail{}, fmt.Errorf("%s approved revision %d already: another reviewer must", f.wf.who, rev.Rev)
	}
	f.wf.reviews = append(f.wf.reviews, o)
	d.Reviews = append(d.Reviews, patch.Review{Patch: o.ID, Rev: o.Rev, Reviewer: f.wf.who, Verdict: o.Verdict, Comment: o.Comment, At: now})
	switch o.Verdict {
	case patch.Approve:
		d.Approvals = append(d.Approvals, f.wf.who)
		if len(d.Approvals) >= d.Required {
			d.State = patch.Approved
		}
	case patch.Reject:
		d.State = patch.Rejected
	}
	return clone(d), nil
}

func (f *fakeSource) BuildPatchSet(ctx context.Context, kernel string, by service.Actor) (patch.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["BuildPatchSet"]++
	f.wf.builds = append(f.wf.builds, kernel)
	s := patch.Set{Kernel: kernel, State: patch.SetBuilding, Created: now, CVEs: []string{}, Patches: []string{}}
	for _, p := range f.wf.patches {
		if p.Kernel == kernel && p.State == patch.Approved {
			s.CVEs = append(s.CVEs, p.CVE)
			s.Patches = append(s.Patches, fmt.Sprintf("%s@%d", p.ID, p.Rev))
		}
	}
	if len(s.Patches) == 0 {
		return patch.Set{}, fmt.Errorf("kernel %s has no approved patch: nothing to put in a patch set", kernel)
	}
	for _, x := range f.wf.sets {
		if x.Kernel == kernel {
			s.Version = max(s.Version, x.Version)
		}
	}
	s.Version++
	s.Module, s.Job = service.ModuleNameFor("tt", kernel, s.Version), "00000000000000s9"
	f.wf.sets = append(f.wf.sets, s)
	return s, nil
}

func (f *fakeSource) PatchSets(ctx context.Context, kernel string) ([]patch.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["PatchSets"]++
	f.calls["PatchSets "+kernel]++
	out := []patch.Set{}
	for _, s := range f.wf.sets {
		if kernel == "" || s.Kernel == kernel {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeSource) Job(ctx context.Context, id string) (service.JobDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Job"]++
	j, ok := f.wf.jobs[id]
	if !ok {
		return service.JobDetail{}, fmt.Errorf("job %s: not found", id)
	}
	return j, nil
}

func (f *fakeSource) JobLog(ctx context.Context, id string, o service.JobLogOptions, fn func(store.JobLogLine) error) error {
	f.mu.Lock()
	f.calls["JobLog"]++
	f.wf.logReqs = append(f.wf.logReqs, id)
	lines, ok := f.wf.logs[id]
	running := f.wf.running[id]
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("job %s: not found", id)
	}
	for i, l := range lines {
		if err := fn(store.JobLogLine{Seq: int64(i + 1), At: now, Text: l}); err != nil {
			return err
		}
	}
	if running && o.Follow {
		<-ctx.Done()
	}
	return nil
}

func (f *fakeSource) FleetHealth(ctx context.Context, module string) ([]service.RingHealth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["FleetHealth"]++
	f.wf.healths = append(f.wf.healths, module)
	return slices.Clone(f.wf.health[module]), nil
}

// settle lets the log follower's goroutine deliver what it has: the
// driver drops a command that has not answered within a moment, as it
// drops the spinner's ticks, and the page's next waitLog picks up.
func (d *driver) settle() {
	d.t.Helper()
	d.settleLog(&d.m.kern.jobLog)
	p := &d.m.patch
	for range 20 {
		if p.logCh == nil {
			return
		}
		d.run(waitLog(p.logCtx, p.logCh))
		if len(p.log) > 0 && (p.logDone || len(p.log) >= 3) {
			return
		}
	}
}

// toCVE is the keys from the queue to CVE-2025-21703's page.
var toCVE = []string{"a", "/", "2", "1", "7", "0", "3", "enter", "enter"}

func typed(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

func keysOf(parts ...[]string) []string { return slices.Concat(parts...) }

// TestPatchPage: the patch page's keys make the calls the server has for
// them, and show their answers.
func TestPatchPage(t *testing.T) {
	fix := filepath.Join("testdata", "CVE-2026-64317.patch")
	diff, _ := os.ReadFile(fix)
	tests := []struct {
		name  string
		keys  []string
		check func(t *testing.T, f *fakeSource, d *driver, screen string)
	}{
		{"p on a CVE without patches asks for a fix", keysOf(toCVE, []string{"p"}), func(t *testing.T, f *fakeSource, d *driver, screen string) {
			if d.m.page != pagePatch || !d.m.prompt.active || f.count("Patches tiny CVE-2025-21703 ") != 1 {
				t.Errorf("page %d, prompt %v, calls %v", d.m.page, d.m.prompt.active, f.calls)
			}
			if !strings.Contains(screen, "fix for CVE-2025-21703 on tiny:") {
				t.Errorf("no prompt on screen:\n%s", screen)
			}
		}},
		{"the fix file makes a patch, its log followed", keysOf(toCVE, []string{"p"}, typed(fix), []string{"enter"}), func(t *testing.T, f *fakeSource, d *driver, _ string) {
			if len(f.wf.created) != 1 {
				t.Fatalf("CreatePatch calls: %+v", f.wf.created)
			}
			c := f.wf.created[0]
			if c.CVE != "CVE-2025-21703" || c.Kernel != "tiny" || !bytes.Equal(c.Diff, diff) || c.Source != "CVE-2026-64317.patch" {
				t.Errorf("CreatePatch(%+v)", c)
			}
			d.settle()
			screen := d.screen()
			for _, s := range []string{"· building · revision 1", "created: its build and vetting are queued", "build log · job 0000000000000001 · 3 lines · following",
				"build: kpatch-build d0000000", `prepare the tree \e]0;pwned\x07`} {
				if !strings.Contains(screen, s) {
					t.Errorf("screen lacks %q:\n%s", s, screen)
				}
			}
		}},
		{"esc drops the prompt", keysOf(toCVE, []string{"p", "x", "esc"}), func(t *testing.T, f *fakeSource, d *driver, screen string) {
			if len(f.wf.created) != 0 || d.m.prompt.active || d.quit {
				t.Errorf("created %v, prompt %v", f.wf.created, d.m.prompt.active)
			}
		}},
		{"a missing file is an error, nothing sent", keysOf(toCVE, []string{"p"}, typed("/no/such.diff"), []string{"enter"}), func(t *testing.T, f *fakeSource, d *driver, screen string) {
			if len(f.wf.created) != 0 || !strings.Contains(screen, "error: the fix /no/such.diff: no such file") {
				t.Errorf("created %v:\n%s", f.wf.created, screen)
			}
		}},
		{"q on the prompt is text", keysOf(toCVE, []string{"p", "q"}), func(t *testing.T, f *fakeSource, d *driver, screen string) {
			if d.quit || d.m.prompt.in.Value() != "q" {
				t.Errorf("quit %v, value %q", d.quit, d.m.prompt.in.Value())
			}
		}},
		{"page 6 lists the kernel's patches, newest first", []string{"6"}, func(t *testing.T, f *fakeSource, d *driver, screen string) {
			// One for the queue's PATCH column, one for the page.
			if f.count("Patches tiny  ") != 2 || len(d.m.patch.list) != 3 || d.m.patch.list[0].ID != "c1b2c3d4e5f60003" {
				t.Errorf("calls %v, list %v", f.calls, d.m.patch.list)
			}
			if d.m.prompt.active {
				t.Error("the prompt opened on the kernel's list")
			}
		}},
		{"n without a CVE says where to start", []string{"6", "n"}, func(t *testing.T, f *fakeSource, d *driver, screen string) {
			if d.m.prompt.active || !strings.Contains(screen, "press p there") {
				t.Errorf("prompt %v:\n%s", d.m.prompt.active, screen)
			}
		}},
		{"a vetted patch: module, functions per object, vetting", []string{"6", "enter"}, func(t *testing.T, f *fakeSource, d *driver, _ string) {
			d.settle()
			screen := d.screen()
			for _, s := range []string{"module tt_c1b2c3d4_r1 · sha256 cdcdcdcdcdcd · 1 unit(s), 2 function(s)", "isofs:", "get_symlink_chunk parse_rock_ridge_inode_internal",
				"vetted in a VM: enabled, transitioned, unloaded", "0 of 2 · 2 more must, not r1", "the job is over"} {
				if !strings.Contains(screen, s) {
					t.Errorf("screen lacks %q:\n%s", s, screen)
				}
			}
			if f.count("Job") != 1 || len(f.wf.logReqs) != 1 || f.wf.logReqs[0] != "00000000000000j3" {
				t.Errorf("Job calls %d, logs %v", f.count("Job"), f.wf.logReqs)
			}
		}},
		{"a refused patch needs a hand-written livepatch", []string{"6", "down", "enter"}, func(t *testing.T, f *fakeSource, d *driver, screen string) {
			for _, s := range []string{"refused (init-only)", "only __init code changes", "This CVE needs a hand-written livepatch."} {
				if !strings.Contains(screen, s) {
					t.Errorf("screen lacks %q:\n%s", s, screen)
				}
			}
		}},
		{"esc goes back to the list and stops the log", []string{"6", "enter", "esc"}, func(t *testing.T, f *fakeSource, d *driver, screen string) {
			if d.m.patch.detailID != "" || d.m.patch.logCh != nil || !strings.Contains(screen, "› c1b2c3d4e5f60003") {
				t.Errorf("detail %q:\n%s", d.m.patch.detailID, screen)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			d := newDriver(t, f, 120, 40)
			d.keys(tt.keys...)
			tt.check(t, f, d, d.screen())
		})
	}
}

// TestEdit: what the editor saves becomes a new revision; an unchanged
// diff or a failed editor makes none.
func TestEdit(t *testing.T) {
	tests := []struct {
		name    string
		editor  string
		revised bool
		notice  string
	}{
		{"changed", "sed -i -e s/goto/return/", true, "revision 2: its build and vetting are queued"},
		{"unchanged", "true", false, "no change: no new revision"},
		{"editor fails", "false", false, "error: $EDITOR: exit status 1 (no revision made)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EDITOR", tt.editor)
			f := newFake(t)
			d := newDriver(t, f, 120, 40)
			d.keys("6", "enter")
			if cmd := d.m.patch.key(keyPress("e"), d.m); cmd == nil {
				t.Fatal("e gave no command")
			}
			// What tea.ExecProcess runs, by hand: the editor on a file
			// with the newest revision's diff, then the callback.
			pd := d.m.patch.detail
			old := pd.Revisions[len(pd.Revisions)-1].Diff
			path := filepath.Join(t.TempDir(), "edit.diff")
			os.WriteFile(path, old, 0o600)
			msg := afterEdit(pd.ID, old, path)(editorCmd(path).Run())
			d.send(msg)
			if got := len(f.wf.revised) == 1; got != tt.revised {
				t.Errorf("revised %v", f.wf.revised)
			}
			if tt.revised && !strings.Contains(f.wf.revised[0], "return eio;") {
				t.Errorf("RevisePatch got %q", f.wf.revised[0])
			}
			if _, err := os.Stat(path); err == nil {
				t.Error("the edited file was left behind")
			}
			if s := d.screen(); !strings.Contains(s, tt.notice) {
				t.Errorf("screen lacks %q:\n%s", tt.notice, s)
			}
		})
	}
}

// TestReview: a and r send the reviewer's verdict on the revision on
// screen, with the comment typed; the server's refusals are shown.
func TestReview(t *testing.T) {
	comment := typed("bounds check is right")
	tests := []struct {
		name   string
		who    string
		keys   []string
		review string // the ReviewPatch call, "" for none
		screen []string
	}{
		{"approve", "r2", keysOf([]string{"7", "enter", "a"}, comment, []string{"enter"}), "c1b2c3d4e5f60003 1 approve bounds check is right",
			[]string{"approved revision 1: vetted, 1 of 2 approvals", "1 of 2 (r2) · 1 more must, not r1", "r2 revision 1: approve"}},
		{"reject", "r2", keysOf([]string{"7", "enter", "r"}, comment, []string{"enter"}), "c1b2c3d4e5f60003 1 reject bounds check is right",
			[]string{"rejectd revision 1: rejected"}},
		{"no comment, nothing sent", "r2", []string{"7", "enter", "a", " ", "enter"}, "", []string{"a review needs a comment: nothing sent"}},
		{"esc, nothing sent", "r2", keysOf([]string{"7", "enter", "a"}, comment, []string{"esc"}), "", []string{"0 of 2 · 2 more must, not r1"}},
		{"the author may not approve", "r1", keysOf([]string{"7", "enter", "a"}, comment, []string{"enter"}), "",
			[]string{"error: approve patch c1b2c3d4e5f60003: rpc error: code = PermissionDenied"}},
		{"the comment line keeps q and digits", "r2", []string{"7", "enter", "a", "q", "7"}, "", []string{"approve revision 1, comment: q7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.wf.who = tt.who
			d := newDriver(t, f, 120, 40)
			d.keys(tt.keys...)
			var got string
			if len(f.wf.reviews) > 0 {
				r := f.wf.reviews[0]
				got = fmt.Sprintf("%s %d %s %s", r.ID, r.Rev, r.Verdict, r.Comment)
			}
			if got != tt.review {
				t.Errorf("ReviewPatch %q, want %q", got, tt.review)
			}
			s := d.screen()
			for _, want := range tt.screen {
				if !strings.Contains(s, want) {
					t.Errorf("screen lacks %q:\n%s", want, s)
				}
			}
			if d.quit || d.m.page != pageReview {
				t.Errorf("quit %v, page %d", d.quit, d.m.page)
			}
		})
	}
}

// TestPublish: the kernel's patch sets, b queueing the next, a set's
// fleet health with its halts, and the archive command shown, not run.
func TestPublish(t *testing.T) {
	tests := []struct {
		name   string
		keys   []string
		calls  map[string]int
		screen []string
	}{
		{"list", []string{"8"}, map[string]int{"PatchSets tiny": 1}, []string{"kernel tiny · 2 patch set(s)", "› v2", "failed", "v1", "ready"}},
		{"b builds the next", []string{"8", "b"}, map[string]int{"BuildPatchSet": 1, "PatchSets tiny": 2},
			[]string{"queued v3 (tt_tiny_3): 1 patch(es), job 00000000000000s9", "› v3"}},
		{"a ready set: health and the publish command", []string{"8", "down", "enter"}, map[string]int{"FleetHealth": 1},
			[]string{"tuxtape archive publish --from-patchset tiny:1", "does not publish", "HALTED in early", "canary", "early", "HALTED: failures reached"}},
		{"K: the next kernel has none", []string{"8", "K"}, map[string]int{"PatchSets tiny2": 1}, []string{"Kernel tiny2 has no patch set yet"}},
		{"b with nothing approved: the server's refusal", []string{"8", "K", "b"}, map[string]int{"BuildPatchSet": 1},
			[]string{"error: build a patch set of tiny2: kernel tiny2 has no approved patch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			d := newDriver(t, f, 120, 40)
			d.keys(tt.keys...)
			for call, n := range tt.calls {
				if got := f.count(call); got != n {
					t.Errorf("%s: %d calls, want %d", call, got, n)
				}
			}
			s := d.screen()
			for _, want := range tt.screen {
				if !strings.Contains(s, want) {
					t.Errorf("screen lacks %q:\n%s", want, s)
				}
			}
		})
	}
}

// TestWorkflowEvents: the workflow's events ask again for what is on
// screen and what they changed, and nothing else.
func TestWorkflowEvents(t *testing.T) {
	tests := []struct {
		kind    event.Kind
		subject string
		keys    []string
		calls   map[string]int
	}{
		// Every patch event asks again for the queue (its PATCH column:
		// one ListCVEs and one Patches), and for the pages that show it.
		{"patch.vetted", "c1b2c3d4e5f60003", nil, map[string]int{"Patch": 0, "Patches": 1, "ListCVEs": 1}},
		{"patch.vetted", "c1b2c3d4e5f60003", []string{"6", "enter"}, map[string]int{"Patch": 1, "Patches": 2}},
		{"patch.vetted", "a1b2c3d4e5f60001", []string{"6", "enter"}, map[string]int{"Patch": 0, "Patches": 2}},
		{"patch.approved", "c1b2c3d4e5f60003", []string{"7", "enter"}, map[string]int{"Patch": 1, "Patches": 2}},
		{"patch.created", "ffffffffffffffff", []string{"7"}, map[string]int{"Patch": 0, "Patches": 2}},
		// On a CVE's page: its raw fixes too (one Patches call).
		{"patch.created", "ffffffffffffffff", toCVE, map[string]int{"Patch": 0, "Patches": 2}},
		{"patchset.ready", "tiny v1", nil, map[string]int{"PatchSets": 0, "ListCVEs": 0}},
		{"patchset.ready", "tiny v1", []string{"8"}, map[string]int{"PatchSets": 1, "FleetHealth": 0}},
		{"ring.halted", "tt_tiny_1", []string{"8", "down", "enter"}, map[string]int{"FleetHealth": 1}},
		{"fleet.applied", "host-1", []string{"8", "down", "enter"}, map[string]int{"FleetHealth": 1}},
		{"ring.halted", "tt_tiny_1", []string{"8"}, map[string]int{"FleetHealth": 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s after %q", tt.kind, tt.subject, tt.keys), func(t *testing.T) {
			f := newFake(t)
			d := newDriver(t, f, 80, 24)
			d.keys(tt.keys...)
			before := map[string]int{}
			for c := range tt.calls {
				before[c] = f.count(c)
			}
			d.send(eventMsg{event.Event{Seq: 9, At: now, Kind: tt.kind, Subject: tt.subject}})
			for c, n := range tt.calls {
				if got := f.count(c) - before[c]; got != n {
					t.Errorf("%s: %d calls, want %d", c, got, n)
				}
			}
		})
	}
}

// TestLogFollowNonBlocking: a build log that keeps coming never holds
// Update up, and leaving the patch stops its follower.
func TestLogFollowNonBlocking(t *testing.T) {
	f := newFake(t)
	d := newDriver(t, f, 80, 24)
	d.keys(keysOf(toCVE, []string{"p"}, typed("testdata/CVE-2026-64317.patch"), []string{"enter"})...)
	p := &d.m.patch
	if p.logCh == nil || p.logDone {
		t.Fatalf("no log followed: %+v", p.logJob)
	}
	ctx := p.logCtx
	done := make(chan struct{})
	go func() {
		d.m.Update(keyPress("esc"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Update blocked")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("leaving the patch did not stop its log's follower")
	}
}

// TestDiffLines: the diff's colours are on +, - and @@ lines, and the
// text stays a diff with the colours taken out; outside text is escaped.
func TestDiffLines(t *testing.T) {
	st := newStyles()
	in := "--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,2 @@\n ctx\n-old\n+new \x1b]0;pwned\x07\n\tindented"
	got := diffLines([]byte(in), 40, st)
	want := []string{"--- a/x.c", "+++ b/x.c", "@@ -1,2 +1,2 @@", " ctx", "-old", `+new \e]0;pwned\x07`, "    indented"}
	plain := make([]string, len(got))
	for i, l := range got {
		plain[i] = ansi.Strip(l)
	}
	if !slices.Equal(plain, want) {
		t.Errorf("diffLines = %q, want %q", plain, want)
	}
	for i, style := range map[int]string{2: st.hunk.Render("x"), 4: st.del.Render("x"), 5: st.add.Render("x")} {
		prefix, _, _ := strings.Cut(style, "x")
		if prefix != "" && !strings.HasPrefix(got[i], prefix) {
			t.Errorf("line %d %q not styled %q", i, got[i], prefix)
		}
	}
	if l := diffLines([]byte("+"+strings.Repeat("y", 100)), 20, st); ansi.StringWidth(l[0]) != 20 {
		t.Errorf("a long line is %d cells, want 20", ansi.StringWidth(l[0]))
	}
}

// TestWorkflowEscapes: what people and builders wrote (a diff, a review's
// comment, a refusal, a patch set's error, a ring's name) reaches the
// screen escaped.
func TestWorkflowEscapes(t *testing.T) {
	const evil = "\x1b]0;pwned\x07"
	f := newFake(t)
	p3 := f.find("c1b2c3d4e5f60003")
	p3.Revisions[0].Diff = append(slices.Clone(p3.Revisions[0].Diff), []byte("+"+evil+"\n")...)
	p3.Reviews = []patch.Review{{Patch: p3.ID, Rev: 1, Reviewer: "r9" + evil, Verdict: patch.Reject, Comment: "no " + evil, At: now}}
	f.find("b1b2c3d4e5f60002").Revisions[0].Refusal += evil
	f.wf.sets[0].Error = "x" + evil
	f.wf.health["tt_tiny_1"][0].Ring = "can" + evil
	for _, keys := range [][]string{{"7", "enter"}, {"6", "enter"}, {"6", "down", "enter"}, {"8", "down", "enter"}} {
		for _, size := range [][2]int{{80, 24}, {120, 40}} {
			d := newDriver(t, f, size[0], size[1])
			d.keys(keys...)
			d.settle()
			// The whole page, not only its first screenful.
			d.send(tea.WindowSizeMsg{Width: size[0], Height: 200})
			raw := d.m.Render()
			if strings.Contains(raw, "\x1b]") || strings.Contains(raw, "\x07") {
				t.Errorf("after %q at %v the screen holds a raw OSC sequence:\n%q", keys, size, raw)
			}
			if !strings.Contains(ansi.Strip(raw), `\e]0;pwned\x07`) {
				t.Errorf("after %q at %v the escaped text is not shown:\n%s", keys, size, ansi.Strip(raw))
			}
		}
	}
}

// TestQueuePatchColumn: the queue's PATCH column is each CVE's newest
// patch state for the kernel, asked again when a patch event comes.
func TestQueuePatchColumn(t *testing.T) {
	f := newFake(t)
	d := newDriver(t, f, 120, 40)
	top := d.m.queue.list.CVEs[0].ID
	if row := d.m.queue.rows.t.Rows()[0]; ansi.Strip(row[len(row)-1]) != "—" {
		t.Errorf("a CVE without a patch: %q", row)
	}
	f.mu.Lock()
	f.wf.patches = append(f.wf.patches, &service.PatchDetail{Patch: patch.Patch{ID: "e1b2c3d4e5f60005", CVE: top, Kernel: "tiny", Rev: 1, State: patch.Vetted}})
	f.mu.Unlock()
	before := f.count("ListCVEs")
	d.send(eventMsg{event.Event{Seq: 9, At: now, Kind: "patch.vetted", Subject: "e1b2c3d4e5f60005"}})
	if f.count("ListCVEs") != before+1 {
		t.Errorf("patch.vetted: %d queue queries, want 1", f.count("ListCVEs")-before)
	}
	if row := d.m.queue.rows.t.Rows()[0]; ansi.Strip(row[len(row)-1]) != "vetted" {
		t.Errorf("%s with a vetted patch: %q", top, row)
	}
}
