package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

func (d *db) AddKernel(ctx context.Context, k *kernel.Kernel) error {
	if err := k.Validate(); err != nil {
		return err
	}
	if k.Added.IsZero() {
		k.Added = time.Now().UTC().Truncate(time.Second)
	}
	rec, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("add kernel %s: %w", k.Name, err)
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add kernel %s: %w", k.Name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM kernels WHERE name = ?`), k.Name).Scan(&n); err != nil {
		return fmt.Errorf("add kernel %s: %w", k.Name, err)
	}
	if n > 0 {
		return fmt.Errorf("kernel %s: %w", k.Name, ErrExists)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO kernels (name, release, version, record, config, added_at) VALUES (?, ?, ?, ?, ?, ?)`),
		k.Name, k.Release, k.Version, string(rec), k.Config, k.Added.Unix()); err != nil {
		return fmt.Errorf("add kernel %s: %w", k.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add kernel %s: %w", k.Name, err)
	}
	return nil
}

func (d *db) Kernel(ctx context.Context, name string) (*kernel.Kernel, error) {
	ks, err := d.kernels(ctx, `WHERE name = ?`, name)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("kernel %s: %w", name, ErrNotFound)
	}
	return ks[0], nil
}

func (d *db) Kernels(ctx context.Context) ([]*kernel.Kernel, error) {
	return d.kernels(ctx, `ORDER BY name`)
}

func (d *db) kernels(ctx context.Context, tail string, args ...any) ([]*kernel.Kernel, error) {
	var ks []*kernel.Kernel
	err := d.each(ctx, `SELECT name, record, config FROM kernels `+tail, args, func(s scanner) error {
		var name, rec string
		var cfg []byte
		if err := s.Scan(&name, &rec, &cfg); err != nil {
			return err
		}
		k := new(kernel.Kernel)
		if err := json.Unmarshal([]byte(rec), k); err != nil {
			return fmt.Errorf("kernel %s: stored record: %w", name, err)
		}
		k.Config = cfg
		ks = append(ks, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read kernels: %w", err)
	}
	return ks, nil
}

func (d *db) RemoveKernel(ctx context.Context, name string) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("remove kernel %s: %w", name, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM kernels WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("remove kernel %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("kernel %s: %w", name, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM kernel_profiles WHERE kernel = ?`), name); err != nil {
		return fmt.Errorf("remove kernel %s: %w", name, err)
	}
	return tx.Commit()
}

func (d *db) PutProfile(ctx context.Context, name string, p *profile.Profile) error {
	// Profiles are large (a real one maps every header to its units) and
	// read whole: one compressed JSON value is the simplest fit.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(p); err != nil {
		return fmt.Errorf("store profile of %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("store profile of %s: %w", name, err)
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store profile of %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM kernels WHERE name = ?`), name).Scan(&n); err != nil {
		return fmt.Errorf("store profile of %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("kernel %s: %w", name, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM kernel_profiles WHERE kernel = ? AND kind = ?`), name, string(p.Kind)); err != nil {
		return fmt.Errorf("store profile of %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO kernel_profiles (kernel, kind, data, made_at) VALUES (?, ?, ?, ?)`),
		name, string(p.Kind), buf.Bytes(), time.Now().Unix()); err != nil {
		return fmt.Errorf("store profile of %s: %w", name, err)
	}
	return tx.Commit()
}

func (d *db) Profile(ctx context.Context, name string, kind profile.Kind) (*profile.Profile, time.Time, error) {
	var data []byte
	var made int64
	err := d.sql.QueryRowContext(ctx, d.rebind(`SELECT data, made_at FROM kernel_profiles WHERE kernel = ? AND kind = ?`), name, string(kind)).Scan(&data, &made)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("%s profile of kernel %s: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read profile of %s: %w", name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read profile of %s: %w", name, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read profile of %s: %w", name, err)
	}
	p := new(profile.Profile)
	if err := json.Unmarshal(raw, p); err != nil {
		return nil, time.Time{}, fmt.Errorf("read profile of %s: %w", name, err)
	}
	return p, time.Unix(made, 0).UTC(), nil
}

func (d *db) ProfileKinds(ctx context.Context, name string) (map[profile.Kind]time.Time, error) {
	kinds := make(map[profile.Kind]time.Time)
	err := d.each(ctx, `SELECT kind, made_at FROM kernel_profiles WHERE kernel = ?`, []any{name}, func(s scanner) error {
		var kind string
		var made int64
		if err := s.Scan(&kind, &made); err != nil {
			return err
		}
		kinds[profile.Kind(kind)] = time.Unix(made, 0).UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read profiles of %s: %w", name, err)
	}
	return kinds, nil
}
