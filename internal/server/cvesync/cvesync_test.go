package cvesync_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// dump is a whole database, for comparing two of them.
type dump struct {
	Records  []vulns.Record
	Problems []store.Problem
	Commit   string
}

func dumpStore(t *testing.T, st store.Store) dump {
	t.Helper()
	ctx := context.Background()
	recs, err := st.CVEs(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := st.Problems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state, err := st.SyncState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dump{recs, ps, state.Commit}
}

func compareDumps(t *testing.T, what string, got, want dump) {
	t.Helper()
	if got.Commit != want.Commit {
		t.Errorf("%s: commit %s, want %s", what, got.Commit, want.Commit)
	}
	if !reflect.DeepEqual(got.Problems, want.Problems) {
		t.Errorf("%s: problems %v, want %v", what, got.Problems, want.Problems)
	}
	if len(got.Records) != len(want.Records) {
		t.Errorf("%s: %d records, want %d", what, len(got.Records), len(want.Records))
	}
	wantByID := map[string]vulns.Record{}
	for _, r := range want.Records {
		wantByID[r.ID] = r
	}
	bad := 0
	for _, r := range got.Records {
		w, ok := wantByID[r.ID]
		if !ok {
			t.Errorf("%s: extra record %s", what, r.ID)
		} else if !reflect.DeepEqual(r, w) {
			t.Errorf("%s: record %s differs:\n got %+v\nwant %+v", what, r.ID, r, w)
		}
		delete(wantByID, r.ID)
		if bad++; t.Failed() && bad > 5 {
			t.FailNow()
		}
	}
	for id := range wantByID {
		t.Errorf("%s: missing record %s", what, id)
	}
}

func openStore(t *testing.T, dsn string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustSync(t *testing.T, st store.Store, mirror, rev string) cvesync.Summary {
	t.Helper()
	sum, err := cvesync.Run(context.Background(), st, cvesync.Options{Source: "bundle", MirrorDir: mirror, NoFetch: true, Rev: rev})
	if err != nil {
		t.Fatalf("sync to %s: %v", rev, err)
	}
	return sum
}

func countStatus(recs []vulns.Record) map[vulns.Status]int {
	n := map[vulns.Status]int{}
	for _, r := range recs {
		n[r.Status]++
	}
	return n
}

// TestSyncBundle syncs the real CNA history: fresh to the bundle's head,
// and from 2026-08-03 (before CVE-2024-26581 was scored) to the head with
// an announcement mail in between; both must give the same database.
func TestSyncBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the whole CNA bundle")
	}
	ctx := context.Background()
	mirror := testenv.Mirror(t)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fresh := openStore(t, b.DSN)
			sum := mustSync(t, fresh, mirror, testenv.BundleHead)
			if sum.Mode != "full" || sum.Malformed != 0 {
				t.Errorf("fresh sync: mode %s, %d malformed (%v)", sum.Mode, sum.Malformed, sum.Problems)
			}
			want := dumpStore(t, fresh)
			n := countStatus(want.Records)
			if n[vulns.StatusPublished] != 14623 || n[vulns.StatusRejected] != 311 {
				t.Errorf("fresh sync: %v, want 14623 published and 311 rejected", n)
			}
			checkRecord(t, fresh, "CVE-2025-21703", "net/sched/sch_netem.c", 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
				"7b79ca9a1de6a428d486ff52fb3d602321c08f55", "6.1.129", "privilege escalation from unprivileged user")
			checkRecord(t, fresh, "CVE-2024-26581", "net/netfilter/nft_set_rbtree.c", 7.8, "",
				"1296c110c5a0b45a8fcf58e7d18bc5da61a565cb", "6.1.78", "")

			// Incremental, with a mail announcing a CVE the repository
			// gets only later.
			inc := openStore(t, testenv.PostgresOrSQLite(t, b))
			mustSync(t, inc, mirror, testenv.BeforeScoring)
			before, err := inc.CVE(ctx, "CVE-2024-26581")
			if err != nil {
				t.Fatal(err)
			}
			if before.CVSS != nil {
				t.Errorf("CVE-2024-26581 is scored at %s already: %+v", testenv.BeforeScoring, before.CVSS)
			}
			mbox, err := exec.Command("git", "-C", mirror, "show", testenv.BundleHead+":cve/published/2026/CVE-2026-64561.mbox").Output()
			if err != nil {
				t.Fatal(err)
			}
			as, err := cvesync.Announce(ctx, inc, strings.NewReader(string(mbox)), time.Now())
			if err != nil || as.Added != 1 {
				t.Fatalf("announce: %+v, %v", as, err)
			}
			ann, err := inc.CVE(ctx, "CVE-2026-64561")
			if err != nil || ann.Status != vulns.StatusAnnounced || ann.Source != vulns.SourceAnnounce || len(ann.ProgramFiles) == 0 {
				t.Errorf("announced record: %+v, %v", ann, err)
			}
			sum = mustSync(t, inc, mirror, testenv.BundleHead)
			if sum.Mode != "incremental" || sum.Rejected == 0 || sum.Added == 0 {
				t.Errorf("incremental sync: %+v", sum)
			}
			compareDumps(t, "A then B vs fresh B", dumpStore(t, inc), want)
			checkRecord(t, inc, "CVE-2024-26581", "net/netfilter/nft_set_rbtree.c", 7.8, "CVSS:3.1/",
				"1296c110c5a0b45a8fcf58e7d18bc5da61a565cb", "6.1.78", "")

			if sum := mustSync(t, inc, mirror, testenv.BundleHead); sum.Mode != "up-to-date" {
				t.Errorf("second sync to the same commit: mode %s", sum.Mode)
			}
		})
	}
}

