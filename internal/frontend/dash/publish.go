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
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Messages of the publish page.
type (
	setsMsg struct {
		seq  int
		list []patch.Set
		err  error
	}
	healthMsg struct {
		seq    int
		rings  []service.RingHealth
		err    error
		module string
	}
	builtMsg struct {
		set patch.Set
		err error
	}
)

func (setsMsg) answer()   {}
func (healthMsg) answer() {}
func (builtMsg) answer()  {}

// publishPage is a kernel's patch sets, newest first; b queues the next;
// enter shows one with its module's health in each ring of the fleet.
// Publishing to the archive signs with the archive's keys, which are on
// the archive's machine and not the dashboard's business: the page shows
// the command to run there.
type publishPage struct {
	kernel string
	seq    int
	sets   []patch.Set
	loaded bool
	err    error
	notice string
	rows   list
	reload reloader

	open    int // the open set's version; 0: the list
	hseq    int
	health  []service.RingHealth
	hloaded bool
	hreload reloader
	vp      viewport.Model
}

func newPublishPage(st styles) publishPage { return publishPage{rows: newList(st)} }

// show is the page coming on screen: the queue's kernel at first.
func (p *publishPage) show(m *Model) tea.Cmd {
	if p.kernel == "" || !m.queue.hasKernel(m.kernels, p.kernel) {
		p.kernel = m.queue.kernel
	}
	if p.open != 0 {
		return p.loadHealth(m)
	}
	return p.load(m)
}

func (p *publishPage) load(m *Model) tea.Cmd {
	if p.kernel == "" {
		return nil
	}
	p.seq++
	p.reload.busy = true
	seq, src, kernel := p.seq, m.src, p.kernel
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.PatchSets(ctx, kernel)
		if err != nil {
			err = fmt.Errorf("list the patch sets of %s: %w", kernel, err)
		}
		slices.SortFunc(list, func(a, b patch.Set) int { return b.Version - a.Version })
		return setsMsg{seq, list, err}
	})
}

func (p *publishPage) got(msg setsMsg, m *Model) tea.Cmd {
	if msg.seq != p.seq {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		p.sets, p.loaded = msg.list, true
		p.setRows(m)
		p.refresh(m)
	}
	return p.reload.done(func() tea.Cmd { return p.load(m) })
}

func (p *publishPage) setRows(m *Model) {
	rows := make([]table.Row, 0, len(p.sets))
	for _, s := range p.sets {
		rows = append(rows, table.Row{fmt.Sprintf("v%d", s.Version), m.st.setState(s.State).Render(string(s.State)), termtext.Line(s.Module),
			termtext.Line(strings.Join(s.CVEs, " ")), fmt.Sprint(len(s.Patches)), orDash(termtext.Line(s.Job)), s.Created.In(m.loc).Format("01-02 15:04")})
	}
	p.rows.setRows(rows)
}

func (p *publishPage) resize(m *Model, w, h int) {
	p.rows.setColumns([]column{{title: "SET", width: 5}, {title: "STATE", width: 8}, {title: "MODULE", width: 10, flex: 1},
		{title: "CVES", width: 14, flex: 3}, {title: "N", width: 2}, {title: "JOB", width: 16}, {title: "CREATED", width: 11}}, w)
	p.rows.setHeight(h)
	p.setRows(m)
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.refresh(m)
}

func (p *publishPage) set() *patch.Set {
	for i := range p.sets {
		if p.sets[i].Version == p.open {
			return &p.sets[i]
		}
	}
	return nil
}

func (p *publishPage) status(m *Model) string {
	var s string
	switch {
	case p.err != nil:
		return m.errLine(p.err)
	case p.kernel == "":
		s = "no kernel registered"
	case p.open != 0:
		s = fmt.Sprintf("patch set %s v%d", termtext.Line(p.kernel), p.open)
		if set := p.set(); set != nil {
			s += " · " + m.st.setState(set.State).Render(string(set.State)) + " · " + termtext.Line(set.Module)
		}
		if halted := p.halted(); len(halted) > 0 {
			s += " · " + m.st.bad.Render("HALTED in "+strings.Join(halted, ", "))
		}
	case !p.loaded:
		s = "loading the patch sets of " + termtext.Line(p.kernel) + "…"
	default:
		s = fmt.Sprintf("kernel %s · %d patch set(s)", termtext.Line(p.kernel), len(p.sets))
	}
	if p.notice != "" {
		s += " · " + termtext.Line(p.notice)
	}
	return s
}

func (p *publishPage) halted() []string {
	var out []string
	for _, r := range p.health {
		if r.Halted {
			out = append(out, termtext.Line(r.Ring))
		}
	}
	return out
}

func (p *publishPage) render(m *Model) string {
	w, _ := m.body()
	if p.open != 0 {
		return p.vp.View()
	}
	if p.loaded && len(p.sets) == 0 {
		return placeholder(fmt.Sprintf("Kernel %s has no patch set yet. b builds one of its approved patches (a cumulative livepatch, built and vetted on a builder).",
			termtext.Line(p.kernel)), w)
	}
	return p.rows.view()
}

