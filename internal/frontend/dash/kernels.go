package dash

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/service"
)

// kernelsPage lists the registered kernels; enter opens one.
type kernelsPage struct {
	err  error
	rows list

	seq      int
	detailID string
	detail   *service.KernelView
	vp       viewport.Model
}

func newKernelsPage(st styles) kernelsPage { return kernelsPage{rows: newList(st)} }

func (p *kernelsPage) resize(m *Model, w, h int) {
	p.rows.setColumns([]column{{title: "NAME", width: 8, flex: 1}, {title: "RELEASE", width: 14, flex: 2}, {title: "VERSION", width: 8},
		{title: "ARCH", width: 7}, {title: "SOURCE", width: 10, flex: 3}, {title: "PROFILES", width: 8}}, w)
	p.rows.setHeight(h)
	p.setRows(m)
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.refresh(m)
}

func (p *kernelsPage) setRows(m *Model) {
	rows := make([]table.Row, 0, len(m.kernels))
	for _, k := range m.kernels {
		rows = append(rows, table.Row{termtext.Line(k.Name), termtext.Line(k.Release), termtext.Line(k.Version), termtext.Line(k.Arch),
			termtext.Line(k.Source.String()), profileKinds(k)})
	}
	p.rows.setRows(rows)
}

func profileKinds(k service.KernelView) string {
	var kinds []string
	for kind := range k.Profiles {
		kinds = append(kinds, termtext.Line(kind))
	}
	slices.Sort(kinds)
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, ",")
}

func (p *kernelsPage) status(m *Model) string {
	switch {
	case p.err != nil:
		return m.errLine(p.err)
	case p.detailID != "" && p.detail == nil:
		return "loading kernel " + termtext.Line(p.detailID) + "…"
	case p.detailID != "":
		return "kernel " + termtext.Line(p.detailID)
	}
	if len(m.kernels) == 1 {
		return "1 kernel registered"
	}
	return fmt.Sprintf("%d kernels registered", len(m.kernels))
}

func (p *kernelsPage) render(m *Model) string {
	if p.detailID != "" {
		return p.vp.View()
	}
	if len(m.kernels) == 0 {
		w, _ := m.body()
		return placeholder("No kernels yet: `tuxtape kernel add NAME --release R --source SRC` on the server's machine.", w)
	}
	return p.rows.view()
}

func (p *kernelsPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	if p.detailID != "" {
		switch {
		case key.Matches(msg, k.Back):
			p.detailID, p.detail = "", nil
			return nil
		case key.Matches(msg, k.Reload):
			return p.open(m, p.detailID)
		}
		var cmd tea.Cmd
		p.vp, cmd = p.vp.Update(msg)
		return cmd
	}
	switch {
	case key.Matches(msg, k.Open):
		if i := p.rows.selected(); i >= 0 && i < len(m.kernels) {
			return p.open(m, m.kernels[i].Name)
		}
		return nil
	case key.Matches(msg, k.Reload):
		return m.loadKernels()
	}
	return p.rows.update(msg)
}

func (p *kernelsPage) open(m *Model, name string) tea.Cmd {
	p.detailID, p.detail = name, nil
	p.seq++
	seq, src := p.seq, m.src
	p.vp.GotoTop()
	p.refresh(m)
	return m.query(func(ctx context.Context) tea.Msg {
		k, err := src.Kernel(ctx, name)
		if err != nil {
			err = fmt.Errorf("show kernel %s: %w", name, err)
		}
		return kernelMsg{seq, k, err}
	})
}

func (p *kernelsPage) gotDetail(msg kernelMsg, m *Model) {
	if msg.seq != p.seq || p.detailID == "" {
		return
	}
	p.err = msg.err
	if msg.err == nil {
		k := msg.k
		p.detail = &k
	}
	p.refresh(m)
}

func (p *kernelsPage) refresh(m *Model) {
	k := p.detail
	if k == nil || k.Kernel == nil {
		p.vp.SetContent("")
		return
	}
	var b strings.Builder
	field := func(name, v string) { fmt.Fprintf(&b, "%-14s%s\n", name, v) }
	b.WriteString(m.st.title.Render(termtext.Line(k.Name)) + "\n")
	field("release", termtext.Line(k.Release))
	field("version", termtext.Line(k.Version))
	field("arch", termtext.Line(k.Arch))
	field("source", termtext.Line(k.Source.String()))
	if len(k.Source.Patches) > 0 {
		names := make([]string, len(k.Source.Patches))
		for i, pa := range k.Source.Patches {
			names[i] = termtext.Line(pa.Name)
		}
		field("patches", strings.Join(names, ", "))
	}
	field("added", k.Added.In(m.loc).Format("2006-01-02 15:04:05"))
	field("config", "sha256 "+termtext.Line(k.ConfigSHA256))
	if d := k.Debian; d != nil {
		field("debian", termtext.Line(d.Version)+": "+termtext.Line(strings.Join([]string{d.Image, d.Headers, d.Debug, d.Source}, " ")))
	}
	field("fixed CVEs", fmt.Sprintf("%d declared (backports)", len(k.FixedCVEs)))
	field("fixed commits", fmt.Sprintf("%d declared", len(k.FixedCommits)))
	fmt.Fprintf(&b, "\n%s\n", m.st.heading.Render("Build profiles"))
	if len(k.Profiles) == 0 {
		b.WriteString("none stored: verdicts use a static profile (or version checks only)\n")
	}
	kinds := make([]string, 0, len(k.Profiles))
	for kind := range k.Profiles {
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		fmt.Fprintf(&b, "  %-8s %s\n", termtext.Line(kind), k.Profiles[kind].In(m.loc).Format("2006-01-02 15:04:05"))
	}
	p.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}
