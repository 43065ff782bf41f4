package dash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Messages of the patch page.
type (
	patchesMsg struct {
		seq  int
		list []patch.Patch
		err  error
	}
	// patchMsg is a patch with the job of its newest revision (its
	// result: the module's functions, or the refusal's code).
	patchMsg struct {
		seq int
		d   service.PatchDetail
		job *service.JobDetail
		err error
	}
	createdMsg struct {
		d   service.PatchDetail
		err error
	}
	// editedMsg is what the editor left of a revision's diff.
	editedMsg struct {
		id       string
		old, new []byte
		err      error
	}
	revisedMsg struct {
		d   service.PatchDetail
		err error
	}
)

func (patchesMsg) answer() {}
func (patchMsg) answer()   {}
func (createdMsg) answer() {}
func (revisedMsg) answer() {}

// reloader coalesces the reloads events ask for: one query at a time,
// and one more after it if any came meanwhile.
type reloader struct{ busy, again bool }

func (r *reloader) ask(load func() tea.Cmd) tea.Cmd {
	if r.busy {
		r.again = true
		return nil
	}
	return load()
}

func (r *reloader) done(load func() tea.Cmd) tea.Cmd {
	r.busy = false
	if r.again {
		r.again = false
		return load()
	}
	return nil
}

// patchPage is the deployable patches of a CVE on a kernel (or all of a
// kernel's), and one patch: its revisions, their risk and vetting, its
// build-and-vet job's log followed live, and the result.
type patchPage struct {
	cve, kernel string // the list's: cve "" is every CVE's
	seq         int
	list        []patch.Patch
	loaded      bool
	err         error
	notice      string
	rows        list
	reload      reloader

	detailID string
	dseq     int
	detail   *service.PatchDetail
	job      *service.JobDetail
	dreload  reloader
	vp       viewport.Model
	jobLog
}

func newPatchPage(st styles) patchPage { return patchPage{rows: newList(st)} }

// openCVE shows the CVE's patches for the kernel; with none yet, it asks
// for a fix file to make the first.
func (p *patchPage) openCVE(m *Model, cve, kernel string) tea.Cmd {
	m.page = pagePatch
	p.closeDetail()
	if p.cve != cve || p.kernel != kernel {
		p.cve, p.kernel, p.list, p.loaded, p.err, p.notice = cve, kernel, nil, false, nil, ""
		p.setRows(m)
	}
	p.rows.top()
	return p.load(m)
}

func (p *patchPage) load(m *Model) tea.Cmd {
	if p.kernel == "" {
		p.kernel = m.queue.kernel
	}
	p.seq++
	p.reload.busy = true
	seq, src, q := p.seq, m.src, service.PatchQuery{Kernel: p.kernel, CVE: p.cve}
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.Patches(ctx, q)
		if err != nil {
			err = fmt.Errorf("list patches: %w", err)
		}
		return patchesMsg{seq, list, err}
	})
}

func (p *patchPage) got(msg patchesMsg, m *Model) tea.Cmd {
	if msg.seq != p.seq {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		// Newest first: the one being worked on is on top.
		slices.Reverse(msg.list)
		first := !p.loaded
		p.list, p.loaded = msg.list, true
		p.setRows(m)
		if first && len(p.list) == 0 && p.cve != "" && p.detailID == "" && m.page == pagePatch && !m.prompt.active {
			return tea.Batch(p.reload.done(func() tea.Cmd { return p.load(m) }), p.askFix(m))
		}
	}
	return p.reload.done(func() tea.Cmd { return p.load(m) })
}

