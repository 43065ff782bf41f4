package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

func openSQLite(ctx context.Context, path string) (Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	q := url.Values{}
	// busy_timeout first: switching a fresh file to WAL takes a lock that
	// concurrent openers must wait for, not fail on.
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	sqldb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Keep connections for the calls in flight: database/sql keeps two
	// idle by default, and a new SQLite connection reruns the pragmas and
	// rereads the schema (half the CPU of a busy server's token lookups).
	sqldb.SetMaxIdleConns(64)
	d := &db{sql: sqldb, backend: "sqlite", rebind: func(q string) string { return q }}
	if err := openRetry(ctx, func() error {
		if err := sqldb.PingContext(ctx); err != nil {
			return err
		}
		return d.migrate(ctx)
	}); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return d, nil
}

// openRetry runs open again while SQLite says the file is busy, for up to
// busyWait. Processes that open a fresh file at once race to switch it to
// WAL, and SQLite answers that switch with SQLITE_BUSY without waiting
// for the busy timeout.
func openRetry(ctx context.Context, open func() error) error {
	start := time.Now()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		err := open()
		if err == nil || !isBusy(err) || time.Since(start) > busyWait {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

const busyWait = 10 * time.Second

// isBusy reports whether err is SQLite's SQLITE_BUSY (or an extended code
// of it).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5
}
