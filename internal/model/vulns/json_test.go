package vulns

import (
	"slices"
	"strings"
	"testing"
)

func TestParseJSON21703(t *testing.T) {
	jr, err := ParseJSON(testdataFile(t, "CVE-2025-21703.json"))
	if err != nil {
		t.Fatal(err)
	}
	if jr.ID != "CVE-2025-21703" || jr.State != "PUBLISHED" {
		t.Errorf("ID, State = %q, %q", jr.ID, jr.State)
	}
	if want := "netem: Update sch->q.qlen before qdisc_tree_reduce_backlog()"; jr.Title != want {
		t.Errorf("Title = %q, want %q", jr.Title, want)
	}
	if !strings.HasPrefix(jr.Description, "In the Linux kernel, the following vulnerability has been resolved:\n\nnetem: Update") ||
		!strings.HasSuffix(jr.Description, "maintain its active list.") {
		t.Errorf("Description = %q", jr.Description)
	}
	if !slices.Equal(jr.ProgramFiles, []string{"net/sched/sch_netem.c"}) {
		t.Errorf("ProgramFiles = %q", jr.ProgramFiles)
	}
	if jr.DefaultStatus != "affected" {
		t.Errorf("DefaultStatus = %q, want affected", jr.DefaultStatus)
	}
	c := jr.CVSS
	if c == nil || c.Vector != "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" || c.Score != 7.8 || c.Severity != "HIGH" {
		t.Fatalf("CVSS = %+v", c)
	}
	if len(c.Scenarios) != 1 || !strings.HasPrefix(c.Scenarios[0], "UAF in netem/DRR qdisc interaction.") {
		t.Errorf("Scenarios = %q", c.Scenarios)
	}
	// 8 git ranges + 6 stable semver ranges in the git product, 10 in the
	// semver product.
	if len(jr.Ranges) != 24 {
		t.Fatalf("%d ranges, want 24", len(jr.Ranges))
	}
	wants := map[int]Range{
		3:  {Product: "git", Version: "10df49cfca73dfbbdb6c4150d859f7e8926ae427", LessThan: "7b79ca9a1de6a428d486ff52fb3d602321c08f55", Status: "affected", VersionType: "git"},
		11: {Product: "git", Version: "6.1.121", LessThan: "6.1.129", Status: "affected", VersionType: "semver"},
		14: {Product: "semver", Version: "6.13", Status: "affected"},
		15: {Product: "semver", Version: "0", LessThan: "6.13", Status: "unaffected", VersionType: "semver"},
		19: {Product: "semver", Version: "6.1.129", LessThanOrEqual: "6.1.*", Status: "unaffected", VersionType: "semver"},
		23: {Product: "semver", Version: "6.14", LessThanOrEqual: "*", Status: "unaffected", VersionType: "original_commit_for_fix"},
	}
	for i, want := range wants {
		if jr.Ranges[i] != want {
			t.Errorf("Ranges[%d] = %+v, want %+v", i, jr.Ranges[i], want)
		}
	}
}

func TestParseJSONOdd(t *testing.T) {
	tests := []struct {
		file          string
		title         string
		files         []string
		defaultStatus string
		scored        bool
		scenarios     int
		ranges        int
		semverRanges  int
	}{
		{"CVE-2024-26581.json", "netfilter: nft_set_rbtree: skip end interval element from gc", []string{"net/netfilter/nft_set_rbtree.c"}, "affected", true, 1, 23, 9},
		// Introduced only in stable branches: the semver product is
		// unaffected by default and has no versions at all.
		{"CVE-2023-53012.json", "thermal: core: call put_device() only after device_register() fails", []string{"drivers/thermal/thermal_core.c"}, "unaffected", false, 0, 7, 0},
		// Rejected, hand-made: one affected entry, no title, no programFiles.
		{"CVE-2025-0927.json", "", nil, "unaffected", false, 0, 1, 1},
		// Rejected: two affected entries with neither programFiles nor versions.
		{"CVE-2024-26701.json", "eventfs: Do not create dentries nor inodes in iterate_shared", nil, "unaffected", false, 0, 0, 0},
		// Rejected: scored, but the metrics entry has no scenarios.
		{"CVE-2026-46237.json", "", nil, "", true, 0, -1, -1},
	}
	for _, tt := range tests {
		jr, err := ParseJSON(testdataFile(t, tt.file))
		if err != nil {
			t.Errorf("ParseJSON(%s) = %v", tt.file, err)
			continue
		}
		if tt.title != "" && jr.Title != tt.title {
			t.Errorf("%s: Title = %q, want %q", tt.file, jr.Title, tt.title)
		}
		if tt.ranges >= 0 {
			if jr.Title != tt.title {
				t.Errorf("%s: Title = %q, want %q", tt.file, jr.Title, tt.title)
			}
			if !slices.Equal(jr.ProgramFiles, tt.files) {
				t.Errorf("%s: ProgramFiles = %q, want %q", tt.file, jr.ProgramFiles, tt.files)
			}
			if jr.DefaultStatus != tt.defaultStatus {
				t.Errorf("%s: DefaultStatus = %q, want %q", tt.file, jr.DefaultStatus, tt.defaultStatus)
			}
			sem := 0
			for _, r := range jr.Ranges {
				if r.Product == "semver" {
					sem++
				}
			}
			if len(jr.Ranges) != tt.ranges || sem != tt.semverRanges {
				t.Errorf("%s: %d ranges (%d semver), want %d (%d)", tt.file, len(jr.Ranges), sem, tt.ranges, tt.semverRanges)
			}
		}
		if (jr.CVSS != nil) != tt.scored {
			t.Errorf("%s: CVSS = %+v, want scored %v", tt.file, jr.CVSS, tt.scored)
		} else if jr.CVSS != nil && len(jr.CVSS.Scenarios) != tt.scenarios {
			t.Errorf("%s: %d scenarios, want %d", tt.file, len(jr.CVSS.Scenarios), tt.scenarios)
		}
	}
}

