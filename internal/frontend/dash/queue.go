package dash

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/service"
)

// queueLimit is how many CVEs the queue asks for: the top of the ranking.
// The server pages a longer list; a queue longer than a screenful of
// screenfuls is narrowed with the filters, not scrolled.
const queueLimit = 1000

// The filters' choices, cycled by their keys ("" is any).
var (
	tiers    = []string{"", "critical", "high", "medium", "low"}
	statuses = []vulns.Status{"", vulns.StatusPublished, vulns.StatusRejected, vulns.StatusAnnounced}
	profiles = []service.ProfileChoice{service.ProfileAuto, service.ProfileReal, service.ProfileStatic, service.ProfileNone}
)

// queuePage is the CVE queue: a ranked ListCVEs for one kernel.
type queuePage struct {
	kernel    string
	tier      int
	recStatus int
	profile   int
	affected  bool
	text      string

	input   textinput.Model
	editing bool

	seq    int // of the query whose answer the page waits for
	busy   bool
	again  bool // the events asked for a reload while one was on its way
	list   *service.CVEList
	loaded bool
	// patches are the kernel's CVEs' newest patch states; patchErr says
	// they could not be read (the column shows ?).
	patches  map[string]patch.State
	patchErr error
	err      error
	rows     list
}

func newQueuePage(kernel string, profile service.ProfileChoice, st styles) queuePage {
	in := textinput.New()
	in.Prompt = "search: "
	in.Placeholder = "CVE ID, words of the title or description, a file path"
	in.CharLimit = 256 // the server's bound on --text
	q := queuePage{kernel: kernel, affected: true, input: in, rows: newList(st)}
	if i := slices.Index(profiles, profile); i >= 0 {
		q.profile = i
	}
	return q
}

// nextKernel is the kernel after cur in ks, around; false when there is
// no other to go to.
func nextKernel(ks []service.KernelView, cur string) (string, bool) {
	if len(ks) < 2 {
		return "", false
	}
	for i, k := range ks {
		if k.Name == cur {
			return ks[(i+1)%len(ks)].Name, true
		}
	}
	return ks[0].Name, true
}

func (q *queuePage) hasKernel(ks []service.KernelView, name string) bool {
	for _, k := range ks {
		if k.Name == name {
			return name != ""
		}
	}
	return false
}

func (q *queuePage) query() service.CVEQuery {
	c := service.CVEQuery{Kernel: q.kernel, Sort: "priority", Tier: tiers[q.tier], Status: statuses[q.recStatus],
		Text: q.text, Limit: queueLimit, Profile: profiles[q.profile]}
	c.Affected = q.affected && q.kernel != ""
	return c
}

// reload asks again for what an event changed. Events come in bursts (a
// replay of the stream, a fleet reporting): one query at a time, and one
// more after it if any came meanwhile.
func (q *queuePage) reload(m *Model) tea.Cmd {
	if q.busy {
		q.again = true
		return nil
	}
	return q.load(m)
}

// load asks for the queue as the filters now stand.
func (q *queuePage) load(m *Model) tea.Cmd {
	q.seq++
	q.busy = true
	seq, cq, src := q.seq, q.query(), m.src
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.ListCVEs(ctx, cq)
		if err != nil {
			return cvesMsg{seq: seq, err: fmt.Errorf("list CVEs: %w", err)}
		}
		msg := cvesMsg{seq: seq, list: list}
		if cq.Kernel != "" {
			// The PATCH column: each CVE's newest deployable patch for
			// the kernel.
			ps, err := src.Patches(ctx, service.PatchQuery{Kernel: cq.Kernel})
			if err != nil {
				msg.patchErr = fmt.Errorf("list patches: %w", err)
			}
			msg.patches = map[string]patch.State{}
			for _, p := range ps { // oldest first: the newest stays
				msg.patches[p.CVE] = p.State
			}
		}
		return msg
	})
}

func (q *queuePage) got(msg cvesMsg, m *Model) tea.Cmd {
	if msg.seq != q.seq {
		return nil
	}
	q.busy, q.err = false, msg.err
	if msg.err == nil {
		q.list, q.loaded, q.patches, q.patchErr = msg.list, true, msg.patches, msg.patchErr
		q.setRows(m)
		q.rows.top()
	}
	if q.again {
		q.again = false
		return q.load(m)
	}
	return nil
}

func (q *queuePage) resize(m *Model, w, h int) {
	cols := []column{{title: "CVE", width: 16}, {title: "TIER", width: 8}, {title: "SCORE", width: 5}, {title: "CVSS", width: 4},
		{title: "SUBSYSTEM", width: 9, flex: 2}, {title: "VERDICT", width: 12, flex: 3}}
	if w >= 110 {
		// Room for the title: it takes most of what is left.
		cols[5].flex = 1
		cols = append(cols, column{title: "TITLE", width: 10, flex: 6})
	}
	cols = append(cols, column{title: "PATCH", width: 8})
	q.rows.setColumns(cols, w)
	q.rows.setHeight(h)
	q.setRows(m)
}

func (q *queuePage) setRows(m *Model) {
	if q.list == nil {
		q.rows.setRows(nil)
		return
	}
	wide := len(q.rows.t.Columns()) > 7
	rows := make([]table.Row, 0, len(q.list.CVEs))
	for _, c := range q.list.CVEs {
		tier, score := "-", "-"
		if c.Priority != nil {
			tier, score = c.Priority.Tier, fmt.Sprintf("%.0f", c.Priority.Score)
		}
		cvss := "-"
		if c.CVSS != nil {
			cvss = fmt.Sprintf("%.1f", c.CVSS.Score)
		}
		r := table.Row{termtext.Line(c.ID), m.st.tier(tier).Render(tier), score, cvss, termtext.Line(subsystem(c.ProgramFiles)), verdictCell(c.Verdict)}
		if wide {
			r = append(r, termtext.Line(c.Title))
		}
		ps := "—"
		if st, ok := q.patches[c.ID]; ok {
			ps = m.st.patchState(st).Render(string(st))
		} else if q.patchErr != nil {
			ps = "?"
		}
		rows = append(rows, append(r, ps))
	}
	q.rows.setRows(rows)
}

