package priority

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

const kevFixture = "testdata/known_exploited_vulnerabilities.json"

func fixtureKEV(t testing.TB) KEV {
	t.Helper()
	k, err := ReadKEV(kevFixture)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadKEV(t *testing.T) {
	k := fixtureKEV(t)
	if k.Len() != 11 || k.CatalogVersion != "2025.11.20" || k.Title != "CISA Catalog of Known Exploited Vulnerabilities" ||
		k.DateReleased != "2025-11-20T17:02:55.8035Z" {
		t.Errorf("catalog = %d entries, %q %q %q", k.Len(), k.CatalogVersion, k.Title, k.DateReleased)
	}
	e, ok := k.Lookup("CVE-2024-1086")
	if !ok {
		t.Fatal("CVE-2024-1086 not found")
	}
	want := KEVEntry{
		CVE:              "CVE-2024-1086",
		VendorProject:    "Linux",
		Product:          "Kernel",
		Name:             "Linux Kernel Use-After-Free Vulnerability",
		DateAdded:        time.Date(2024, 5, 30, 0, 0, 0, 0, time.UTC),
		DueDate:          time.Date(2024, 6, 20, 0, 0, 0, 0, time.UTC),
		RansomwareUse:    "Known",
		Notes:            "https://nvd.nist.gov/vuln/detail/CVE-2024-1086",
		CWEs:             []string{"CWE-416"},
		ShortDescription: e.ShortDescription,
		RequiredAction:   "Apply mitigations per vendor instructions or discontinue use of the product if mitigations are unavailable.",
	}
	if !kevEntryEqual(e, want) {
		t.Errorf("Lookup(CVE-2024-1086) = %+v\nwant %+v", e, want)
	}
	if !e.Ransomware() {
		t.Error("CVE-2024-1086: Ransomware() = false")
	}
	if !strings.Contains(e.ShortDescription, "nf_tables") {
		t.Errorf("short description %q", e.ShortDescription)
	}
	if e, _ := k.Lookup("CVE-2024-53104"); e.Ransomware() {
		t.Error("CVE-2024-53104: Ransomware() = true")
	}
	if _, ok := k.Lookup("CVE-2024-26581"); ok {
		t.Error("CVE-2024-26581 is not in KEV")
	}
	if _, ok := (KEV{}).Lookup("CVE-2024-1086"); ok {
		t.Error("the zero KEV has entries")
	}
}

func kevEntryEqual(a, b KEVEntry) bool {
	return a.CVE == b.CVE && a.VendorProject == b.VendorProject && a.Product == b.Product &&
		a.Name == b.Name && a.DateAdded.Equal(b.DateAdded) && a.DueDate.Equal(b.DueDate) &&
		a.ShortDescription == b.ShortDescription && a.RequiredAction == b.RequiredAction &&
		a.RansomwareUse == b.RansomwareUse && a.Notes == b.Notes && slices.Equal(a.CWEs, b.CWEs)
}

// kevJSON wraps entries into a catalog.
func kevJSON(entries ...string) string {
	return `{"title":"t","catalogVersion":"1","dateReleased":"2025-01-01T00:00:00Z","vulnerabilities":[` +
		strings.Join(entries, ",") + `]}`
}

const goodEntry = `{"cveID":"CVE-2024-1086","dateAdded":"2024-05-30","vulnerabilityName":"x","knownRansomwareCampaignUse":"Known","cwes":[]}`

func TestLoadKEVErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings of the error
	}{
		{"empty", "", []string{"want a JSON object"}},
		{"array", `[{"cveID":"CVE-2024-1086"}]`, []string{"want a JSON object"}},
		{"csv", "cveID,vendorProject\nCVE-2024-1086,Linux\n", []string{"want a JSON object"}},
		{"truncated", kevJSON(goodEntry)[:60], []string{"unexpected EOF"}},
		{"no array", `{"title":"t","count":0}`, []string{"no vulnerabilities array"}},
		{"null array", `{"vulnerabilities":null}`, []string{"no vulnerabilities array"}},
		{"array of wrong type", `{"vulnerabilities":{"cveID":"CVE-2024-1086"}}`, []string{"cannot unmarshal"}},
		{"count mismatch", `{"count":2,"vulnerabilities":[` + goodEntry + `]}`, []string{"count is 2", "has 1 entries"}},
		{"bad id", kevJSON(goodEntry, `{"cveID":"CVE-24-1","dateAdded":"2024-05-30"}`), []string{"vulnerabilities[1]", `bad cveID "CVE-24-1"`}},
		{"lowercase id", kevJSON(`{"cveID":"cve-2024-1086","dateAdded":"2024-05-30"}`), []string{"vulnerabilities[0]", "bad cveID"}},
		{"no id", kevJSON(goodEntry, `{"dateAdded":"2024-05-30"}`), []string{"vulnerabilities[1]", "no cveID"}},
		{"id not a string", kevJSON(`{"cveID":1086,"dateAdded":"2024-05-30"}`), []string{"vulnerabilities[0]", "cannot unmarshal number"}},
		{"entry not an object", kevJSON(goodEntry, `"CVE-2024-1086"`), []string{"vulnerabilities[1]", "cannot unmarshal string"}},
		{"null entry", kevJSON(`null`), []string{"vulnerabilities[0]", "no cveID"}},
		{"no date", kevJSON(`{"cveID":"CVE-2024-1086"}`), []string{"vulnerabilities[0]", "no dateAdded"}},
		{"bad date", kevJSON(`{"cveID":"CVE-2024-1086","dateAdded":"05/30/2024"}`), []string{"vulnerabilities[0]", `bad dateAdded "05/30/2024"`}},
		{"bad due date", kevJSON(`{"cveID":"CVE-2024-1086","dateAdded":"2024-05-30","dueDate":"soon"}`), []string{"bad dueDate"}},
		{"duplicate", kevJSON(goodEntry, goodEntry), []string{"vulnerabilities[1]", "repeats vulnerabilities[0]"}},
		{"trailing data", kevJSON(goodEntry) + "{}", []string{"data after the catalog"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKEV(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("LoadKEV(%q) = nil error", tt.in)
			}
			if !errors.Is(err, ErrBadKEV) {
				t.Errorf("LoadKEV(%q) = %v, want ErrBadKEV", tt.in, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadKEV(%q) = %v, want it to say %q", tt.in, err, w)
				}
			}
		})
	}
}

