package dash

import (
	"strings"

	"charm.land/bubbles/v2/table"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/patch"
)

// styles are the dashboard's looks. Colours are only emphasis: every
// state is also in the text (the selected row's ›, the active tab's
// brackets), so a terminal without colour, where Bubble Tea drops them,
// loses nothing.
type styles struct {
	tab, activeTab, title, dim, bad, good, warn, heading lipgloss.Style
	// A diff's added, removed and hunk-header lines.
	add, del, hunk lipgloss.Style
	tiers          map[string]lipgloss.Style
}

func newStyles() styles {
	return styles{
		tab:       lipgloss.NewStyle(),
		activeTab: lipgloss.NewStyle().Bold(true).Reverse(true),
		title:     lipgloss.NewStyle().Bold(true),
		heading:   lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12")),
		dim:       lipgloss.NewStyle().Foreground(lipgloss.Color("8")),
		bad:       lipgloss.NewStyle().Foreground(lipgloss.Color("9")),
		good:      lipgloss.NewStyle().Foreground(lipgloss.Color("10")),
		warn:      lipgloss.NewStyle().Foreground(lipgloss.Color("11")),
		add:       lipgloss.NewStyle().Foreground(lipgloss.Color("2")),
		del:       lipgloss.NewStyle().Foreground(lipgloss.Color("1")),
		hunk:      lipgloss.NewStyle().Foreground(lipgloss.Color("6")),
		tiers: map[string]lipgloss.Style{
			"critical": lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9")),
			"high":     lipgloss.NewStyle().Foreground(lipgloss.Color("208")),
			"medium":   lipgloss.NewStyle().Foreground(lipgloss.Color("11")),
			"low":      lipgloss.NewStyle().Foreground(lipgloss.Color("8")),
		},
	}
}

func (s styles) tier(t string) lipgloss.Style {
	if st, ok := s.tiers[t]; ok {
		return st
	}
	return lipgloss.NewStyle()
}

func (s styles) kind(k event.Kind) lipgloss.Style {
	switch {
	case k == event.SyncFailed || strings.HasSuffix(string(k), "failed") || k == "fleet.bug_detected" || k == "fleet.rolled_back":
		return s.bad
	case k == "ring.halted" || k == "patch.refused" || k == "patch.rejected":
		return s.bad
	case k == event.SyncFinished || k == "fleet.applied" || k == "patch.vetted" || k == "patch.approved" || k == "patchset.ready":
		return s.good
	case strings.HasPrefix(string(k), "kernel."):
		return s.heading
	}
	return lipgloss.NewStyle()
}

func (s styles) table() table.Styles {
	return table.Styles{
		Header:   lipgloss.NewStyle().Bold(true).Padding(0, 1),
		Cell:     lipgloss.NewStyle().Padding(0, 1),
		Selected: lipgloss.NewStyle().Bold(true).Reverse(true),
	}
}

// fit cuts or pads s to exactly h lines of at most w cells, so that the
// frame never scrolls the terminal whatever a page renders.
func fit(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		lines[i] = clip(l, w)
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// clip cuts one line to w cells, styles kept.
func clip(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// wrap breaks text into lines of at most w cells, at spaces where it can.
func wrap(s string, w int) string {
	if w < 10 {
		w = 10
	}
	return lipgloss.Wrap(s, w, "")
}

// placeholder is a page's note when it has nothing to list.
func placeholder(s string, w int) string {
	return "\n  " + strings.ReplaceAll(wrap(s, w-4), "\n", "\n  ")
}

// stateLooks are the states of patches, patch sets and jobs by how they
// look: the three share their failure's and their work's names.
var stateLooks = map[string]string{
	string(patch.Vetted): "good", string(patch.Approved): "good", string(patch.SetReady): "good", string(job.Done): "good",
	string(patch.Refused): "bad", string(patch.Failed): "bad", string(patch.Rejected): "bad",
	string(patch.Building): "warn", string(job.Leased): "warn",
}

// state is how a patch's, a patch set's or a job's state looks.
func (s styles) state(st string) lipgloss.Style {
	switch stateLooks[st] {
	case "good":
		return s.good
	case "bad":
		return s.bad
	case "warn":
		return s.warn
	}
	return lipgloss.NewStyle()
}

func (s styles) patchState(st patch.State) lipgloss.Style { return s.state(string(st)) }

func (s styles) setState(st patch.SetState) lipgloss.Style { return s.state(string(st)) }

func (s styles) jobState(st job.State) lipgloss.Style { return s.state(string(st)) }
