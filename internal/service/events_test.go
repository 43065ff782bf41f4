package service

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
)

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := New(Config{DB: filepath.Join(t.TempDir(), "t.db")})
	defer s.Close()
	st, err := s.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// More than one read's worth, so a follower catches up in steps.
	var old []event.Event
	for i := range watchBatch + 10 {
		old = append(old, event.Event{At: time.Now(), Kind: event.KernelAdded, Subject: fmt.Sprint("k", i)})
	}
	if err := st.AppendEvents(ctx, old); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		o     WatchOptions
		count int
		first int64
	}{
		{"from the start", WatchOptions{After: 0}, watchBatch + 10, 1},
		{"after a seq", WatchOptions{After: 500}, 10, 501},
		{"from now on, without follow", WatchOptions{After: -1}, 0, 0},
		{"kinds that are not there", WatchOptions{After: 0, Kinds: []string{"sync."}}, 0, 0},
		{"an area", WatchOptions{After: 0, Kinds: []string{"kernel."}}, watchBatch + 10, 1},
	}
	for _, tt := range tests {
		var got []event.Event
		if err := s.Watch(ctx, tt.o, func(e event.Event) error { got = append(got, e); return nil }); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(got) != tt.count || (tt.count > 0 && got[0].Seq != tt.first) {
			t.Errorf("%s: %d events from seq %v; want %d from %d", tt.name, len(got), got, tt.count, tt.first)
		}
	}
	if err := s.Watch(ctx, WatchOptions{After: -2}, func(event.Event) error { return nil }); !IsInvalid(err) {
		t.Errorf("after -2: %v", err)
	}

	// A follower hears this process's events at once (well before the
	// hour-long poll), fleet reports included.
	got := make(chan event.Event, 4)
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(fctx, WatchOptions{After: -1, Follow: true, Poll: time.Hour, Kinds: []string{"fleet.", string(event.KernelRemoved)}},
			func(e event.Event) error { got <- e; return nil })
	}()
	time.Sleep(100 * time.Millisecond) // the follower is waiting
	if _, err := s.Report(ctx, "m-1", []fleet.Event{{Kind: fleet.EventApplied, Patch: "lp_1", Detail: "applied"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != "fleet.applied" || e.Subject != "m-1" || e.Seq != watchBatch+11 {
			t.Errorf("followed %+v", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a follower did not hear a report within 20 s")
	}
	fcancel()
	if err := <-done; err != nil {
		t.Errorf("a follower stopped by its context: %v", err)
	}
}