func TestParseJSONErrors(t *testing.T) {
	valid := string(testdataFile(t, "CVE-2025-21703.json"))
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "decode cve json"},
		{"truncated", valid[:len(valid)/2], "decode cve json"},
		{"not an object", "[]", "decode cve json"},
		{"no cveId", `{"containers":{"cna":{}}}`, "not a CVE id"},
		{"bad cveId", `{"cveMetadata":{"cveId":"CVE-25-1"}}`, `"CVE-25-1": not a CVE id`},
		{"wrong type", `{"cveMetadata":{"cveId":7}}`, "decode cve json"},
		{"bad vector", strings.Replace(valid, "AV:L/AC:L", "AV:Q/AC:L", 1), "metrics[0]: bad CVSS vector"},
	}
	for _, tt := range tests {
		jr, err := ParseJSON([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: ParseJSON = %+v, %v, want error containing %q", tt.name, jr, err, tt.wantErr)
		}
	}
}

func TestIsCVEID(t *testing.T) {
	for s, want := range map[string]bool{
		"CVE-2025-21703": true, "CVE-2019-25161": true, "CVE-2026-1234": true, "CVE-2026-1234567": true,
		"": false, "CVE-2026-123": false, "cve-2026-1234": false, "CVE-26-1234": false, "CVE-2026-12a4": false,
		"CVE-2026-1234 ": false, "CVE-2026": false, "CVE--2026-1234": false,
	} {
		if got := IsCVEID(s); got != want {
			t.Errorf("IsCVEID(%q) = %v, want %v", s, got, want)
		}
	}
}

// BenchmarkParseJSON decodes a large real record (CVE-2024-26581, 13 KB,
// scored, with rationale); a full sync decodes ≈15k of them.
func BenchmarkParseJSON(b *testing.B) {
	data := testdataFile(b, "CVE-2024-26581.json")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, b := range testdataGlob(f, "*.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		jr, err := ParseJSON(data)
		if err != nil {
			return
		}
		if !IsCVEID(jr.ID) {
			t.Fatalf("ParseJSON accepted id %q", jr.ID)
		}
		if jr.CVSS != nil && (jr.CVSS.Score < 0 || jr.CVSS.Score > 10) {
			t.Fatalf("score %v", jr.CVSS.Score)
		}
		seen := map[string]bool{}
		for _, f := range jr.ProgramFiles {
			if seen[f] {
				t.Fatalf("ProgramFiles %q repeats %q", jr.ProgramFiles, f)
			}
			seen[f] = true
		}
	})
}

func TestCompareIDs(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"CVE-2024-9999", "CVE-2024-10000", -1},
		{"CVE-2024-10000", "CVE-2024-9999", 1},
		{"CVE-2023-99999", "CVE-2024-0001", -1},
		{"CVE-2024-1086", "CVE-2024-1086", 0},
		{"CVE-2024-1086", "junk", -1},
		{"junk", "CVE-2024-1086", 1},
		{"a", "b", -1},
	}
	for _, tt := range tests {
		if got := CompareIDs(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareIDs(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
