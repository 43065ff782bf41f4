package dash

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Messages of the review page.
type (
	waitingMsg struct {
		seq  int
		list []patch.Patch
		err  error
	}
	reviewMsg struct {
		seq int
		d   service.PatchDetail
		err error
	}
	reviewedMsg struct {
		verdict patch.Verdict
		d       service.PatchDetail
		err     error
	}
)

func (waitingMsg) answer()  {}
func (reviewMsg) answer()   {}
func (reviewedMsg) answer() {}

// reviewPage is the patches waiting for review (vetted, every kernel's),
// and one of them: the vetting report and the risk reasons beside the
// diff, the reviews so far and the two-person rule; a and r approve or
// reject the newest revision with a comment.
type reviewPage struct {
	seq    int
	list   []patch.Patch
	loaded bool
	err    error
	notice string
	rows   list
	reload reloader

	detailID string
	dseq     int
	detail   *service.PatchDetail
	dreload  reloader
	vp       viewport.Model
}

func newReviewPage(st styles) reviewPage { return reviewPage{rows: newList(st)} }

func (p *reviewPage) load(m *Model) tea.Cmd {
	p.seq++
	p.reload.busy = true
	seq, src := p.seq, m.src
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.Patches(ctx, service.PatchQuery{State: string(patch.Vetted)})
		if err != nil {
			err = fmt.Errorf("list the patches waiting for review: %w", err)
		}
		return waitingMsg{seq, list, err}
	})
}

func (p *reviewPage) got(msg waitingMsg, m *Model) tea.Cmd {
	if msg.seq != p.seq {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		p.list, p.loaded = msg.list, true
		p.setRows(m)
	}
	return p.reload.done(func() tea.Cmd { return p.load(m) })
}

func (p *reviewPage) setRows(m *Model) {
	rows := make([]table.Row, 0, len(p.list))
	for _, pa := range p.list {
		rows = append(rows, table.Row{termtext.Line(pa.ID), termtext.Line(pa.CVE), termtext.Line(pa.Kernel), fmt.Sprint(pa.Rev),
			termtext.Line(pa.Author), pa.Updated.In(m.loc).Format("01-02 15:04")})
	}
	p.rows.setRows(rows)
}

func (p *reviewPage) resize(m *Model, w, h int) {
	p.rows.setColumns([]column{{title: "PATCH", width: 18}, {title: "CVE", width: 14, flex: 1}, {title: "KERNEL", width: 6, flex: 1},
		{title: "REV", width: 3}, {title: "AUTHOR", width: 6, flex: 1}, {title: "UPDATED", width: 11}}, w)
	p.rows.setHeight(h)
	p.setRows(m)
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.refresh(m)
}

func (p *reviewPage) status(m *Model) string {
	var s string
	switch {
	case p.err != nil:
		return m.errLine(p.err)
	case p.detailID != "" && p.detail == nil:
		s = "loading patch " + termtext.Line(p.detailID) + "…"
	case p.detail != nil:
		d := p.detail
		s = fmt.Sprintf("review %s · %s on %s · rev %d · %s · %d/%d approvals", termtext.Line(d.ID), termtext.Line(d.CVE), termtext.Line(d.Kernel),
			d.Rev, m.st.patchState(d.State).Render(string(d.State)), len(d.Approvals), d.Required)
	case !p.loaded:
		s = "loading the patches waiting for review…"
	case len(p.list) == 1:
		s = "1 patch waiting for review"
	default:
		s = fmt.Sprintf("%d patches waiting for review", len(p.list))
	}
	if p.notice != "" {
		// The answer to what the user did comes before the rest.
		if p.detail != nil {
			s = "review " + termtext.Line(p.detail.ID)
		}
		s += " · " + termtext.Line(p.notice)
	}
	return s
}

func (p *reviewPage) render(m *Model) string {
	if p.detailID != "" {
		return p.vp.View()
	}
	if p.loaded && len(p.list) == 0 {
		w, _ := m.body()
		return placeholder("No patch waiting for review. A patch comes here once a builder has built it and vetted it in a VM of its kernel.", w)
	}
	return p.rows.view()
}

func (p *reviewPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	if p.detailID != "" {
		switch {
		case key.Matches(msg, k.Back):
			p.detailID, p.detail = "", nil
			return p.load(m)
		case key.Matches(msg, k.Approve):
			return p.askVerdict(m, patch.Approve)
		case key.Matches(msg, k.Reject):
			return p.askVerdict(m, patch.Reject)
		case key.Matches(msg, k.ReloadR):
			return p.loadDetail(m)
		}
		return scroll(&p.vp, msg)
	}
	switch {
	case key.Matches(msg, k.Open):
		if i, ok := p.rows.pick(len(p.list)); ok {
			return p.open(m, p.list[i].ID)
		}
		return nil
	case key.Matches(msg, k.ReloadR):
		return p.load(m)
	}
	return p.rows.update(msg)
}

func (p *reviewPage) open(m *Model, id string) tea.Cmd {
	p.detailID, p.detail, p.notice = id, nil, ""
	p.dreload = reloader{}
	p.vp.GotoTop()
	p.refresh(m)
	return p.loadDetail(m)
}

func (p *reviewPage) loadDetail(m *Model) tea.Cmd {
	p.dseq++
	p.dreload.busy = true
	id, seq, src := p.detailID, p.dseq, m.src
	return m.query(func(ctx context.Context) tea.Msg {
		d, err := src.Patch(ctx, id)
		if err != nil {
			err = fmt.Errorf("show patch %s: %w", id, err)
		}
		return reviewMsg{seq, d, err}
	})
}