func (p *publishPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	if p.open != 0 {
		switch {
		case key.Matches(msg, k.Back):
			p.open, p.health, p.hloaded = 0, nil, false
			return p.load(m)
		case key.Matches(msg, k.Reload):
			return tea.Batch(p.load(m), p.loadHealth(m))
		}
		return scroll(&p.vp, msg)
	}
	switch {
	case key.Matches(msg, k.Open):
		if i, ok := p.rows.pick(len(p.sets)); ok {
			p.open, p.health, p.hloaded, p.notice = p.sets[i].Version, nil, false, ""
			p.hreload = reloader{}
			p.vp.GotoTop()
			p.refresh(m)
			return p.loadHealth(m)
		}
		return nil
	case key.Matches(msg, k.Build):
		return p.build(m)
	case key.Matches(msg, k.Kernel):
		next, ok := nextKernel(m.kernels, p.kernel)
		if !ok {
			return nil
		}
		p.kernel = next
		p.sets, p.loaded, p.notice = nil, false, ""
		p.setRows(m)
		return p.load(m)
	case key.Matches(msg, k.Reload):
		return p.load(m)
	}
	return p.rows.update(msg)
}

// build queues the kernel's next patch set.
func (p *publishPage) build(m *Model) tea.Cmd {
	if p.kernel == "" {
		return nil
	}
	src, kernel := m.src, p.kernel
	p.notice = "queueing the next patch set…"
	return m.query(func(ctx context.Context) tea.Msg {
		s, err := src.BuildPatchSet(ctx, kernel, service.Actor{})
		if err != nil {
			err = fmt.Errorf("build a patch set of %s: %w", kernel, err)
		}
		return builtMsg{s, err}
	})
}

func (p *publishPage) built(msg builtMsg, m *Model) tea.Cmd {
	if msg.err != nil {
		p.err, p.notice = msg.err, ""
		return nil
	}
	p.err = nil
	s := msg.set
	p.notice = fmt.Sprintf("queued v%d (%s): %d patch(es), job %s", s.Version, s.Module, len(s.Patches), s.Job)
	return p.reload.ask(func() tea.Cmd { return p.load(m) })
}

func (p *publishPage) loadHealth(m *Model) tea.Cmd {
	set := p.set()
	if set == nil {
		return nil
	}
	p.hseq++
	p.hreload.busy = true
	seq, src, module := p.hseq, m.src, set.Module
	return m.query(func(ctx context.Context) tea.Msg {
		rings, err := src.FleetHealth(ctx, module)
		if err != nil {
			err = fmt.Errorf("fleet health of %s: %w", module, err)
		}
		return healthMsg{seq, rings, err, module}
	})
}

func (p *publishPage) gotHealth(msg healthMsg, m *Model) tea.Cmd {
	if msg.seq != p.hseq || p.open == 0 {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		p.health, p.hloaded = msg.rings, true
		p.refresh(m)
	}
	return p.hreload.done(func() tea.Cmd { return p.loadHealth(m) })
}

// refresh lays the open set out.
func (p *publishPage) refresh(m *Model) {
	set := p.set()
	if p.open == 0 || set == nil {
		p.vp.SetContent("")
		return
	}
	st := m.st
	w := max(p.vp.Width()-2, 20)
	var b strings.Builder
	field := func(name, v string) { b.WriteString(clip(fmt.Sprintf("%-9s%s", name, v), w) + "\n") }
	section := func(title string) { fmt.Fprintf(&b, "\n%s\n", st.heading.Render(title)) }
	para := func(s, indent string) {
		for _, l := range strings.Split(wrap(s, w-len(indent)), "\n") {
			b.WriteString(indent + l + "\n")
		}
	}
	b.WriteString(st.title.Render(fmt.Sprintf("patch set %s v%d", termtext.Line(set.Kernel), set.Version)) + "\n")
	field("state", st.setState(set.State).Render(string(set.State)))
	field("module", termtext.Line(set.Module)+" (replace: it holds every approved patch of the kernel)")
	if set.SHA256 != "" {
		field("sha256", termtext.Line(set.SHA256))
	}
	field("job", orDash(termtext.Line(set.Job)))
	field("created", set.Created.In(m.loc).Format("2006-01-02 15:04:05"))
	field("CVEs", termtext.Line(strings.Join(set.CVEs, " ")))
	field("patches", termtext.Line(strings.Join(set.Patches, " ")))
	if set.Error != "" {
		b.WriteString(st.bad.Render("error") + "\n")
		para(text(set.Error), "  ")
	}

	section("Publish")
	switch set.State {
	case patch.SetReady:
		para("The dashboard does not publish: publishing signs the archive's metadata with its keys, which stay on the archive's machine. Run there:", "")
		b.WriteString("  " + st.title.Render(fmt.Sprintf("tuxtape archive publish --from-patchset %s:%d", termtext.Line(set.Kernel), set.Version)) + "\n")
		para("(with --dir ARCHIVE and --server, as for the other commands). tuxtape archive promote then moves the version out of a ring while its health below allows.", "")
	case patch.SetBuilding:
		b.WriteString("building and vetting on a builder: it can be published once ready\n")
	default:
		b.WriteString("this set failed: fix or reject its patches, then b builds the next\n")
	}

	section("Fleet health of " + termtext.Line(set.Module))
	switch {
	case !p.hloaded:
		b.WriteString("loading…\n")
	case len(p.health) == 0:
		b.WriteString("no machine has reported it yet\n")
	default:
		fmt.Fprintf(&b, "  %-12s %8s %8s  %s\n", "RING", "APPLIED", "FAILED", "PROMOTION")
		for _, r := range p.health {
			state := st.good.Render("open")
			if r.Halted {
				state = st.bad.Render("HALTED: failures reached the halt threshold; promotion out of this ring is refused")
			}
			b.WriteString(clip(fmt.Sprintf("  %-12s %8d %8d  %s", termtext.Line(r.Ring), r.Applied, r.Failed, state), w) + "\n")
		}
	}
	p.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}
