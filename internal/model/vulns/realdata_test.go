package vulns

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// knownBad lists the files of the CNA's repository that are truly malformed
// (investigated by hand), keyed by file name, so that the real-data test
// fails only on new breakage.
var knownBad = map[string]string{
	"CVE-2025-0927.sha1": `rejected; a hand-made record whose .sha1 is "000000000"`,
}

// vulnsTree returns the cve/ directory of the CNA's repository: the clone
// (or its cve/ directory) named by TUXTAPE_VULNS_DIR, or else the CNA
// bundle checked out at testenv.BundleHead. Without the bundle the test
// skips, and fails in CI.
func vulnsTree(t testing.TB) string {
	t.Helper()
	dir, from := os.Getenv("TUXTAPE_VULNS_DIR"), "TUXTAPE_VULNS_DIR="
	if dir == "" {
		dir, from = testenv.Checkout(t), "bundle checkout "
	}
	if fi, err := os.Stat(filepath.Join(dir, "cve", "published")); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, "cve")
	}
	if _, err := os.Stat(filepath.Join(dir, "published")); err != nil {
		t.Fatalf("%s%s: no published/ directory: %v", from, dir, err)
	}
	return dir
}

// realRecord is one CVE's files from the tree.
type realRecord struct {
	id     string
	status Status
	files  map[string][]byte
}