// askFix opens the line for a fix file's path: the diff is read here,
// on the dashboard's machine, and sent to the server.
func (p *patchPage) askFix(m *Model) tea.Cmd {
	if p.cve == "" {
		p.notice = "open a CVE (page 2) and press p there to make a patch for it"
		return nil
	}
	cve, kernel := p.cve, p.kernel
	return m.ask("fix for "+cve+" on "+kernel+": ", "a unified diff's path, e.g. the stable commit's git format-patch", "", 4096,
		func(m *Model, v string) tea.Cmd {
			path := homePath(strings.TrimSpace(v))
			if path == "" {
				return nil
			}
			src := m.src
			p.notice = "creating a patch from " + path + "…"
			return m.query(func(ctx context.Context) tea.Msg {
				diff, err := service.ReadRegularFile("the fix", path, service.MaxPatchDiff)
				if err != nil {
					return createdMsg{err: err}
				}
				d, err := src.CreatePatch(ctx, service.CreatePatchOptions{CVE: cve, Kernel: kernel, Diff: diff, Source: filepath.Base(path)})
				if err != nil {
					err = fmt.Errorf("create a patch for %s: %w", cve, err)
				}
				return createdMsg{d, err}
			})
		})
}

func (p *patchPage) created(msg createdMsg, m *Model) tea.Cmd {
	if msg.err != nil {
		p.err, p.notice = msg.err, ""
		return nil
	}
	p.err = nil
	m.page = pagePatch
	cmd := p.show(m, msg.d, nil)
	p.notice = "created: its build and vetting are queued"
	var fixes tea.Cmd
	if m.cve.id == msg.d.CVE {
		fixes = m.cve.loadFixes(m)
	}
	return tea.Batch(cmd, p.load(m), fixes)
}

func (p *patchPage) setRows(m *Model) {
	rows := make([]table.Row, 0, len(p.list))
	for _, pa := range p.list {
		rows = append(rows, table.Row{termtext.Line(pa.ID), termtext.Line(pa.CVE), termtext.Line(pa.Kernel), fmt.Sprint(pa.Rev),
			m.st.patchState(pa.State).Render(string(pa.State)), termtext.Line(pa.Author), pa.Updated.In(m.loc).Format("01-02 15:04")})
	}
	p.rows.setRows(rows)
}

func (p *patchPage) resize(m *Model, w, h int) {
	p.rows.setColumns([]column{{title: "PATCH", width: 18}, {title: "CVE", width: 14, flex: 1}, {title: "KERNEL", width: 6, flex: 1},
		{title: "REV", width: 3}, {title: "STATE", width: 8}, {title: "AUTHOR", width: 6, flex: 1}, {title: "UPDATED", width: 11}}, w)
	p.rows.setHeight(h)
	p.setRows(m)
	p.vp.SetWidth(w)
	p.logVP.SetWidth(w)
	p.split(h)
	p.refresh(m)
}

// split shares the page between the patch and its build log.
func (p *patchPage) split(h int) {
	if !p.following() {
		p.vp.SetHeight(h)
		p.logVP.SetHeight(0)
		return
	}
	lh := max(h/3, 4)
	p.vp.SetHeight(max(h-lh-1, 1))
	p.logVP.SetHeight(lh)
}

func (p *patchPage) status(m *Model) string {
	var s string
	switch {
	case p.err != nil:
		return m.errLine(p.err)
	case p.detailID != "" && p.detail == nil:
		s = "loading patch " + termtext.Line(p.detailID) + "…"
	case p.detail != nil:
		d := p.detail
		s = fmt.Sprintf("patch %s · %s on %s · %s · revision %d", termtext.Line(d.ID), termtext.Line(d.CVE), termtext.Line(d.Kernel),
			m.st.patchState(d.State).Render(string(d.State)), d.Rev)
	case !p.loaded:
		s = "loading patches…"
	default:
		what := "kernel " + termtext.Line(p.kernel)
		if p.cve != "" {
			what = termtext.Line(p.cve) + " on " + what
		}
		s = fmt.Sprintf("patches for %s · %d", what, len(p.list))
	}
	if p.notice != "" {
		s += " · " + termtext.Line(p.notice)
	}
	return s
}

