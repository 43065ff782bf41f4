package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// schemaVersion reads the version and the number of applied migrations.
func schemaVersion(t *testing.T, st Store) (version, applied int) {
	t.Helper()
	d := st.(*db)
	if err := d.sql.QueryRowContext(context.Background(), `SELECT COALESCE(MAX(version), 0), COUNT(*) FROM schema_migrations`).Scan(&version, &applied); err != nil {
		t.Fatalf("read schema version: %v", err)
	}
	return version, applied
}

// TestOpenConcurrentFresh opens one fresh database from several goroutines
// at once, each with its own pool, as separate processes would: every open
// must succeed and leave each migration applied exactly once.
func TestOpenConcurrentFresh(t *testing.T) {
	const openers, rounds = 8, 3
	ctx := context.Background()
	for round := range rounds {
		for _, b := range testenv.Backends(t) {
			t.Run(fmt.Sprintf("%s/%d", b.Name, round), func(t *testing.T) {
				start := make(chan struct{})
				errs := make([]error, openers)
				var wg sync.WaitGroup
				for i := range openers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						st, err := Open(ctx, b.DSN)
						if err != nil {
							errs[i] = err
							return
						}
						errs[i] = st.Close()
					}()
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("opener %d: %v", i, err)
					}
				}
				st, err := Open(ctx, b.DSN)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if v, n := schemaVersion(t, st); v != len(migrations) || n != len(migrations) {
					t.Errorf("schema version %d with %d migrations applied, want %d and %d", v, n, len(migrations), len(migrations))
				}
			})
		}
	}
}

// The child side of TestOpenConcurrentProcesses: it waits for the parent's
// go file, then opens the database once.
const (
	childDSNEnv = "TUXTAPE_STORE_TEST_CHILD_DSN"
	childGoEnv  = "TUXTAPE_STORE_TEST_CHILD_GO"
)

func TestOpenConcurrentProcessesChild(t *testing.T) {
	dsn := os.Getenv(childDSNEnv)
	if dsn == "" {
		t.Skip("only run as a child of TestOpenConcurrentProcesses")
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(os.Getenv(childGoEnv)); err == nil {
			break
		}
		if i == 3000 {
			t.Fatal("no go from the parent within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenConcurrentProcesses is the real thing: several processes (this
// test binary, re-run) open one fresh SQLite file at the same moment.
func TestOpenConcurrentProcesses(t *testing.T) {
	if os.Getenv(childDSNEnv) != "" {
		t.Skip("in a child")
	}
	const procs, rounds = 4, 3
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			dir := t.TempDir()
			dsn := filepath.Join(dir, "data", "tuxtape.db")
			goFile := filepath.Join(dir, "go")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmds := make([]*exec.Cmd, procs)
			outs := make([]*lockedBuffer, procs)
			for i := range cmds {
				outs[i] = &lockedBuffer{}
				cmds[i] = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestOpenConcurrentProcessesChild$", "-test.count=1", "-test.v")
				cmds[i].Env = append(os.Environ(), childDSNEnv+"="+dsn, childGoEnv+"="+goFile)
				cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
				if err := cmds[i].Start(); err != nil {
					t.Fatal(err)
				}
			}
			// Let the children get to their wait before they all go at once.
			time.Sleep(200 * time.Millisecond)
			if err := os.WriteFile(goFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			for i, c := range cmds {
				if err := c.Wait(); err != nil {
					t.Errorf("process %d: %v\n%s", i, err, outs[i].String())
				}
			}
			st, err := Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if v, n := schemaVersion(t, st); v != len(migrations) || n != len(migrations) {
				t.Errorf("schema version %d with %d migrations applied, want %d and %d", v, n, len(migrations), len(migrations))
			}
		})
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
