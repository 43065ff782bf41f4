package dash

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/service"
)

// cvePage is one CVE with its verdict for the queue's kernel, and the
// raw fixes stored for it.
type cvePage struct {
	id, kernel string
	seq        int
	cve        *service.CVE
	err        error
	vp         viewport.Model

	fseq     int
	fixes    []rawFix
	fixErr   error
	fixReady bool
}

// rawFix is a fix as it was given for a CVE: revision 1 of a deployable
// patch, the same diff for the kernels named.
type rawFix struct {
	kernels []string
	patch   string
	source  string
	diff    []byte
}

// fixesMsg is the CVE's raw fixes.
type fixesMsg struct {
	seq   int
	fixes []rawFix
	err   error
}

func (fixesMsg) answer() {}

// open shows the CVE page for id, judged against kernel.
func (p *cvePage) open(m *Model, id, kernel string) tea.Cmd {
	m.page = pageCVE
	if p.id == id && p.kernel == kernel && p.cve != nil {
		return nil
	}
	p.id, p.kernel, p.cve, p.err = id, kernel, nil, nil
	p.fixes, p.fixErr, p.fixReady = nil, nil, false
	p.vp.GotoTop()
	p.refresh(m)
	return tea.Batch(p.load(m), p.loadFixes(m))
}

// loadFixes asks for the CVE's patches and the first revision of the
// first on each kernel.
func (p *cvePage) loadFixes(m *Model) tea.Cmd {
	if p.id == "" {
		return nil
	}
	p.fseq++
	id, seq, src, kernel := p.id, p.fseq, m.src, p.kernel
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.Patches(ctx, service.PatchQuery{CVE: id})
		if err != nil {
			return fixesMsg{seq: seq, err: fmt.Errorf("list the patches of %s: %w", id, err)}
		}
		first := map[string]bool{}
		var fixes []rawFix
		for _, pa := range list { // oldest first
			if first[pa.Kernel] {
				continue
			}
			first[pa.Kernel] = true
			d, err := src.Patch(ctx, pa.ID)
			if err != nil {
				return fixesMsg{seq: seq, err: fmt.Errorf("show patch %s: %w", pa.ID, err)}
			}
			if len(d.Revisions) == 0 {
				continue
			}
			r := d.Revisions[0]
			i := slices.IndexFunc(fixes, func(f rawFix) bool { return bytes.Equal(f.diff, r.Diff) })
			if i < 0 {
				fixes = append(fixes, rawFix{patch: pa.ID, source: r.Source, diff: r.Diff})
				i = len(fixes) - 1
			}
			fixes[i].kernels = append(fixes[i].kernels, pa.Kernel)
		}
		// The page's kernel's first.
		slices.SortStableFunc(fixes, func(a, b rawFix) int {
			return cmp.Compare(boolInt(!slices.Contains(a.kernels, kernel)), boolInt(!slices.Contains(b.kernels, kernel)))
		})
		return fixesMsg{seq: seq, fixes: fixes}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *cvePage) gotFixes(msg fixesMsg, m *Model) tea.Cmd {
	if msg.seq != p.fseq {
		return nil
	}
	p.fixes, p.fixErr, p.fixReady = msg.fixes, msg.err, true
	p.refresh(m)
	return nil
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

func (p *cvePage) got(msg cveMsg, m *Model) tea.Cmd {
	if msg.seq != p.seq {
		return nil
	}
	p.cve, p.err = msg.cve, msg.err
	p.refresh(m)
	return nil
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
	return scroll(&p.vp, msg)
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

	section("Raw fix")
	p.rawFixes(&b, m, w)

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

// rawFixes shows each stored raw fix with diff colouring, or says how
// one is made.
func (p *cvePage) rawFixes(b *strings.Builder, m *Model, w int) {
	switch {
	case p.fixErr != nil:
		b.WriteString(m.st.bad.Render(clip("cannot read: "+termtext.Line(p.fixErr.Error()), w)) + "\n")
		return
	case !p.fixReady:
		b.WriteString("loading…\n")
		return
	case len(p.fixes) == 0:
		b.WriteString(wrap("none stored yet: p makes a deployable patch from a fix file (its revision 1 is the raw fix)", w) + "\n")
		return
	}
	for i, f := range p.fixes {
		if i > 0 {
			b.WriteString("\n")
		}
		ks := make([]string, len(f.kernels))
		for j, k := range f.kernels {
			ks[j] = termtext.Line(k)
		}
		b.WriteString(m.st.dim.Render(clip(fmt.Sprintf("kernel %s · patch %s revision 1, from %s", strings.Join(ks, ", "), termtext.Line(f.patch), termtext.Line(f.source)), w)) + "\n")
		for _, l := range diffLines(f.diff, w, m.st) {
			b.WriteString(l + "\n")
		}
	}
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
