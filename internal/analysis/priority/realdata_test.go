package priority

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/gitrepo"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// realRecords loaded once per test binary, keyed by mirror.
var real struct {
	sync.Mutex
	mirror string
	recs   []vulns.Record
}

// bundleRecords assembles every published record at the bundle's head
// (TUXTAPE_VULNS_BUNDLE, or ../shared/data beside the source tree). It
// skips when the bundle is missing, except in CI (testenv's rule).
func bundleRecords(tb testing.TB) []vulns.Record {
	tb.Helper()
	mirror := testenv.Mirror(tb)
	real.Lock()
	defer real.Unlock()
	if real.mirror == mirror {
		return real.recs
	}
	recs, err := loadPublished(context.Background(), mirror, testenv.BundleHead)
	if err != nil {
		tb.Fatalf("load bundle records: %v", err)
	}
	if len(recs) < 14000 {
		tb.Fatalf("only %d published records in the bundle", len(recs))
	}
	real.mirror, real.recs = mirror, recs
	return recs
}

// loadPublished reads the .json and .cvss files of cve/published/ at rev
// and assembles them (the other files do not matter to a priority).
func loadPublished(ctx context.Context, dir, rev string) ([]vulns.Record, error) {
	repo, err := gitrepo.Open(dir)
	if err != nil {
		return nil, err
	}
	entries, err := repo.LsTree(ctx, rev, "cve/published")
	if err != nil {
		return nil, err
	}
	type blob struct{ id, ext string }
	var oids []string
	var blobs []blob
	for _, e := range entries {
		id, ext, _ := strings.Cut(path.Base(e.Path), ".")
		if ext == "json" || ext == "cvss" {
			oids = append(oids, e.OID)
			blobs = append(blobs, blob{id, ext})
		}
	}
	files := map[string]map[string][]byte{}
	err = repo.ReadBlobs(ctx, oids, func(i int, data []byte) error {
		b := blobs[i]
		if files[b.id] == nil {
			files[b.id] = map[string][]byte{}
		}
		files[b.id][b.ext] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(files))
	for id, fs := range files {
		if _, ok := fs["json"]; ok { // stray .cvss of rejected records
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	recs := make([]vulns.Record, 0, len(ids))
	for _, id := range ids {
		rec, err := vulns.Assemble(id, vulns.StatusPublished, files[id])
		if err != nil {
			return nil, fmt.Errorf("assemble %s: %w", id, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// quantile is the q-quantile of sorted xs (nearest rank below).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[int(q*float64(len(xs)-1))]
}

// kernelKEV are the fixture's KEV entries the kernel CNA issued (those in
// the bundle), and whether the CNA has scored them.
var kernelKEV = map[string]bool{
	"CVE-2024-36971": true,  // net: __dst_negative_advice() race
	"CVE-2025-38352": true,  // posix-cpu-timers TOCTOU
	"CVE-2024-53104": false, // uvcvideo out-of-bounds write
	"CVE-2024-50302": false, // HID report buffer not zeroed
	"CVE-2024-53197": false, // ALSA usb-audio Extigy/Mbox out-of-bounds
	"CVE-2024-53150": false, // ALSA usb-audio descriptor out-of-bounds read
}

// TestBundleKEV scores the real records of the kernel CVEs in the KEV
// fixture: all critical, including the four the CNA has not scored.
func TestBundleKEV(t *testing.T) {
	recs := bundleRecords(t)
	kev := fixtureKEV(t)
	in := Inputs{KEV: kev, EPSS: fixtureEPSS(t)}
	var inBundle []string
	for i := range recs {
		rec := &recs[i]
		if _, ok := kev.Lookup(rec.ID); !ok {
			continue
		}
		inBundle = append(inBundle, rec.ID)
		if want, ok := kernelKEV[rec.ID]; !ok || (rec.CVSS != nil) != want {
			t.Errorf("%s: scored = %v, want %v (known: %v)", rec.ID, rec.CVSS != nil, want, ok)
		}
		p := Score(rec, in)
		t.Logf("%s %5.1f %-8s %q", rec.ID, p.Score, p.Tier, p.Reasons)
		if p.Tier != TierCritical {
			t.Errorf("%s: tier %s (%v), want critical", rec.ID, p.Tier, p.Score)
		}
		// Without KEV the unscored ones keep a middle score.
		if q := Score(rec, Inputs{}); q.Tier == TierLow {
			t.Errorf("%s without KEV: %v %s, want above low", rec.ID, q.Score, q.Tier)
		}
	}
	if len(inBundle) != len(kernelKEV) {
		t.Errorf("KEV fixture entries in the bundle: %q, want the %d of kernelKEV", inBundle, len(kernelKEV))
	}
}

// TestBundleDistribution scores every published record: tiers, and where
// the unscored records land against the scored ones.
func TestBundleDistribution(t *testing.T) {
	recs := bundleRecords(t)
	full := Inputs{KEV: fixtureKEV(t), EPSS: fixtureEPSS(t)}
	for _, c := range []struct {
		name string
		in   Inputs
	}{{"record alone", Inputs{}}, {"with KEV and EPSS fixtures", full}} {
		tiers := map[Tier]int{}
		var sc, un []float64
		for i := range recs {
			p := Score(&recs[i], c.in)
			tiers[p.Tier]++
			if recs[i].CVSS != nil {
				sc = append(sc, p.Score)
			} else {
				un = append(un, p.Score)
			}
		}
		slices.Sort(sc)
		slices.Sort(un)
		t.Logf("%s: %d records: critical %d, high %d, medium %d, low %d", c.name, len(recs),
			tiers[TierCritical], tiers[TierHigh], tiers[TierMedium], tiers[TierLow])
		for _, g := range []struct {
			name string
			xs   []float64
		}{{"scored", sc}, {"unscored", un}} {
			t.Logf("  %-8s %5d: min %.1f q25 %.1f median %.1f q75 %.1f max %.1f", g.name, len(g.xs),
				g.xs[0], quantile(g.xs, .25), quantile(g.xs, .5), quantile(g.xs, .75), g.xs[len(g.xs)-1])
		}
		// A missing CNA score is not a low one.
		if m, q := quantile(un, .5), quantile(sc, .25); m < q {
			t.Errorf("%s: unscored median %.1f below the scored lower quartile %.1f", c.name, m, q)
		}
	}
	ranked := make([]Ranked, len(recs))
	for i := range recs {
		ranked[i] = Ranked{ID: recs[i].ID, Priority: Score(&recs[i], full)}
	}
	Rank(ranked)
	for _, r := range ranked[:10] {
		t.Logf("top: %s %5.1f %s", r.ID, r.Score, r.Tier)
	}
}

// TestBundleScenarios counts what the CNA's rationales add, and checks it
// on records read by hand.
func TestBundleScenarios(t *testing.T) {
	recs := bundleRecords(t)
	want := map[string]string{
		"CVE-2025-21703": "scenario: reachable from an unprivileged user namespace", // free-text rationale
		"CVE-2024-26581": "scenario: reachable from an unprivileged user namespace",
		"CVE-2024-36971": "scenario: exploited in the wild",
		"CVE-2025-38352": "scenario: exploited in the wild",
		"CVE-2022-48847": "scenario: public exploit",
	}
	counts := map[string]int{}
	for i := range recs {
		p := Score(&recs[i], Inputs{})
		for _, r := range p.Reasons {
			if strings.HasPrefix(r, "scenario: ") {
				counts[r]++
			}
		}
		if w, ok := want[recs[i].ID]; ok && !slices.Contains(p.Reasons, w) {
			t.Errorf("%s: reasons %q, want %q", recs[i].ID, p.Reasons, w)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		t.Logf("%5d %s", counts[r], r)
	}
}

// TestBundleMatcher checks the SWAR matcher against the byte-at-a-time
// definition on real commit messages and rationales.
func TestBundleMatcher(t *testing.T) {
	recs := bundleRecords(t)
	phrases := phraseBits(classPhrases)
	for i := 0; i < len(recs); i += 7 {
		for _, s := range []string{recs[i].Title, recs[i].Description} {
			if got, want := classText.match(s), matchSlow(phrases, s); got != want {
				t.Fatalf("%s: match = %b, want %b", recs[i].ID, got, want)
			}
		}
	}
}

// BenchmarkScoreAll scores every published record of the bundle with the
// KEV and EPSS fixtures; one op is the whole set.
func BenchmarkScoreAll(b *testing.B) {
	recs := bundleRecords(b)
	in := Inputs{KEV: fixtureKEV(b), EPSS: fixtureEPSS(b)}
	for b.Loop() {
		for i := range recs {
			Score(&recs[i], in)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
