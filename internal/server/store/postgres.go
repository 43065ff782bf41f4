package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Defaults for what the DSN does not say. Without a connect timeout a
// server that accepts the connection and never answers hangs every command;
// the statement timeout is generous because a full sync writes every record
// in one transaction.
var (
	defaultConnectTimeout   = 10 * time.Second
	defaultStatementTimeout = "5min"
)

// migrationLock is the advisory lock key that serializes migrations of one
// PostgreSQL database. Earlier versions took the same key as a session lock,
// which shares the key space, so old and new servers still take turns.
const migrationLock = 7388

func openPostgres(ctx context.Context, dsn string) (Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message shows the DSN with its password hidden.
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	q := dsnQuery(dsn)
	if !q.Has("connect_timeout") && os.Getenv("PGCONNECT_TIMEOUT") == "" {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok && !strings.Contains(cfg.RuntimeParams["options"], "statement_timeout") {
		cfg.RuntimeParams["statement_timeout"] = defaultStatementTimeout
	}
	sqldb := stdlib.OpenDB(*cfg)
	// A new connection is a new server process: keep them for the calls
	// in flight (database/sql keeps two idle by default).
	sqldb.SetMaxIdleConns(64)
	d := &db{sql: sqldb, backend: "postgres", rebind: dollarRebind,
		lockMigrations: fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrationLock),
		lockEvents:     `LOCK TABLE events IN EXCLUSIVE MODE`,
		skipLocked:     ` FOR UPDATE SKIP LOCKED`,
		forUpdate:      ` FOR UPDATE`}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, connectError(ctx, dsn, cfg.ConnectTimeout, err)
	}
	if err := d.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dsn), err)
	}
	return d, nil
}

// connectError says why a connection could not be made, in the words of
// what happened rather than pgx's.
func connectError(ctx context.Context, dsn string, timeout time.Duration, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("connect to %s: %w", Redact(dsn), context.Cause(ctx))
	case pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("connect to %s: no answer within %s (is it a PostgreSQL server, and reachable?): %w", Redact(dsn), timeout, err)
	default:
		return fmt.Errorf("connect to %s: %w (is the server running and the DSN right?)", Redact(dsn), err)
	}
}

// dsnQuery is a postgres:// DSN's query parameters; none when it does not
// parse, in which case pgx has already said why.
func dsnQuery(dsn string) url.Values {
	u, err := url.Parse(dsn)
	if err != nil {
		return url.Values{}
	}
	return u.Query()
}
