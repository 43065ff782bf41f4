package dash

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/charmbracelet/x/ansi"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/service"
)

// page is one tab of the dashboard.
type page int

const (
	pageQueue page = iota
	pageCVE
	pageFleet
	pageKernels
	pageEvents
	pagePatch
	pageReview
	pagePublish
	numPages
)

// The first five are the read-only pages; the patch workflow's come after
// them, so that 1-5 stay where they were.
var pageNames = [numPages]string{"Queue", "CVE", "Fleet", "Kernels", "Events", "Patch", "Review", "Publish"}

// loadTimeout bounds one query; a server that does not answer shows as an
// error on the status line, and the UI goes on.
const loadTimeout = 30 * time.Second

// slowTimeout bounds the queries the server does work for: a kernel
// added (a Debian one's image fetched), a static profile made.
const slowTimeout = 10 * time.Minute

// Model is the dashboard: a tea.Model.
type Model struct {
	// ctx is the program's: Bubble Tea commands take no context, so the
	// loads they run derive theirs from this one, and quitting cancels
	// them.
	ctx  context.Context
	src  Source
	opt  Options
	now  func() time.Time
	loc  *time.Location
	feed <-chan tea.Msg

	w, h     int
	page     page
	keys     keyMap
	help     help.Model
	showHelp bool
	st       styles

	spin     spinner.Model
	loading  int // queries in flight
	spinning bool

	kernels []service.KernelView
	// kernelsBusy and kernelsAgain coalesce the kernel reloads events
	// ask for, as queuePage.reload does.
	kernelsBusy, kernelsAgain bool
	queue                     queuePage
	cve                       cvePage
	fleet                     fleetPage
	kern                      kernelsPage
	events                    eventsPage
	patch                     patchPage
	review                    reviewPage
	publish                   publishPage

	// prompt is the line a page asks on (a fix file, a comment).
	prompt prompt
}

// prompt is a one-line input a page opens; enter hands its value to
// done, esc drops it.
type prompt struct {
	in     textinput.Model
	active bool
	done   func(m *Model, v string) tea.Cmd
}

// ask opens the prompt line.
func (m *Model) ask(label, placeholder, value string, limit int, done func(*Model, string) tea.Cmd) tea.Cmd {
	in := textinput.New()
	in.Prompt = label
	in.Placeholder = placeholder
	in.CharLimit = limit
	in.SetValue(value)
	in.CursorEnd()
	m.prompt = prompt{in: in, active: true, done: done}
	m.layout()
	return m.prompt.in.Focus()
}

func (m *Model) promptKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "enter":
		v, done := m.prompt.in.Value(), m.prompt.done
		m.prompt.active = false
		m.prompt.in.Blur()
		m.layout()
		return done(m, v)
	case "esc":
		m.prompt.active = false
		m.prompt.in.Blur()
		m.layout()
		return nil
	}
	var cmd tea.Cmd
	m.prompt.in, cmd = m.prompt.in.Update(msg)
	return cmd
}

// New makes the dashboard's model over src. Run starts the event feed;
// a model made here for a test has none, and is fed with Update.
func New(ctx context.Context, src Source, o Options) *Model {
	m := &Model{ctx: ctx, src: src, opt: o, now: o.Now, loc: o.Location, keys: newKeyMap(), help: help.New(), st: newStyles(),
		spin: spinner.New(spinner.WithSpinner(spinner.Line)), w: 80, h: 24}
	if m.now == nil {
		m.now = time.Now
	}
	if m.loc == nil {
		m.loc = time.Local
	}
	m.queue = newQueuePage(o.Kernel, o.Profile, m.st)
	m.fleet = newFleetPage(m.st)
	m.kern = newKernelsPage(m.st)
	m.patch = newPatchPage(m.st)
	m.review = newReviewPage(m.st)
	m.publish = newPublishPage(m.st)
	m.layout()
	return m
}

// Messages with the answers of queries. Each carries the sequence number
// of the query it answers: a page drops an answer to a query it has
// since replaced (the filters changed while it was on its way).
type (
	kernelsMsg struct {
		list []service.KernelView
		err  error
	}
	cvesMsg struct {
		seq      int
		list     *service.CVEList
		err      error
		patches  map[string]patch.State
		patchErr error
	}
	cveMsg struct {
		seq int
		cve *service.CVE
		err error
	}
	machinesMsg struct {
		seq  int
		list machineList
		err  error
	}
	machineMsg struct {
		seq int
		d   service.MachineDetail
		err error
	}
	kernelMsg struct {
		seq int
		k   service.KernelView
		err error
	}
)

