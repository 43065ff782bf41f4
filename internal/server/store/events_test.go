package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func TestEventsAndLeases(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// A second connection pool stands for a second replica.
			other, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()

			if err := st.AppendEvents(ctx, []event.Event{{Kind: "nodot", At: now}}); err == nil {
				t.Error("an event kind without an area was stored")
			}
			if n, _ := st.LastEventSeq(ctx); n != 0 {
				t.Fatalf("a refused batch left seq %d", n)
			}

			// Writers on both replicas at once: every event gets its own
			// seq, and the seqs run 1..n without a gap.
			const writers, each = 4, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := st
					if w%2 == 1 {
						s = other
					}
					for i := range each {
						if err := s.AppendEvents(ctx, []event.Event{{Kind: event.KernelAdded, At: now, Subject: fmt.Sprintf("w%d-%d", w, i)}}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			es, err := other.Events(ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != writers*each {
				t.Fatalf("%d events; want %d", len(es), writers*each)
			}
			seen := map[string]bool{}
			for i, e := range es {
				if e.Seq != int64(i+1) {
					t.Fatalf("event %d has seq %d", i, e.Seq)
				}
				seen[e.Subject] = true
			}
			if len(seen) != writers*each {
				t.Errorf("%d distinct subjects; want %d", len(seen), writers*each)
			}
			page, err := st.Events(ctx, 98, 10)
			if err != nil || len(page) != 2 || page[0].Seq != 99 {
				t.Errorf("events after 98: %+v, %v", page, err)
			}

			// A machine's report lands in the stream in its transaction.
			if err := st.AddEvents(ctx, []fleet.Event{{Machine: "m-1", At: now, Kind: fleet.EventRolledBack, Patch: "lp_1", Detail: "WARNING in the patched function"}}); err != nil {
				t.Fatal(err)
			}
			es, err = st.Events(ctx, 100, 0)
			if err != nil || len(es) != 1 || es[0].Kind != "fleet.rolled_back" || es[0].Subject != "m-1" {
				t.Fatalf("stream after a report: %+v, %v", es, err)
			}

			// Leases: one holder at a time; the holder renews; an expired
			// lease goes to whoever asks.
			lease := func(s store.Store, holder string, at time.Time) bool {
				t.Helper()
				ok, err := s.AcquireLease(ctx, "sync", holder, at, at.Add(time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if !lease(st, "a", now) {
				t.Fatal("a free lease was refused")
			}
			if lease(other, "b", now.Add(30*time.Second)) {
				t.Fatal("b took a's lease before it expired")
			}
			if !lease(st, "a", now.Add(30*time.Second)) {
				t.Fatal("a could not renew its lease")
			}
			if !lease(other, "b", now.Add(2*time.Minute)) {
				t.Fatal("b could not take an expired lease")
			}
			if err := st.ReleaseLease(ctx, "sync", "a", time.Time{}); err != nil {
				t.Fatal(err)
			}
			if lease(st, "a", now.Add(2*time.Minute)) {
				t.Fatal("a's release freed b's lease")
			}
			// b hands it back closed for a while: not even b may take it
			// before then.
			if err := other.ReleaseLease(ctx, "sync", "b", now.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if lease(other, "b", now.Add(5*time.Minute)) || lease(st, "a", now.Add(5*time.Minute)) {
				t.Fatal("a lease handed back until later was taken early")
			}
			if !lease(st, "a", now.Add(11*time.Minute)) {
				t.Fatal("a released lease was not free once due")
			}

			// Machines by kernel and state, stale ones apart.
			if err := st.PutMachines(ctx, []fleet.Machine{
				machine("x1", "6.1.0-50-cloud-amd64", fleet.StateOK, now),
				machine("x2", "6.1.0-50-cloud-amd64", fleet.StateOK, now),
				machine("x3", "6.1.0-50-cloud-amd64", fleet.StateFailed, now),
				machine("x4", "6.12.0-1-amd64", fleet.StateOK, now.Add(-time.Hour)),
			}); err != nil {
				t.Fatal(err)
			}
			counts, err := st.MachineCounts(ctx, now.Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			want := []store.MachineCount{{"6.1.0-50-cloud-amd64", fleet.StateFailed, 1}, {"6.1.0-50-cloud-amd64", fleet.StateOK, 2}, {"6.12.0-1-amd64", fleet.StateStale, 1}}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				t.Errorf("counts %v; want %v", counts, want)
			}
		})
	}
}
