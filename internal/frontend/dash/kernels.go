package dash

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Messages of the kernels page.
type (
	profileMsg struct {
		kernel string
		ix     *profile.Index
		err    error
	}
	jobsMsg struct {
		seq  int
		list []job.Job
		err  error
	}
)

func (profileMsg) answer() {}
func (jobsMsg) answer()    {}

// maxMatches bounds the files a profile search lists.
const maxMatches = 40

// kernelsPage lists the registered kernels; n adds one with a form, c
// makes a new one's config with menuconfig, enter opens one: its record,
// / searches its build profile for a file, b lists its build jobs (enter
// follows a job's log).
type kernelsPage struct {
	err    error
	notice string
	rows   list
	form   form

	seq      int
	detailID string
	detail   *service.KernelView
	vp       viewport.Model

	// The open kernel's build profile, asked for at its first search.
	prof     *profile.Index
	profOf   string
	profBusy bool
	search   string

	// The open kernel's jobs.
	jobsOpen   bool
	jobs       []job.Job
	jobsLoaded bool
	jseq       int
	jrows      list
	jobLog

	mk    *makeConfig // the config being made
	mkSeq int
}

func newKernelsPage(st styles) kernelsPage {
	return kernelsPage{rows: newList(st), jrows: newList(st), form: kernelForm()}
}

// kernelForm is the form n opens: tuxtape kernel add's flags.
func kernelForm() form {
	return newForm("Add a kernel (on the server: the admin role)", []string{"name", "release", "source", "ref", "version", "config"}, []string{
		"the record's name, e.g. cloud",
		"the kernel's uname -r, e.g. 6.1.0-50-cloud-amd64",
		"debian:PKG=VERSION, a tarball's URL, or a git repository",
		"a git source's tag or commit",
		"e.g. 6.1.176 (a Debian source's: from its package)",
		"a .config file here, sent (a Debian kernel's: its image's)",
	}, 4096)
}

func (p *kernelsPage) resize(m *Model, w, h int) {
	p.rows.setColumns([]column{{title: "NAME", width: 8, flex: 1}, {title: "RELEASE", width: 14, flex: 2}, {title: "VERSION", width: 8},
		{title: "ARCH", width: 7}, {title: "SOURCE", width: 10, flex: 3}, {title: "PROFILES", width: 8}}, w)
	p.rows.setHeight(h)
	p.setRows(m)
	cols := []column{{title: "JOB", width: 18}, {title: "KIND", width: 12}, {title: "STATE", width: 9},
		{title: "BUILDER", width: 5, flex: 1}, {title: "TRY", width: 3}, {title: "CREATED", width: 11}}
	if w >= 90 {
		cols = append(cols, column{title: "UPDATED", width: 11})
	}
	p.jrows.setColumns(cols, w)
	p.setJobRows(m)
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.logVP.SetWidth(w)
	p.split(h)
	p.refresh(m)
	p.refreshLog()
}

// split shares the jobs view between the list and a followed log.
func (p *kernelsPage) split(h int) {
	if !p.following() {
		p.jrows.setHeight(h)
		p.logVP.SetHeight(0)
		return
	}
	lh := max(h*2/3, 4)
	p.jrows.setHeight(max(h-lh-1, 2))
	p.logVP.SetHeight(lh)
}

func (p *kernelsPage) setRows(m *Model) {
	rows := make([]table.Row, 0, len(m.kernels))
	for _, k := range m.kernels {
		rows = append(rows, table.Row{termtext.Line(k.Name), termtext.Line(k.Release), termtext.Line(k.Version), termtext.Line(k.Arch),
			termtext.Line(k.Source.String()), profileKinds(k)})
	}
	p.rows.setRows(rows)
}