func (p *patchPage) render(m *Model) string {
	w, _ := m.body()
	if p.detailID != "" {
		if p.logVP.Height() == 0 {
			return p.vp.View()
		}
		return p.vp.View() + "\n" + p.logView(m, w)
	}
	if !p.loaded {
		return ""
	}
	if len(p.list) == 0 {
		if p.cve != "" {
			return placeholder(fmt.Sprintf("No deployable patch for %s on %s yet. n makes one from a fix file (a unified diff); a builder builds it and vets it in a VM of the kernel before review.",
				termtext.Line(p.cve), termtext.Line(p.kernel)), w)
		}
		return placeholder("No deployable patches for kernel "+termtext.Line(p.kernel)+". Open a CVE (page 2) and press p to make one.", w)
	}
	return p.rows.view()
}

func (p *patchPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	if p.detailID != "" {
		switch {
		case key.Matches(msg, k.Back):
			p.closeDetail()
			p.split(p.vp.Height() + p.logVP.Height())
			m.layout()
			return p.load(m)
		case key.Matches(msg, k.Reload):
			return p.loadDetail(m)
		case key.Matches(msg, k.Edit):
			return p.edit(m)
		}
		return scroll(&p.vp, msg)
	}
	switch {
	case key.Matches(msg, k.Open):
		if i, ok := p.rows.pick(len(p.list)); ok {
			return p.open(m, p.list[i].ID)
		}
		return nil
	case key.Matches(msg, k.New):
		return p.askFix(m)
	case key.Matches(msg, k.Reload):
		return p.load(m)
	case key.Matches(msg, k.Back):
		if p.cve != "" {
			m.page = pageCVE
		}
		return nil
	}
	return p.rows.update(msg)
}

// open shows one patch.
func (p *patchPage) open(m *Model, id string) tea.Cmd {
	p.closeDetail()
	p.detailID = id
	p.vp.GotoTop()
	p.refresh(m)
	return p.loadDetail(m)
}

// show shows a patch the server just answered with (created, revised).
func (p *patchPage) show(m *Model, d service.PatchDetail, j *service.JobDetail) tea.Cmd {
	if p.detailID != d.ID {
		p.closeDetail()
		p.detailID = d.ID
		p.vp.GotoTop()
	}
	p.dseq++ // an older query's answer is stale now
	return p.gotDetail(patchMsg{seq: p.dseq, d: d, job: j}, m)
}

func (p *patchPage) closeDetail() {
	p.stopLog()
	p.detailID, p.detail, p.job = "", nil, nil
	p.dreload = reloader{}
}

func (p *patchPage) loadDetail(m *Model) tea.Cmd {
	p.dseq++
	p.dreload.busy = true
	id, seq, src := p.detailID, p.dseq, m.src
	return m.query(func(ctx context.Context) tea.Msg {
		return fetchPatch(ctx, src, id, seq)
	})
}

// fetchPatch asks for a patch and its newest revision's job.
func fetchPatch(ctx context.Context, src Source, id string, seq int) patchMsg {
	d, err := src.Patch(ctx, id)
	if err != nil {
		return patchMsg{seq: seq, err: fmt.Errorf("show patch %s: %w", id, err)}
	}
	msg := patchMsg{seq: seq, d: d}
	if n := len(d.Revisions); n > 0 && d.Revisions[n-1].Job != "" {
		jd, err := src.Job(ctx, d.Revisions[n-1].Job)
		if err != nil {
			return patchMsg{seq: seq, err: fmt.Errorf("show job %s: %w", d.Revisions[n-1].Job, err)}
		}
		msg.job = &jd
	}
	return msg
}

func (p *patchPage) gotDetail(msg patchMsg, m *Model) tea.Cmd {
	if msg.seq != p.dseq || p.detailID == "" {
		return nil
	}
	again := p.dreload.done(func() tea.Cmd { return p.loadDetail(m) })
	p.err = msg.err
	if msg.err != nil {
		return again
	}
	d := msg.d
	if p.detail != nil && p.detail.State != d.State {
		p.notice = "" // said of the state before
	}
	p.detail, p.job = &d, msg.job
	var follow tea.Cmd
	if n := len(d.Revisions); n > 0 && d.Revisions[n-1].Job != "" && d.Revisions[n-1].Job != p.logJob {
		follow = p.follow(m, d.Revisions[n-1].Job)
	}
	_, h := m.body()
	p.split(h)
	p.refresh(m)
	return tea.Batch(again, follow)
}

