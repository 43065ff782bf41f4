package priority

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

const (
	epssFixture   = "testdata/epss_scores-2025-11-20.csv"
	epssFixtureGz = "testdata/epss_scores-2025-11-20.csv.gz"
)

func fixtureEPSS(t testing.TB) EPSS {
	t.Helper()
	e, err := ReadEPSS(epssFixtureGz)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLoadEPSS(t *testing.T) {
	for _, path := range []string{epssFixture, epssFixtureGz} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			e, err := ReadEPSS(path)
			if err != nil {
				t.Fatal(err)
			}
			if e.Len() != 13 || e.ModelVersion != "v2025.03.14" || e.ScoreDate != "2025-11-20T12:55:00Z" {
				t.Errorf("ReadEPSS(%s) = %d rows, model %q, date %q", path, e.Len(), e.ModelVersion, e.ScoreDate)
			}
			if s, ok := e.Lookup("CVE-2024-1086"); !ok || s != (EPSSScore{0.83201, 0.99231}) {
				t.Errorf("Lookup(CVE-2024-1086) = %v, %v, want {0.83201 0.99231}", s, ok)
			}
			if _, ok := e.Lookup("CVE-2099-0001"); ok {
				t.Error("Lookup(CVE-2099-0001) found a score")
			}
		})
	}
}

func TestLoadEPSSVariants(t *testing.T) {
	tests := []struct {
		name, in string
		rows     int
		model    string
	}{
		{"no comment line", "cve,epss,percentile\nCVE-2024-1086,0.83201,0.99231\n", 1, ""},
		{"CRLF", "#model_version:v2023.03.01,score_date:2024-01-01T00:00:00+0000\r\ncve,epss,percentile\r\nCVE-2024-1086,0.8,0.9\r\n", 1, "v2023.03.01"},
		{"no final newline", "cve,epss,percentile\nCVE-2024-1086,0.8,0.9", 1, ""},
		{"blank lines", "cve,epss,percentile\nCVE-2024-1086,0.8,0.9\n\n", 1, ""},
		{"header only", "cve,epss,percentile\n", 0, ""},
		{"exponent", "cve,epss,percentile\nCVE-2024-1086,1e-05,0\n", 1, ""},
		{"other comment", "# scores from FIRST\ncve,epss,percentile\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := LoadEPSS(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("LoadEPSS(%q) = %v", tt.in, err)
			}
			if e.Len() != tt.rows || e.ModelVersion != tt.model {
				t.Errorf("LoadEPSS(%q) = %d rows, model %q; want %d, %q", tt.in, e.Len(), e.ModelVersion, tt.rows, tt.model)
			}
		})
	}
}

func gz(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLoadEPSSErrors(t *testing.T) {
	const head = "#model_version:v2025.03.14,score_date:2025-11-20T12:55:00Z\ncve,epss,percentile\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{`no "cve,epss,percentile" header`}},
		{"comment only", "#model_version:v1\n", []string{"no"}},
		{"no header", "CVE-2024-1086,0.8,0.9\n", []string{"line 1", "want header"}},
		{"wrong header", "#x\ncve,score\n", []string{"line 2", "want header", `"cve,score"`}},
		{"JSON", `{"vulnerabilities":[]}`, []string{"line 1", "want header"}},
		{"bad id", head + "CVE-2024-1086,0.8,0.9\nCVE-2024-1,0.1,0.2\n", []string{"line 4", `bad CVE ID "CVE-2024-1"`}},
		{"two fields", head + "CVE-2024-1086,0.8\n", []string{"line 3", "want 3 fields"}},
		{"four fields", head + "CVE-2024-1086,0.8,0.9,1\n", []string{"line 3", "want 3 fields"}},
		{"bad epss", head + "CVE-2024-1086,high,0.9\n", []string{"line 3", "CVE-2024-1086: epss", `"high"`}},
		{"epss above 1", head + "CVE-2024-1086,1.5,0.9\n", []string{"line 3", "epss", "[0, 1]"}},
		{"negative", head + "CVE-2024-1086,-0.1,0.9\n", []string{"line 3", "epss"}},
		{"NaN", head + "CVE-2024-1086,NaN,0.9\n", []string{"line 3", "epss"}},
		{"bad percentile", head + "CVE-2024-1086,0.5,99\n", []string{"line 3", "percentile"}},
		{"duplicate", head + "CVE-2024-1086,0.5,0.9\nCVE-2024-1086,0.5,0.9\n", []string{"line 4", "appears twice"}},
		{"comment after header", head + "#x\n", []string{"line 3", "comment after the header"}},
		{"long line", head + strings.Repeat("x", 2<<20), []string{"line 3", "too long"}},
		{"bad gzip", "\x1f\x8b\x08junk", []string{"gzip"}},
		{"truncated gzip", gz(t, head+"CVE-2024-1086,0.5,0.9\n")[:40], []string{"read", "unexpected EOF"}},
		{"gzip of a bad row", gz(t, head+"CVE-2024-1086,0.5\n"), []string{"line 3", "want 3 fields"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadEPSS(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("LoadEPSS(%q) = nil error", clip(tt.in))
			}
			if !errors.Is(err, ErrBadEPSS) {
				t.Errorf("LoadEPSS(%q) = %v, want ErrBadEPSS", clip(tt.in), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadEPSS(%q) = %v, want it to say %q", clip(tt.in), err, w)
				}
			}
		})
	}
}

func TestReadEPSSErrors(t *testing.T) {
	if _, err := ReadEPSS(filepath.Join(t.TempDir(), "missing.csv.gz")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadEPSS(missing) = %v, want ErrNotExist", err)
	}
}

// BenchmarkLoadEPSS reads a day's file of the real size (about 300,000
// CVEs), gzip-compressed as FIRST serves it.
func BenchmarkLoadEPSS(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("#model_version:v2025.03.14,score_date:2025-11-20T12:55:00Z\ncve,epss,percentile\n")
	for i := range 300000 {
		fmt.Fprintf(&sb, "CVE-%d-%04d,0.%05d,0.%05d\n", 1999+i/20000, i%20000, i%99991, i%99989)
	}
	data := gz(b, sb.String())
	b.SetBytes(int64(sb.Len()))
	for b.Loop() {
		e, err := LoadEPSS(strings.NewReader(data))
		if err != nil || e.Len() != 300000 {
			b.Fatal(e.Len(), err)
		}
	}
}

func FuzzLoadEPSS(f *testing.F) {
	for _, p := range []string{epssFixture, epssFixtureGz} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("cve,epss,percentile\nCVE-2024-1086,0.8,0.9\r\n"))
	f.Add([]byte("#a:b,c\ncve,epss,percentile\n\nCVE-2024-1086,1e-05,0\n"))
	f.Add([]byte("\x1f\x8b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := LoadEPSS(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadEPSS) {
				t.Fatalf("error %v does not wrap ErrBadEPSS", err)
			}
			return
		}
		for id, s := range e.scores {
			if !vulns.IsCVEID(id) || math.IsNaN(s.Probability) || s.Probability < 0 || s.Probability > 1 ||
				math.IsNaN(s.Percentile) || s.Percentile < 0 || s.Percentile > 1 {
				t.Fatalf("row %s: %+v", id, s)
			}
		}
	})
}
