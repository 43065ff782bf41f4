package dash

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/service"
)

// machineEvents is how many of a machine's newest events its page shows.
const machineEvents = 50

// machineList is the fleet as the page shows it.
type machineList []fleet.Machine

// states are the fleet's state filter's choices ("" is any).
var states = append([]fleet.State{""}, fleet.States()...)

// fleetPage lists machines, grouped by kernel and state; enter opens one.
type fleetPage struct {
	state    int
	seq      int
	machines machineList
	loaded   bool
	err      error
	rows     list

	detailID  string
	detailSeq int
	detail    *service.MachineDetail
	vp        viewport.Model
}

func newFleetPage(st styles) fleetPage { return fleetPage{rows: newList(st)} }

func (p *fleetPage) load(m *Model) tea.Cmd {
	p.seq++
	seq, src, q := p.seq, m.src, service.MachineQuery{State: states[p.state]}
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.ListMachines(ctx, q)
		if err != nil {
			err = fmt.Errorf("list machines: %w", err)
		}
		// By kernel, then state, so that a kernel's machines and their
		// troubles stand together.
		slices.SortStableFunc(list, func(a, b fleet.Machine) int {
			return cmp.Or(cmp.Compare(a.Kernel, b.Kernel), cmp.Compare(a.State, b.State), cmp.Compare(a.ID, b.ID))
		})
		return machinesMsg{seq, list, err}
	})
}

func (p *fleetPage) got(msg machinesMsg, m *Model) tea.Cmd {
	if msg.seq != p.seq {
		return nil
	}
	p.err = msg.err
	if msg.err != nil {
		return nil
	}
	p.machines, p.loaded = msg.list, true
	p.setRows(m)
	return nil
}

func (p *fleetPage) resize(m *Model, w, h int) {
	p.rows.setColumns([]column{{title: "MACHINE", width: 10, flex: 2}, {title: "HOST", width: 10, flex: 2}, {title: "KERNEL", width: 12, flex: 2},
		{title: "STATE", width: 11}, {title: "PATCH LEVEL", width: 11, flex: 1}, {title: "CVES", width: 4}, {title: "SEEN", width: 8}}, w)
	p.rows.setHeight(h)
	p.setRows(m)
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.refresh(m)
}

func (p *fleetPage) setRows(m *Model) {
	rows := make([]table.Row, 0, len(p.machines))
	for _, ma := range p.machines {
		rows = append(rows, table.Row{termtext.Line(ma.ID), termtext.Line(ma.Hostname), termtext.Line(ma.Kernel), string(ma.State),
			orDash(termtext.Line(ma.Livepatch.Level)), fmt.Sprint(len(ma.Livepatch.CVEs)), ago(m.now().Sub(ma.LastSeen))})
	}
	p.rows.setRows(rows)
}

// ago says how long ago something was, in the largest unit that fits.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func (p *fleetPage) status(m *Model) string {
	if p.err != nil {
		return m.errLine(p.err)
	}
	if p.detailID != "" {
		if p.detail == nil {
			return "loading machine " + termtext.Line(p.detailID) + "…"
		}
		n := fmt.Sprintf("%d events", len(p.detail.Events))
		if len(p.detail.Events) == 1 {
			n = "1 event"
		}
		return fmt.Sprintf("machine %s · %s · %d%%", termtext.Line(p.detailID), n, int(p.vp.ScrollPercent()*100))
	}
	if !p.loaded {
		return "loading the fleet…"
	}
	s := fmt.Sprintf("%d machines", len(p.machines))
	if len(p.machines) == 1 {
		s = "1 machine"
	}
	if st := states[p.state]; st != "" {
		s += " · state " + string(st)
	}
	counts := map[fleet.State]int{}
	for _, ma := range p.machines {
		counts[ma.State]++
	}
	for _, st := range fleet.States() {
		if counts[st] > 0 && states[p.state] == "" {
			s += fmt.Sprintf(" · %d %s", counts[st], st)
		}
	}
	return s
}

func (p *fleetPage) render(m *Model) string {
	if p.detailID != "" {
		return p.vp.View()
	}
	if p.loaded && len(p.machines) == 0 {
		w, _ := m.body()
		return placeholder("No machines. Agents appear here with their first heartbeat (tuxtape-agent run).", w)
	}
	return p.rows.view()
}

