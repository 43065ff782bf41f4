package service

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// newSynced is a Service on a fresh SQLite database synced to the
// bundle's head, with one kernel record (no profile: the tests use
// version checks only, or ask for profiles it does not have).
func newSynced(t *testing.T) *Service {
	t.Helper()
	if testing.Short() {
		t.Skip("syncs the CNA bundle")
	}
	dir := t.TempDir()
	s := New(Config{DB: filepath.Join(dir, "tuxtape.db"), CacheDir: filepath.Join(dir, "cache"), MirrorDir: testenv.Mirror(t)})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	sum, err := s.Sync(ctx, SyncOptions{NoFetch: true, Rev: testenv.BundleHead})
	if err != nil || sum.Records == 0 {
		t.Fatalf("Sync = %+v, %v", sum, err)
	}
	config, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "internal", "frontend", "cli", "testdata", "tinyconfig-x86_64.config"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddKernel(ctx, AddKernelOptions{Name: "tiny", Release: "6.1.176-tiny", Version: "6.1.176", Arch: "x86_64",
		Source: "/srv/linux-6.1.176.tar.xz", Config: config, Fixed: []NamedData{{Name: "fixed", Data: []byte("CVE-2025-21703\n")}}}); err != nil {
		t.Fatalf("AddKernel: %v", err)
	}
	return s
}

func TestQueries(t *testing.T) {
	s := newSynced(t)
	ctx := context.Background()

	invalid := []CVEQuery{
		{Status: "fixed"},
		{MinCVSS: math.NaN()},
		{MinCVSS: 11},
		{Sort: "age"},
		{Affected: true},
		{Kernel: "tiny", Profile: "guessed"},
	}
	for _, q := range invalid {
		if _, err := s.ListCVEs(ctx, q); !IsInvalid(err) {
			t.Errorf("ListCVEs(%+v) = %v, want an InvalidError", q, err)
		}
	}
	if _, err := s.ListCVEs(ctx, CVEQuery{Kernel: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ListCVEs(unknown kernel) = %v, want ErrNotFound", err)
	}

	all, err := s.ListCVEs(ctx, CVEQuery{Kernel: "tiny", Profile: ProfileNone, Status: vulns.StatusPublished})
	if err != nil {
		t.Fatal(err)
	}
	if all.Summary == nil || all.Summary.Total != len(all.CVEs) || len(all.CVEs) < 14000 {
		t.Fatalf("ListCVEs(tiny): %d CVEs, summary %+v", len(all.CVEs), all.Summary)
	}
	affected := 0
	for _, c := range all.CVEs {
		if c.Verdict == nil || c.Priority == nil || c.Record() == nil {
			t.Fatalf("%s: no verdict, priority or record", c.ID)
		}
		if c.Verdict.Counts() {
			affected++
		}
		if c.ID == "CVE-2025-21703" && c.Verdict.Status != gauge.NotAffected {
			t.Errorf("CVE-2025-21703 is declared fixed, verdict %s (%s)", c.Verdict.Status, c.Verdict.Reason)
		}
	}
	top, err := s.ListCVEs(ctx, CVEQuery{Kernel: "tiny", Profile: ProfileNone, Status: vulns.StatusPublished, Affected: true, Sort: "priority", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.CVEs) != 20 || top.Summary.Total != all.Summary.Total || affected < 20 {
		t.Errorf("--affected --limit 20: %d CVEs, summary total %d (want 20, %d)", len(top.CVEs), top.Summary.Total, all.Summary.Total)
	}
	if !slices.IsSortedFunc(top.CVEs, func(a, b CVE) int {
		switch {
		case a.Priority.Score > b.Priority.Score:
			return -1
		case a.Priority.Score < b.Priority.Score:
			return 1
		}
		return 0
	}) {
		t.Error("--sort priority is not highest first")
	}
	for _, c := range top.CVEs {
		if !c.Verdict.Counts() {
			t.Errorf("--affected kept %s (%s)", c.ID, c.Verdict.Status)
		}
	}

	if _, err := s.ShowCVE(ctx, "bogus", ShowOptions{}); !IsInvalid(err) {
		t.Errorf("ShowCVE(bogus) = %v, want an InvalidError", err)
	}
	c, err := s.ShowCVE(ctx, " cve-2025-21703 ", ShowOptions{Kernel: "tiny", Profile: ProfileNone})
	if err != nil || c.ID != "CVE-2025-21703" || c.CVSS == nil || c.CVSS.Score != 7.8 || c.Verdict == nil || c.Priority == nil {
		t.Fatalf("ShowCVE = %+v, %v", c, err)
	}

	doc, err := s.VEX(ctx, VEXOptions{Kernel: "tiny", Profile: ProfileNone})
	if err != nil || len(doc.Statements) != len(all.CVEs) {
		t.Errorf("VEX: %v, %d statements for %d published CVEs", err, len(doc.Statements), len(all.CVEs))
	}
	if _, err := s.VEX(ctx, VEXOptions{}); !IsInvalid(err) {
		t.Errorf("VEX without a kernel = %v, want an InvalidError", err)
	}

	// The real profile is never made up: without a full build it is not
	// found, with the command that makes one.
	if _, err := s.Profile(ctx, "tiny", ProfileOptions{Choice: ProfileReal}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile(real) of an unbuilt kernel = %v, want ErrNotFound", err)
	}
	ks, err := s.Kernels(ctx)
	if err != nil || len(ks) != 1 || ks[0].Name != "tiny" || len(ks[0].ConfigSHA256) != 64 {
		t.Errorf("Kernels = %+v, %v", ks, err)
	}
	if _, err := s.AddKernel(ctx, AddKernelOptions{Name: "tiny", Release: "6.1.176-tiny", Version: "6.1.176", Source: "/srv/x.tar.xz", Config: []byte("CONFIG_X=y\n")}); !IsInvalid(err) {
		t.Errorf("AddKernel(existing name) = %v, want an InvalidError", err)
	}
	if err := s.RemoveKernel(ctx, "tiny", Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Kernel(ctx, "tiny"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Kernel after RemoveKernel = %v, want ErrNotFound", err)
	}
}

// TestNoStoreUntilNeeded: a Service opens nothing until a use case needs
// the database (patch builds for debian: kernels never do).
func TestNoStoreUntilNeeded(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DB: filepath.Join(dir, "sub", "tuxtape.db")})
	if _, err := s.ResolveTarget(context.Background(), TargetSpec{Kernel: "debian:bogus"}); !IsInvalid(err) {
		t.Errorf("ResolveTarget(debian:bogus) = %v, want an InvalidError", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the database was created: %v", err)
	}
}
