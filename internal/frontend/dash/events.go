package dash

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/service"
)

// eventMsg is one event from the stream.
type eventMsg struct{ e event.Event }

// feedMsg says how the stream stands: following, or broken with err (the
// follower retries).
type feedMsg struct{ err error }

// retryAfter is how long the follower waits before it resumes a broken
// stream.
const retryAfter = 2 * time.Second

// follow watches the server's event stream for the life of ctx and sends
// each event to feed; the program reads feed one message at a time
// (waitFeed), so a slow screen holds the stream back instead of
// buffering it without bound. A broken stream is resumed after the last
// event seen, so a server restart loses nothing.
func follow(ctx context.Context, src Source, after int64, retry time.Duration, feed chan<- tea.Msg) {
	send := func(m tea.Msg) bool {
		select {
		case feed <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		if !send(feedMsg{}) {
			return
		}
		err := src.Watch(ctx, service.WatchOptions{After: after, Follow: true}, func(e event.Event) error {
			after = e.Seq
			if !send(eventMsg{e}) {
				return ctx.Err()
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("the server ended the stream")
		}
		if !send(feedMsg{fmt.Errorf("event stream: %w", err)}) {
			return
		}
		select {
		case <-time.After(retry):
		case <-ctx.Done():
			return
		}
	}
}

// waitFeed reads the next message of the stream (none once ctx ends).
func waitFeed(ctx context.Context, feed <-chan tea.Msg) tea.Cmd {
	if feed == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case m := <-feed:
			return m
		case <-ctx.Done():
			return nil
		}
	}
}

// maxEvents bounds the feed on screen; older events are the server's to
// replay (tuxtape events).
const maxEvents = 500

// eventsPage is the live feed, newest first.
type eventsPage struct {
	events []event.Event
	err    error // the stream's last problem, until it works again
	live   bool
	vp     viewport.Model
}

func (p *eventsPage) add(e event.Event) {
	p.events = append(p.events, e)
	if len(p.events) > maxEvents {
		p.events = p.events[len(p.events)-maxEvents:]
	}
}

func (p *eventsPage) status(*Model) string {
	switch {
	case p.err != nil:
		return "reconnecting: " + termtext.Line(p.err.Error())
	case p.live:
		return fmt.Sprintf("following the event stream · %d shown", len(p.events))
	}
	return "connecting to the event stream…"
}

func (p *eventsPage) render(m *Model) string {
	if len(p.events) == 0 {
		w, _ := m.body()
		return placeholder("No events yet. Syncs, kernel changes and machines' reports appear here as they happen.", w)
	}
	return p.vp.View()
}

// refresh lays the feed out, newest first. Subjects, actors and details
// come from outside (a kernel's name, a machine's report): escaped.
func (p *eventsPage) refresh(m *Model) {
	w := p.vp.Width()
	lines := make([]string, 0, len(p.events))
	for i := len(p.events) - 1; i >= 0; i-- {
		e := p.events[i]
		kind := fmt.Sprintf("%-19s", termtext.Line(string(e.Kind)))
		line := fmt.Sprintf("%6d  %s  %s %s", e.Seq, e.At.In(m.loc).Format("01-02 15:04:05"), m.st.kind(e.Kind).Render(kind),
			termtext.Line(e.Subject))
		if e.Actor != "" {
			line += " " + m.st.dim.Render("by "+termtext.Line(e.Actor))
		}
		if e.Detail != "" {
			line += " " + m.st.dim.Render("· "+termtext.Line(e.Detail))
		}
		lines = append(lines, clip(line, w))
	}
	p.vp.SetContent(strings.Join(lines, "\n"))
}

// reloads reports whether an event changes what the queue shows.
func reloads(k event.Kind) bool {
	return k == event.SyncFinished || strings.HasPrefix(string(k), "kernel.")
}

// key scrolls the feed: the page has no keys of its own.
func (p *eventsPage) key(msg tea.KeyPressMsg, m *Model) tea.Cmd { return scroll(&p.vp, msg) }

func (p *eventsPage) resize(m *Model, w, h int) {
	p.vp.SetWidth(w)
	p.vp.SetHeight(h)
	p.refresh(m)
}
