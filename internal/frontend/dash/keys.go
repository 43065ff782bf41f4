package dash

import "charm.land/bubbles/v2/key"

// keyMap holds the dashboard's own keys; the table and viewport widgets
// bring their movement keys (↑/↓, j/k, pgup/pgdn, g/G).
type keyMap struct {
	Next, Prev, Pages, Help, Quit      key.Binding
	Open, Back, Reload                 key.Binding
	Kernel, Tier, Status, Affected     key.Binding
	Text, Profile, State, Up, Down, Pg key.Binding
	// The patch workflow's.
	Patch, New, Edit, Approve, Reject, ReloadR, Build key.Binding
	// The kernels page's.
	NewKernel, Config, Jobs, Find key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, help string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, help))
	}
	return keyMap{
		Next:     b([]string{"tab"}, "tab", "next page"),
		Prev:     b([]string{"shift+tab"}, "shift+tab", "previous page"),
		Pages:    b([]string{"1", "2", "3", "4", "5", "6", "7", "8"}, "1-8", "go to page"),
		Help:     b([]string{"?"}, "?", "help"),
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),
		Open:     b([]string{"enter"}, "enter", "open"),
		Back:     b([]string{"esc", "backspace"}, "esc", "back"),
		Reload:   b([]string{"r"}, "r", "reload"),
		Kernel:   b([]string{"K"}, "K", "next kernel"),
		Tier:     b([]string{"t"}, "t", "tier"),
		Status:   b([]string{"s"}, "s", "status"),
		Affected: b([]string{"a"}, "a", "needs action"),
		Text:     b([]string{"/"}, "/", "search"),
		Profile:  b([]string{"p"}, "p", "build profile"),
		State:    b([]string{"s"}, "s", "state"),
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		Pg:       b([]string{"pgup", "pgdown"}, "pgup/pgdn", "page"),
		Patch:    b([]string{"p"}, "p", "patches"),
		New:      b([]string{"n"}, "n", "new patch"),
		Edit:     b([]string{"e"}, "e", "edit in $EDITOR"),
		Approve:  b([]string{"a"}, "a", "approve"),
		Reject:   b([]string{"r"}, "r", "reject"),
		ReloadR:  b([]string{"R"}, "R", "reload"),
		Build:    b([]string{"b"}, "b", "build next set"),

		NewKernel: b([]string{"n"}, "n", "add kernel"),
		Config:    b([]string{"c"}, "c", "new config (menuconfig)"),
		Jobs:      b([]string{"b"}, "b", "jobs"),
		Find:      b([]string{"/"}, "/", "where is a file"),
	}
}

// pageKeys are the keys the help shows on one page: help.KeyMap.
type pageKeys struct {
	k    keyMap
	page page
	// detail: a CVE, machine or kernel is open on the page.
	detail, editing bool
	// form: the kernels page's form is open; jobs: its kernel's jobs.
	form, jobs bool
}

func (p pageKeys) ShortHelp() []key.Binding {
	k := p.k
	if p.form {
		return formKeys()
	}
	if p.editing {
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		}
	}
	switch {
	case p.page == pageQueue:
		return []key.Binding{k.Open, k.Text, k.Kernel, k.Tier, k.Affected, k.Status, k.Help, k.Quit}
	case p.page == pageCVE:
		return []key.Binding{k.Patch, k.Back, k.Pg, k.Pages, k.Help, k.Quit}
	case p.page == pagePatch && p.detail:
		return []key.Binding{k.Edit, k.Back, k.Reload, k.Pages, k.Help, k.Quit}
	case p.page == pagePatch:
		return []key.Binding{k.Open, k.New, k.Reload, k.Pages, k.Help, k.Quit}
	case p.page == pageReview && p.detail:
		return []key.Binding{k.Approve, k.Reject, k.Back, k.Pages, k.Help, k.Quit}
	case p.page == pageReview:
		return []key.Binding{k.Open, k.ReloadR, k.Pages, k.Help, k.Quit}
	case p.page == pagePublish && p.detail:
		return []key.Binding{k.Back, k.Reload, k.Up, k.Pages, k.Help, k.Quit}
	case p.page == pagePublish:
		return []key.Binding{k.Open, k.Build, k.Kernel, k.Pages, k.Help, k.Quit}
	case p.page == pageKernels && p.jobs:
		return []key.Binding{logKey(k.Open), k.Back, k.Reload, k.Pages, k.Help, k.Quit}
	case p.page == pageKernels && p.detail:
		return []key.Binding{k.Find, k.Jobs, shortConfig(k.Config), k.Back, k.Help, k.Quit}
	case p.detail:
		return []key.Binding{k.Back, k.Up, k.Pg, k.Pages, k.Help, k.Quit}
	case p.page == pageFleet:
		return []key.Binding{k.Open, k.State, k.Reload, k.Pages, k.Help, k.Quit}
	case p.page == pageKernels:
		return []key.Binding{k.Open, k.NewKernel, shortConfig(k.Config), k.Pages, k.Help, k.Quit}
	}
	return []key.Binding{k.Up, k.Pg, k.Pages, k.Help, k.Quit}
}

func (p pageKeys) FullHelp() [][]key.Binding {
	k := p.k
	global := []key.Binding{k.Pages, k.Next, k.Prev, k.Help, k.Quit}
	move := []key.Binding{k.Up, k.Down, k.Pg, k.Back}
	var own []key.Binding
	switch {
	case p.form:
		return [][]key.Binding{formKeys()}
	case p.editing:
	case p.page == pageCVE:
		own = []key.Binding{k.Patch}
	case p.page == pagePatch && p.detail:
		own = []key.Binding{k.Edit, k.Reload}
	case p.page == pagePatch:
		own = []key.Binding{k.Open, k.New, k.Reload}
	case p.page == pageReview && p.detail:
		own = []key.Binding{k.Approve, k.Reject, k.ReloadR}
	case p.page == pageReview:
		own = []key.Binding{k.Open, k.ReloadR}
	case p.page == pagePublish && p.detail:
		own = []key.Binding{k.Reload}
	case p.page == pagePublish:
		own = []key.Binding{k.Open, k.Build, k.Kernel, k.Reload}
	case p.page == pageKernels && p.jobs:
		own = []key.Binding{logKey(k.Open), k.Reload}
	case p.page == pageKernels && p.detail:
		own = []key.Binding{k.Find, k.Jobs, k.Config, k.Reload}
	case p.detail || p.page == pageEvents:
	case p.page == pageQueue:
		own = []key.Binding{k.Open, k.Text, k.Kernel, k.Tier, k.Status, k.Affected, k.Profile, k.Reload}
	case p.page == pageFleet:
		own = []key.Binding{k.Open, k.State, k.Reload}
	case p.page == pageKernels:
		own = []key.Binding{k.Open, k.NewKernel, k.Config, k.Reload}
	}
	return [][]key.Binding{global, move, own}
}

// logKey is enter as the jobs list has it.
func logKey(open key.Binding) key.Binding {
	open.SetHelp("enter", "follow its log")
	return open
}

// shortConfig is c as the footer has room for.
func shortConfig(c key.Binding) key.Binding {
	c.SetHelp("c", "new config")
	return c
}
