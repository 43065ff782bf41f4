package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/frontend/cli"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs the CNA bundle")
	}
	mirror := testenv.Mirror(t)
	data := t.TempDir()
	if err := os.Symlink(mirror, filepath.Join(data, "vulns.git")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TUXTAPE_CONFIG", filepath.Join(data, "none.toml"))
	if code, _, stderr := run(t, "--data-dir", data, "cve", "list"); code != cli.ExitError || !strings.Contains(stderr, "none.toml") {
		t.Errorf("missing explicit config file: exit %d, %q", code, stderr)
	}
	if err := os.WriteFile(filepath.Join(data, "none.toml"), []byte("db = \""+filepath.Join(data, "from-config.db")+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := []string{"--data-dir", data}
	code, stdout, stderr := run(t, append(g, "sync", "--no-fetch", "--rev", testenv.BundleHead, "--json")...)
	if code != 0 {
		t.Fatalf("sync: exit %d: %s", code, stderr)
	}
	var sum struct{ Mode string }
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || sum.Mode != "full" {
		t.Errorf("sync --json = %q (%v)", stdout, err)
	}
	if _, err := os.Stat(filepath.Join(data, "from-config.db")); err != nil {
		t.Errorf("the config file's db was not used: %v", err)
	}

	code, stdout, _ = run(t, append(g, "cve", "show", "CVE-2025-21703", "--json")...)
	var rec struct {
		ProgramFiles []string `json:"program_files"`
		CVSS         struct {
			Vector    string
			Score     float64
			Scenarios []string
		}
		Branches []struct {
			Branch       string
			FixedVersion string `json:"fixed_version"`
			FixedCommit  string `json:"fixed_commit"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rec); code != 0 || err != nil {
		t.Fatalf("cve show --json: exit %d, %v", code, err)
	}
	if len(rec.ProgramFiles) != 1 || rec.ProgramFiles[0] != "net/sched/sch_netem.c" || rec.CVSS.Score != 7.8 ||
		rec.CVSS.Vector != "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" || len(rec.CVSS.Scenarios) != 1 {
		t.Errorf("cve show CVE-2025-21703 = %s", stdout)
	}
	found := false
	for _, b := range rec.Branches {
		found = found || (b.Branch == "6.1" && b.FixedVersion == "6.1.129" && strings.HasPrefix(b.FixedCommit, "7b79ca9a1de6"))
	}
	if !found {
		t.Errorf("no 6.1 fix 7b79ca9a1de6 in 6.1.129: %+v", rec.Branches)
	}

	code, stdout, _ = run(t, append(g, "cve", "list", "--file", "net/sched/sch_netem.c", "--min-cvss", "7", "--json")...)
	var list []struct{ ID string }
	if err := json.Unmarshal([]byte(stdout), &list); code != 0 || err != nil || len(list) == 0 {
		t.Fatalf("cve list --json: exit %d, %v, %d records", code, err, len(list))
	}
	code, stdout, _ = run(t, append(g, "cve", "list", "--since", "2026-08-15", "--status", "published")...)
	if code != 0 || !strings.HasPrefix(stdout, "CVE ") || strings.Count(stdout, "\n") < 2 {
		t.Errorf("cve list --since: exit %d\n%s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cve", "show", "CVE-1999-0001"}, cli.ExitNotFound, "not found"},
		{[]string{"cve", "show", "bogus"}, cli.ExitUsage, "not a CVE ID"},
		{[]string{"cve", "list", "--since", "yesterday"}, cli.ExitUsage, "--since"},
		{[]string{"cve", "list", "--status", "fixed"}, cli.ExitUsage, "--status"},
		{[]string{"cve", "list", "--bogus"}, cli.ExitUsage, "unknown flag"},
		{[]string{"sync", "--no-fetch", "--rev", "nope"}, cli.ExitError, "nope"},
	} {
		code, _, stderr := run(t, append(g, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("tuxtape %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}