func TestLoadKEVMinimal(t *testing.T) {
	// Fields beyond cveID and dateAdded are optional; count is too.
	k, err := LoadKEV(strings.NewReader("\n " + kevJSON(goodEntry) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := k.Lookup("CVE-2024-1086")
	if !ok || !e.DueDate.IsZero() || !e.Ransomware() || e.Name != "x" {
		t.Errorf("Lookup = %+v, %v", e, ok)
	}
}

func TestReadKEVErrors(t *testing.T) {
	if _, err := ReadKEV(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadKEV(missing) = %v, want ErrNotExist", err)
	}
	p := filepath.Join(t.TempDir(), "kev.json")
	if err := os.WriteFile(p, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKEV(p); !errors.Is(err, ErrBadKEV) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadKEV(%s) = %v, want ErrBadKEV naming the file", p, err)
	}
}

func FuzzLoadKEV(f *testing.F) {
	fixture, err := os.ReadFile(kevFixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture)
	f.Add([]byte(kevJSON(goodEntry)))
	f.Add([]byte(kevJSON(goodEntry, goodEntry)))
	f.Add([]byte(`{"count":1,"vulnerabilities":[{"cveID":"CVE-2024-1086","dateAdded":"2024-05-30","dueDate":"2024-06-20"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"vulnerabilities":[null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := LoadKEV(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrBadKEV) {
				t.Fatalf("error %v does not wrap ErrBadKEV", err)
			}
			return
		}
		// What loads is usable: every entry valid and found by its ID.
		for i, e := range k.Entries {
			if !vulns.IsCVEID(e.CVE) {
				t.Fatalf("entry %d: %+v", i, e)
			}
			if got, ok := k.Lookup(e.CVE); !ok || got.CVE != e.CVE {
				t.Fatalf("Lookup(%s) = %+v, %v", e.CVE, got, ok)
			}
		}
	})
}
