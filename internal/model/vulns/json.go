package vulns

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// JSONRecord is what TuxTape takes from a CVE JSON 5 record written by the
// kernel CNA (its bippy tool). Everything else in the record (references,
// cpeApplicability, …) is derivable from these fields or not needed.
type JSONRecord struct {
	ID    string // cveMetadata.cveId
	State string // cveMetadata.state; rejected records can still say PUBLISHED
	Title string // containers.cna.title; empty in a few hand-made records
	// Description is the first English containers.cna.descriptions value.
	Description string
	// CVSS is from the first metrics[] entry with a cvssV3_1 vector, nil
	// when the CNA has not scored the CVE. Score and Severity are computed
	// from the vector; Scenarios are that entry's scenarios[].value.
	CVSS *CVSS
	// ProgramFiles is the union of affected[].programFiles, in order.
	ProgramFiles []string
	// DefaultStatus is the semver product's defaultStatus.
	DefaultStatus string
	// Ranges are affected[].versions of both products, in order.
	Ranges []Range
}

// The cve* types mirror only the parts of the CVE JSON 5 schema that
// ParseJSON reads: encoding/json skips everything else without building it,
// which keeps a full sync (≈15k records) fast.
type cveJSON struct {
	CVEMetadata struct {
		CVEID string `json:"cveId"`
		State string `json:"state"`
	} `json:"cveMetadata"`
	Containers struct {
		CNA struct {
			Title        string          `json:"title"`
			Descriptions []cveLangString `json:"descriptions"`
			Metrics      []cveMetric     `json:"metrics"`
			Affected     []cveAffected   `json:"affected"`
		} `json:"cna"`
	} `json:"containers"`
}

type cveLangString struct {
	Lang  string `json:"lang"`
	Value string `json:"value"`
}

type cveMetric struct {
	CVSSV31 *struct {
		VectorString string `json:"vectorString"`
	} `json:"cvssV3_1"`
	Scenarios []cveLangString `json:"scenarios"`
}

type cveAffected struct {
	DefaultStatus string       `json:"defaultStatus"`
	ProgramFiles  []string     `json:"programFiles"`
	Versions      []cveVersion `json:"versions"`
}

type cveVersion struct {
	Version         string `json:"version"`
	LessThan        string `json:"lessThan"`
	LessThanOrEqual string `json:"lessThanOrEqual"`
	Status          string `json:"status"`
	VersionType     string `json:"versionType"`
}

// ParseJSON decodes a CVE JSON 5 record. It fails on malformed JSON, a
// missing or malformed cveMetadata.cveId, and an invalid CVSS vector; it
// does not insist on fields the CNA leaves out of odd records (title,
// programFiles, versions).
func ParseJSON(data []byte) (*JSONRecord, error) {
	var raw cveJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode cve json: %w", err)
	}
	id := raw.CVEMetadata.CVEID
	if !IsCVEID(id) {
		return nil, fmt.Errorf("cveMetadata.cveId %q: not a CVE id", clip(id))
	}
	cna := &raw.Containers.CNA
	rec := &JSONRecord{
		ID:          id,
		State:       raw.CVEMetadata.State,
		Title:       cna.Title,
		Description: pickEnglish(cna.Descriptions),
	}
	for i, m := range cna.Metrics {
		if m.CVSSV31 == nil || m.CVSSV31.VectorString == "" {
			continue
		}
		c, err := ParseCVSSVector(m.CVSSV31.VectorString)
		if err != nil {
			return nil, fmt.Errorf("metrics[%d]: %w", i, err)
		}
		for _, s := range m.Scenarios {
			if isEnglish(s.Lang) && s.Value != "" {
				c.Scenarios = append(c.Scenarios, s.Value)
			}
		}
		rec.CVSS = c
		break
	}

	sem := semverProduct(cna.Affected)
	seen := make(map[string]bool)
	for i, a := range cna.Affected {
		for _, f := range a.ProgramFiles {
			if !seen[f] {
				seen[f] = true
				rec.ProgramFiles = append(rec.ProgramFiles, f)
			}
		}
		product := "git"
		if i == sem {
			product = "semver"
			rec.DefaultStatus = a.DefaultStatus
		}
		for _, v := range a.Versions {
			rec.Ranges = append(rec.Ranges, Range{
				Product:         product,
				Version:         v.Version,
				LessThan:        v.LessThan,
				LessThanOrEqual: v.LessThanOrEqual,
				Status:          v.Status,
				VersionType:     v.VersionType,
			})
		}
	}
	return rec, nil
}

// semverProduct picks the affected[] entry that describes kernel versions:
// the last one without git-typed ranges. The CNA writes a git product
// (commit ranges, plus the semver ranges of stable-only introductions)
// first and a semver product second, but the second can have no versions
// at all (CVE-2023-53012), and hand-made records have a single entry
// (CVE-2025-0927). It returns -1 when every entry has git ranges.
func semverProduct(affected []cveAffected) int {
	for i := len(affected) - 1; i >= 0; i-- {
		git := false
		for _, v := range affected[i].Versions {
			if v.VersionType == "git" {
				git = true
				break
			}
		}
		if !git {
			return i
		}
	}
	return -1
}

// pickEnglish returns the first English value, else the first value: the
// kernel CNA writes English only, but a record with a missing lang should
// still have a description.
func pickEnglish(ls []cveLangString) string {
	for _, l := range ls {
		if isEnglish(l.Lang) {
			return l.Value
		}
	}
	if len(ls) > 0 {
		return ls[0].Value
	}
	return ""
}

// isEnglish accepts the BCP 47 tags CVE records use for English ("en",
// "en-US", "eng").
func isEnglish(lang string) bool {
	lang = strings.ToLower(lang)
	return lang == "en" || lang == "eng" || strings.HasPrefix(lang, "en-")
}

// IsCVEID reports whether s is a CVE id, "CVE-YYYY-NNNN" with four or more
// sequence digits.
func IsCVEID(s string) bool {
	rest, ok := strings.CutPrefix(s, "CVE-")
	if !ok {
		return false
	}
	year, seq, ok := strings.Cut(rest, "-")
	return ok && len(year) == 4 && allDigits(year) && len(seq) >= 4 && len(seq) <= 19 && allDigits(seq)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// SplitID parses "CVE-<year>-<sequence>" into its numbers. It is looser
// than IsCVEID (any number of digits) so that whatever a store holds still
// orders by number.
func SplitID(id string) (year int, seq int64, ok bool) {
	rest, ok := strings.CutPrefix(id, "CVE-")
	if !ok {
		return 0, 0, false
	}
	y, n, ok := strings.Cut(rest, "-")
	if !ok || !allDigits(y) || !allDigits(n) {
		return 0, 0, false
	}
	yv, err1 := strconv.Atoi(y)
	nv, err2 := strconv.ParseInt(n, 10, 64)
	return yv, nv, err1 == nil && err2 == nil
}

// CompareIDs orders CVE IDs by year and then sequence number as numbers
// (CVE-2024-9999 before CVE-2024-10000); IDs that do not parse sort after
// those that do, as strings.
func CompareIDs(a, b string) int {
	ya, na, oka := SplitID(a)
	yb, nb, okb := SplitID(b)
	switch {
	case oka && okb:
		if c := cmp.Compare(ya, yb); c != 0 {
			return c
		}
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}
