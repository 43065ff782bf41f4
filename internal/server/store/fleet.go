package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
)

// MachineFilter selects machines for Machines.
type MachineFilter struct {
	Kernel string      // a kernel release, exactly
	State  fleet.State // "": any; StateStale: last seen before StaleBefore
	// StaleBefore is when a machine last seen earlier counts as stale; a
	// State other than stale matches only machines seen since.
	StaleBefore time.Time
	After       string // paging: only IDs after this one
	Limit       int    // 0: all
}

func (d *db) AddTokens(ctx context.Context, ts []authz.Token, audit authz.AuditEntry) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add tokens: %w", err)
	}
	defer tx.Rollback()
	in := d.newInserter(tx, `INSERT INTO tokens (id, role, machine, hash, created_at, expires_at, revoked_at) VALUES `, 7, "")
	defer in.close()
	for _, t := range ts {
		if err := in.add(ctx, t.ID, string(t.Role), t.Machine, t.Hash, t.Created.Unix(), expiryUnix(t.Expires), int64(0)); err != nil {
			return fmt.Errorf("add tokens: %w", err)
		}
	}
	if err := in.flush(ctx); err != nil {
		return fmt.Errorf("add tokens: %w", err)
	}
	if err := d.addAudit(ctx, tx, audit); err != nil {
		return err
	}
	return tx.Commit()
}

const machineCols = `id, hostname, kernel, agent_version, ring, state, last_seen_ns, level, patches, cves`

func (d *db) PutMachines(ctx context.Context, ms []fleet.Machine) error {
	if len(ms) == 0 {
		return nil
	}
	// One row per machine and statement (PostgreSQL refuses to update a
	// row twice in one INSERT), the newest heartbeat winning; in ID order,
	// so that servers sharing a PostgreSQL database lock rows in the same
	// order and cannot deadlock.
	rows := slices.Clone(ms)
	slices.SortStableFunc(rows, func(a, b fleet.Machine) int { return strings.Compare(a.ID, b.ID) })
	uniq := rows[:0]
	for _, m := range rows {
		if n := len(uniq); n > 0 && uniq[n-1].ID == m.ID {
			if !m.LastSeen.Before(uniq[n-1].LastSeen) {
				uniq[n-1] = m
			}
			continue
		}
		uniq = append(uniq, m)
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store heartbeats: %w", err)
	}
	defer tx.Rollback()
	if err := d.upsertMachines(ctx, tx, uniq); err != nil {
		return fmt.Errorf("store heartbeats: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store heartbeats: %w", err)
	}
	return nil
}

// machineUpsert replaces a machine's row unless the stored heartbeat is
// newer (a late one, from another server).
const machineUpsert = `ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, kernel = excluded.kernel,
	agent_version = excluded.agent_version, ring = excluded.ring, state = excluded.state, last_seen_ns = excluded.last_seen_ns,
	level = excluded.level, patches = excluded.patches, cves = excluded.cves WHERE excluded.last_seen_ns >= machines.last_seen_ns`

func (d *db) upsertMachines(ctx context.Context, tx *sql.Tx, ms []fleet.Machine) error {
	row := func(m *fleet.Machine) ([]any, error) {
		patches, err := json.Marshal(nonNilPatches(m.Livepatch.Patches))
		if err != nil {
			return nil, err
		}
		// CVE IDs hold no commas (the model checks them): a joined list is
		// smaller and quicker than JSON on the hottest write.
		return []any{m.ID, m.Hostname, m.Kernel, m.AgentVersion, m.Ring, string(m.State), m.LastSeen.UnixNano(),
			m.Livepatch.Level, string(patches), strings.Join(m.Livepatch.CVEs, ",")}, nil
	}
	if d.backend == "sqlite" {
		// In process, a statement costs no round trip, but parsing one of
		// a few hundred rows costs more than running a short one that often.
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO machines (`+machineCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) `+machineUpsert)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range ms {
			args, err := row(&ms[i])
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	}
	in := d.newInserter(tx, `INSERT INTO machines (`+machineCols+`) VALUES `, 10, machineUpsert)
	defer in.close()
	for i := range ms {
		args, err := row(&ms[i])
		if err != nil {
			return err
		}
		if err := in.add(ctx, args...); err != nil {
			return err
		}
	}
	return in.flush(ctx)
}

func nonNilPatches(ps []fleet.Patch) []fleet.Patch {
	if ps == nil {
		return []fleet.Patch{}
	}
	return ps
}

func (d *db) AddEvents(ctx context.Context, es []fleet.Event) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store events: %w", err)
	}
	defer tx.Rollback()
	in := d.newInserter(tx, `INSERT INTO machine_events (machine_id, at_ns, kind, patch, detail, log) VALUES `, 6, "")
	defer in.close()
	for _, e := range es {
		log, err := json.Marshal(e.Log)
		if err != nil {
			return fmt.Errorf("store events: %w", err)
		}
		if err := in.add(ctx, e.Machine, e.At.UnixNano(), string(e.Kind), e.Patch, e.Detail, string(log)); err != nil {
			return fmt.Errorf("store events: %w", err)
		}
	}
	if err := in.flush(ctx); err != nil {
		return fmt.Errorf("store events: %w", err)
	}
	if err := d.appendEvents(ctx, tx, fleetStreamEvents(es)); err != nil {
		return fmt.Errorf("store events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store events: %w", err)
	}
	return nil
}

