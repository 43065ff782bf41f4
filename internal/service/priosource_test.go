package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

func TestPrioritySourceReloads(t *testing.T) {
	dir := t.TempDir()
	real, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "internal", "analysis", "priority", "testdata", "known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	kev := filepath.Join(dir, "kev.json")
	if err := os.WriteFile(kev, real, 0o644); err != nil {
		t.Fatal(err)
	}
	src := &prioritySource{files: PriorityInputs{KEV: kev}}
	in, _, err := src.current()
	if err != nil || in.KEV.Len() != 11 {
		t.Fatalf("Current = %d KEV entries, %v; want 11", in.KEV.Len(), err)
	}
	// A newer catalog with one entry fewer replaces it in place.
	fewer := strings.Replace(string(real), `"cveID": "CVE-2025-38352"`, `"cveID": "CVE-2025-99999"`, 1)
	if err := os.WriteFile(kev, []byte(fewer), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(kev, later, later)
	in, _, err = src.current()
	if _, ok := in.KEV.Lookup("CVE-2025-99999"); err != nil || !ok {
		t.Errorf("after the file changed: %v, CVE-2025-99999 in KEV: %v", err, ok)
	}
	// A broken file keeps the last good inputs, with the error.
	if err := os.WriteFile(kev, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(kev, later.Add(time.Minute), later.Add(time.Minute))
	in, _, err = src.current()
	if _, ok := in.KEV.Lookup("CVE-2025-99999"); err == nil || !ok {
		t.Errorf("a malformed catalog: %v; the last good one kept: %v", err, ok)
	}
	// Through the service: a file that never loaded is an error; one that
	// broke after a good load keeps the last good inputs.
	s := New(Config{})
	if err := s.CheckPriority(PriorityInputs{EPSS: filepath.Join(dir, "missing.csv")}); err == nil {
		t.Error("a missing EPSS file was accepted")
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, real, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPriority(PriorityInputs{KEV: good}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(good, []byte("{not json"), 0o644)
	os.Chtimes(good, later, later)
	if in, err := s.priorityInputs(PriorityInputs{KEV: good}); err != nil || in.KEV.Len() != 11 {
		t.Errorf("a catalog broken after a good load: %d entries, %v; want the last good 11", in.KEV.Len(), err)
	}
}
