package dash

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/service"
)

// cvePage is one CVE with its verdict for the queue's kernel.
type cvePage struct {
	id, kernel string
	seq        int
	cve        *service.CVE
	err        error
	vp         viewport.Model
}

// open shows the CVE page for id, judged against kernel.
func (p *cvePage) open(m *Model, id, kernel string) tea.Cmd {
	m.page = pageCVE
	if p.id == id && p.kernel == kernel && p.cve != nil {
		return nil
	}
	p.id, p.kernel, p.cve, p.err = id, kernel, nil, nil
	p.vp.GotoTop()
	p.refresh(m)
	return p.load(m)
}

// load asks for the open CVE; what is on screen stays until the answer.
func (p *cvePage) load(m *Model) tea.Cmd {
	if p.id == "" {
		return nil
	}
	p.seq++
	id, seq, src, o := p.id, p.seq, m.src, service.ShowOptions{Kernel: p.kernel, Profile: profiles[m.queue.profile]}
	return m.query(func(ctx context.Context) tea.Msg {
		c, err := src.ShowCVE(ctx, id, o)
		if err != nil {
			err = fmt.Errorf("show %s: %w", id, err)
		}
		return cveMsg{seq, c, err}
	})
}

func (p *cvePage) got(msg cveMsg, m *Model) {
	if msg.seq != p.seq {
		return
	}
	p.cve, p.err = msg.cve, msg.err
	p.refresh(m)
}

func (p *cvePage) resize(m *Model, w, h int) {
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.refresh(m)
}

func (p *cvePage) status(m *Model) string {
	switch {
	case p.err != nil:
		return m.errLine(p.err)
	case p.id == "":
		return "no CVE open"
	case p.cve == nil:
		return "loading " + termtext.Line(p.id) + "…"
	}
	s := termtext.Line(p.id)
	if p.kernel != "" {
		s += " on kernel " + termtext.Line(p.kernel)
	}
	return fmt.Sprintf("%s · %d%%", s, int(p.vp.ScrollPercent()*100))
}

func (p *cvePage) render(m *Model) string {
	if p.id == "" {
		w, _ := m.body()
		return placeholder("Open a CVE from the queue (page 1) with enter.", w)
	}
	return p.vp.View()
}

func (p *cvePage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	if key.Matches(msg, m.keys.Back) {
		m.page = pageQueue
		return nil
	}
	if key.Matches(msg, m.keys.Patch) && p.id != "" {
		kernel := p.kernel
		if kernel == "" {
			kernel = m.queue.kernel
		}
		return m.patch.openCVE(m, p.id, kernel)
	}
	var cmd tea.Cmd
	p.vp, cmd = p.vp.Update(msg)
	return cmd
}

// refresh lays the CVE out for the viewport's width. Everything from the
// record is escaped: the CNA's text is input from outside.
func (p *cvePage) refresh(m *Model) {
	c := p.cve
	if c == nil {
		p.vp.SetContent("")
		return
	}
	w := max(p.vp.Width()-2, 20)
	st := m.st
	var b strings.Builder
	section := func(title string) { fmt.Fprintf(&b, "\n%s\n", st.heading.Render(title)) }
	para := func(s, indent string) {
		for _, l := range strings.Split(wrap(text(s), w-len(indent)), "\n") {
			b.WriteString(indent + l + "\n")
		}
	}
	b.WriteString(st.title.Render(termtext.Line(c.ID)) + "  ")
	para(c.Title, "")
	seen := ""
	if c.FirstSeen != nil {
		seen = " · first seen " + c.FirstSeen.Format("2006-01-02")
	}
	b.WriteString(st.dim.Render(fmt.Sprintf("%s (from %s)%s", termtext.Line(c.Status), termtext.Line(c.Source), seen)) + "\n")

	if p.kernel != "" {
		section("Kernel " + termtext.Line(p.kernel))
		p.verdict(&b, c.Verdict, m, para)
	}

	section("Priority")
	if pr := c.Priority; pr != nil {
		b.WriteString(st.tier(pr.Tier).Render(pr.Tier) + fmt.Sprintf(" %.0f\n", pr.Score))
		for _, r := range pr.Reasons {
			para("- "+r, "  ")
		}
	} else {
		b.WriteString("not scored\n")
	}

	section("Description")
	para(c.Description, "")

	section("CVSS 3.1")
	if cv := c.CVSS; cv != nil {
		fmt.Fprintf(&b, "%.1f %s  %s\n", cv.Score, termtext.Line(cv.Severity), termtext.Line(cv.Vector))
		for _, s := range cv.Scenarios {
			para(s, "  ")
		}
	} else {
		b.WriteString("the CNA gave no CVSS vector\n")
	}

	section("Program files")
	if len(c.ProgramFiles) == 0 {
		b.WriteString("none named\n")
	}
	for _, f := range c.ProgramFiles {
		b.WriteString("  " + termtext.Line(f) + "\n")
	}
	if c.MainlineFix != "" {
		b.WriteString("mainline fix " + termtext.Line(c.MainlineFix) + "\n")
	}

	section("Fixes per stable branch")
	if len(c.Branches) == 0 {
		b.WriteString("no branch data\n")
	} else {
		fmt.Fprintf(&b, "  %-8s %-12s %-13s %-12s %s\n", "BRANCH", "INTRODUCED", "COMMIT", "FIXED", "COMMIT")
		for _, br := range c.Branches {
			fmt.Fprintf(&b, "  %-8s %-12s %-13s %-12s %s\n", orDash(termtext.Line(br.Branch)), orDash(termtext.Line(br.IntroducedVersion)), orDash(short(br.IntroducedCommit)),
				orDash(termtext.Line(br.FixedVersion)), orDash(short(br.FixedCommit)))
		}
	}

	section("Deployable patches")
	b.WriteString("p shows this CVE's patches for the kernel, and makes one from a fix file\n")

	p.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}

func (p *cvePage) verdict(b *strings.Builder, v *gauge.Verdict, m *Model, para func(string, string)) {
	if v == nil {
		b.WriteString("no verdict\n")
		return
	}
	s := string(v.Status)
	style := m.st.good
	if v.Counts() {
		style = m.st.bad
	}
	b.WriteString(style.Render(s) + " (" + termtext.Line(string(v.Reason)) + ")")
	if v.TreatAsAffected {
		b.WriteString(", treated as affected")
	}
	b.WriteString("\n")
	if len(v.Where) > 0 {
		b.WriteString("  built into " + termtext.Line(strings.Join(v.Where, ", ")) + "\n")
	}
	for _, e := range v.Evidence {
		para("- "+e, "  ")
	}
	for _, f := range v.Files {
		where := f.How
		if len(f.Targets) > 0 {
			where += " → " + strings.Join(f.Targets, ", ")
		}
		b.WriteString("  " + termtext.Line(f.Path) + ": " + termtext.Line(where) + "\n")
	}
}

// text makes outside text safe to lay out: control characters escaped,
// tabs as spaces (a tab's width is the terminal's guess).
func text(s string) string {
	return strings.ReplaceAll(termtext.Safe(s), "\t", "    ")
}

func short(commit string) string { return termtext.Line(vulns.ShortCommit(commit)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
