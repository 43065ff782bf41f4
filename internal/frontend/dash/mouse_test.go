package dash

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

func click(x, y int) tea.MouseClickMsg {
	return tea.MouseClickMsg{X: x, Y: y, Button: tea.MouseLeft}
}

func wheel(b tea.MouseButton) tea.MouseWheelMsg { return tea.MouseWheelMsg{Button: b} }

// TestMouse: a click on a row selects it and a second one opens it, a
// click on a tab shows its page, the wheel moves lists and scrolls
// pages; while a line is typed in, the mouse does nothing.
func TestMouse(t *testing.T) {
	// The screen's line of a list's row i: tabs, status, the header.
	row := func(i int) int { return bodyTop + 1 + i }
	tests := []struct {
		name   string
		keys   []string
		msgs   func(d *driver) []tea.Msg
		page   page
		cursor int // the page's list's, -1: none asked
		check  func(t *testing.T, d *driver)
	}{
		{"a click selects", []string{"a"}, func(d *driver) []tea.Msg { return []tea.Msg{click(5, row(2))} }, pageQueue, 2, nil},
		{"a second click opens", []string{"a"}, func(d *driver) []tea.Msg { return []tea.Msg{click(5, row(2)), click(5, row(2))} }, pageCVE, -1,
			func(t *testing.T, d *driver) {
				if d.m.cve.id != d.m.queue.list.CVEs[2].ID {
					t.Errorf("opened %s, want the third row's %s", d.m.cve.id, d.m.queue.list.CVEs[2].ID)
				}
			}},
		{"a click below the rows", []string{"4"}, func(d *driver) []tea.Msg { return []tea.Msg{click(5, row(9))} }, pageKernels, 0, nil},
		{"a click on the header", []string{"a"}, func(d *driver) []tea.Msg { return []tea.Msg{click(5, bodyTop)} }, pageQueue, 0, nil},
		{"the wheel moves the list", []string{"a"}, func(d *driver) []tea.Msg {
			return []tea.Msg{wheel(tea.MouseWheelDown), wheel(tea.MouseWheelDown), wheel(tea.MouseWheelUp)}
		}, pageQueue, wheelStep, nil},
		{"clicks after the list scrolled", []string{"a"}, func(d *driver) []tea.Msg {
			var msgs []tea.Msg
			for range 10 {
				msgs = append(msgs, wheel(tea.MouseWheelDown))
			}
			// The line above the marked row's, once the wheel has moved it.
			return append(msgs, clickMarked{-1})
		}, pageQueue, -1, func(t *testing.T, d *driver) {
			if got := d.m.queue.rows.t.Cursor(); got != 19-1 {
				t.Errorf("cursor %d, want 18 (the row above the last)", got)
			}
		}},
		{"a tab", nil, func(d *driver) []tea.Msg {
			return []tea.Msg{click(strings.Index(ansi.Strip(d.m.tabs()), "3 Fleet")+1, 0)}
		}, pageFleet, -1, nil},
		{"the wheel scrolls a page", []string{"enter"}, func(d *driver) []tea.Msg { return []tea.Msg{wheel(tea.MouseWheelDown)} }, pageCVE, -1,
			func(t *testing.T, d *driver) {
				if d.m.cve.vp.YOffset() != wheelStep {
					t.Errorf("offset %d, want %d", d.m.cve.vp.YOffset(), wheelStep)
				}
			}},
		{"typing: nothing", []string{"a", "/"}, func(d *driver) []tea.Msg { return []tea.Msg{click(5, row(2)), wheel(tea.MouseWheelDown)} }, pageQueue, 0, nil},
		{"the kernels' jobs", []string{"4", "enter", "b"}, func(d *driver) []tea.Msg { return []tea.Msg{click(5, row(3)), click(5, row(3))} }, pageKernels, 3,
			func(t *testing.T, d *driver) {
				if d.m.kern.logJob != "00000000000000k1" {
					t.Errorf("the second click followed %q, want the fourth job's log", d.m.kern.logJob)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, newFake(t), 80, 24)
			d.keys(tt.keys...)
			for _, msg := range tt.msgs(d) {
				if c, ok := msg.(clickMarked); ok {
					msg = click(5, markedLine(d)+c.dy)
				}
				d.send(msg)
			}
			if d.m.page != tt.page {
				t.Errorf("page %s, want %s", pageNames[d.m.page], pageNames[tt.page])
			}
			if l := d.m.activeList(); tt.cursor >= 0 && (l == nil || l.t.Cursor() != tt.cursor) {
				t.Errorf("list %v, want the cursor on %d:\n%s", l != nil, tt.cursor, d.screen())
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

// clickMarked is a click dy lines below the selected row, where it is
// when the click comes.
type clickMarked struct{ dy int }

// markedLine is the screen line of the selected row.
func markedLine(d *driver) int {
	for i, l := range strings.Split(d.screen(), "\n") {
		if strings.HasPrefix(l, " › ") {
			return i
		}
	}
	return -1
}
