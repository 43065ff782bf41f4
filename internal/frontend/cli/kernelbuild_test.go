package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// TestKernelBuild builds 6.1.176 with the x86_64 tinyconfig for real (a
// few minutes; later runs reuse the build tree in the cache), reads its
// profile from kbuild's records, and compares it with the static one.
func TestKernelBuild(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_KERNEL") != "" {
		t.Skip("builds a kernel")
	}
	ctx := context.Background()
	dk, err := debpkg.NewKernel(debpkg.Options{}, "6.1.0-50-cloud-amd64", "6.1.176-1")
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := dk.SourceTarball(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mirror := testenv.Mirror(t)
	data := t.TempDir()
	if err := os.Symlink(mirror, filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TUXTAPE_CONFIG", "")
	g := []string{"--data-dir", data, "-q"}
	if code, _, stderr := run(t, append(g, "sync", "--no-fetch", "--rev", testenv.BundleHead)...); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, stderr)
	}
	const name = "test-tinyconfig-6.1.176"
	if code, _, stderr := run(t, append(g, "kernel", "add", name, "--release", "6.1.176-tiny", "--version", "6.1.176",
		"--source", tarball, "--kconfig", "testdata/tinyconfig-x86_64.config")...); code != 0 {
		t.Fatalf("kernel add: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, append(g, "kernel", "build", name)...); code != 0 {
		t.Fatalf("kernel build: exit %d: %s", code, stderr)
	}
	profile := func(kind string) map[string]string {
		t.Helper()
		code, stdout, stderr := run(t, append(g, "kernel", "profile", name, "--"+kind, "--json")...)
		var p struct {
			Kind  string
			Units []struct{ Source, Target string }
			Deps  map[string][]int
		}
		if err := json.Unmarshal([]byte(stdout), &p); code != 0 || err != nil || p.Kind != kind {
			t.Fatalf("kernel profile --%s: exit %d, %v: %s", kind, code, err, stderr)
		}
		if kind == "real" && len(p.Deps["include/linux/sched.h"]) == 0 {
			t.Errorf("real profile: no unit reads include/linux/sched.h")
		}
		m := map[string]string{}
		for _, u := range p.Units {
			m[u.Source] = u.Target
		}
		return m
	}
	real, static := profile("real"), profile("static")
	for _, src := range []string{"init/main.c", "kernel/sched/core.c", "mm/memory.c"} {
		if real[src] != "vmlinux" {
			t.Errorf("real profile: %s in %q, want vmlinux", src, real[src])
		}
	}
	if _, ok := real["fs/ext4/inode.c"]; ok {
		t.Error("tinyconfig has no ext4, but the real profile lists fs/ext4/inode.c")
	}
	var both int
	for src, target := range real {
		if static[src] == target {
			both++
		}
	}
	precision, recall := float64(both)/float64(len(static)), float64(both)/float64(len(real))
	t.Logf("tinyconfig: %d real units, %d static; precision %.4f, recall %.4f", len(real), len(static), precision, recall)
	if precision < 0.99 || recall < 0.99 {
		t.Errorf("static profile against the real build: precision %.4f, recall %.4f, want ≥ 0.99", precision, recall)
	}
	// Headers are placed by the real profile's dependency data.
	code, stdout, _ := run(t, append(g, "cve", "list", "--kernel", name, "--profile", "real", "--affected", "--json")...)
	var rows []struct {
		Verdict struct{ Status, Reason string }
	}
	if err := json.Unmarshal([]byte(stdout), &rows); code != 0 || err != nil {
		t.Fatalf("cve list --profile real: exit %d, %v", code, err)
	}
	for _, r := range rows {
		if r.Verdict.Reason == "header_unresolved" {
			t.Errorf("a real profile places headers, got %+v", r.Verdict)
		}
	}
}
