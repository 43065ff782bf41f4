package store

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// silentServer accepts TCP connections on a loopback port and never writes
// a byte: a PostgreSQL server that hangs, or something else on its port.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// openWithin runs Open and fails the test if it is still hanging long
// after any timeout under test, so a hang shows as a failure rather than a
// stuck test binary.
func openWithin(t *testing.T, ctx context.Context, dsn string) error {
	t.Helper()
	res := make(chan error, 1)
	go func() {
		st, err := Open(ctx, dsn)
		if err == nil {
			st.Close()
		}
		res <- err
	}()
	select {
	case err := <-res:
		return err
	case <-time.After(45 * time.Second):
		t.Fatalf("Open(%s) still hanging after 45s", Redact(dsn))
		return nil
	}
}

// TestOpenPostgresNoAnswer: a server that takes the connection and never
// answers makes Open fail with the DSN's connect_timeout, or the default
// one, naming the host and the timeout but not the password.
func TestOpenPostgresNoAnswer(t *testing.T) {
	addr := silentServer(t)
	for _, tc := range []struct {
		name    string
		query   string
		dflt    time.Duration
		env     string // PGCONNECT_TIMEOUT
		want    string
		notWant string
	}{
		{name: "default", query: "sslmode=disable", dflt: time.Second, want: "no answer within 1s"},
		{name: "default, tls preferred", query: "", dflt: time.Second, want: "no answer within 1s"},
		{name: "dsn connect_timeout wins", query: "sslmode=disable&connect_timeout=1", dflt: time.Hour, want: "no answer within 1s"},
		{name: "dsn connect_timeout, tls preferred", query: "connect_timeout=1", dflt: time.Hour, want: "no answer within 1s"},
		{name: "PGCONNECT_TIMEOUT wins", query: "sslmode=disable", dflt: time.Hour, env: "1", want: "no answer within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := defaultConnectTimeout
			defaultConnectTimeout = tc.dflt
			t.Cleanup(func() { defaultConnectTimeout = old })
			t.Setenv("PGCONNECT_TIMEOUT", tc.env)
			if tc.env == "" {
				os.Unsetenv("PGCONNECT_TIMEOUT")
			}
			dsn := "postgres://nobody:hunter2@" + addr + "/x?" + tc.query
			err := openWithin(t, context.Background(), dsn)
			if err == nil {
				t.Fatal("Open succeeded against a silent server")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "connect to postgres://nobody:xxx@"+addr) {
				t.Errorf("error %q should say connect to postgres://nobody:xxx@%s and %q", msg, addr, tc.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows the password", msg)
			}
		})
	}
}

// TestOpenPostgresCancel: a cancelled ctx stops Open before any connect
// timeout would.
func TestOpenPostgresCancel(t *testing.T) {
	addr := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	err := openWithin(t, ctx, "postgres://nobody@"+addr+"/x?sslmode=disable&connect_timeout=3600")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled ctx: %v, want context.Canceled", err)
	}
}

// TestPostgresStatementTimeout: connections get a server-side statement
// timeout, the default one or the DSN's own.
func TestPostgresStatementTimeout(t *testing.T) {
	admin := os.Getenv("TUXTAPE_TEST_PG")
	if admin == "" {
		testenv.Missing(t, "TUXTAPE_TEST_PG is not set: run the tests through scripts/with-postgres")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, param, want string
		killsSleep        bool
	}{
		{name: "default", want: "5min"},
		{name: "dsn", param: "statement_timeout=200ms", want: "200ms", killsSleep: true},
		{name: "dsn options", param: "options=-c%20statement_timeout%3D300ms", want: "300ms", killsSleep: true},
		{name: "dsn off", param: "statement_timeout=0", want: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.PostgresDB(t, admin)
			if tc.param != "" {
				sep := "?"
				if strings.Contains(dsn, "?") {
					sep = "&"
				}
				dsn += sep + tc.param
			}
			st, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			d := st.(*db)
			var got string
			if err := d.sql.QueryRowContext(ctx, `SHOW statement_timeout`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("statement_timeout = %q, want %q", got, tc.want)
			}
			if !tc.killsSleep {
				return
			}
			_, err = d.sql.ExecContext(ctx, `SELECT pg_sleep(5)`)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Errorf("pg_sleep(5) under a %s timeout: %v, want query_canceled (57014)", tc.want, err)
			}
		})
	}
}