func (p *kernelsPage) setJobRows(m *Model) {
	rows := make([]table.Row, 0, len(p.jobs))
	for _, j := range p.jobs {
		r := table.Row{termtext.Line(j.ID), string(j.Kind), m.st.jobState(j.State).Render(string(j.State)), orDash(termtext.Line(j.Builder)),
			fmt.Sprintf("%d/%d", j.Attempts, j.MaxAttempts), j.Created.In(m.loc).Format("01-02 15:04")}
		if len(p.jrows.t.Columns()) > 6 {
			r = append(r, j.Updated.In(m.loc).Format("01-02 15:04"))
		}
		rows = append(rows, r)
	}
	p.jrows.setRows(rows)
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
	var s string
	switch {
	case p.err != nil:
		return m.errLine(p.err)
	case p.mk != nil:
		s = p.configStatus(m)
	case p.form.active:
		s = "a new kernel: the server checks it when it is sent"
	case p.jobsOpen && !p.jobsLoaded:
		s = "loading the jobs of " + termtext.Line(p.detailID) + "…"
	case p.jobsOpen:
		s = fmt.Sprintf("kernel %s · %d job(s), newest first", termtext.Line(p.detailID), len(p.jobs))
		// The selected job's failure, which its row has no room for.
		if i, ok := p.jrows.pick(len(p.jobs)); ok && p.jobs[i].Error != "" {
			s += " · " + m.st.bad.Render(termtext.Line(p.jobs[i].ID+": "+p.jobs[i].Error))
		}
	case p.detailID != "" && p.detail == nil:
		s = "loading kernel " + termtext.Line(p.detailID) + "…"
	case p.detailID != "" && p.profBusy:
		s = "kernel " + termtext.Line(p.detailID) + " · loading its build profile (the server makes a static one the first time)…"
	case p.detailID != "":
		s = "kernel " + termtext.Line(p.detailID)
	case len(m.kernels) == 1:
		s = "1 kernel registered"
	default:
		s = fmt.Sprintf("%d kernels registered", len(m.kernels))
	}
	if p.notice != "" {
		s += " · " + termtext.Line(p.notice)
	}
	return s
}

func (p *kernelsPage) render(m *Model) string {
	w, _ := m.body()
	switch {
	case p.form.active:
		v := p.form.view(m, w)
		if p.err == nil {
			return v
		}
		// The whole refusal: the status line has room for its start.
		lines := strings.Split(wrap(termtext.Line(p.err.Error()), w-2), "\n")
		for i, l := range lines {
			lines[i] = m.st.bad.Render(l)
		}
		return v + "\n\n" + strings.Join(lines, "\n")
	case p.jobsOpen:
		if p.jobsLoaded && len(p.jobs) == 0 {
			return placeholder("Kernel "+termtext.Line(p.detailID)+" has no jobs: tuxtape kernel build "+termtext.Line(p.detailID)+" --server queues its full build on a builder (the real build profile); its patches' builds show here too.", w)
		}
		if p.logVP.Height() == 0 {
			return p.jrows.view()
		}
		return p.jrows.view() + "\n" + p.logView(m, w)
	case p.detailID != "":
		return p.vp.View()
	case len(m.kernels) == 0:
		return placeholder("No kernels yet: n adds one (or `tuxtape kernel add NAME --release R --source SRC`).", w)
	}
	return p.rows.view()
}

func (p *kernelsPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	switch {
	case p.mk != nil && p.mk.tree == "" && key.Matches(msg, k.Back):
		p.cleanConfig()
		p.notice = "cancelled: no kernel made"
		return nil
	case p.jobsOpen:
		return p.jobsKey(msg, m)
	case p.detailID != "":
		switch {
		case key.Matches(msg, k.Back):
			p.detailID, p.detail, p.search = "", nil, ""
			return nil
		case key.Matches(msg, k.Reload):
			return p.open(m, p.detailID)
		case key.Matches(msg, k.Find):
			return p.askSearch(m)
		case key.Matches(msg, k.Jobs):
			return p.openJobs(m)
		case key.Matches(msg, k.Config):
			return p.askConfig(m, p.detailID)
		}
		return scroll(&p.vp, msg)
	}
	switch {
	case key.Matches(msg, k.Open):
		if i, ok := p.rows.pick(len(m.kernels)); ok {
			return p.open(m, m.kernels[i].Name)
		}
		return nil
	case key.Matches(msg, k.Reload):
		return m.loadKernels()
	case key.Matches(msg, k.NewKernel):
		p.err, p.notice = nil, ""
		return p.form.open(p.submitForm)
	case key.Matches(msg, k.Config):
		if i, ok := p.rows.pick(len(m.kernels)); ok {
			return p.askConfig(m, m.kernels[i].Name)
		}
		return nil
	}
	return p.rows.update(msg)
}

// submitForm reads the config file named (here: the server never sees
// this machine's paths) and sends the kernel.
func (p *kernelsPage) submitForm(m *Model, v []string) tea.Cmd {
	o := service.AddKernelOptions{Name: v[0], Release: v[1], Source: v[2], Ref: v[3], Version: v[4]}
	if path := v[5]; path != "" {
		b, err := service.ReadRegularFile("the config", homePath(path), service.MaxKernelConfig)
		if err != nil {
			p.err = err
			return p.form.open(p.submitForm)
		}
		o.Config = b
	}
	p.err, p.notice = nil, "adding kernel "+o.Name+"…"
	return p.add(m, o, true)
}

