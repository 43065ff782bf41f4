package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func machine(id, kernel string, state fleet.State, seen time.Time) fleet.Machine {
	return fleet.Machine{ID: id, Hostname: id + ".example", Kernel: kernel, AgentVersion: "0.1", Ring: "prod", State: state, LastSeen: seen,
		Livepatch: fleet.Livepatch{Level: "tt-1", CVEs: []string{"CVE-2025-21703", "CVE-2024-26581"},
			Patches: []fleet.Patch{{Name: "livepatch_tt_1", Version: "1", Enabled: true}}}}
}

func TestFleet(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()

			// Upsert twice: one row, the newer state; an older heartbeat
			// arriving late changes nothing.
			first := machine("host-1", "6.1.0-28-amd64", fleet.StateOK, now)
			newer := machine("host-1", "6.1.0-29-amd64", fleet.StatePatching, now.Add(time.Minute))
			newer.Livepatch = fleet.Livepatch{Patches: []fleet.Patch{}, CVEs: []string{}}
			for _, batch := range [][]fleet.Machine{{first}, {newer}, {first}} {
				if err := st.PutMachines(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			all, err := st.Machines(ctx, store.MachineFilter{})
			if err != nil || len(all) != 1 || !reflect.DeepEqual(all[0], newer) {
				t.Fatalf("after two upserts and a late one: %+v, %v; want only %+v", all, err, newer)
			}

			// A batch of N in one call, with a machine twice in it: the
			// newer of the two stays.
			const n = 1000
			var batch []fleet.Machine
			for i := range n {
				kernel := "6.1.0-28-amd64"
				if i%4 == 0 {
					kernel = "6.12.0-1-amd64"
				}
				batch = append(batch, machine(fmt.Sprintf("m-%04d", i), kernel, fleet.StateOK, now))
			}
			batch = append(batch, machine("m-0007", "6.1.0-28-amd64", fleet.StateFailed, now.Add(time.Second)))
			batch = append(batch, machine("m-0009", "6.1.0-28-amd64", fleet.StateFailed, now.Add(-time.Second)))
			if err := st.PutMachines(ctx, batch); err != nil {
				t.Fatal(err)
			}
			all, err = st.Machines(ctx, store.MachineFilter{})
			if err != nil || len(all) != n+1 {
				t.Fatalf("after a batch of %d: %d machines, %v", n, len(all), err)
			}
			if all[0].ID != "host-1" || all[1].ID != "m-0000" || !reflect.DeepEqual(all[1], batch[0]) {
				t.Errorf("by ID: %s, %s; round trip %+v", all[0].ID, all[1].ID, all[1])
			}
			if all[8].State != fleet.StateFailed || all[10].State != fleet.StateOK {
				t.Errorf("duplicates in a batch: m-0007 %s (want failed, the newer), m-0009 %s (want ok)", all[8].State, all[10].State)
			}

			// Filters and paging.
			stale := now.Add(30 * time.Second) // host-1 is newer, the rest older
			for _, tc := range []struct {
				name string
				f    store.MachineFilter
				want int
			}{
				{"kernel", store.MachineFilter{Kernel: "6.12.0-1-amd64"}, n / 4},
				{"failed", store.MachineFilter{State: fleet.StateFailed, StaleBefore: now.Add(-time.Hour)}, 1},
				{"failed, but stale", store.MachineFilter{State: fleet.StateFailed, StaleBefore: now.Add(2 * time.Second)}, 0},
				{"stale", store.MachineFilter{State: fleet.StateStale, StaleBefore: stale}, n},
				{"patching", store.MachineFilter{State: fleet.StatePatching, StaleBefore: stale}, 1},
				{"page", store.MachineFilter{After: "m-0989", Limit: 5}, 5},
				{"last page", store.MachineFilter{After: "m-0995", Limit: 5}, 4},
				{"kernel and after", store.MachineFilter{Kernel: "6.12.0-1-amd64", After: "m-0900"}, 24},
			} {
				got, err := st.Machines(ctx, tc.f)
				if err != nil || len(got) != tc.want {
					t.Errorf("%s: %d machines, %v; want %d", tc.name, len(got), err, tc.want)
				}
			}

			// Events, newest first, at most as many as asked.
			es := []fleet.Event{
				{Machine: "host-1", Kind: fleet.EventApplied, At: now, Patch: "livepatch_tt_1"},
				{Machine: "host-1", Kind: fleet.EventBugDetected, At: now.Add(2 * time.Second), Patch: "livepatch_tt_1", Detail: "oops",
					Log: []string{"BUG: kernel NULL pointer dereference", "RIP: 0010:foo+0x1"}},
				{Machine: "host-1", Kind: fleet.EventRolledBack, At: now.Add(time.Second)},
				{Machine: "m-0001", Kind: fleet.EventApplyFailed, At: now},
			}
			if err := st.AddEvents(ctx, es); err != nil {
				t.Fatal(err)
			}
			m, got, err := st.Machine(ctx, "host-1", 2)
			if err != nil || !reflect.DeepEqual(m, newer) {
				t.Fatalf("Machine = %+v, %v", m, err)
			}
			if len(got) != 2 || !reflect.DeepEqual(got[0], es[1]) || !reflect.DeepEqual(got[1], es[2]) {
				t.Errorf("events, newest two: %+v", got)
			}
			if _, got, _ := st.Machine(ctx, "host-1", 0); len(got) != 0 || got == nil {
				t.Errorf("no events asked: %#v", got)
			}
			if _, _, err := st.Machine(ctx, "nope", 10); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("unknown machine: %v", err)
			}

			// Tokens in bulk, with one audit entry.
			var ts []authz.Token
			for i := range 450 {
				tok, _, err := authz.New(nil, authz.Agent, fmt.Sprintf("m-%04d", i), now, 0)
				if err != nil {
					t.Fatal(err)
				}
				ts = append(ts, tok)
			}
			if err := st.AddTokens(ctx, ts, authz.AuditEntry{At: now, Actor: "local", Action: "token.enroll"}); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Tokens(ctx); err != nil || len(got) != len(ts) {
				t.Errorf("Tokens after AddTokens: %d, %v", len(got), err)
			}
			if log, err := st.Audit(ctx, 0); err != nil || len(log) != 1 {
				t.Errorf("audit after AddTokens: %+v, %v", log, err)
			}
		})
	}
}
