package cvesync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// TestMalformedKeepsLastGood: a record that was good and turns malformed
// keeps its last good version, and its problem is stored, whether the
// sync at the malformed commit is incremental or --full; a record that was
// never good is stored by neither.
func TestMalformedKeepsLastGood(t *testing.T) {
	ctx := context.Background()
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			u := newUpstream(t)
			u.put("published/2025", "CVE-2025-21703")
			u.put("published/2024", "CVE-2024-26581")
			good := u.commit("two good records")
			u.write("published/2024/CVE-2024-26581.dyad", "6.1.43:89a4d1a89751a0fbd520e64091873e19cc0979e8:6.1.x:zz\n")
			bad := u.commit("break one")
			mirror := filepath.Join(t.TempDir(), "vulns.git")
			run := func(dsn string, full bool) (cvesync.Summary, dump) {
				t.Helper()
				st := openStore(t, dsn)
				if _, err := cvesync.Run(ctx, st, cvesync.Options{Source: u.dir, MirrorDir: mirror, Rev: good}); err != nil {
					t.Fatal(err)
				}
				sum, err := cvesync.Run(ctx, st, cvesync.Options{Source: u.dir, MirrorDir: mirror, Rev: bad, Full: full})
				if err != nil {
					t.Fatal(err)
				}
				return sum, dumpStore(t, st)
			}
			incSum, inc := run(b.DSN, false)
			fullSum, full := run(testenv.PostgresOrSQLite(t, b), true)
			if incSum.Mode != "incremental" || fullSum.Mode != "full" {
				t.Fatalf("modes %s and %s, want incremental and full", incSum.Mode, fullSum.Mode)
			}
			compareDumps(t, "full vs incremental at the malformed commit", full, inc)
			if len(inc.Records) != 2 || len(inc.Problems) != 1 || inc.Problems[0].ID != "CVE-2024-26581" {
				t.Errorf("incremental: %d records, problems %v; want 2 records and CVE-2024-26581's problem", len(inc.Records), inc.Problems)
			}
			// A full run rewrites (updates) every good record; the kept one
			// is not among them.
			for _, c := range []struct {
				sum     cvesync.Summary
				updated int
			}{{incSum, 0}, {fullSum, 1}} {
				if s := c.sum; s.Malformed != 1 || s.Kept != 1 || s.Updated != c.updated || s.Deleted != 0 {
					t.Errorf("%s summary: %+v, want 1 malformed and kept, %d updated, none deleted", s.Mode, s, c.updated)
				}
			}

			// Never good: not stored, in either mode.
			fresh := openStore(t, testenv.PostgresOrSQLite(t, b))
			if _, err := cvesync.Run(ctx, fresh, cvesync.Options{Source: u.dir, MirrorDir: mirror, Rev: bad}); err != nil {
				t.Fatal(err)
			}
			if _, err := fresh.CVE(ctx, "CVE-2024-26581"); err == nil {
				t.Error("a record that was never good was stored")
			}
		})
	}
}

// TestStaleCloneRemoved: a temporary clone left by a killed first sync is
// removed by the next one.
func TestStaleCloneRemoved(t *testing.T) {
	u := newUpstream(t)
	u.put("published/2025", "CVE-2025-21703")
	u.commit("one record")
	data := t.TempDir()
	stale := filepath.Join(data, ".mirror-1234567")
	if err := os.MkdirAll(filepath.Join(stale, "objects", "pack"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, filepath.Join(data, "tuxtape.db"))
	if _, err := cvesync.Run(context.Background(), st, cvesync.Options{Source: u.dir, MirrorDir: filepath.Join(data, "vulns.git")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale clone %s still there after a sync: %v", stale, err)
	}
}