func (p *fleetPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	if p.detailID != "" {
		switch {
		case key.Matches(msg, k.Back):
			p.detailID, p.detail = "", nil
			return p.load(m)
		case key.Matches(msg, k.Reload):
			return p.loadDetail(m)
		}
		return scroll(&p.vp, msg)
	}
	switch {
	case key.Matches(msg, k.Open):
		if i, ok := p.rows.pick(len(p.machines)); ok {
			return p.open(m, p.machines[i].ID)
		}
		return nil
	case key.Matches(msg, k.State):
		p.state = (p.state + 1) % len(states)
		p.rows.top()
		return p.load(m)
	case key.Matches(msg, k.Reload):
		return p.load(m)
	}
	return p.rows.update(msg)
}

func (p *fleetPage) open(m *Model, id string) tea.Cmd {
	p.detailID, p.detail = id, nil
	p.vp.GotoTop()
	p.refresh(m)
	return p.loadDetail(m)
}

// loadDetail asks for the open machine; what is on screen stays until the
// answer.
func (p *fleetPage) loadDetail(m *Model) tea.Cmd {
	p.detailSeq++
	id, seq, src := p.detailID, p.detailSeq, m.src
	return m.query(func(ctx context.Context) tea.Msg {
		d, err := src.Machine(ctx, id, machineEvents)
		if err != nil {
			err = fmt.Errorf("show machine %s: %w", id, err)
		}
		return machineMsg{seq, d, err}
	})
}

func (p *fleetPage) gotDetail(msg machineMsg, m *Model) tea.Cmd {
	if msg.seq != p.detailSeq || p.detailID == "" {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		d := msg.d
		p.detail = &d
	}
	p.refresh(m)
	return nil
}

// refresh lays the open machine out. Kernel log lines are the machine's
// and may hold anything: each is escaped and kept on one line.
func (p *fleetPage) refresh(m *Model) {
	d := p.detail
	if d == nil {
		p.vp.SetContent("")
		return
	}
	st := m.st
	var b strings.Builder
	field := func(name, v string) { fmt.Fprintf(&b, "%-14s%s\n", name, v) }
	b.WriteString(st.title.Render(termtext.Line(d.ID)) + "  " + termtext.Line(d.Hostname) + "\n")
	field("kernel", termtext.Line(d.Kernel))
	field("state", string(d.State))
	field("ring", orDash(termtext.Line(d.Ring)))
	field("agent", termtext.Line(d.AgentVersion))
	field("last seen", d.LastSeen.In(m.loc).Format("2006-01-02 15:04:05")+" ("+ago(m.now().Sub(d.LastSeen))+")")
	field("patch level", orDash(termtext.Line(d.Livepatch.Level)))
	field("CVEs fixed", orDash(termtext.Line(strings.Join(d.Livepatch.CVEs, " "))))
	fmt.Fprintf(&b, "\n%s\n", st.heading.Render("Loaded livepatches"))
	if len(d.Livepatch.Patches) == 0 {
		b.WriteString("none\n")
	}
	for _, lp := range d.Livepatch.Patches {
		state := "disabled"
		if lp.Enabled {
			state = "enabled"
		}
		if lp.Transition {
			state += ", in transition"
		}
		fmt.Fprintf(&b, "  %s %s  %s\n", termtext.Line(lp.Name), termtext.Line(lp.Version), state)
	}
	fmt.Fprintf(&b, "\n%s\n", st.heading.Render("Events, newest first"))
	if len(d.Events) == 0 {
		b.WriteString("none\n")
	}
	for _, e := range d.Events {
		kind := string(e.Kind)
		if e.Kind == fleet.EventApplyFailed || e.Kind == fleet.EventRolledBack || e.Kind == fleet.EventBugDetected {
			kind = st.bad.Render(kind)
		}
		fmt.Fprintf(&b, "%s  %s  %s", e.At.In(m.loc).Format("2006-01-02 15:04:05"), kind, orDash(termtext.Line(e.Patch)))
		if e.Detail != "" {
			b.WriteString("  " + termtext.Line(e.Detail))
		}
		b.WriteString("\n")
		for _, l := range e.Log {
			b.WriteString(st.dim.Render("    │ "+termtext.Line(l)) + "\n")
		}
	}
	p.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}