func (p *patchPage) gotLog(msg logMsg, m *Model) tea.Cmd {
	if !p.addLines(msg, func() { _, h := m.body(); p.split(h) }) {
		return nil
	}
	return p.next()
}

// gotLogEnd: the job is over; its outcome is on the patch soon (the
// patch.* event says when), so the page asks again now too.
func (p *patchPage) gotLogEnd(msg logEndMsg, m *Model) tea.Cmd {
	if !p.end(msg) {
		return nil
	}
	if p.detail == nil || p.detail.State != patch.Building {
		return nil // a finished job's log, read out
	}
	return p.dreload.ask(func() tea.Cmd { return p.loadDetail(m) })
}

// edit opens the newest revision's diff in $EDITOR (the dashboard gives
// the terminal to it and takes it back); a changed diff becomes a new
// revision.
func (p *patchPage) edit(m *Model) tea.Cmd {
	d := p.detail
	if d == nil || len(d.Revisions) == 0 {
		return nil
	}
	old := d.Revisions[len(d.Revisions)-1].Diff
	f, err := os.CreateTemp("", "tuxtape-patch-*.diff")
	if err == nil {
		_, err = f.Write(old)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		p.err = fmt.Errorf("edit: %w", err)
		return nil
	}
	cmd := editorCmd(f.Name())
	return tea.ExecProcess(cmd, afterEdit(d.ID, old, f.Name()))
}

// editorCmd is $EDITOR (default vi) on path.
func editorCmd(path string) *exec.Cmd {
	editor := strings.Fields(os.Getenv("EDITOR"))
	if len(editor) == 0 {
		editor = []string{"vi"}
	}
	return exec.Command(editor[0], append(editor[1:], path)...)
}

// afterEdit reads what the editor saved, and removes the file.
func afterEdit(id string, old []byte, path string) tea.ExecCallback {
	return func(err error) tea.Msg {
		defer os.Remove(path)
		if err != nil {
			return editedMsg{id: id, err: fmt.Errorf("$EDITOR: %w (no revision made)", err)}
		}
		b, err := service.ReadRegularFile("the edited diff", path, service.MaxPatchDiff)
		return editedMsg{id: id, old: old, new: b, err: err}
	}
}

func (p *patchPage) edited(msg editedMsg, m *Model) tea.Cmd {
	switch {
	case msg.err != nil:
		p.err = msg.err
		return nil
	case bytes.Equal(msg.old, msg.new):
		p.err, p.notice = nil, "no change: no new revision"
		return nil
	}
	src, id, diff := m.src, msg.id, msg.new
	p.notice = "sending the new revision…"
	return m.query(func(ctx context.Context) tea.Msg {
		d, err := src.RevisePatch(ctx, id, diff, "edit", service.Actor{})
		if err != nil {
			err = fmt.Errorf("revise patch %s: %w", id, err)
		}
		return revisedMsg{d, err}
	})
}

func (p *patchPage) revised(msg revisedMsg, m *Model) tea.Cmd {
	if msg.err != nil {
		p.err, p.notice = msg.err, ""
		return nil
	}
	p.err = nil
	cmd := p.show(m, msg.d, nil)
	p.notice = fmt.Sprintf("revision %d: its build and vetting are queued", msg.d.Rev)
	return cmd
}

// buildResult is what the newest revision's job made, from its result.
func buildResult(j *service.JobDetail) (job.PatchBuildResult, string) {
	var res job.PatchBuildResult
	var spec job.PatchBuildSpec
	if j == nil {
		return res, ""
	}
	json.Unmarshal(j.Job.Result, &res)
	json.Unmarshal(j.Job.Spec, &spec)
	return res, spec.Module
}

