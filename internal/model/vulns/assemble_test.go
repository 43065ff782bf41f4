package vulns

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestAssemble21703(t *testing.T) {
	rec, err := Assemble("CVE-2025-21703", StatusPublished, testdataRecord(t, "CVE-2025-21703"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "CVE-2025-21703" || rec.Status != StatusPublished || rec.Source != SourceRepo {
		t.Errorf("ID, Status, Source = %q, %q, %q", rec.ID, rec.Status, rec.Source)
	}
	if rec.Title != "netem: Update sch->q.qlen before qdisc_tree_reduce_backlog()" {
		t.Errorf("Title = %q", rec.Title)
	}
	if !slices.Equal(rec.ProgramFiles, []string{"net/sched/sch_netem.c"}) {
		t.Errorf("ProgramFiles = %q", rec.ProgramFiles)
	}
	if c := rec.CVSS; c == nil || c.Vector != "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" || c.Score != 7.8 || c.Severity != "HIGH" || len(c.Scenarios) != 1 {
		t.Errorf("CVSS = %+v", c)
	}
	var b61 *Branch
	for i := range rec.Branches {
		if rec.Branches[i].FixedVersion == "6.1.129" {
			b61 = &rec.Branches[i]
		}
	}
	if b61 == nil || b61.FixedCommit != "7b79ca9a1de6a428d486ff52fb3d602321c08f55" || b61.IntroducedVersion != "6.1.121" {
		t.Errorf("6.1 branch = %+v, want fix 7b79ca9a1de6a428d486ff52fb3d602321c08f55 in 6.1.129", b61)
	}
	if len(rec.Branches) != 8 || len(rec.Ranges) != 24 {
		t.Errorf("%d branches, %d ranges; want 8, 24", len(rec.Branches), len(rec.Ranges))
	}
	if !slices.Equal(rec.FixCommits, []string{"638ba5089324796c2ee49af10427459c2de35f71"}) || rec.MainlineFix != "638ba5089324796c2ee49af10427459c2de35f71" {
		t.Errorf("FixCommits, MainlineFix = %q, %q", rec.FixCommits, rec.MainlineFix)
	}
	if rec.DefaultStatus != "affected" || rec.Description == "" {
		t.Errorf("DefaultStatus %q, Description %q", rec.DefaultStatus, rec.Description)
	}
}

// withoutMetrics rewrites a record's JSON as it was before the CNA scored
// it: no containers.cna.metrics.
func withoutMetrics(t *testing.T, data []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["containers"].(map[string]any)["cna"].(map[string]any), "metrics")
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAssembleScoringSteps follows CVE-2024-26581 through the steps in which
// the CNA scored it: a vector-only .cvss (2026-08-01) with unscored JSON,
// then the rationale in .cvss, then JSON metrics with the rationale as
// scenario.
func TestAssembleScoringSteps(t *testing.T) {
	const id = "CVE-2024-26581"
	full := testdataRecord(t, id)
	unscored := withoutMetrics(t, full["json"])
	jr, err := ParseJSON(full["json"])
	if err != nil {
		t.Fatal(err)
	}
	scenario := jr.CVSS.Scenarios

	// The JSON as it was scored, minus the scenario text.
	var doc map[string]any
	if err := json.Unmarshal(full["json"], &doc); err != nil {
		t.Fatal(err)
	}
	metric := doc["containers"].(map[string]any)["cna"].(map[string]any)["metrics"].([]any)[0].(map[string]any)
	delete(metric, "scenarios")
	noScenario, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name      string
		json      []byte
		cvss      []byte // nil: no .cvss file
		scored    bool
		scenarios []string
	}{
		{"unscored", unscored, nil, false, nil},
		{"vector file only", unscored, testdataFile(t, id+"-vector-only.cvss"), true, nil},
		{"vector file with rationale", unscored, full["cvss"], true, scenario},
		{"json scored, scenario only in .cvss", noScenario, full["cvss"], true, scenario},
		{"json scored, no scenario anywhere", noScenario, testdataFile(t, id+"-vector-only.cvss"), true, nil},
		{"fully scored", full["json"], full["cvss"], true, scenario},
		{"json scored, .cvss file gone", full["json"], nil, true, scenario},
	}
	for _, st := range steps {
		files := maps.Clone(full)
		files["json"] = st.json
		delete(files, "cvss")
		if st.cvss != nil {
			files["cvss"] = st.cvss
		}
		rec, err := Assemble(id, StatusPublished, files)
		if err != nil {
			t.Errorf("%s: Assemble = %v", st.name, err)
			continue
		}
		if (rec.CVSS != nil) != st.scored {
			t.Errorf("%s: CVSS = %+v, want scored %v", st.name, rec.CVSS, st.scored)
			continue
		}
		if rec.CVSS == nil {
			continue
		}
		if rec.CVSS.Score != 7.8 || rec.CVSS.Severity != "HIGH" || rec.CVSS.Vector != "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" {
			t.Errorf("%s: CVSS = %+v", st.name, rec.CVSS)
		}
		if !slices.Equal(rec.CVSS.Scenarios, st.scenarios) {
			t.Errorf("%s: Scenarios = %q, want %q", st.name, rec.CVSS.Scenarios, st.scenarios)
		}
	}
}

func TestAssembleOdd(t *testing.T) {
	tests := []struct {
		id          string
		status      Status
		title       string
		mainlineFix string
		fixCommits  int
		branches    int
	}{
		// Four .sha1 lines; the mainline fix is the one the dyad names.
		{"CVE-2023-53642", StatusPublished, "x86: fix clear_user_rep_good() exception handling annotation", "e046fe5a36a970bc14fbfbcb2074a48776f6b671", 4, 4},
		// Unfixed on three stable branches; a 2.6-era stable introducer.
		{"CVE-2023-54121", StatusPublished, "", "c962098ca4af146f2625ed64399926a098752c9c", 1, 4},
		// Fixed in mainline in 6.2; semver product without versions.
		{"CVE-2023-53012", StatusPublished, "", "6c54b7bc8a31ce0f7cc7f8deef05067df414f1d8", 1, 6},
		// Rejected, hand-made: no title in the JSON (falls back to the
		// mail's subject), a broken .sha1 that a rejected record may have.
		{"CVE-2025-0927", StatusRejected, "heap overflow in the hfs and hfsplus filesystems with manually crafted filesystem", "", 0, 0},
		// Rejected, no .dyad at all: the mainline fix falls back to the .sha1.
		{"CVE-2024-26701", StatusRejected, "eventfs: Do not create dentries nor inodes in iterate_shared", "852e46e239ee6db3cd220614cf8bce96e79227c2", 1, 0},
		// Rejected after release candidates only.
		{"CVE-2025-23139", StatusRejected, "", "5df5dafc171b90d0b8d51547a82657cd5a1986c7", 1, 9},
	}
	for _, tt := range tests {
		files := testdataRecord(t, tt.id)
		rec, err := Assemble(tt.id, tt.status, files)
		if err != nil {
			t.Errorf("Assemble(%s) = %v", tt.id, err)
			continue
		}
		if tt.title != "" && rec.Title != tt.title {
			t.Errorf("%s: Title = %q, want %q", tt.id, rec.Title, tt.title)
		}
		if rec.Status != tt.status {
			t.Errorf("%s: Status = %q, want %q", tt.id, rec.Status, tt.status)
		}
		if len(rec.FixCommits) != tt.fixCommits || len(rec.Branches) != tt.branches {
			t.Errorf("%s: %d fix commits, %d branches; want %d, %d", tt.id, len(rec.FixCommits), len(rec.Branches), tt.fixCommits, tt.branches)
		}
		if rec.MainlineFix != tt.mainlineFix {
			t.Errorf("%s: MainlineFix = %q, want %q", tt.id, rec.MainlineFix, tt.mainlineFix)
		}
	}
}

func TestAssembleErrors(t *testing.T) {
	const id = "CVE-2025-21703"
	good := testdataRecord(t, id)
	with := func(ext, data string) map[string][]byte {
		f := maps.Clone(good)
		f[ext] = []byte(data)
		return f
	}
	without := maps.Clone(good)
	delete(without, "json")
	badDyad := "# dyad version: 1.2.0\n#\tx\n6.x:f8d4bc455047cf3903cd6f85f49978987dbb3027:6.14:638ba5089324796c2ee49af10427459c2de35f71\n"

	tests := []struct {
		name    string
		id      string
		status  Status
		files   map[string][]byte
		wantErr string // exact Error()
		file    string
		is      error
	}{
		{"dyad", id, StatusPublished, with("dyad", badDyad),
			`CVE-2025-21703.dyad: line 3: introduced: unknown version "6.x" in "6.x:f8d4bc455047cf3903cd6f85f49978987dbb3027:6.14:638ba5089324796c2ee49af10427459c2de35f71"`, "dyad", ErrUnknownVersion},
		{"missing json", id, StatusPublished, without, "CVE-2025-21703: missing .json file", "", ErrMissingJSON},
		{"id mismatch", "CVE-2025-21704", StatusPublished, good, "CVE-2025-21704.json: cve id mismatch: cveId is CVE-2025-21703", "json", ErrIDMismatch},
		{"broken json", id, StatusPublished, with("json", "{"), "CVE-2025-21703.json: decode cve json: unexpected end of JSON input", "json", nil},
		{"sha1", id, StatusPublished, with("sha1", "000000000\n"), `CVE-2025-21703.sha1: line 1: bad commit id "000000000"`, "sha1", ErrBadCommit},
		{"json broken even when rejected", id, StatusRejected, with("json", "[]"), "", "json", nil},
	}
	for _, tt := range tests {
		_, err := Assemble(tt.id, tt.status, tt.files)
		var re *RecordError
		if !errors.As(err, &re) {
			t.Errorf("%s: Assemble = %v, want a *RecordError", tt.name, err)
			continue
		}
		if tt.wantErr != "" && err.Error() != tt.wantErr {
			t.Errorf("%s: Assemble error\n%s\nwant\n%s", tt.name, err, tt.wantErr)
		}
		if re.ID != tt.id || re.File != tt.file {
			t.Errorf("%s: RecordError{ID: %q, File: %q}, want %q, %q", tt.name, re.ID, re.File, tt.id, tt.file)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: %v does not wrap %v", tt.name, err, tt.is)
		}
	}

	// A .cvss file only matters while the JSON lacks a score or scenario.
	if _, err := Assemble(id, StatusPublished, with("cvss", "garbage")); err != nil {
		t.Errorf("scored JSON with a broken .cvss: %v", err)
	}
	unscored := with("cvss", "garbage")
	unscored["json"] = withoutMetrics(t, good["json"])
	if _, err := Assemble(id, StatusPublished, unscored); err == nil || !strings.HasPrefix(err.Error(), "CVE-2025-21703.cvss: ") {
		t.Errorf("unscored JSON with a broken .cvss: %v", err)
	}
	// Rejected records keep their ID and status whatever their other files say.
	rec, err := Assemble(id, StatusRejected, with("dyad", badDyad))
	if err != nil || rec.Status != StatusRejected || rec.Branches != nil {
		t.Errorf("rejected record with a broken .dyad: %+v, %v", rec.Branches, err)
	}
}