// answer marks the messages that end a query.
type answer interface{ answer() }

func (kernelsMsg) answer()  {}
func (cvesMsg) answer()     {}
func (cveMsg) answer()      {}
func (machinesMsg) answer() {}
func (machineMsg) answer()  {}
func (kernelMsg) answer()   {}

// query runs f in a command, with a deadline, and starts the spinner.
func (m *Model) query(f func(ctx context.Context) tea.Msg) tea.Cmd {
	return m.queryWithin(loadTimeout, f)
}

// queryWithin is query for what the server takes longer to answer (a
// static profile made, a Debian kernel's image fetched).
func (m *Model) queryWithin(limit time.Duration, f func(ctx context.Context) tea.Msg) tea.Cmd {
	m.loading++
	parent := m.ctx
	run := func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, limit)
		defer cancel()
		return f(ctx)
	}
	if m.spinning {
		return run
	}
	m.spinning = true
	return tea.Batch(run, m.spin.Tick)
}

func (m *Model) reloadKernels() tea.Cmd {
	if m.kernelsBusy {
		m.kernelsAgain = true
		return nil
	}
	return m.loadKernels()
}

func (m *Model) loadKernels() tea.Cmd {
	m.kernelsBusy = true
	src := m.src
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.Kernels(ctx)
		if err != nil {
			err = fmt.Errorf("list kernels: %w", err)
		}
		return kernelsMsg{list, err}
	})
}

// Init loads the kernels (the queue follows, for the first of them) and
// starts reading the event feed.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.loadKernels(), waitFeed(m.ctx, m.feed))
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(answer); ok {
		m.loading--
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.layout()
		return m, nil
	case spinner.TickMsg:
		if m.loading <= 0 {
			m.spinning = false
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tea.PasteMsg:
		return m, m.paste(msg)
	case tea.MouseClickMsg, tea.MouseWheelMsg:
		return m, m.mouse(msg.(tea.MouseMsg))
	case kernelsMsg:
		return m, m.gotKernels(msg)
	case cvesMsg:
		return m, m.queue.got(msg, m)
	case cveMsg:
		return m, m.cve.got(msg, m)
	case fixesMsg:
		return m, m.cve.gotFixes(msg, m)
	case machinesMsg:
		return m, m.fleet.got(msg, m)
	case machineMsg:
		return m, m.fleet.gotDetail(msg, m)
	case kernelMsg:
		return m, m.kern.gotDetail(msg, m)
	case patchesMsg:
		return m, m.patch.got(msg, m)
	case patchMsg:
		return m, m.patch.gotDetail(msg, m)
	case createdMsg:
		return m, m.patch.created(msg, m)
	case editedMsg:
		return m, m.patch.edited(msg, m)
	case revisedMsg:
		return m, m.patch.revised(msg, m)
	case logMsg:
		return m, tea.Batch(m.patch.gotLog(msg, m), m.kern.gotLog(msg, m))
	case logEndMsg:
		return m, tea.Batch(m.patch.gotLogEnd(msg, m), m.kern.gotLogEnd(msg, m))
	case profileMsg:
		return m, m.kern.gotProfile(msg, m)
	case jobsMsg:
		return m, m.kern.gotJobs(msg, m)
	case treeMsg:
		return m, m.kern.gotTree(msg, m)
	case menuconfigMsg:
		return m, m.kern.gotMenuconfig(msg, m)
	case addedMsg:
		return m, m.kern.added(msg, m)
	case multiMsg:
		var cmds []tea.Cmd
		for _, x := range msg {
			_, cmd := m.Update(x)
			cmds = append(cmds, cmd)
		}
		return m, tea.Batch(cmds...)
	case waitingMsg:
		return m, m.review.got(msg, m)
	case reviewMsg:
		return m, m.review.gotDetail(msg, m)
	case reviewedMsg:
		return m, m.review.reviewed(msg, m)
	case setsMsg:
		return m, m.publish.got(msg, m)
	case healthMsg:
		return m, m.publish.gotHealth(msg, m)
	case builtMsg:
		return m, m.publish.built(msg, m)
	case eventMsg:
		return m, tea.Batch(m.gotEvent(msg.e), waitFeed(m.ctx, m.feed))
	case feedMsg:
		m.events.err, m.events.live = msg.err, msg.err == nil
		return m, waitFeed(m.ctx, m.feed)
	}
	return m, nil
}

