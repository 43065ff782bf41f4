package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
)

func (d *db) AppendEvents(ctx context.Context, es []event.Event) error {
	if len(es) == 0 {
		return nil
	}
	for i := range es {
		if err := es[i].Validate(); err != nil {
			return fmt.Errorf("append events: %w", err)
		}
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer tx.Rollback()
	if err := d.appendEvents(ctx, tx, es); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

// appendEvents numbers es after the last committed event and writes them
// in tx, which holds the events lock until it ends.
func (d *db) appendEvents(ctx context.Context, tx *sql.Tx, es []event.Event) error {
	if d.lockEvents != "" {
		if _, err := tx.ExecContext(ctx, d.lockEvents); err != nil {
			return fmt.Errorf("append events: lock: %w", err)
		}
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&last); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	in := d.newInserter(tx, `INSERT INTO events (seq, at_ns, kind, subject, actor, detail) VALUES `, 6, "")
	defer in.close()
	for i, e := range es {
		if err := in.add(ctx, last+int64(i)+1, e.At.UnixNano(), string(e.Kind), e.Subject, e.Actor, event.Clip(e.Detail)); err != nil {
			return fmt.Errorf("append events: %w", err)
		}
	}
	if err := in.flush(ctx); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

// fleetStreamEvents are the stream's entries for machines' reports.
func fleetStreamEvents(es []fleet.Event) []event.Event {
	out := make([]event.Event, 0, len(es))
	for _, e := range es {
		detail := e.Detail
		if e.Patch != "" {
			detail = e.Patch + ": " + detail
		}
		out = append(out, event.Event{At: e.At, Kind: event.Kind(event.FleetPrefix + string(e.Kind)), Subject: e.Machine, Detail: detail})
	}
	return out
}

func (d *db) Events(ctx context.Context, after int64, limit int) ([]event.Event, error) {
	q := `SELECT seq, at_ns, kind, subject, actor, detail FROM events WHERE seq > ? ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []event.Event
	err := d.each(ctx, q, args, func(s scanner) error {
		var e event.Event
		var at int64
		var kind string
		if err := s.Scan(&e.Seq, &at, &kind, &e.Subject, &e.Actor, &e.Detail); err != nil {
			return err
		}
		e.At, e.Kind = time.Unix(0, at).UTC(), event.Kind(kind)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

func (d *db) LastEventSeq(ctx context.Context) (int64, error) {
	var last int64
	if err := d.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&last); err != nil {
		return 0, fmt.Errorf("read events: %w", err)
	}
	return last, nil
}

func (d *db) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	res, err := d.sql.ExecContext(ctx, d.rebind(`INSERT INTO leases (name, holder, expires_ns) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ns = excluded.expires_ns
		WHERE leases.expires_ns < ? OR leases.holder = excluded.holder`), name, holder, until.UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	return n == 1, nil
}

func (d *db) ReleaseLease(ctx context.Context, name, holder string, until time.Time) error {
	if _, err := d.sql.ExecContext(ctx, d.rebind(`UPDATE leases SET holder = '', expires_ns = ? WHERE name = ? AND holder = ?`), until.UnixNano(), name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// MachineCount is how many machines run a kernel in a state.
type MachineCount struct {
	Kernel string
	State  fleet.State
	N      int
}

func (d *db) MachineCounts(ctx context.Context, staleBefore time.Time) ([]MachineCount, error) {
	q := `SELECT kernel, CASE WHEN last_seen_ns < ? THEN ? ELSE state END AS st, COUNT(*) FROM machines GROUP BY kernel, st ORDER BY kernel, st`
	var out []MachineCount
	err := d.each(ctx, q, []any{staleBefore.UnixNano(), string(fleet.StateStale)}, func(s scanner) error {
		var c MachineCount
		var st string
		if err := s.Scan(&c.Kernel, &st, &c.N); err != nil {
			return err
		}
		c.State = fleet.State(st)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count machines: %w", err)
	}
	return out, nil
}
