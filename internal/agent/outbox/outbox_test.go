package outbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tuxtape/tuxtape/internal/model/fleet"
)

func TestQueueBoundedAndFlush(t *testing.T) {
	q := &Queue{Dir: t.TempDir(), Max: 150}
	for i := 0; i < 200; i++ {
		if err := q.Add(fleet.Event{Kind: fleet.EventApplied, Patch: "p", Detail: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := q.Len(); n != 150 {
		t.Fatalf("Len = %d, want 150 (bounded)", n)
	}
	// The server is down: nothing leaves the queue.
	if sent, err := q.Flush(context.Background(), func(context.Context, []fleet.Event) error { return errors.New("unavailable") }); err == nil || sent != 0 {
		t.Errorf("Flush to a down server = %d, %v", sent, err)
	}
	var batches [][]fleet.Event
	sent, err := q.Flush(context.Background(), func(_ context.Context, es []fleet.Event) error {
		batches = append(batches, es)
		return fleet.CheckEvents("m1", es)
	})
	if err != nil || sent != 150 {
		t.Fatalf("Flush = %d, %v; want 150 sent", sent, err)
	}
	if len(batches) != 2 || len(batches[0]) != fleet.MaxEvents {
		t.Errorf("batches of %d and …, want %d first", len(batches[0]), fleet.MaxEvents)
	}
	if !strings.Contains(batches[0][0].Detail, "50 older events were dropped") {
		t.Errorf("first detail = %q, want the dropped count", batches[0][0].Detail)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("Len after Flush = %d, want 0", n)
	}
}

// TestQueueSurvivesRestart: the queue is a file; a new Queue (a new
// agent process) finds what the last one left.
func TestQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	if err := (&Queue{Dir: dir}).Add(fleet.Event{Kind: fleet.EventRolledBack, Patch: "p"}); err != nil {
		t.Fatal(err)
	}
	if n, err := (&Queue{Dir: dir}).Len(); n != 1 || err != nil {
		t.Errorf("Len in a new Queue = %d, %v; want 1", n, err)
	}
}

func TestClipText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: not cut in half
		{"a\xffb", 10, "a?b"},
	}
	for _, tt := range tests {
		got := ClipText(tt.in, tt.max)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("ClipText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
