// Package progress draws a one-line status (count, rate, ETA) for long
// operations on a terminal, and stays silent when output is piped.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Bar is a status line. The zero value and a nil *Bar draw nothing.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	start time.Time
	last  time.Time
}

// New returns a Bar on w when w is a terminal (and TERM is not dumb) and
// quiet is false, else nil.
func New(w io.Writer, label string, quiet bool) *Bar {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) || os.Getenv("TERM") == "dumb" {
		return nil
	}
	return &Bar{w: w, label: label, start: time.Now()}
}

// Update shows done of total; it redraws at most ten times a second.
func (b *Bar) Update(done, total int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = now
	elapsed := now.Sub(b.start).Seconds()
	rate := float64(done) / max(elapsed, 1e-3)
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r\033[K%s %d/%d (%.0f/s, ETA %s)", b.label, done, total, rate, eta)
}

// Done clears the line.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprint(b.w, "\r\033[K")
}
