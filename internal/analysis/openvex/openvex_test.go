package openvex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

func testKernel() *kernel.Kernel {
	return &kernel.Kernel{Name: "cloud", Release: "6.1.0-50-cloud-amd64", Version: "6.1.176", Arch: "x86_64",
		Debian: kernel.DebianFor("6.1.0-50-cloud-amd64", "6.1.176-1")}
}

func verdicts(n int) []gauge.Verdict {
	kinds := []gauge.Verdict{
		{Status: gauge.Affected, Reason: gauge.InRangeCompiled, Where: []string{"vmlinux"}, Evidence: []string{"version: in range", "build: compiled"}},
		{Status: gauge.NotAffected, Reason: gauge.FixedInVersion, Evidence: []string{"fixed in 6.1.129"}},
		{Status: gauge.NotAffected, Reason: gauge.CodeNotCompiled, Evidence: []string{"not compiled"}},
		{Status: gauge.NotAffected, Reason: gauge.NotInRange, Evidence: []string{"not in range"}},
		{Status: gauge.NotAffected, Reason: gauge.FixedByKernel, Evidence: []string{"declared"}},
		{Status: gauge.Unknown, Reason: gauge.HeaderUnresolved, TreatAsAffected: true, Evidence: []string{"header"}},
		{Status: gauge.NotAffected, Reason: gauge.RejectedCVE},
	}
	out := make([]gauge.Verdict, n)
	for i := range out {
		out[i] = kinds[i%len(kinds)]
		out[i].CVE = fmt.Sprintf("CVE-2025-%05d", i)
		out[i].Kernel = "cloud"
	}
	return out
}

func TestDocument(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	doc, err := Document(testKernel(), verdicts(7), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, doc); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Context    string `json:"@context"`
		ID         string `json:"@id"`
		Statements []struct {
			Vulnerability struct{ Name string }
			Products      []struct {
				ID string `json:"@id"`
			}
			Status          string
			Justification   string
			ImpactStatement string `json:"impact_statement"`
			ActionStatement string `json:"action_statement"`
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, justification string }{
		{"affected", ""}, {"fixed", ""}, {"not_affected", "vulnerable_code_not_present"},
		{"not_affected", "vulnerable_code_not_present"}, {"fixed", ""}, {"under_investigation", ""},
	}
	if len(got.Statements) != len(want) {
		t.Fatalf("%d statements, want %d (rejected CVEs are left out)", len(got.Statements), len(want))
	}
	for i, w := range want {
		s := got.Statements[i]
		if s.Status != w.status || s.Justification != w.justification {
			t.Errorf("statement %d: %s/%s, want %s/%s", i, s.Status, s.Justification, w.status, w.justification)
		}
		if len(s.Products) != 1 || s.Products[0].ID != "pkg:deb/debian/linux-image-6.1.0-50-cloud-amd64@6.1.176-1?arch=amd64" {
			t.Errorf("statement %d products: %+v", i, s.Products)
		}
		if w.status == "not_affected" && s.ImpactStatement == "" {
			t.Errorf("statement %d: not_affected without an impact statement", i)
		}
	}
	if got.Statements[0].ActionStatement == "" {
		t.Error("affected statement without an action")
	}
	if got.ID == "" || got.Context == "" {
		t.Errorf("document id %q, context %q", got.ID, got.Context)
	}
}

func BenchmarkDocument(b *testing.B) {
	vs := verdicts(15000)
	k := testKernel()
	for b.Loop() {
		doc, err := Document(k, vs, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := Write(&bytes.Buffer{}, doc); err != nil {
			b.Fatal(err)
		}
	}
}
