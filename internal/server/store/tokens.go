package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
)

// expiryUnix is an expiry in the whole seconds the table keeps, rounded
// up: truncated, a token would die up to a second before its time (a
// one-second token at once).
func expiryUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

func timeOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func (d *db) AddToken(ctx context.Context, t authz.Token, audit authz.AuditEntry) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add token: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO tokens (id, role, machine, hash, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, 0)`),
		t.ID, string(t.Role), t.Machine, t.Hash, t.Created.Unix(), expiryUnix(t.Expires)); err != nil {
		return fmt.Errorf("add token %s: %w", t.ID, err)
	}
	if err := d.addAudit(ctx, tx, audit); err != nil {
		return err
	}
	return tx.Commit()
}

func (d *db) Token(ctx context.Context, id string) (authz.Token, error) {
	ts, err := d.tokens(ctx, `WHERE id = ?`, id)
	if err != nil {
		return authz.Token{}, err
	}
	if len(ts) == 0 {
		return authz.Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return ts[0], nil
}

func (d *db) Revocations(ctx context.Context) (RevocationMark, error) {
	var m RevocationMark
	err := d.sql.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(revoked_at), 0) FROM tokens WHERE revoked_at <> 0`).Scan(&m.Count, &m.Last)
	if err != nil {
		return RevocationMark{}, fmt.Errorf("read revocations: %w", err)
	}
	return m, nil
}

func (d *db) Tokens(ctx context.Context) ([]authz.Token, error) {
	return d.tokens(ctx, `ORDER BY created_at, id`)
}

func (d *db) tokens(ctx context.Context, tail string, args ...any) ([]authz.Token, error) {
	var ts []authz.Token
	err := d.each(ctx, `SELECT id, role, machine, hash, created_at, expires_at, revoked_at FROM tokens `+tail, args, func(s scanner) error {
		var t authz.Token
		var role string
		var created, expires, revoked int64
		if err := s.Scan(&t.ID, &role, &t.Machine, &t.Hash, &created, &expires, &revoked); err != nil {
			return err
		}
		t.Role, t.Created, t.Expires, t.Revoked = authz.Role(role), time.Unix(created, 0).UTC(), timeOrZero(expires), timeOrZero(revoked)
		ts = append(ts, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	return ts, nil
}

func (d *db) RevokeToken(ctx context.Context, id string, audit authz.AuditEntry) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	defer tx.Rollback()
	var revoked int64
	err = tx.QueryRowContext(ctx, d.rebind(`SELECT revoked_at FROM tokens WHERE id = ?`), id).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if revoked == 0 { // revoking twice keeps the first time
		if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE tokens SET revoked_at = ? WHERE id = ?`), audit.At.Unix(), id); err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
	}
	if err := d.addAudit(ctx, tx, audit); err != nil {
		return err
	}
	return tx.Commit()
}

func (d *db) AddAudit(ctx context.Context, e authz.AuditEntry) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	defer tx.Rollback()
	if err := d.addAudit(ctx, tx, e); err != nil {
		return err
	}
	return tx.Commit()
}

func (d *db) addAudit(ctx context.Context, tx *sql.Tx, e authz.AuditEntry) error {
	if e.At.IsZero() || e.Actor == "" || e.Action == "" {
		return errors.New("write audit entry: it needs a time, an actor and an action")
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO audit (at_ns, actor, action, target, origin, detail) VALUES (?, ?, ?, ?, ?, ?)`),
		e.At.UnixNano(), e.Actor, e.Action, e.Target, e.From, e.Detail); err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	return nil
}

func (d *db) Audit(ctx context.Context, limit int) ([]authz.AuditEntry, error) {
	q := `SELECT at_ns, actor, action, target, origin, detail FROM audit ORDER BY at_ns DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []authz.AuditEntry
	err := d.each(ctx, q, args, func(s scanner) error {
		var e authz.AuditEntry
		var at int64
		if err := s.Scan(&at, &e.Actor, &e.Action, &e.Target, &e.From, &e.Detail); err != nil {
			return err
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
