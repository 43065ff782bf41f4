package feed

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseMeta(t *testing.T) {
	const k = "6.1.0-50-cloud-amd64"
	good := `{"tuxtape":{"kernel":"` + k + `","module":"livepatch_cves","patchset":"cves","version":3,"cves":["CVE-2024-26581"],"rings":["canary"],"replaces":2}}`
	tests := []struct {
		name, path, custom string
		wantErr            string
	}{
		{"good", k + "/cves-3.ko", good, ""},
		{"unknown fields ignored", k + "/cves-3.ko", strings.Replace(good, `"replaces"`, `"future":1,"replaces"`, 1), ""},
		{"path of another version", k + "/cves-4.ko", good, "its metadata names"},
		{"path of another kernel", "6.12.33+deb13-amd64/cves-3.ko", good, "its metadata names"},
		{"no custom", k + "/cves-3.ko", ``, "no custom"},
		{"no tuxtape object", k + "/cves-3.ko", `{"other":{}}`, "no \"tuxtape\""},
		{"null", k + "/cves-3.ko", `{"tuxtape":null}`, "kernel release"},
		{"bad CVE", k + "/cves-3.ko", strings.Replace(good, "CVE-2024-26581", "CVE-24-1", 1), "CVE id"},
		{"replaces itself", k + "/cves-3.ko", strings.Replace(good, `"replaces":2`, `"replaces":3`, 1), "replaces"},
		{"no rings", k + "/cves-3.ko", strings.Replace(good, `["canary"]`, `[]`, 1), "no rings"},
		{"bad ring", k + "/cves-3.ko", strings.Replace(good, `["canary"]`, `["../x"]`, 1), "ring"},
		{"bad module", k + "/cves-3.ko", strings.Replace(good, `livepatch_cves`, `a/b`, 1), "module name"},
		{"slash in kernel", "a/b/cves-3.ko", strings.Replace(good, k, "6.1/../../etc", 1), "kernel release"},
		{"bad vet report", k + "/cves-3.ko", strings.Replace(good, `"replaces"`, `"vet_report":"ABC","replaces"`, 1), "vetting report"},
		{"version 0", k + "/cves-0.ko", strings.Replace(good, `"version":3,`, `"version":0,`, 1), "version 0"},
		{"not JSON", k + "/cves-3.ko", `{`, "custom metadata"},
	}
	for _, tt := range tests {
		m, err := ParseMeta(tt.path, []byte(tt.custom))
		if tt.wantErr == "" {
			if err != nil || m.Version != 3 || m.Kernel != k {
				t.Errorf("%s: ParseMeta(%q) = %+v, %v, want version 3", tt.name, tt.path, m, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: ParseMeta(%q) = %+v, %v, want an error with %q", tt.name, tt.path, m, err, tt.wantErr)
		}
	}
}

func TestValidRelease(t *testing.T) {
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"6.1.0-50-cloud-amd64", true}, {"6.12.33+deb13-amd64", true}, {"5.14.0-427.el9.x86_64", true},
		{"5.15.0-105-generic", true}, {"6.8", true},
		{"", false}, {"linux", false}, {"6.1.0/../x", false}, {"6.1.0 x", false}, {"../6.1", false},
		{"6.1." + strings.Repeat("a", 61), false},
	} {
		if err := ValidRelease(tt.s); (err == nil) != tt.ok {
			t.Errorf("ValidRelease(%q) = %v, want ok %v", tt.s, err, tt.ok)
		}
	}
}

// FuzzParseMeta: whatever a targets file holds, ParseMeta does not panic,
// and what it accepts is consistent with its path and survives a round
// trip.
func FuzzParseMeta(f *testing.F) {
	f.Add("6.1.0-50-cloud-amd64/cves-3.ko", []byte(`{"tuxtape":{"kernel":"6.1.0-50-cloud-amd64","module":"livepatch_cves","patchset":"cves","version":3,"cves":["CVE-2024-26581"],"rings":["canary","early"],"replaces":2,"vet_report":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}`))
	f.Add("6.1.0-50-cloud-amd64/cves-1.ko", []byte(`{"tuxtape":{"kernel":"6.1.0-50-cloud-amd64","module":"m","patchset":"cves","version":1,"cves":[],"rings":["stable"],"downgrade_of":0}}`))
	f.Add("x", []byte(`{"tuxtape":{"version":-1,"cves":null}}`))
	f.Add("", []byte(`[]`))
	f.Fuzz(func(t *testing.T, path string, custom []byte) {
		m, err := ParseMeta(path, custom)
		if err != nil {
			return
		}
		if path != TargetPath(m.Kernel, m.PatchSet, m.Version) || !strings.HasPrefix(path, m.Kernel+"/") {
			t.Fatalf("ParseMeta(%q) accepted metadata for %s", path, TargetPath(m.Kernel, m.PatchSet, m.Version))
		}
		if strings.Contains(m.Kernel, "/") || strings.Contains(m.PatchSet, "/") || len(m.Rings) == 0 {
			t.Fatalf("ParseMeta(%q) accepted %+v", path, m)
		}
		b, err := m.Custom()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseMeta(path, b)
		if err != nil {
			t.Fatalf("round trip of %+v: %v", m, err)
		}
		j1, _ := json.Marshal(m)
		j2, _ := json.Marshal(m2)
		if string(j1) != string(j2) {
			t.Fatalf("round trip: %s, then %s", j1, j2)
		}
	})
}