func checkRecord(t *testing.T, st store.Store, id, file string, score float64, vector, fix61, fixver61, scenario string) {
	t.Helper()
	r, err := st.CVE(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.ProgramFiles, []string{file}) {
		t.Errorf("%s files = %v, want [%s]", id, r.ProgramFiles, file)
	}
	if r.CVSS == nil || r.CVSS.Score != score || !strings.HasPrefix(r.CVSS.Vector, vector) {
		t.Errorf("%s CVSS = %+v, want %.1f %s", id, r.CVSS, score, vector)
	} else if r.CVSS.Vector == "" || len(r.CVSS.Scenarios) == 0 || !strings.Contains(strings.Join(r.CVSS.Scenarios, " "), scenario) {
		t.Errorf("%s CVSS scenarios = %q, want text containing %q", id, r.CVSS.Scenarios, scenario)
	}
	found := false
	for _, b := range r.Branches {
		if b.FixedCommit == fix61 && b.FixedVersion == fixver61 {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: no branch fixed in %s by %s: %+v", id, fixver61, fix61, r.Branches)
	}
	if r.FirstSeen.IsZero() {
		t.Errorf("%s: no first-seen date", id)
	}
}

// TestKill kills `tuxtape sync` with SIGKILL at several moments of a full
// and an incremental run; the rerun must give the database an
// uninterrupted run gives.
func TestKill(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the whole CNA bundle several times")
	}
	mirror := testenv.Mirror(t)
	bin := filepath.Join(t.TempDir(), "tuxtape")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tuxtape/tuxtape/cmd/tuxtape").CombinedOutput(); err != nil {
		t.Fatalf("build tuxtape: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.db")
	sync := func(db, rev string) *exec.Cmd {
		return exec.Command(bin, "--db", db, "--data-dir", dir, "-q", "sync", "--no-fetch", "--rev", rev)
	}
	run := func(db, rev string) {
		t.Helper()
		cmd := sync(db, rev)
		cmd.Env = append(os.Environ(), "TUXTAPE_DATA_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sync %s: %v\n%s", rev, err, out)
		}
	}
	// The CLI keeps its mirror in DATA-DIR/vulns.git.
	if err := os.Symlink(mirror, filepath.Join(dir, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	run(ref, testenv.BundleHead)
	refStore := openStore(t, ref)
	want := dumpStore(t, refStore)

	for i, tc := range []struct {
		from  string // synced before the killed run; "" for a full run
		delay time.Duration
	}{
		{"", 300 * time.Millisecond},
		{"", 2 * time.Second},
		{"", 6 * time.Second},
		{testenv.BeforeScoring, 1 * time.Second},
		{testenv.BeforeScoring, 3 * time.Second},
	} {
		db := filepath.Join(dir, "kill"+string(rune('a'+i))+".db")
		if tc.from != "" {
			run(db, tc.from)
		}
		cmd := sync(db, testenv.BundleHead)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(tc.delay)
		cmd.Process.Kill()
		err := cmd.Wait()
		t.Logf("killed after %v (from %q): %v", tc.delay, tc.from, err)
		run(db, testenv.BundleHead)
		st := openStore(t, db)
		compareDumps(t, "killed then rerun", dumpStore(t, st), want)
	}
}
