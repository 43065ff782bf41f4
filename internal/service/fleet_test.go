package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func beat(id string) fleet.Machine {
	return fleet.Machine{ID: id, Hostname: id + ".example", Kernel: "6.1.0-28-amd64", AgentVersion: "0.1", State: fleet.StateOK,
		Livepatch: fleet.Livepatch{Patches: []fleet.Patch{{Name: "livepatch_tt_1", Enabled: true}}, CVEs: []string{"CVE-2025-21703"}}}
}

// heartbeats sends one heartbeat for each of n machines, all at once,
// and returns each caller's answer.
func heartbeats(s *Service, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, errs[i] = s.Heartbeat(ctx, beat(fmt.Sprintf("m-%03d", i)))
		}()
	}
	wg.Wait()
	return errs
}

func TestHeartbeatGroupCommit(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := New(Config{DB: b.DSN})
			defer s.Close()
			// A long window, so that the test does not depend on how fast
			// 200 goroutines start.
			s.SetGroupCommit(200*time.Millisecond, 512)
			const n = 200
			for i, err := range heartbeats(s, n) {
				if err != nil {
					t.Errorf("heartbeat %d: %v", i, err)
				}
			}
			// Every acknowledged heartbeat is stored.
			ms, err := s.ListMachines(context.Background(), MachineQuery{})
			if err != nil || len(ms) != n {
				t.Fatalf("ListMachines: %d machines, %v; want %d", len(ms), err, n)
			}
			for _, m := range ms {
				if m.State != fleet.StateOK || time.Since(m.LastSeen) > time.Minute {
					t.Errorf("machine %s: %s, last seen %s", m.ID, m.State, m.LastSeen)
				}
			}
			st := s.FleetStats()
			if st.Heartbeats != n || st.Batches > n/10 || st.Largest < 10 || st.Failed != 0 {
				t.Errorf("group commit: %+v; want %d heartbeats in at most %d transactions", st, n, n/10)
			}
		})
	}
}

func TestHeartbeatNoDelay(t *testing.T) {
	s := New(Config{DB: filepath.Join(t.TempDir(), "tuxtape.db")})
	defer s.Close()
	s.SetGroupCommit(0, 16) // only what is queued, at most 16 a transaction
	for i, err := range heartbeats(s, 100) {
		if err != nil {
			t.Errorf("heartbeat %d: %v", i, err)
		}
	}
	if st := s.FleetStats(); st.Heartbeats != 100 || st.Largest > 16 || st.Batches < 100/16 {
		t.Errorf("group commit: %+v; want 100 heartbeats in batches of at most 16", st)
	}
}