func loadTree(t testing.TB, root string) []realRecord {
	t.Helper()
	byID := map[string]*realRecord{}
	for _, st := range []Status{StatusPublished, StatusRejected} {
		years, err := filepath.Glob(filepath.Join(root, string(st), "*", "CVE-*.*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range years {
			name := filepath.Base(p)
			id, ext, _ := strings.Cut(name, ".")
			key := string(st) + "/" + id
			r := byID[key]
			if r == nil {
				r = &realRecord{id: id, status: st, files: map[string][]byte{}}
				byID[key] = r
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			r.files[ext] = data
		}
	}
	recs := make([]realRecord, 0, len(byID))
	for _, r := range byID {
		recs = append(recs, *r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
	return recs
}

// TestRealData parses every .json, .dyad, .sha1, .cvss, .mbox and
// .mbox.rejected file of a real tree, assembles every record, and
// cross-checks the files against each other. Parse failures outside
// knownBad fail the test; disagreements between files are counted and
// logged, since the CNA updates them in separate steps.
func TestRealData(t *testing.T) {
	// It only parses, one file after another, so the race detector has
	// nothing to find here and would make it take a minute.
	if testing.Short() {
		t.Skip("parses every real record: skipped with -short")
	}
	root := vulnsTree(t)
	recs := loadTree(t, root)
	if len(recs) < 1000 {
		t.Fatalf("only %d records under %s", len(recs), root)
	}
	parsers := map[string]func([]byte) error{
		"json": func(b []byte) error { _, err := ParseJSON(b); return err },
		"dyad": func(b []byte) error { _, err := ParseDyad(b); return err },
		"sha1": func(b []byte) error { _, err := ParseSHA1(b); return err },
		"cvss": func(b []byte) error { _, err := ParseCVSSFile(b); return err },
		"mbox": func(b []byte) error { _, err := ParseAnnouncement(b); return err },
		"mbox.rejected": func(b []byte) error {
			r, err := ParseAnnouncement(b)
			if err == nil && r.Status != StatusRejected {
				err = errors.New("not parsed as a rejection")
			}
			return err
		},
	}
	files := map[string]int{}
	failed := map[string]int{}
	count := map[string]int{} // cross-checks
	note := func(what, id string) {
		count[what]++
		if count[what] <= 3 {
			t.Logf("%s: %s", what, id)
		}
	}
	for _, r := range recs {
		for ext, data := range r.files {
			parse, ok := parsers[ext]
			if !ok {
				continue
			}
			files[ext]++
			if err := parse(data); err != nil {
				failed[ext]++
				name := r.id + "." + ext
				if why, ok := knownBad[name]; ok {
					t.Logf("known bad %s (%s): %v", name, why, err)
				} else {
					t.Errorf("%s/%s: %v", r.status, name, err)
				}
			}
		}
		if _, ok := r.files["json"]; !ok {
			continue
		}
		rec, err := Assemble(r.id, r.status, r.files)
		files["assemble"]++
		if err != nil {
			failed["assemble"]++
			t.Errorf("Assemble(%s): %v", r.id, err)
			continue
		}
		crossCheck(t, r, rec, note)
	}
	for _, ext := range []string{"json", "dyad", "sha1", "cvss", "mbox", "mbox.rejected", "assemble"} {
		t.Logf("%-13s %6d files, %d failed", ext, files[ext], failed[ext])
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("cross-check %-45s %d", k, count[k])
	}
}

// crossCheck compares what the files say about one record. The counts are
// how the CNA's files drift apart, not errors of ours.
func crossCheck(t *testing.T, r realRecord, rec Record, note func(what, id string)) {
	var raw struct {
		Containers struct {
			CNA struct {
				Metrics []struct {
					CVSSV31 *struct {
						BaseScore    float64 `json:"baseScore"`
						BaseSeverity string  `json:"baseSeverity"`
					} `json:"cvssV3_1"`
				} `json:"metrics"`
			} `json:"cna"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(r.files["json"], &raw); err != nil {
		t.Errorf("%s: %v", r.id, err)
		return
	}
	for _, m := range raw.Containers.CNA.Metrics {
		if m.CVSSV31 == nil || rec.CVSS == nil {
			continue
		}
		note("json scores checked", r.id)
		if m.CVSSV31.BaseScore != rec.CVSS.Score || m.CVSSV31.BaseSeverity != rec.CVSS.Severity {
			t.Errorf("%s: json says %v %s, vector %s gives %v %s", r.id, m.CVSSV31.BaseScore,
				m.CVSSV31.BaseSeverity, rec.CVSS.Vector, rec.CVSS.Score, rec.CVSS.Severity)
		}
		break
	}
	jr, _ := ParseJSON(r.files["json"])
	if data, ok := r.files["cvss"]; ok {
		if c, err := ParseCVSSFile(data); err == nil {
			switch {
			case jr.CVSS == nil:
				note("cvss file but json unscored", r.id)
			case c.Vector != jr.CVSS.Vector:
				note("cvss vector differs from json", r.id)
			case !slices.Equal(c.Scenarios, jr.CVSS.Scenarios):
				note("cvss rationale differs from json scenario", r.id)
			default:
				note("cvss file agrees with json", r.id)
			}
		}
	} else if jr.CVSS != nil {
		note("json scored but no cvss file", r.id)
	}
	if data, ok := r.files["mbox"]; ok {
		a, err := ParseAnnouncement(data)
		if err == nil {
			if a.ID != r.id {
				t.Errorf("%s.mbox: subject names %s", r.id, a.ID)
			}
			if a.Title != rec.Title {
				note("mbox title differs", r.id)
			}
			if a.Description != rec.Description {
				// The CVE schema caps a description at 4096 characters; the
				// CNA cuts longer ones and appends this marker.
				cut, truncated := strings.CutSuffix(rec.Description, "\n---truncated---")
				if truncated && strings.HasPrefix(a.Description, cut) {
					note("json description truncated, mbox full", r.id)
				} else {
					note("mbox description differs", r.id)
				}
			}
			if !slices.Equal(a.ProgramFiles, rec.ProgramFiles) {
				note("mbox files differ ("+string(r.status)+")", r.id)
			}
			if (a.CVSS == nil) != (rec.CVSS == nil) || (a.CVSS != nil && a.CVSS.Vector != rec.CVSS.Vector) {
				note("mbox severity differs", r.id)
			}
			if a.MainlineFix != "" && a.MainlineFix != rec.MainlineFix && !strings.HasPrefix(rec.MainlineFix, a.MainlineFix) {
				note("mbox mainline fix differs", r.id)
			}
		}
	}
	if len(rec.FixCommits) > 1 {
		note("several sha1 lines", r.id)
		if rec.MainlineFix != rec.FixCommits[len(rec.FixCommits)-1] {
			note("several sha1 lines, mainline fix not last", r.id)
		}
	}
	if len(rec.FixCommits) > 0 && !slices.Contains(rec.FixCommits, rec.MainlineFix) {
		note("mainline fix not a sha1 line", r.id)
	}
	if r.status == StatusPublished && rec.MainlineFix == "" {
		note("published without mainline fix", r.id)
	}
}