// subsystem names a record by its first program file's directory: two
// components (net/sched), three under drivers/, arch/ and sound/
// (drivers/net/wireless), where two say little.
func subsystem(files []string) string {
	if len(files) == 0 {
		return "-"
	}
	dir := path.Dir(files[0])
	if dir == "." {
		return files[0]
	}
	parts := strings.Split(dir, "/")
	n := 2
	switch parts[0] {
	case "drivers", "arch", "sound":
		n = 3
	}
	return strings.Join(parts[:min(n, len(parts))], "/")
}

// shortReasons name why a kernel is not affected, for a table cell.
var shortReasons = map[gauge.Reason]string{
	gauge.FixedInVersion: "fixed", gauge.FixedByKernel: "backported", gauge.NotInRange: "not in range",
	gauge.CodeNotCompiled: "not built", gauge.RejectedCVE: "rejected", gauge.NotSourceFiles: "no source",
}

// verdictCell is the verdict and where the code is built.
func verdictCell(v *gauge.Verdict) string {
	if v == nil {
		return "-"
	}
	switch v.Status {
	case gauge.Affected:
		if len(v.Where) == 0 {
			return "affected"
		}
		return "affected " + termtext.Line(strings.Join(v.Where, ","))
	case gauge.NotAffected:
		if r, ok := shortReasons[v.Reason]; ok {
			return "no: " + r
		}
		return "no: " + string(v.Reason)
	}
	if v.TreatAsAffected {
		return "unknown (act)"
	}
	return "unknown"
}

func (q *queuePage) status(m *Model) string {
	if q.err != nil {
		return m.errLine(q.err)
	}
	parts := []string{}
	if q.kernel == "" {
		parts = append(parts, "no kernel registered")
	} else {
		parts = append(parts, "kernel "+termtext.Line(q.kernel))
	}
	if q.affected && q.kernel != "" {
		parts = append(parts, "needs action")
	} else {
		parts = append(parts, "all verdicts")
	}
	if t := tiers[q.tier]; t != "" {
		parts = append(parts, "tier ≥ "+t)
	}
	if s := statuses[q.recStatus]; s != "" {
		parts = append(parts, string(s))
	}
	if p := profiles[q.profile]; p != service.ProfileAuto {
		parts = append(parts, "profile "+string(p))
	}
	if q.text != "" {
		parts = append(parts, fmt.Sprintf("%q", termtext.Line(q.text)))
	}
	switch {
	case !q.loaded:
		parts = append(parts, "loading…")
	case q.list.Summary != nil:
		// The summary counts the kernel's verdicts before the filters.
		act := 0
		for k, n := range q.list.Summary.By {
			if strings.HasPrefix(k, string(gauge.Affected)) || strings.HasPrefix(k, string(gauge.Unknown)) {
				act += n
			}
		}
		n := fmt.Sprintf("%d shown", len(q.list.CVEs))
		if len(q.list.CVEs) == queueLimit {
			n = fmt.Sprintf("top %d", queueLimit)
		}
		parts = append(parts, fmt.Sprintf("%s · %d/%d to act on", n, act, q.list.Summary.Total))
	default:
		parts = append(parts, fmt.Sprintf("%d CVEs", len(q.list.CVEs)))
	}
	return strings.Join(parts, " · ")
}

func (q *queuePage) render(m *Model) string {
	if q.loaded && len(q.list.CVEs) == 0 {
		w, _ := m.body()
		return placeholder("No CVE matches these filters.", w)
	}
	return q.rows.view()
}

func (q *queuePage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Open):
		if q.list == nil {
			return nil
		}
		if i, ok := q.rows.pick(len(q.list.CVEs)); ok {
			return m.cve.open(m, q.list.CVEs[i].ID, q.kernel)
		}
		return nil
	case key.Matches(msg, k.Text):
		q.editing = true
		q.input.SetValue(q.text)
		q.input.CursorEnd()
		m.layout()
		return q.input.Focus()
	case key.Matches(msg, k.Kernel):
		next, ok := nextKernel(m.kernels, q.kernel)
		if !ok {
			return nil
		}
		q.kernel = next
		return q.load(m)
	case key.Matches(msg, k.Tier):
		q.tier = (q.tier + 1) % len(tiers)
		return q.load(m)
	case key.Matches(msg, k.Status):
		q.recStatus = (q.recStatus + 1) % len(statuses)
		return q.load(m)
	case key.Matches(msg, k.Affected):
		q.affected = !q.affected
		return q.load(m)
	case key.Matches(msg, k.Profile):
		q.profile = (q.profile + 1) % len(profiles)
		return q.load(m)
	case key.Matches(msg, k.Reload):
		return q.load(m)
	}
	return q.rows.update(msg)
}

// editKey is a key while the search line is open: enter searches, esc
// leaves the search as it was.
func (q *queuePage) editKey(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	switch msg.String() {
	case "enter":
		q.editing = false
		q.input.Blur()
		q.text = strings.TrimSpace(q.input.Value())
		m.layout()
		return q.load(m)
	case "esc":
		q.editing = false
		q.input.Blur()
		m.layout()
		return nil
	}
	var cmd tea.Cmd
	q.input, cmd = q.input.Update(msg)
	return cmd
}
