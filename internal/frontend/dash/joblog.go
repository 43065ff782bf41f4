package dash

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// maxLogLines bounds the build log a page keeps: the tail of a long
// build (the whole log is the server's: tuxtape job log).
const maxLogLines = 2000

// logMsg carries build log lines of a job; logEndMsg says its log ended
// (the job is over) or broke. Both name the follower's channel: two pages
// may follow the same job, each with its own follower.
type (
	logMsg struct {
		job   string
		lines []string
		ch    chan tea.Msg
	}
	logEndMsg struct {
		job string
		err error
		ch  chan tea.Msg
	}
)

// multiMsg is log lines followed by the log's end, read together.
type multiMsg [2]tea.Msg

// jobLog is a job's build log followed live, as the patch page and the
// kernels page show it below what they show of the job.
type jobLog struct {
	logVP     viewport.Model
	logJob    string
	log       []string
	logDone   bool
	logErr    error
	logCtx    context.Context
	logCancel context.CancelFunc
	logCh     chan tea.Msg
}

// follow reads a job's log from the server until the job is over, in a
// goroutine of its own that feeds the page, one batch of lines at a time
// (the page asks for the next when it has shown one: a slow screen holds
// the stream back).
func (l *jobLog) follow(m *Model, jobID string) tea.Cmd {
	l.stopLog()
	ctx, cancel := context.WithCancel(m.ctx)
	ch := make(chan tea.Msg, 64)
	l.logJob, l.logCtx, l.logCancel, l.logCh = jobID, ctx, cancel, ch
	src := m.src
	go func() {
		err := src.JobLog(ctx, jobID, service.JobLogOptions{Follow: true}, func(line store.JobLogLine) error {
			select {
			case ch <- logMsg{jobID, []string{line.Text}, ch}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("job %s's log: %w", jobID, err)
		}
		select {
		case ch <- logEndMsg{jobID, err, ch}:
		case <-ctx.Done():
		}
	}()
	return waitLog(ctx, ch)
}

// stopLog ends the follower and forgets the log.
func (l *jobLog) stopLog() {
	if l.logCancel != nil {
		l.logCancel()
	}
	l.logJob, l.log, l.logDone, l.logErr, l.logCtx, l.logCancel, l.logCh = "", nil, false, nil, nil, nil, nil
}

// following reports whether the page shows a log.
func (l *jobLog) following() bool { return len(l.log) > 0 || l.logJob != "" }

// waitLog reads the next message of a log, with the lines that came
// along with it.
func waitLog(ctx context.Context, ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		var first tea.Msg
		select {
		case first = <-ch:
		case <-ctx.Done():
			return nil
		}
		lm, ok := first.(logMsg)
		if !ok {
			return first
		}
		for len(lm.lines) < 500 {
			select {
			case next := <-ch:
				if n, ok := next.(logMsg); ok {
					lm.lines = append(lm.lines, n.lines...)
					continue
				}
				// The end comes after the lines: both go together.
				return multiMsg{lm, next}
			default:
				return lm
			}
		}
		return lm
	}
}

// addLines takes a batch of lines of this follower's job (false: the
// message is another's) and keeps the view at the bottom if it was;
// layout, if not nil, sizes the page for the log first.
func (l *jobLog) addLines(msg logMsg, layout func()) bool {
	if msg.ch != l.logCh || l.logCh == nil {
		return false
	}
	atEnd := l.logVP.AtBottom() || len(l.log) == 0
	for _, s := range msg.lines {
		l.log = append(l.log, safeLine(s))
	}
	if len(l.log) > maxLogLines {
		l.log = l.log[len(l.log)-maxLogLines:]
	}
	if layout != nil {
		layout()
	}
	l.refreshLog()
	if atEnd {
		l.logVP.GotoBottom()
	}
	return true
}

// next asks for the log's next batch, unless it is over.
func (l *jobLog) next() tea.Cmd {
	if l.logDone || l.logCh == nil {
		return nil
	}
	return waitLog(l.logCtx, l.logCh)
}

// end marks the log over (false: the message is another follower's).
func (l *jobLog) end(msg logEndMsg) bool {
	if msg.ch != l.logCh || l.logCh == nil {
		return false
	}
	l.logDone, l.logErr = true, msg.err
	if l.logCancel != nil {
		l.logCancel()
	}
	return true
}

func (l *jobLog) refreshLog() {
	w := l.logVP.Width()
	lines := make([]string, len(l.log))
	for i, s := range l.log {
		lines[i] = clipPlain(s, w)
	}
	l.logVP.SetContent(strings.Join(lines, "\n"))
}

// logView is the bar naming the job and how its log stands, and the log.
func (l *jobLog) logView(m *Model, w int) string {
	state := "following…"
	switch {
	case l.logErr != nil:
		state = m.st.bad.Render("broken: " + termtext.Line(l.logErr.Error()))
	case l.logDone:
		state = "the job is over"
	}
	bar := m.st.heading.Render(fmt.Sprintf("── build log · job %s · %d lines · ", termtext.Line(l.logJob), len(l.log))) + state
	return clip(bar, w) + "\n" + l.logVP.View()
}