func (p *reviewPage) gotDetail(msg reviewMsg, m *Model) tea.Cmd {
	if msg.seq != p.dseq || p.detailID == "" {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		d := msg.d
		p.detail = &d
		p.refresh(m)
	}
	return p.dreload.done(func() tea.Cmd { return p.loadDetail(m) })
}

// askVerdict opens the comment line; enter sends the review of the
// revision on screen (the server refuses it if a newer one came since).
func (p *reviewPage) askVerdict(m *Model, v patch.Verdict) tea.Cmd {
	d := p.detail
	if d == nil {
		return nil
	}
	id, rev := d.ID, d.Rev
	label := fmt.Sprintf("%s revision %d, comment: ", v, rev)
	return m.ask(label, "what you checked (required; goes to the audit log)", "", 4096, func(m *Model, comment string) tea.Cmd {
		if strings.TrimSpace(comment) == "" {
			p.notice = "a review needs a comment: nothing sent"
			return nil
		}
		src := m.src
		p.notice = "sending the review…"
		return m.query(func(ctx context.Context) tea.Msg {
			d, err := src.ReviewPatch(ctx, service.ReviewOptions{ID: id, Rev: rev, Verdict: v, Comment: comment})
			if err != nil {
				err = fmt.Errorf("%s patch %s: %w", v, id, err)
			}
			return reviewedMsg{v, d, err}
		})
	})
}

func (p *reviewPage) reviewed(msg reviewedMsg, m *Model) tea.Cmd {
	if msg.err != nil {
		p.err, p.notice = msg.err, ""
		return nil
	}
	p.err = nil
	d := msg.d
	p.notice = fmt.Sprintf("%sd revision %d: %s, %d of %d approvals", msg.verdict, d.Rev, d.State, len(d.Approvals), d.Required)
	if p.detailID == d.ID {
		p.dseq++
		p.detail = &d
		p.refresh(m)
	}
	return p.reload.ask(func() tea.Cmd { return p.load(m) })
}

// refresh lays the open patch out: on a wide screen the report on the
// left and the diff on the right, else one after the other.
func (p *reviewPage) refresh(m *Model) {
	d := p.detail
	if d == nil {
		p.vp.SetContent("")
		return
	}
	w := p.vp.Width()
	wide := w >= 110
	rw := w
	if wide {
		rw = w * 9 / 20
	}
	report := p.report(m, rw-1)
	var lines []string
	if wide {
		dw := w - rw - 3
		diff := append([]string{m.st.heading.Render("Diff of revision " + fmt.Sprint(d.Rev))}, diffLines(newest(d).Diff, dw, m.st)...)
		lines = sideBySide(report, diff, rw, m.st.dim.Render(" │ "))
	} else {
		lines = append(report, "", m.st.heading.Render("Diff of revision "+fmt.Sprint(d.Rev)))
		lines = append(lines, diffLines(newest(d).Diff, w, m.st)...)
	}
	p.vp.SetContent(strings.Join(lines, "\n"))
}

func newest(d *service.PatchDetail) patch.Revision {
	if len(d.Revisions) == 0 {
		return patch.Revision{}
	}
	return d.Revisions[len(d.Revisions)-1]
}

// report is the review's left side: the patch, the two-person rule, the
// risk reasons, the vetting report and the reviews so far.
func (p *reviewPage) report(m *Model, w int) []string {
	d, st := p.detail, m.st
	r := newest(d)
	var out []string
	add := func(s string) { out = append(out, clip(s, w)) }
	para := func(s, indent string) {
		for _, l := range strings.Split(wrap(text(s), w-len(indent)), "\n") {
			out = append(out, indent+l)
		}
	}
	add(st.title.Render("patch "+termtext.Line(d.ID)) + "  " + termtext.Line(d.CVE) + " on " + termtext.Line(d.Kernel))
	add(fmt.Sprintf("revision %d by %s, from %s", r.Rev, termtext.Line(r.Author), termtext.Line(r.Source)))
	add("state " + st.patchState(d.State).Render(string(d.State)))
	out = append(out, "", st.heading.Render("Two-person rule"))
	para(approvalLine(d), "")
	out = append(out, "", st.heading.Render("Risk"))
	if rs, ok := parseRisk(r.Risk); ok {
		add(fmt.Sprintf("%s, %d points", termtext.Line(rs.Level), rs.Total))
		for _, x := range rs.Reasons {
			s := fmt.Sprintf("+%d %s: %s", x.Points, x.Code, x.Detail)
			if x.Near != "" {
				s += " (near the refusal " + x.Near + ")"
			}
			para(s, "  ")
		}
	} else {
		add("not scored")
	}
	out = append(out, "", st.heading.Render("Vetting"))
	if v, ok := parseVet(r.Vet); ok {
		add(vetLine(v, st))
		for _, f := range v.Functions {
			add("  patched " + termtext.Line(f))
		}
		for _, x := range v.Problems {
			para("problem: "+x, "  ")
		}
		for _, x := range v.Blockers {
			para("blocked the transition: "+x, "  ")
		}
	} else {
		add("no report")
	}
	if r.Module != "" {
		add("module sha256 " + short(r.Module))
	}
	if len(d.Reviews) > 0 {
		out = append(out, "", st.heading.Render("Reviews"))
		for _, rv := range d.Reviews {
			v := string(rv.Verdict)
			if rv.Verdict == patch.Reject {
				v = st.bad.Render(v)
			} else {
				v = st.good.Render(v)
			}
			add(fmt.Sprintf("%s revision %d: %s, %s", termtext.Line(rv.Reviewer), rv.Rev, v, rv.At.In(m.loc).Format("2006-01-02 15:04")))
			para(rv.Comment, "  ")
		}
	}
	return out
}