// homePath expands a leading ~/.
func homePath(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

// added: the server has the new kernel (the kernel.added event reloads
// the list too); a refusal reopens the form as it was, or says why the
// made config was not kept.
func (p *kernelsPage) added(msg addedMsg, m *Model) tea.Cmd {
	if msg.err != nil {
		p.err, p.notice = msg.err, ""
		if msg.form && !p.form.active {
			return p.form.open(p.submitForm)
		}
		return nil
	}
	p.err = nil
	if msg.form {
		p.form = kernelForm()
	}
	p.notice = "added kernel " + msg.name
	if msg.k != nil && msg.k.Config != nil {
		p.notice += fmt.Sprintf(" (its config: %d bytes)", len(msg.k.Config))
	}
	return m.reloadKernels()
}

func (p *kernelsPage) open(m *Model, name string) tea.Cmd {
	if p.detailID != name {
		p.search = ""
	}
	p.detailID, p.detail, p.notice = name, nil, ""
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

func (p *kernelsPage) gotDetail(msg kernelMsg, m *Model) tea.Cmd {
	if msg.seq != p.seq || p.detailID == "" {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		k := msg.k
		p.detail = &k
	}
	p.refresh(m)
	return nil
}

// askSearch opens the line for a path in the open kernel's build.
func (p *kernelsPage) askSearch(m *Model) tea.Cmd {
	return m.ask("where does it go, in "+p.detailID+"'s build: ", "a source path or part of one: fs/isofs/rock.c, rock.c, linux/fs.h", p.search, 512,
		func(m *Model, v string) tea.Cmd {
			p.search = strings.TrimSpace(v)
			if p.search == "" {
				p.refresh(m)
				return nil
			}
			if p.prof != nil && p.profOf == p.detailID {
				p.refresh(m)
				p.showSearch()
				return nil
			}
			return p.loadProfile(m)
		})
}

// loadProfile asks for the open kernel's build profile: the real one if
// it has been built, else the static one (made by the server the first
// time, which takes a while).
func (p *kernelsPage) loadProfile(m *Model) tea.Cmd {
	if p.profBusy {
		return nil
	}
	p.profBusy = true
	name, src := p.detailID, m.src
	return m.queryWithin(slowTimeout, func(ctx context.Context) tea.Msg {
		pr, err := src.Profile(ctx, name, service.ProfileOptions{Choice: service.ProfileAuto})
		switch {
		case err != nil:
			err = fmt.Errorf("the build profile of %s: %w", name, err)
		case pr == nil:
			err = fmt.Errorf("kernel %s has no build profile", name)
		}
		var ix *profile.Index
		if err == nil {
			ix = profile.NewIndex(pr)
		}
		return profileMsg{name, ix, err}
	})
}

func (p *kernelsPage) gotProfile(msg profileMsg, m *Model) tea.Cmd {
	p.profBusy = false
	if msg.kernel != p.detailID {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		p.prof, p.profOf = msg.ix, msg.kernel
	}
	p.refresh(m)
	p.showSearch()
	return nil
}

// showSearch scrolls to the search's answer.
func (p *kernelsPage) showSearch() {
	lines := strings.Split(p.vp.GetContent(), "\n")
	for i, l := range lines {
		if strings.Contains(l, "Where it goes") {
			p.vp.SetYOffset(i)
			return
		}
	}
}

// match is one file of a profile search and where it goes.
type match struct {
	path  string
	where profile.Where
}

// searchProfile finds the files of the profile whose path is frag or
// holds it: the exact path first, then the units' sources and the files
// they read, sorted; at most limit of them, and how many there are.
func searchProfile(ix *profile.Index, frag string, limit int) ([]match, int) {
	if w, ok := ix.Lookup(frag); ok {
		return []match{{frag, w}}, 1
	}
	seen := map[string]bool{}
	var paths []string
	pr := ix.Profile()
	for _, u := range pr.Units {
		if !seen[u.Source] && strings.Contains(u.Source, frag) {
			seen[u.Source] = true
			paths = append(paths, u.Source)
		}
	}
	for d := range pr.Deps {
		if !seen[d] && strings.Contains(d, frag) {
			seen[d] = true
			paths = append(paths, d)
		}
	}
	slices.Sort(paths)
	n := len(paths)
	out := make([]match, 0, min(n, limit))
	for _, path := range paths[:min(n, limit)] {
		w, _ := ix.Lookup(path)
		out = append(out, match{path, w})
	}
	return out, n
}

// whereText says where a file goes: compiled into vmlinux or modules, or
// read (a header) by units of them.
func whereText(w profile.Where) string {
	var parts []string
	mods := 0
	for _, t := range w.Targets {
		if t == profile.Vmlinux {
			parts = append(parts, "vmlinux")
			continue
		}
		mods++
		parts = append(parts, t)
	}
	s := strings.Join(parts, ", ")
	if mods > 0 {
		what := "module"
		if mods > 1 {
			what = "modules"
		}
		if parts[0] == "vmlinux" {
			s = "vmlinux and " + what + " " + strings.Join(parts[1:], ", ")
		} else {
			s = what + " " + s
		}
	}
	if w.Direct {
		s = "compiled into " + s
	} else {
		s = "read by the units of " + s
	}
	if w.Possible {
		s += " (possibly: the static evaluation could not decide)"
	}
	return s
}

func (p *kernelsPage) openJobs(m *Model) tea.Cmd {
	p.jobsOpen, p.jobs, p.jobsLoaded, p.notice = true, nil, false, ""
	p.stopLog()
	p.setJobRows(m)
	_, h := m.body()
	p.split(h)
	return p.loadJobs(m)
}

func (p *kernelsPage) loadJobs(m *Model) tea.Cmd {
	p.jseq++
	seq, src, name := p.jseq, m.src, p.detailID
	return m.query(func(ctx context.Context) tea.Msg {
		list, err := src.Jobs(ctx, service.JobQuery{Kernel: name, Limit: 200})
		if err != nil {
			err = fmt.Errorf("list the jobs of %s: %w", name, err)
		}
		return jobsMsg{seq, list, err}
	})
}

func (p *kernelsPage) gotJobs(msg jobsMsg, m *Model) tea.Cmd {
	if msg.seq != p.jseq || !p.jobsOpen {
		return nil
	}
	p.err = msg.err
	if msg.err == nil {
		p.jobs, p.jobsLoaded = msg.list, true
		p.setJobRows(m)
	}
	return nil
}

func (p *kernelsPage) jobsKey(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		p.jobsOpen = false
		p.stopLog()
		return nil
	case key.Matches(msg, k.Reload):
		return p.loadJobs(m)
	case key.Matches(msg, k.Open):
		if i, ok := p.jrows.pick(len(p.jobs)); ok {
			cmd := p.follow(m, p.jobs[i].ID)
			_, h := m.body()
			p.split(h)
			return cmd
		}
		return nil
	case key.Matches(msg, k.Pg) && p.following():
		return scroll(&p.logVP, msg)
	}
	return p.jrows.update(msg)
}

func (p *kernelsPage) gotLog(msg logMsg, m *Model) tea.Cmd {
	if !p.addLines(msg, nil) {
		return nil
	}
	return p.next()
}

// gotLogEnd: the job is over; its state on the list changed with it.
func (p *kernelsPage) gotLogEnd(msg logEndMsg, m *Model) tea.Cmd {
	if !p.end(msg) || !p.jobsOpen {
		return nil
	}
	return p.loadJobs(m)
}

func (p *kernelsPage) refresh(m *Model) {
	k := p.detail
	if k == nil || k.Kernel == nil {
		p.vp.SetContent("")
		return
	}
	w := max(p.vp.Width()-2, 20)
	var b strings.Builder
	field := func(name, v string) { b.WriteString(clip(fmt.Sprintf("%-14s%s", name, v), w) + "\n") }
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
	p.where(&b, m.st, w)
	p.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}

// where is the profile search's answer.
func (p *kernelsPage) where(b *strings.Builder, st styles, w int) {
	if p.search == "" || p.prof == nil || p.profOf != p.detailID {
		return
	}
	pr := p.prof.Profile()
	fmt.Fprintf(b, "\n%s\n", st.heading.Render(clip(fmt.Sprintf("Where it goes: %q · %s profile, %d units", termtext.Line(p.search), pr.Kind, len(pr.Units)), w)))
	ms, n := searchProfile(p.prof, p.search, maxMatches)
	if n == 0 {
		b.WriteString(clip(st.warn.Render("not compiled: no file matching "+fmt.Sprintf("%q", termtext.Line(p.search))+" is built or read with this config"), w) + "\n")
		return
	}
	pw := 0
	for _, mt := range ms {
		pw = max(pw, len(termtext.Line(mt.path)))
	}
	pw = min(pw, w/2)
	for _, mt := range ms {
		style := st.good
		if !mt.where.Direct {
			style = lipgloss.NewStyle()
		}
		b.WriteString(clip(fmt.Sprintf("  %-*s  %s", pw, clipPlain(termtext.Line(mt.path), pw), style.Render(whereText(mt.where))), w) + "\n")
	}
	if n > len(ms) {
		fmt.Fprintf(b, "  … and %d more: type more of the path\n", n-len(ms))
	}
}