// gotEvent shows an event and asks again for what it changed, in the
// background: the screen keeps answering keys while the queries run.
func (m *Model) gotEvent(e event.Event) tea.Cmd {
	m.events.add(e)
	m.events.refresh(m)
	var cmds []tea.Cmd
	switch {
	case strings.HasPrefix(string(e.Kind), "kernel."):
		// The kernels first: the queue's kernel may be the one removed.
		cmds = append(cmds, m.reloadKernels())
	case reloads(e.Kind):
		cmds = append(cmds, m.queue.reload(m), m.cve.load(m))
	case strings.HasPrefix(string(e.Kind), event.FleetPrefix):
		if m.fleet.detailID != "" && m.fleet.detailID == e.Subject {
			cmds = append(cmds, m.fleet.loadDetail(m))
		} else if m.fleet.detailID == "" && m.fleet.loaded {
			cmds = append(cmds, m.fleet.load(m))
		}
		cmds = append(cmds, m.publishHealth())
	case strings.HasPrefix(string(e.Kind), "patch."):
		cmds = append(cmds, m.patchEvent(e))
	case strings.HasPrefix(string(e.Kind), "patchset."):
		if p := &m.publish; p.loaded {
			cmds = append(cmds, p.reload.ask(func() tea.Cmd { return p.load(m) }))
		}
	case e.Kind == "ring.halted":
		cmds = append(cmds, m.publishHealth())
	}
	return tea.Batch(cmds...)
}

// patchEvent asks again for the patches an event changed: the open one,
// the lists that hold it.
func (m *Model) patchEvent(e event.Event) tea.Cmd {
	// The queue's PATCH column.
	cmds := []tea.Cmd{m.queue.reload(m)}
	// A new patch's revision 1 is the CVE's raw fix.
	if e.Kind == "patch.created" && m.cve.id != "" {
		cmds = append(cmds, m.cve.loadFixes(m))
	}
	if p := &m.patch; p.detailID != "" && p.detailID == e.Subject {
		cmds = append(cmds, p.dreload.ask(func() tea.Cmd { return p.loadDetail(m) }))
	}
	if p := &m.patch; p.loaded {
		cmds = append(cmds, p.reload.ask(func() tea.Cmd { return p.load(m) }))
	}
	if r := &m.review; r.detailID != "" && r.detailID == e.Subject {
		cmds = append(cmds, r.dreload.ask(func() tea.Cmd { return r.loadDetail(m) }))
	}
	if r := &m.review; r.loaded {
		cmds = append(cmds, r.reload.ask(func() tea.Cmd { return r.load(m) }))
	}
	return tea.Batch(cmds...)
}

// publishHealth asks again for the open patch set's fleet health.
func (m *Model) publishHealth() tea.Cmd {
	p := &m.publish
	if p.open == 0 {
		return nil
	}
	return p.hreload.ask(func() tea.Cmd { return p.loadHealth(m) })
}

// gotKernels takes the registered kernels; the queue's kernel stays if it
// is still there, else the queue moves to the first, and reloads.
func (m *Model) gotKernels(msg kernelsMsg) tea.Cmd {
	m.kernelsBusy = false
	if m.kernelsAgain {
		m.kernelsAgain = false
		return m.loadKernels()
	}
	if msg.err != nil {
		m.kern.err = msg.err
		m.queue.err = msg.err
		return nil
	}
	m.kernels, m.kern.err = msg.list, nil
	m.kern.setRows(m)
	q := &m.queue
	if !q.hasKernel(m.kernels, q.kernel) {
		q.kernel = ""
		if len(m.kernels) > 0 {
			q.kernel = m.kernels[0].Name
		}
	}
	return q.reload(m)
}

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.queue.editing {
		return m.queue.editKey(msg, m)
	}
	if m.prompt.active {
		return m.promptKey(msg)
	}
	if m.kern.form.active {
		return m.kern.form.key(msg, m)
	}
	switch {
	case key.Matches(msg, m.keys.Quit):
		return tea.Quit
	case key.Matches(msg, m.keys.Help):
		m.showHelp = !m.showHelp
		m.layout()
		return nil
	case key.Matches(msg, m.keys.Next):
		return m.show((m.page + 1) % numPages)
	case key.Matches(msg, m.keys.Prev):
		return m.show((m.page + numPages - 1) % numPages)
	case key.Matches(msg, m.keys.Pages):
		return m.show(page(msg.String()[0] - '1'))
	}
	return m.pageOf(m.page).key(msg, m)
}

// pager is what every page does: its keys, its status line, its body, its
// layout.
type pager interface {
	key(msg tea.KeyPressMsg, m *Model) tea.Cmd
	status(m *Model) string
	render(m *Model) string
	resize(m *Model, w, h int)
}