// A batch that cannot be written fails every caller in it, and none is
// told it was stored.
func TestHeartbeatFailedBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tuxtape.db")
	s := New(Config{DB: path})
	defer s.Close()
	s.SetGroupCommit(100*time.Millisecond, 512)
	if errs := heartbeats(s, 1); errs[0] != nil {
		t.Fatal(errs[0])
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DROP TABLE machines`); err != nil {
		t.Fatal(err)
	}
	before := s.FleetStats()
	for i, err := range heartbeats(s, 50) {
		if err == nil || !strings.Contains(err.Error(), "store heartbeats") {
			t.Errorf("heartbeat %d into a broken table: %v", i, err)
		}
	}
	if st := s.FleetStats(); st.Failed == before.Failed || st.Failed-before.Failed != st.Batches-before.Batches {
		t.Errorf("stats: %+v after %+v: want every new batch failed", st, before)
	}
}

// Close commits what the writer holds, and the next heartbeat starts a
// writer on the reopened store.
func TestHeartbeatAfterClose(t *testing.T) {
	s := New(Config{DB: filepath.Join(t.TempDir(), "tuxtape.db")})
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Heartbeat(ctx, beat("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, beat("b")); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.ListMachines(ctx, MachineQuery{}); err != nil || len(ms) != 2 {
		t.Errorf("after Close and another heartbeat: %d machines, %v", len(ms), err)
	}
}

func TestHeartbeatInvalid(t *testing.T) {
	s := New(Config{DB: filepath.Join(t.TempDir(), "tuxtape.db")})
	defer s.Close()
	many := make([]string, fleet.MaxCVEs+1)
	for i := range many {
		many[i] = "CVE-2025-21703"
	}
	tests := []struct {
		name  string
		edit  func(m *fleet.Machine)
		field string
	}{
		{"empty ID", func(m *fleet.Machine) { m.ID = "" }, "machine_id"},
		{"huge hostname", func(m *fleet.Machine) { m.Hostname = strings.Repeat("h", 10<<20) }, "hostname: 10485760 bytes"},
		{"escape in hostname", func(m *fleet.Machine) { m.Hostname = "a\x1b]0;x\x07" }, "hostname: contains a control character"},
		{"no kernel", func(m *fleet.Machine) { m.Kernel = "" }, "kernel: is required"},
		{"stale reported", func(m *fleet.Machine) { m.State = fleet.StateStale }, "state"},
		{"too many CVEs", func(m *fleet.Machine) { m.Livepatch.CVEs = many }, "livepatch.cves: 4097 CVE IDs"},
		{"bad CVE ID", func(m *fleet.Machine) { m.Livepatch.CVEs = []string{"CVE-2025-1", "CVE-x"} }, "livepatch.cves[0]"},
		{"too many patches", func(m *fleet.Machine) { m.Livepatch.Patches = make([]fleet.Patch, 65) }, "livepatch.patches: 65"},
		{"unnamed patch", func(m *fleet.Machine) { m.Livepatch.Patches = []fleet.Patch{{}} }, "livepatch.patches[0].name"},
		{"invalid UTF-8", func(m *fleet.Machine) { m.AgentVersion = "\xff" }, "agent_version"},
	}
	for _, tt := range tests {
		m := beat("host-1")
		tt.edit(&m)
		_, err := s.Heartbeat(context.Background(), m)
		if !IsInvalid(err) || !strings.Contains(err.Error(), tt.field) || len(err.Error()) > 300 {
			t.Errorf("%s: %.300v; want an InvalidError naming %q", tt.name, err, tt.field)
		}
	}
	if st := s.FleetStats(); st.Heartbeats != 0 {
		t.Errorf("refused heartbeats reached the writer: %+v", st)
	}
}

func TestReport(t *testing.T) {
	s := New(Config{DB: filepath.Join(t.TempDir(), "tuxtape.db")})
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Heartbeat(ctx, beat("host-1")); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	n, err := s.Report(ctx, "host-1", []fleet.Event{
		{Kind: fleet.EventApplied, At: at, Patch: "livepatch_tt_1"},
		{Kind: fleet.EventBugDetected, Log: []string{"BUG: unable to handle page fault"}},
	})
	if err != nil || n != 2 {
		t.Fatalf("Report = %d, %v", n, err)
	}
	d, err := s.Machine(ctx, "host-1", 10)
	if err != nil || len(d.Events) != 2 || d.Events[0].Kind != fleet.EventBugDetected || d.Events[0].At.IsZero() || !d.Events[1].At.Equal(at) {
		t.Errorf("Machine = %+v, %v", d, err)
	}
	for _, tc := range []struct {
		name  string
		es    []fleet.Event
		field string
	}{
		{"none", nil, "events: none"},
		{"bad kind", []fleet.Event{{Kind: "exploded"}}, "events[0].kind"},
		{"too many log lines", []fleet.Event{{Kind: fleet.EventBugDetected, Log: make([]string, fleet.MaxLogLines+1)}}, "events[0].log: 201 lines"},
		{"long log line", []fleet.Event{{Kind: fleet.EventApplied}, {Kind: fleet.EventBugDetected, Log: []string{strings.Repeat("x", 2000)}}}, "events[1].log[0]: 2000 bytes"},
	} {
		if _, err := s.Report(ctx, "host-1", tc.es); !IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v; want an InvalidError naming %q", tc.name, err, tc.field)
		}
	}
	if _, err := s.Machine(ctx, "host-2", 10); NotFoundKind(err) != "machine" {
		t.Errorf("unknown machine: %v", err)
	}
}

// A revoked token is refused at once, even while it is cached.
func TestTokenCacheRevoke(t *testing.T) {
	s := New(Config{DB: filepath.Join(t.TempDir(), "tuxtape.db")})
	defer s.Close()
	ctx := context.Background()
	tok, secret, err := s.CreateToken(ctx, CreateTokenOptions{Role: authz.Agent, Machine: "host-1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok := s.tokens.get(secretKey(secret), time.Now()); !ok {
		t.Error("an authenticated token is not cached")
	}
	if err := s.RevokeToken(ctx, tok.ID, Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, authz.ErrRevoked) {
		t.Errorf("revoked token: %v", err)
	}
	// A lookup that started before the revocation does not cache the
	// token after it.
	_, gen, _ := s.tokens.get(secretKey(secret), time.Now())
	s.tokens.drop("other")
	s.tokens.put(secretKey(secret), tok, gen, time.Now())
	if _, _, ok := s.tokens.get(secretKey(secret), time.Now()); ok {
		t.Error("a token read before a revocation was cached after it")
	}
	// Expiry: an entry outlives neither its TTL nor the token.
	s.SetTokenCacheTTL(time.Hour)
	exp := tok
	exp.Expires = time.Now().Add(time.Millisecond)
	_, gen, _ = s.tokens.get(secretKey("x"), time.Now())
	s.tokens.put(secretKey("x"), exp, gen, time.Now())
	if _, _, ok := s.tokens.get(secretKey("x"), time.Now().Add(time.Second)); ok {
		t.Error("an expired token came from the cache")
	}
}