// vetReport is the VM's report on a module, as the builder sends it.
type vetReport struct {
	Enabled      bool     `json:"enabled"`
	Transitioned bool     `json:"transitioned"`
	Unloaded     bool     `json:"unloaded"`
	Functions    []string `json:"functions"`
	Problems     []string `json:"problems"`
	Blockers     []string `json:"blockers"`
	Absent       []string `json:"absent"`
}

// riskScore is a revision's risk, as the server scores it.
type riskScore struct {
	Total   int    `json:"total"`
	Level   string `json:"level"`
	Reasons []struct {
		Code   string `json:"code"`
		Points int    `json:"points"`
		Detail string `json:"detail"`
		Near   string `json:"near"`
	} `json:"reasons"`
}

func parseRisk(b []byte) (riskScore, bool) {
	var r riskScore
	return r, len(b) > 0 && json.Unmarshal(b, &r) == nil
}

func parseVet(b []byte) (vetReport, bool) {
	var v vetReport
	return v, len(b) > 0 && json.Unmarshal(b, &v) == nil
}

// refresh lays the open patch out.
func (p *patchPage) refresh(m *Model) {
	d := p.detail
	if d == nil {
		p.vp.SetContent("")
		p.refreshLog()
		return
	}
	w := max(p.vp.Width()-2, 20)
	st := m.st
	var b strings.Builder
	field := func(name, v string) { fmt.Fprintf(&b, "%-11s%s\n", name, v) }
	section := func(title string) { fmt.Fprintf(&b, "\n%s\n", st.heading.Render(title)) }
	b.WriteString(st.title.Render("patch "+termtext.Line(d.ID)) + "  " + termtext.Line(d.CVE) + " on " + termtext.Line(d.Kernel) + "\n")
	field("state", st.patchState(d.State).Render(string(d.State))+fmt.Sprintf(" (revision %d)", d.Rev))
	field("author", termtext.Line(d.Author))
	field("approvals", approvalLine(d))

	section("Result of revision " + fmt.Sprint(d.Rev))
	p.result(&b, m, w)

	section("Revisions")
	for i := len(d.Revisions) - 1; i >= 0; i-- {
		r := d.Revisions[i]
		fmt.Fprintf(&b, "revision %d by %s, %s, from %s\n", r.Rev, termtext.Line(r.Author), r.Created.In(m.loc).Format("2006-01-02 15:04"), termtext.Line(r.Source))
		if rs, ok := parseRisk(r.Risk); ok {
			fmt.Fprintf(&b, "  risk %s (%d)\n", termtext.Line(rs.Level), rs.Total)
		}
		if r.Job != "" {
			b.WriteString("  job " + termtext.Line(r.Job) + "\n")
		}
		if r.Refusal != "" {
			b.WriteString(clip(st.bad.Render("  refused: "+termtext.Line(r.Refusal)), w) + "\n")
		}
		if r.Error != "" {
			b.WriteString(clip(st.bad.Render("  error: "+termtext.Line(r.Error)), w) + "\n")
		}
	}
	for _, r := range d.Reviews {
		fmt.Fprintf(&b, "%s revision %d by %s: %s\n", r.At.In(m.loc).Format("2006-01-02 15:04"), r.Rev, termtext.Line(r.Reviewer),
			clipPlain(string(r.Verdict)+" — "+termtext.Line(r.Comment), w))
	}
	b.WriteString(st.dim.Render("e edits the newest revision in $EDITOR: a new revision, built and vetted again") + "\n")
	p.vp.SetContent(strings.TrimRight(b.String(), "\n"))
	p.refreshLog()
}

