package dash

import (
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
)

// list is a table whose selected row is also marked in text (›), for
// terminals that show no reverse video.
type list struct {
	t      table.Model
	first  []string // each row's first cell, unmarked
	marked int
	keep   int // the cursor to restore after setColumns
}

func newList(st styles) list {
	return list{t: table.New(table.WithFocused(true), table.WithStyles(st.table())), marked: -1, keep: -1}
}

// column is a table column that may grow: flex columns share what the
// fixed ones leave, in proportion to their weight.
type column struct {
	title string
	width int // fixed width, or the least a flex column gets
	flex  int
}

// setColumns lays cols out over w cells (each cell is padded by one on
// either side).
func (l *list) setColumns(cols []column, w int) {
	left, weight := w-2*len(cols), 0
	for _, c := range cols {
		left -= c.width
		weight += c.flex
	}
	out := make([]table.Column, len(cols))
	for i, c := range cols {
		out[i] = table.Column{Title: c.title, Width: c.width}
		if c.flex > 0 && left > 0 {
			out[i].Width += left * c.flex / weight
		}
	}
	// The first cell holds the mark.
	out[0].Title = "  " + out[0].Title
	// Rows must never have more cells than there are columns: the page
	// sets its rows again for the new columns.
	if c := l.t.Cursor(); c >= 0 {
		l.keep = c
	}
	l.t.SetRows(nil)
	l.t.SetColumns(out)
	l.t.SetWidth(w)
}

// setRows replaces the rows, keeping the cursor where it can.
func (l *list) setRows(rows []table.Row) {
	l.first = make([]string, len(rows))
	for i, r := range rows {
		l.first[i] = r[0]
		r[0] = "  " + r[0]
	}
	want := l.t.Cursor()
	if l.keep >= 0 {
		want, l.keep = l.keep, -1
	}
	l.marked = -1
	l.t.SetRows(rows)
	l.t.SetCursor(min(max(want, 0), len(rows)-1))
	l.mark()
}

// top moves the cursor to the first row: for a new query's answer.
func (l *list) top() {
	l.keep = -1
	l.t.GotoTop()
	l.mark()
}

func (l *list) mark() {
	rows := l.t.Rows()
	c := l.t.Cursor()
	if c == l.marked {
		return
	}
	if l.marked >= 0 && l.marked < len(rows) {
		rows[l.marked][0] = "  " + l.first[l.marked]
	}
	if c >= 0 && c < len(rows) {
		rows[c][0] = "› " + l.first[c]
	}
	l.marked = c
	l.t.UpdateViewport()
}

func (l *list) update(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	l.t, cmd = l.t.Update(msg)
	l.mark()
	return cmd
}

// selected is the cursor's row index, or -1 in an empty table.
func (l *list) selected() int {
	if len(l.first) == 0 {
		return -1
	}
	return l.t.Cursor()
}

// pick is the selected row, when there is one of the n the page holds.
func (l *list) pick(n int) (int, bool) {
	i := l.selected()
	return i, i >= 0 && i < n
}

func (l *list) setHeight(h int) { l.t.SetHeight(h) }

// scroll gives a key or message a page does not take to its viewport.
func scroll(vp *viewport.Model, msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	*vp, cmd = vp.Update(msg)
	return cmd
}

func (l *list) view() string { return l.t.View() }