func (d *db) Machines(ctx context.Context, f MachineFilter) ([]fleet.Machine, error) {
	var where []string
	var args []any
	if f.Kernel != "" {
		where, args = append(where, "kernel = ?"), append(args, f.Kernel)
	}
	switch f.State {
	case "":
	case fleet.StateStale:
		where, args = append(where, "last_seen_ns < ?"), append(args, f.StaleBefore.UnixNano())
	default:
		where, args = append(where, "state = ? AND last_seen_ns >= ?"), append(args, string(f.State), f.StaleBefore.UnixNano())
	}
	if f.After != "" {
		where, args = append(where, "id > ?"), append(args, f.After)
	}
	q := `SELECT ` + machineCols + ` FROM machines`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	out := []fleet.Machine{}
	err := d.each(ctx, q, args, func(s scanner) error {
		m, err := scanMachine(s)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read machines: %w", err)
	}
	return out, nil
}

func scanMachine(s scanner) (fleet.Machine, error) {
	var m fleet.Machine
	var state, patches, cves string
	var seen int64
	if err := s.Scan(&m.ID, &m.Hostname, &m.Kernel, &m.AgentVersion, &m.Ring, &state, &seen, &m.Livepatch.Level, &patches, &cves); err != nil {
		return m, err
	}
	m.State, m.LastSeen = fleet.State(state), time.Unix(0, seen).UTC()
	if err := json.Unmarshal([]byte(patches), &m.Livepatch.Patches); err != nil {
		return m, fmt.Errorf("machine %s: patches: %w", m.ID, err)
	}
	m.Livepatch.Patches = nonNilPatches(m.Livepatch.Patches)
	m.Livepatch.CVEs = []string{}
	if cves != "" {
		m.Livepatch.CVEs = strings.Split(cves, ",")
	}
	return m, nil
}

func (d *db) Machine(ctx context.Context, id string, events int) (fleet.Machine, []fleet.Event, error) {
	m, err := scanMachine(d.sql.QueryRowContext(ctx, d.rebind(`SELECT `+machineCols+` FROM machines WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return fleet.Machine{}, nil, fmt.Errorf("machine %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fleet.Machine{}, nil, fmt.Errorf("read machine %s: %w", id, err)
	}
	es := []fleet.Event{}
	if events <= 0 {
		return m, es, nil
	}
	err = d.each(ctx, `SELECT at_ns, kind, patch, detail, log FROM machine_events WHERE machine_id = ? ORDER BY at_ns DESC LIMIT ?`, []any{id, events}, func(s scanner) error {
		e := fleet.Event{Machine: id}
		var at int64
		var kind, log string
		if err := s.Scan(&at, &kind, &e.Patch, &e.Detail, &log); err != nil {
			return err
		}
		e.At, e.Kind = time.Unix(0, at).UTC(), fleet.EventKind(kind)
		if err := json.Unmarshal([]byte(log), &e.Log); err != nil {
			return fmt.Errorf("event log: %w", err)
		}
		es = append(es, e)
		return nil
	})
	if err != nil {
		return fleet.Machine{}, nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return m, es, nil
}

// RingCount is how a patch fares in one ring: the machines that applied
// it and those that reported it failing (apply_failed, rolled_back,
// bug_detected), each machine counted once.
type RingCount struct {
	Ring    string
	Applied int
	Failed  int
	// FirstApplied is when the first machine of the ring applied it
	// (zero: none did).
	FirstApplied time.Time
}

func (d *db) PatchHealth(ctx context.Context, patch string) ([]RingCount, error) {
	q := `SELECT m.ring,
		COUNT(DISTINCT CASE WHEN e.kind = ? THEN e.machine_id END),
		COUNT(DISTINCT CASE WHEN e.kind IN (?, ?, ?) THEN e.machine_id END),
		COALESCE(MIN(CASE WHEN e.kind = ? THEN e.at_ns END), 0)
		FROM machine_events e JOIN machines m ON m.id = e.machine_id
		WHERE e.patch = ? GROUP BY m.ring ORDER BY m.ring`
	args := []any{string(fleet.EventApplied)}
	for _, k := range fleet.FailureKinds {
		args = append(args, string(k))
	}
	args = append(args, string(fleet.EventApplied), patch)
	out := []RingCount{}
	err := d.each(ctx, q, args, func(s scanner) error {
		var c RingCount
		var first int64
		if err := s.Scan(&c.Ring, &c.Applied, &c.Failed, &first); err != nil {
			return err
		}
		if first != 0 {
			c.FirstApplied = time.Unix(0, first).UTC()
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("health of %s: %w", patch, err)
	}
	return out, nil
}
