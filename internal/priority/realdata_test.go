package priority

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tuxtape/tuxtape/internal/gitrepo"
	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/vulns"
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

// quantile is the q-quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(q * float64(len(xs)-1))
	return xs[i]
}

func TestExplore(t *testing.T) {
	recs := bundleRecords(t)
	tiers := map[Tier]int{}
	var scored, unscored []float64
	classCount := map[string][]float64{}
	for i := range recs {
		p := Score(&recs[i], Inputs{})
		tiers[p.Tier]++
		if recs[i].CVSS != nil {
			scored = append(scored, p.Score)
		} else {
			unscored = append(unscored, p.Score)
			c := classify(recs[i].Title, recs[i].Description)
			n := "none"
			if c.class >= 0 {
				n = classes[c.class].name
			}
			classCount[n] = append(classCount[n], p.Score)
		}
	}
	slices.Sort(scored)
	slices.Sort(unscored)
	t.Logf("tiers %v", tiers)
	t.Logf("scored n=%d q10 %.1f q25 %.1f q50 %.1f q75 %.1f q90 %.1f", len(scored), quantile(scored, .1), quantile(scored, .25), quantile(scored, .5), quantile(scored, .75), quantile(scored, .9))
	t.Logf("unscored n=%d q10 %.1f q25 %.1f q50 %.1f q75 %.1f q90 %.1f", len(unscored), quantile(unscored, .1), quantile(unscored, .25), quantile(unscored, .5), quantile(unscored, .75), quantile(unscored, .9))
	cal := map[string][]float64{}
	for i := range recs {
		if recs[i].CVSS == nil {
			continue
		}
		c := classify(recs[i].Title, recs[i].Description)
		n := "none"
		if c.class >= 0 {
			n = classes[c.class].name
		}
		pts := 6*recs[i].CVSS.Score + parseVector(recs[i].CVSS.Vector).nudge()
		cal[n] = append(cal[n], pts)
		cal["all"] = append(cal["all"], pts)
	}
	for n, xs := range cal {
		var sum float64
		for _, x := range xs {
			sum += x
		}
		slices.Sort(xs)
		t.Logf("calib %-25s %5d mean %.2f median %.1f q25 %.1f", n, len(xs), sum/float64(len(xs)), quantile(xs, .5), quantile(xs, .25))
	}
	hist := func(xs []float64) string {
		var b [21]int
		for _, x := range xs {
			b[int(x)/5]++
		}
		return fmt.Sprint(b)
	}
	t.Logf("hist scored   %s", hist(scored))
	t.Logf("hist unscored %s", hist(unscored))
	for n, xs := range classCount {
		slices.Sort(xs)
		t.Logf("class %-25s %5d median %.1f", n, len(xs), quantile(xs, .5))
	}
}
