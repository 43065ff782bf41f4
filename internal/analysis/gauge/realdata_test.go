package gauge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

var (
	recordsOnce sync.Once
	records     []vulns.Record
	recordsErr  error
)

// realRecords syncs the CNA bundle into a SQLite file kept in the temp
// directory (reused by later runs) and returns its published records.
func realRecords(t testing.TB) []vulns.Record {
	t.Helper()
	mirror := testenv.Mirror(t)
	recordsOnce.Do(func() {
		ctx := context.Background()
		sum := sha256.Sum256([]byte(mirror + testenv.BundleHead))
		db := filepath.Join(os.TempDir(), "tuxtape-test-records-"+hex.EncodeToString(sum[:6])+".db")
		fresh := false
		if _, err := os.Stat(db); err != nil {
			fresh = true
			db += ".tmp"
			os.Remove(db)
		}
		st, err := store.Open(ctx, db)
		if err != nil {
			recordsErr = err
			return
		}
		if fresh {
			if _, err := cvesync.Run(ctx, st, cvesync.Options{Source: mirror, MirrorDir: mirror, NoFetch: true, Rev: testenv.BundleHead}); err != nil {
				st.Close()
				recordsErr = err
				return
			}
		}
		records, recordsErr = st.CVEs(ctx, store.Filter{Status: vulns.StatusPublished})
		st.Close()
		if fresh && recordsErr == nil {
			recordsErr = os.Rename(db, db[:len(db)-len(".tmp")])
		}
	})
	if recordsErr != nil {
		t.Fatal(recordsErr)
	}
	return records
}

func version(t testing.TB, s string) vulns.Version {
	v, err := vulns.ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Every CVE of the corpus was fixed on 6.1.y in 6.1.177 or 6.1.178, so
// 6.1.176 is affected by version, except the two whose 6.1 bug came and
// went within 6.1.178.
func TestCorpusVersions(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "index.json"))
	if err != nil {
		t.Skipf("corpus index: %v", err)
	}
	var index []struct{ ID string }
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*vulns.Record{}
	recs := realRecords(t)
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	g, err := gauge.New(gauge.Kernel{Name: "debian-cloud", Version: version(t, "6.1.176")})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := gauge.New(gauge.Kernel{Name: "newer", Version: version(t, "6.1.178")})
	notInRange := map[string]bool{"CVE-2024-42133": true, "CVE-2026-64479": true}
	var affected int
	for _, e := range index {
		r := byID[e.ID]
		if r == nil {
			t.Errorf("%s: not in the bundle", e.ID)
			continue
		}
		v := g.Judge(r)
		switch {
		case notInRange[e.ID]:
			if v.Status != gauge.NotAffected || v.Reason != gauge.NotInRange {
				t.Errorf("%s on 6.1.176: %s/%s, want not_affected/not_in_range (%v)", e.ID, v.Status, v.Reason, v.Evidence)
			}
		case v.Status != gauge.Affected:
			t.Errorf("%s on 6.1.176: %s/%s, want affected (%v)", e.ID, v.Status, v.Reason, v.Evidence)
		default:
			affected++
		}
		if w := after.Judge(r); w.Status != gauge.NotAffected || w.Reason != gauge.FixedInVersion {
			t.Errorf("%s on 6.1.178: %s/%s, want fixed_in_version", e.ID, w.Status, w.Reason)
		}
	}
	t.Logf("%d of %d corpus CVEs affected by version on 6.1.176", affected, len(index))
}

// syntheticProfile compiles every other record's first file, so lookups
// hit and miss the way a real kernel's do.
func syntheticProfile(recs []vulns.Record) *profile.Profile {
	p := &profile.Profile{Kind: profile.KindReal}
	seen := map[string]bool{}
	for i, r := range recs {
		if i%2 == 0 && len(r.ProgramFiles) > 0 && !seen[r.ProgramFiles[0]] {
			f := r.ProgramFiles[0]
			seen[f] = true
			p.Units = append(p.Units, profile.Unit{Source: f, Object: f + ".o", Target: "vmlinux"})
		}
	}
	p.Sort()
	return p
}

var benchKernels = []string{"4.19.325", "5.4.290", "5.10.240", "5.15.180", "6.1.176", "6.6.90", "6.12.40", "6.18.5", "7.1.2", "7.2"}

// BenchmarkJudgeAll judges every published record against ten kernels.
func BenchmarkJudgeAll(b *testing.B) {
	recs := realRecords(b)
	prof := profile.NewIndex(syntheticProfile(recs))
	var prepared []gauge.Record
	var gs []*gauge.Gauge
	for _, k := range benchKernels {
		g, err := gauge.New(gauge.Kernel{Name: k, Version: version(b, k), Profile: prof})
		if err != nil {
			b.Fatal(err)
		}
		gs = append(gs, g)
	}
	for b.Loop() {
		// Parsing the records' version data once is part of the work.
		prepared = gauge.PrepareAll(recs)
		for _, g := range gs {
			for i := range prepared {
				g.JudgePrepared(&prepared[i])
			}
		}
	}
	b.ReportMetric(float64(len(recs)*len(gs)), "verdicts/op")
}
