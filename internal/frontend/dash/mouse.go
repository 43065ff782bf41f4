package dash

import (
	"strings"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// The mouse is a second way to do what keys do: a click on a tab shows
// its page, a click on a row selects it (on the selected row, opens it,
// as enter does), the wheel moves through lists and scrolls pages.

// wheelStep is how many rows or lines one notch of the wheel moves.
const wheelStep = 3

// bodyTop is the screen line a page's body starts on (below the tabs and
// the status line).
const bodyTop = 2

func (m *Model) mouse(msg tea.MouseMsg) tea.Cmd {
	if m.queue.editing || m.prompt.active || m.kern.form.active {
		return nil
	}
	ms := msg.Mouse()
	switch msg.(type) {
	case tea.MouseWheelMsg:
		return m.wheel(ms.Button)
	case tea.MouseClickMsg:
		if ms.Button != tea.MouseLeft {
			return nil
		}
		if ms.Y == 0 {
			if p, ok := m.tabAt(ms.X); ok {
				return m.show(p)
			}
			return nil
		}
		return m.click(ms.Y - bodyTop)
	}
	return nil
}

func (m *Model) wheel(b tea.MouseButton) tea.Cmd {
	l, vp := m.active()
	if l != nil {
		switch b {
		case tea.MouseWheelDown:
			l.t.MoveDown(wheelStep)
		case tea.MouseWheelUp:
			l.t.MoveUp(wheelStep)
		}
		l.mark()
		return nil
	}
	if vp != nil {
		switch b {
		case tea.MouseWheelDown:
			vp.ScrollDown(wheelStep)
		case tea.MouseWheelUp:
			vp.ScrollUp(wheelStep)
		}
	}
	return nil
}

// click selects the row on body line y of the page's list; a click on
// the row already selected opens it.
func (m *Model) click(y int) tea.Cmd {
	l := m.activeList()
	if l == nil || y < 1 {
		return nil
	}
	row, ok := l.rowAt(y - 1)
	if !ok {
		return nil
	}
	if row == l.t.Cursor() {
		return m.key(tea.KeyPressMsg{Code: tea.KeyEnter})
	}
	l.t.SetCursor(row)
	l.mark()
	return nil
}

// rowAt is the row shown on line y of the table's rows: the table
// scrolls on its own, so the line of the marked row is the reference.
func (l *list) rowAt(y int) (int, bool) {
	lines := strings.Split(l.t.View(), "\n")
	if len(lines) < 2 || y >= len(lines)-1 {
		return 0, false
	}
	at := -1
	for i, s := range lines[1:] {
		if strings.HasPrefix(strings.TrimLeft(ansi.Strip(s), " "), "›") {
			at = i
			break
		}
	}
	if at < 0 {
		return 0, false
	}
	row := l.t.Cursor() + y - at
	if row < 0 || row >= len(l.first) {
		return 0, false
	}
	return row, true
}

// activeList is the list on screen, if the page shows one.
func (m *Model) activeList() *list {
	l, _ := m.active()
	return l
}

// active is what the page shows: a list, or else scrolling text.
func (m *Model) active() (*list, *viewport.Model) {
	either := func(listed bool, l *list, vp *viewport.Model) (*list, *viewport.Model) {
		if listed {
			return l, nil
		}
		return nil, vp
	}
	switch m.page {
	case pageQueue:
		return &m.queue.rows, nil
	case pageCVE:
		return nil, &m.cve.vp
	case pageFleet:
		return either(m.fleet.detailID == "", &m.fleet.rows, &m.fleet.vp)
	case pageKernels:
		if m.kern.jobsOpen {
			return &m.kern.jrows, nil
		}
		return either(m.kern.detailID == "", &m.kern.rows, &m.kern.vp)
	case pageEvents:
		return nil, &m.events.vp
	case pagePatch:
		return either(m.patch.detailID == "", &m.patch.rows, &m.patch.vp)
	case pageReview:
		return either(m.review.detailID == "", &m.review.rows, &m.review.vp)
	case pagePublish:
		return either(m.publish.open == 0, &m.publish.rows, &m.publish.vp)
	}
	return nil, nil
}

// tabAt is the page whose tab is at column x of the tab bar.
func (m *Model) tabAt(x int) (page, bool) {
	labels := m.tabLabels()
	pos := ansi.StringWidth(m.st.title.Render("TuxTape")) + 1
	for i, l := range labels {
		w := ansi.StringWidth(l)
		if x >= pos && x < pos+w {
			return page(i), true
		}
		pos += w + 1
	}
	return 0, false
}
