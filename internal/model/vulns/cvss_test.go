package vulns

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCVSSVector(t *testing.T) {
	tests := []struct {
		vector   string
		score    float64
		severity string
	}{
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "HIGH"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", 5.5, "MEDIUM"},
		{"CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 6.5, "MEDIUM"},
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "LOW"},
		{"CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0, "NONE"},
		// Scope changed: impact and PR weights differ, and the sum is
		// scaled by 1.08 before rounding up.
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CRITICAL"},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9, "CRITICAL"},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "MEDIUM"},
		{"CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:C/C:H/I:H/A:H", 7.8, "HIGH"},
		{" CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H\n", 7.8, "HIGH"},
	}
	for _, tt := range tests {
		c, err := ParseCVSSVector(tt.vector)
		if err != nil {
			t.Errorf("ParseCVSSVector(%q) = %v", tt.vector, err)
			continue
		}
		if c.Score != tt.score || c.Severity != tt.severity {
			t.Errorf("ParseCVSSVector(%q) = %v %s, want %v %s", tt.vector, c.Score, c.Severity, tt.score, tt.severity)
		}
		if c.Vector != strings.TrimSpace(tt.vector) {
			t.Errorf("ParseCVSSVector(%q).Vector = %q", tt.vector, c.Vector)
		}
	}
	for _, bad := range []string{
		"", "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H", "CVSS:3.1/AV:X/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:L/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/",
	} {
		if c, err := ParseCVSSVector(bad); !errors.Is(err, ErrBadVector) {
			t.Errorf("ParseCVSSVector(%q) = %+v, %v, want ErrBadVector", bad, c, err)
		}
	}
}

func TestParseCVSSFile(t *testing.T) {
	scenario := func(id string) string {
		jr, err := ParseJSON(testdataFile(t, id+".json"))
		if err != nil || jr.CVSS == nil || len(jr.CVSS.Scenarios) != 1 {
			t.Fatalf("%s.json: %+v, %v", id, jr, err)
		}
		return jr.CVSS.Scenarios[0]
	}
	perMetric := scenario("CVE-2024-26581")
	raw26581 := string(testdataFile(t, "CVE-2024-26581.cvss"))
	header, body, _ := strings.Cut(raw26581, "\n\n")
	indented := header + "\n\n\t" + strings.ReplaceAll(strings.TrimSpace(body), "\n", "\n\t") + "\n"

	tests := []struct {
		name     string
		in       []byte
		scenario string // "" = none
	}{
		// One free-text paragraph (one of the few files written that way).
		{"CVE-2025-21703", testdataFile(t, "CVE-2025-21703.cvss"), scenario("CVE-2025-21703")},
		// One paragraph per metric with indented continuation lines; the
		// CNA publishes it unwrapped, one metric a line.
		{"CVE-2024-26581", []byte(raw26581), perMetric},
		{"CVE-2024-26581 with CRLF", []byte(strings.ReplaceAll(raw26581, "\n", "\r\n")), perMetric},
		{"CVE-2024-26581 indented as a whole", []byte(indented), perMetric},
		// The file as it was first committed (2026-08-01): vector only.
		{"CVE-2024-26581 vector only", testdataFile(t, "CVE-2024-26581-vector-only.cvss"), ""},
		{"vector only, no newline", []byte("f4215fc3-5b6b-47ff-a258-f7189bd81038 CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), ""},
		{"blank rationale", []byte("org CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H\n\n  \n\n"), ""},
		{"two prose paragraphs", []byte("org CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H\n\nFirst   para\ngraph.\n\n\nSecond.\n"), "First para graph.\nSecond."},
	}
	for _, tt := range tests {
		c, err := ParseCVSSFile(tt.in)
		if err != nil {
			t.Errorf("%s: ParseCVSSFile = %v", tt.name, err)
			continue
		}
		if c.Vector != "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" || c.Score != 7.8 || c.Severity != "HIGH" {
			t.Errorf("%s: ParseCVSSFile = %q %v %s, want the 7.8 HIGH vector", tt.name, c.Vector, c.Score, c.Severity)
		}
		var got string
		if len(c.Scenarios) == 1 {
			got = c.Scenarios[0]
		} else if len(c.Scenarios) > 1 {
			t.Errorf("%s: %d scenarios, want at most 1", tt.name, len(c.Scenarios))
		}
		if got != tt.scenario {
			t.Errorf("%s: scenario\n%q\nwant\n%q", tt.name, got, tt.scenario)
		}
	}
}

func TestParseCVSSFileErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"\n\nAV:L - text",
		"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
		"org CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H\n",
		"org CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H\norg CVSS:3.1/AV:Q\n",
		"# only a comment\n",
	} {
		if c, err := ParseCVSSFile([]byte(in)); err == nil {
			t.Errorf("ParseCVSSFile(%q) = %+v, want error", in, c)
		}
	}
}

func FuzzParseCVSSFile(f *testing.F) {
	for _, b := range testdataGlob(f, "*.cvss") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCVSSFile(data)
		if err != nil {
			return
		}
		if c.Score < 0 || c.Score > 10 || c.Severity == "" {
			t.Fatalf("ParseCVSSFile gave %+v", c)
		}
		for _, s := range c.Scenarios {
			if s == "" || strings.Contains(s, "\n\n") {
				t.Fatalf("scenario %q not normalized", s)
			}
		}
	})
}
