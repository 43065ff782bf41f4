package cvesync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// TestConcurrentSync: two syncs started together on one data directory,
// each cloning the bundle with its own store handle: one syncs, the other
// is refused with ErrSyncRunning before it touches git or the database,
// and the database is what one uninterrupted run makes.
func TestConcurrentSync(t *testing.T) {
	if testing.Short() {
		t.Skip("clones and syncs the whole CNA bundle")
	}
	ctx := context.Background()
	bundle := testenv.Bundle(t)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ref := openStore(t, testenv.PostgresOrSQLite(t, b))
			mustSync(t, ref, testenv.Mirror(t), testenv.BundleHead)
			mirror := filepath.Join(t.TempDir(), "data", "vulns.git")
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for i := range errs {
				st := openStore(t, b.DSN)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = cvesync.Run(ctx, st, cvesync.Options{Source: bundle, MirrorDir: mirror, Rev: testenv.BundleHead})
				}()
			}
			close(start)
			wg.Wait()
			ok, busy := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, cvesync.ErrSyncRunning) && strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())):
					busy++
				default:
					t.Errorf("sync: %v", err)
				}
			}
			if ok != 1 || busy != 1 {
				t.Fatalf("%d syncs ran and %d were refused, want one of each: %v", ok, busy, errs)
			}
			compareDumps(t, "after two concurrent syncs", dumpStore(t, openStore(t, b.DSN)), dumpStore(t, ref))
		})
	}
}
