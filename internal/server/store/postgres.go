package store

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

func openPostgres(ctx context.Context, dsn string) (Store, error) {
	sqldb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	d := &db{sql: sqldb, backend: "postgres", rebind: dollarRebind}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open postgres %s: %w (is the server running and the DSN right?)", Redact(dsn), err)
	}
	// Several servers may start at once: serialize their migrations.
	conn, err := sqldb.Conn(ctx)
	if err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7388)`); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open postgres %s: lock for migration: %w", Redact(dsn), err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7388)`)
	if err := d.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	return d, nil
}
