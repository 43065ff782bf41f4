// Package outbox queues the agent's reports (applied, rolled back, bug
// detected…) in the state directory until the server takes them, so that
// a server that is down never stops patching and loses nothing recent.
// The queue is bounded: when full, the oldest events go, and the count of
// dropped ones is kept so the next report can say so.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
)

// FileName is the queue's file in the state directory.
const FileName = "outbox.json"

// DefaultMax is how many events are kept by default.
const DefaultMax = 1000

type file struct {
	Events  []fleet.Event `json:"events"`
	Dropped int           `json:"dropped,omitempty"`
}

// Queue is the on-disk queue. It is safe for concurrent use.
type Queue struct {
	Dir string
	Max int // default DefaultMax

	mu sync.Mutex
}

func (q *Queue) path() string { return filepath.Join(q.Dir, FileName) }

func (q *Queue) load() (file, error) {
	var f file
	b, err := os.ReadFile(q.path())
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read outbox: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		// Reports are worth less than patching: start afresh.
		return file{}, nil
	}
	return f, nil
}

func (q *Queue) save(f file) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("save outbox: %w", err)
	}
	if err := os.MkdirAll(q.Dir, 0o700); err != nil {
		return fmt.Errorf("save outbox: %w", err)
	}
	if err := atomicfile.WriteFile(q.path(), b, 0o600); err != nil {
		return fmt.Errorf("save outbox: %w", err)
	}
	return nil
}

// Add appends events, dropping the oldest beyond Max.
func (q *Queue) Add(es ...fleet.Event) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	f, err := q.load()
	if err != nil {
		return err
	}
	f.Events = append(f.Events, es...)
	max := q.Max
	if max <= 0 {
		max = DefaultMax
	}
	if n := len(f.Events) - max; n > 0 {
		f.Events = append([]fleet.Event(nil), f.Events[n:]...)
		f.Dropped += n
	}
	return q.save(f)
}

// Len returns how many events wait.
func (q *Queue) Len() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f, err := q.load()
	return len(f.Events), err
}

// Flush sends the queued events in batches of at most fleet.MaxEvents,
// oldest first, removing each batch once send returns nil. It stops at
// the first error and returns it; what was not sent stays.
func (q *Queue) Flush(ctx context.Context, send func(context.Context, []fleet.Event) error) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f, err := q.load()
	if err != nil {
		return 0, err
	}
	sent := 0
	for len(f.Events) > 0 {
		n := min(len(f.Events), fleet.MaxEvents)
		batch := f.Events[:n]
		if f.Dropped > 0 {
			// Say so in the first event that gets through.
			b := append([]fleet.Event(nil), batch...)
			b[0].Detail = ClipText(fmt.Sprintf("(%d older events were dropped while the server was unreachable) ", f.Dropped)+b[0].Detail, fleet.MaxDetail)
			batch = b
		}
		if err := send(ctx, batch); err != nil {
			return sent, err
		}
		sent += n
		f.Events = f.Events[n:]
		f.Dropped = 0
		if err := q.save(f); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// ClipText cuts s to at most max bytes on a character boundary, so that
// what is cut stays valid UTF-8 (the server refuses anything else).
func ClipText(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
