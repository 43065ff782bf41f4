package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

func (d *db) Cursor(ctx context.Context, name string) (int64, bool, error) {
	var seq int64
	err := d.sql.QueryRowContext(ctx, d.rebind(`SELECT seq FROM cursors WHERE name = ?`), name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cursor %s: %w", name, err)
	}
	return seq, true, nil
}

func (d *db) SetCursor(ctx context.Context, name string, seq int64) error {
	if _, err := d.sql.ExecContext(ctx, d.rebind(`INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`), name, seq); err != nil {
		return fmt.Errorf("cursor %s: %w", name, err)
	}
	return nil
}

// Delivery is a webhook delivery as the store keeps it.
type Delivery struct {
	ID, EventID, Kind, URL, State string
	Attempts                      string // JSON
	Updated                       time.Time
}

func (d *db) PutDelivery(ctx context.Context, x Delivery) error {
	_, err := d.sql.ExecContext(ctx, d.rebind(`INSERT INTO webhook_deliveries (id, event_id, kind, url, state, attempts, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts, updated_ns = excluded.updated_ns`),
		x.ID, x.EventID, x.Kind, x.URL, x.State, x.Attempts, x.Updated.UnixNano())
	if err != nil {
		return fmt.Errorf("record delivery %s: %w", x.ID, err)
	}
	return nil
}

func (d *db) Deliveries(ctx context.Context, limit int) ([]Delivery, error) {
	q := `SELECT id, event_id, kind, url, state, attempts, updated_ns FROM webhook_deliveries ORDER BY updated_ns DESC, id`
	var args []any
	if limit > 0 {
		q, args = q+` LIMIT ?`, []any{limit}
	}
	out := []Delivery{}
	err := d.each(ctx, q, args, func(s scanner) error {
		var x Delivery
		var at int64
		if err := s.Scan(&x.ID, &x.EventID, &x.Kind, &x.URL, &x.State, &x.Attempts, &at); err != nil {
			return err
		}
		x.Updated = time.Unix(0, at).UTC()
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Notified records CVEs told about for a kernel and returns those that
// were not recorded before, in one transaction; seeded reports whether
// the kernel had any record before (a first run only seeds).
func (d *db) Notified(ctx context.Context, kernel string, cves []string) (fresh []string, seeded bool, err error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("notified: %w", err)
	}
	defer tx.Rollback()
	known := map[string]bool{}
	rows, err := tx.QueryContext(ctx, d.rebind(`SELECT cve FROM notified_cves WHERE kernel = ?`), kernel)
	if err != nil {
		return nil, false, fmt.Errorf("notified: %w", err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, false, err
		}
		known[c] = true
	}
	rows.Close()
	in := d.newInserter(tx, `INSERT INTO notified_cves (kernel, cve) VALUES `, 2, "")
	defer in.close()
	for _, c := range cves {
		if known[c] {
			continue
		}
		known[c] = true
		fresh = append(fresh, c)
		if err := in.add(ctx, kernel, c); err != nil {
			return nil, false, err
		}
	}
	if err := in.flush(ctx); err != nil {
		return nil, false, err
	}
	seeded = len(known) > len(fresh)
	return fresh, seeded, tx.Commit()
}
