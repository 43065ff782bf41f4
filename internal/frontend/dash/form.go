package dash

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// field is one line of a form: a label, its input and a hint.
type field struct {
	label, hint string
	in          textinput.Model
}

// form is a few one-line inputs on a page: tab, ↓ and enter move to the
// next field (enter on the last submits), shift+tab and ↑ go back, esc
// drops the form. Its values stay while the server answers, so a refusal
// is fixed in place rather than typed again.
type form struct {
	title  string
	fields []field
	focus  int
	active bool
	// submit gets the values in order; what it returns runs.
	submit func(m *Model, values []string) tea.Cmd
}

// newForm makes a form of label/hint pairs.
func newForm(title string, labels, hints []string, limit int) form {
	f := form{title: title}
	for i, l := range labels {
		in := textinput.New()
		in.Prompt = ""
		in.CharLimit = limit
		f.fields = append(f.fields, field{label: l, hint: hints[i], in: in})
	}
	return f
}

// open shows the form with its first field focused; values already typed
// stay.
func (f *form) open(submit func(*Model, []string) tea.Cmd) tea.Cmd {
	f.active, f.submit = true, submit
	return f.focusOn(0)
}

func (f *form) focusOn(i int) tea.Cmd {
	for j := range f.fields {
		f.fields[j].in.Blur()
	}
	f.focus = i
	f.fields[i].in.CursorEnd()
	return f.fields[i].in.Focus()
}

func (f *form) close() {
	f.active = false
	for j := range f.fields {
		f.fields[j].in.Blur()
	}
}

func (f *form) values() []string {
	out := make([]string, len(f.fields))
	for i, fl := range f.fields {
		out[i] = strings.TrimSpace(fl.in.Value())
	}
	return out
}

func (f *form) key(msg tea.KeyPressMsg, m *Model) tea.Cmd {
	last := len(f.fields) - 1
	switch msg.String() {
	case "esc":
		f.close()
		return nil
	case "tab", "down":
		return f.focusOn((f.focus + 1) % len(f.fields))
	case "shift+tab", "up":
		return f.focusOn((f.focus + len(f.fields) - 1) % len(f.fields))
	case "enter":
		if f.focus < last {
			return f.focusOn(f.focus + 1)
		}
		f.close()
		return f.submit(m, f.values())
	}
	var cmd tea.Cmd
	f.fields[f.focus].in, cmd = f.fields[f.focus].in.Update(msg)
	return cmd
}

// view lays the form out over w cells: the label column, the inputs, and
// each field's hint below it.
func (f *form) view(m *Model, w int) string {
	lw := 0
	for _, fl := range f.fields {
		lw = max(lw, ansi.StringWidth(fl.label))
	}
	var b strings.Builder
	b.WriteString(m.st.title.Render(f.title) + "\n\n")
	for i := range f.fields {
		fl := &f.fields[i]
		fl.in.SetWidth(max(w-lw-6, 10))
		mark := "  "
		if i == f.focus {
			mark = "› "
		}
		fmt.Fprintf(&b, "%s%-*s  %s\n", mark, lw, fl.label, fl.in.View())
		if fl.hint != "" {
			b.WriteString(clip(m.st.dim.Render(strings.Repeat(" ", lw+4)+fl.hint), w) + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// formKeys are the keys the footer shows while a form is open.
func formKeys() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab/↓", "next")),
		key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab/↑", "back")),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next/send")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
	}
}