// pageOf is page p's model.
func (m *Model) pageOf(p page) pager {
	return [numPages]pager{&m.queue, &m.cve, &m.fleet, &m.kern, &m.events, &m.patch, &m.review, &m.publish}[p]
}

// paste gives pasted text (a path, a comment) to the line being typed
// in, if any.
func (m *Model) paste(msg tea.PasteMsg) tea.Cmd {
	var cmd tea.Cmd
	switch {
	case m.queue.editing:
		m.queue.input, cmd = m.queue.input.Update(msg)
	case m.prompt.active:
		m.prompt.in, cmd = m.prompt.in.Update(msg)
	case m.kern.form.active:
		f := &m.kern.form
		f.fields[f.focus].in, cmd = f.fields[f.focus].in.Update(msg)
	}
	return cmd
}

// show switches to a page; the fleet is asked again each time it is
// shown, since machines report on their own.
func (m *Model) show(p page) tea.Cmd {
	m.page = p
	switch {
	case p == pageFleet && m.fleet.detail == nil:
		return m.fleet.load(m)
	case p == pagePatch && m.patch.detailID == "":
		return m.patch.load(m)
	case p == pageReview && m.review.detailID == "":
		return m.review.load(m)
	case p == pagePublish:
		return m.publish.show(m)
	}
	return nil
}

// body is the size of a page's area: the screen less the tab bar, the
// status line and the footer.
func (m *Model) body() (w, h int) {
	return m.w, max(m.h-3-m.helpHeight(), 1)
}

func (m *Model) helpHeight() int {
	if !m.showHelp {
		return 0
	}
	return strings.Count(m.help.View(m.pageKeys()), "\n")
}

func (m *Model) pageKeys() pageKeys {
	return pageKeys{k: m.keys, page: m.page, editing: m.queue.editing || m.prompt.active, form: m.kern.form.active, jobs: m.kern.jobsOpen,
		detail: (m.page == pageFleet && m.fleet.detail != nil) || (m.page == pageKernels && m.kern.detailID != "") ||
			(m.page == pagePatch && m.patch.detailID != "") || (m.page == pageReview && m.review.detailID != "") ||
			(m.page == pagePublish && m.publish.open != 0)}
}

// layout sizes every page to the window.
func (m *Model) layout() {
	m.help.ShowAll = m.showHelp
	m.help.SetWidth(m.w)
	w, h := m.body()
	for p := range numPages {
		m.pageOf(p).resize(m, w, h)
	}
	m.prompt.in.SetWidth(max(m.w-ansi.StringWidth(m.prompt.in.Prompt)-1, 10))
}

// minimum size the pages are laid out for.
const minW, minH = 60, 12

// View draws the screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	return v
}

// Render is the screen as text (with styles), for View and the tests.
func (m *Model) Render() string {
	if m.w < minW || m.h < minH {
		return fit(fmt.Sprintf("tuxtape dash needs at least %d×%d; this terminal is %d×%d.", minW, minH, m.w, m.h), m.w, m.h)
	}
	w, h := m.body()
	pg := m.pageOf(m.page)
	status, body := pg.status(m), pg.render(m)
	if m.loading > 0 {
		status = m.spin.View() + " " + status
	}
	var footer string
	if m.queue.editing {
		footer = m.queue.input.View()
	} else if m.prompt.active {
		footer = m.prompt.in.View()
	} else {
		footer = m.help.View(m.pageKeys())
	}
	return strings.Join([]string{fit(m.tabs(), m.w, 1), fit(status, m.w, 1), fit(body, w, h),
		fit(footer, m.w, 1+m.helpHeight())}, "\n")
}

func (m *Model) tabs() string {
	return strings.Join(append([]string{m.st.title.Render("TuxTape")}, m.tabLabels()...), " ")
}

// tabLabels are the tabs as the bar shows them.
func (m *Model) tabLabels() []string {
	// At 80 columns the eight tabs fit only without their padding.
	pad := " "
	if m.w < 100 {
		pad = ""
	}
	parts := make([]string, 0, numPages)
	for i, n := range pageNames {
		label := fmt.Sprintf("%s%d %s%s", pad, i+1, n, pad)
		if page(i) == m.page {
			parts = append(parts, m.st.activeTab.Render("["+strings.TrimSpace(label)+"]"))
		} else {
			parts = append(parts, m.st.tab.Render(label))
		}
	}
	return parts
}

// errLine is an error for the status line, escaped: a server's message
// may quote what a client sent.
func (m *Model) errLine(err error) string {
	return m.st.bad.Render("error: " + termtext.Line(err.Error()))
}
