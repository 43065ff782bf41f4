package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/frontend/cli"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// TestKernelCommands adds the real Debian cloud kernel, profiles it
// statically, and asks the CVE commands about it.
func TestKernelCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches the Debian kernel and unpacks its source")
	}
	if os.Getenv("TUXTAPE_SKIP_KERNEL") != "" {
		t.Skip("TUXTAPE_SKIP_KERNEL is set")
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
	fixed := filepath.Join(data, "changelog")
	if err := os.WriteFile(fixed, []byte("  * dlm: fix a thing (CVE-2025-23131)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, append(g, "kernel", "add", "cloud", "--release", "6.1.0-50-cloud-amd64",
		"--source", "debian:linux-source-6.1=6.1.176-1", "--fixed", fixed)...)
	if code != 0 || !strings.Contains(stdout, "added kernel cloud") {
		t.Fatalf("kernel add: exit %d: %s%s", code, stdout, stderr)
	}
	code, stdout, _ = run(t, append(g, "kernel", "show", "cloud", "--json")...)
	var k struct {
		Version   string
		Debian    struct{ Image, Debug string }
		FixedCVEs []string `json:"fixed_cves"`
	}
	if err := json.Unmarshal([]byte(stdout), &k); code != 0 || err != nil {
		t.Fatalf("kernel show --json: exit %d, %v: %s", code, err, stdout)
	}
	// The --fixed file's CVE, and the ones Debian's changelog names.
	if k.Version != "6.1.176" || k.Debian.Debug != "linux-image-6.1.0-50-cloud-amd64-dbg" ||
		!slices.Contains(k.FixedCVEs, "CVE-2025-23131") || !slices.Contains(k.FixedCVEs, "CVE-2026-43117") {
		t.Errorf("kernel show: %s", stdout)
	}

	code, stdout, stderr = run(t, append(g, "kernel", "profile", "cloud", "--static", "--json")...)
	var prof struct {
		Kind  string
		Units []struct{ Source, Target string }
	}
	if err := json.Unmarshal([]byte(stdout), &prof); code != 0 || err != nil {
		t.Fatalf("kernel profile: exit %d, %v: %s", code, err, stderr)
	}
	where := map[string]string{}
	for _, u := range prof.Units {
		where[u.Source] = u.Target
	}
	for src, want := range map[string]string{"fs/ext4/inode.c": "vmlinux", "fs/isofs/inode.c": "isofs", "kernel/sched/core.c": "vmlinux", "net/sched/sch_netem.c": "sch_netem"} {
		if where[src] != want {
			t.Errorf("static profile: %s in %q, want %q", src, where[src], want)
		}
	}

	type verdict struct {
		Status, Reason string
		Where          []string
	}
	show := func(id string) (verdict, []string) {
		t.Helper()
		code, stdout, stderr := run(t, append(g, "cve", "show", id, "--kernel", "cloud", "--json")...)
		var out struct {
			Verdict  verdict
			Priority struct{ Reasons []string }
		}
		if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil {
			t.Fatalf("cve show %s --kernel: exit %d, %v: %s", id, code, err, stderr)
		}
		return out.Verdict, out.Priority.Reasons
	}
	for _, tc := range []struct{ id, status, reason, where string }{
		{"CVE-2025-21703", "not_affected", "fixed_in_version", ""}, // fixed in 6.1.129
		{"CVE-2024-42133", "not_affected", "not_in_range", ""},     // came and went in 6.1.178
		{"CVE-2025-23131", "not_affected", "fixed_by_kernel", ""},  // declared in the changelog
		{"CVE-2026-31451", "affected", "compiled", "vmlinux"},      // corpus: fs/ext4 (built in), fixed in 6.1.177
	} {
		v, reasons := show(tc.id)
		if v.Status != tc.status || v.Reason != tc.reason || (tc.where != "" && strings.Join(v.Where, ",") != tc.where) {
			t.Errorf("%s on cloud: %+v, want %s/%s in %q", tc.id, v, tc.status, tc.reason, tc.where)
		}
		if len(reasons) == 0 {
			t.Errorf("%s: no priority reasons", tc.id)
		}
	}

	code, stdout, stderr = run(t, append(g, "cve", "list", "--kernel", "cloud", "--affected", "--sort", "priority", "--limit", "20", "--json")...)
	var top []struct {
		ID       string
		Verdict  verdict
		Priority struct{ Score float64 }
	}
	if err := json.Unmarshal([]byte(stdout), &top); code != 0 || err != nil || len(top) != 20 {
		t.Fatalf("cve list --kernel --affected: exit %d, %v, %d rows: %s", code, err, len(top), stderr)
	}
	for i, r := range top {
		if r.Verdict.Status == "not_affected" {
			t.Errorf("--affected listed %s: %+v", r.ID, r.Verdict)
		}
		if i > 0 && r.Priority.Score > top[i-1].Priority.Score {
			t.Errorf("--sort priority: %s (%v) after %s (%v)", r.ID, r.Priority.Score, top[i-1].ID, top[i-1].Priority.Score)
		}
	}

	out := filepath.Join(data, "cloud.vex.json")
	if code, _, stderr := run(t, append(g, "vex", "--kernel", "cloud", "-o", out)...); code != 0 {
		t.Fatalf("vex: exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context    string `json:"@context"`
		Statements []struct {
			Vulnerability struct{ Name string }
			Status        string
			Justification string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil || !strings.Contains(doc.Context, "openvex") {
		t.Fatalf("vex document: %v", err)
	}
	statuses := map[string]int{}
	for _, s := range doc.Statements {
		statuses[s.Status]++
		if s.Status == "not_affected" && s.Justification != "vulnerable_code_not_present" {
			t.Errorf("%s: not_affected with justification %q", s.Vulnerability.Name, s.Justification)
		}
	}
	if statuses["affected"] == 0 || statuses["fixed"] == 0 || statuses["not_affected"] == 0 {
		t.Errorf("vex statuses: %v", statuses)
	}
	t.Logf("vex statuses for the cloud kernel (static profile): %v", statuses)

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"kernel", "add", "cloud", "--release", "6.1.0-50-cloud-amd64", "--source", "debian:linux-source-6.1=6.1.176-1"}, cli.ExitUsage, "already exists"},
		{[]string{"kernel", "add", "x", "--release", "6.1.0-50-cloud-amd64", "--source", "/nonexistent.tar.xz", "--version", "6.1.176"}, cli.ExitUsage, "--kconfig"},
		{[]string{"kernel", "add", "x", "--release", "6.1.0-50-cloud-amd64", "--source", "debian:bogus"}, cli.ExitUsage, "debian:PACKAGE=VERSION"},
		{[]string{"kernel", "add", "x", "--release", "6.1.0-50-cloud-amd64", "--source", "/x.tar.xz", "--version", "six", "--kconfig", fixed}, cli.ExitUsage, "CONFIG_"},
		{[]string{"kernel", "show", "nope"}, cli.ExitNotFound, "nope"},
		{[]string{"cve", "list", "--kernel", "nope"}, cli.ExitNotFound, "kernel add"},
		{[]string{"cve", "list", "--affected"}, cli.ExitUsage, "--kernel"},
		{[]string{"kernel", "profile", "cloud", "--real"}, cli.ExitNotFound, "kernel build"},
		{[]string{"vex"}, cli.ExitUsage, "--kernel"},
	} {
		code, _, stderr := run(t, append(g, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("tuxtape %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if code, _, stderr := run(t, append(g, "kernel", "rm", "cloud")...); code != 0 {
		t.Errorf("kernel rm: exit %d: %s", code, stderr)
	}
	if code, stdout, _ := run(t, append(g, "kernel", "list", "--json")...); code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("kernel list after rm: exit %d: %s", code, stdout)
	}
}