// result is the newest revision's outcome: building, the module and its
// functions per object, the refusal, or the failure.
func (p *patchPage) result(b *strings.Builder, m *Model, w int) {
	d, st := p.detail, m.st
	r := d.Revisions[len(d.Revisions)-1]
	res, module := buildResult(p.job)
	para := func(s string) {
		for _, l := range strings.Split(wrap(s, w-2), "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	switch d.State {
	case patch.Building:
		b.WriteString("building and vetting on a builder: the log follows below\n")
		return
	case patch.Refused:
		code := r.RefusalCode
		if code == "" {
			code = "refused"
		}
		b.WriteString(st.bad.Render("refused ("+termtext.Line(code)+")") + ": the generator cannot make a livepatch of this fix\n")
		para(text(r.Refusal))
		action := "This CVE " + refusal.Code(r.RefusalCode).Action() + "."
		for i, l := range strings.Split(wrap(action+" The patch.refused event said so on the event stream (and its webhooks).", w), "\n") {
			if i == 0 {
				l = strings.Replace(l, action, st.warn.Render(action), 1)
			}
			b.WriteString(l + "\n")
		}
		return
	case patch.Failed:
		b.WriteString(st.bad.Render("failed") + "\n")
		para(text(r.Error))
	}
	if module == "" {
		module = "the module"
	}
	fmt.Fprintf(b, "module %s", termtext.Line(module))
	if r.Module != "" {
		fmt.Fprintf(b, " · sha256 %s", short(r.Module))
	}
	if res.Units > 0 || res.Funcs > 0 {
		fmt.Fprintf(b, " · %d unit(s), %d function(s)", res.Units, res.Funcs)
	}
	b.WriteString("\n")
	objs := make([]string, 0, len(res.Functions))
	for o := range res.Functions {
		objs = append(objs, o)
	}
	slices.Sort(objs)
	for _, o := range objs {
		b.WriteString(clip(fmt.Sprintf("  %-12s %s", termtext.Line(o)+":", termtext.Line(strings.Join(res.Functions[o], " "))), w) + "\n")
	}
	if v, ok := parseVet(r.Vet); ok {
		b.WriteString(vetLine(v, st) + "\n")
		for _, f := range v.Functions {
			b.WriteString(clip(st.dim.Render("  patched "+termtext.Line(f)), w) + "\n")
		}
		for _, x := range v.Problems {
			b.WriteString(clip(st.bad.Render("  problem: "+termtext.Line(x)), w) + "\n")
		}
	}
}

func vetLine(v vetReport, st styles) string {
	yes := func(ok bool, s string) string {
		if ok {
			return st.good.Render(s)
		}
		return st.bad.Render("not " + s)
	}
	s := "vetted in a VM: " + yes(v.Enabled, "enabled") + ", " + yes(v.Transitioned, "transitioned") + ", " + yes(v.Unloaded, "unloaded")
	if len(v.Absent) > 0 {
		s += " · absent in the VM: " + termtext.Line(strings.Join(v.Absent, " "))
	}
	return s
}

// approvalLine is the two-person rule for the newest revision: who
// approved, and how many more must.
func approvalLine(d *service.PatchDetail) string {
	s := fmt.Sprintf("%d of %d", len(d.Approvals), d.Required)
	if len(d.Approvals) > 0 {
		names := make([]string, len(d.Approvals))
		for i, a := range d.Approvals {
			names[i] = termtext.Line(a)
		}
		s += " (" + strings.Join(names, ", ") + ")"
	}
	author := d.Author
	if n := len(d.Revisions); n > 0 {
		author = d.Revisions[n-1].Author
	}
	switch left := d.Required - len(d.Approvals); {
	case d.State == patch.Building:
		s += " · reviewed once vetted"
	case d.State == patch.Refused || d.State == patch.Failed:
		s += " · not reviewable: " + string(d.State)
	case d.State == patch.Approved:
		s += " · approved"
	case d.State == patch.Rejected:
		s += " · rejected"
	case left > 0:
		s += fmt.Sprintf(" · %d more must, not %s (the revision's author)", left, termtext.Line(author))
		if len(d.Approvals) > 0 {
			s += " nor who approved"
		}
	}
	return s
}
