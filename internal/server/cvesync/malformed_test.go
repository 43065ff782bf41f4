package cvesync_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// upstream is a small git repository laid out like the CNA's, built from
// real records in internal/model/vulns/testdata.
type upstream struct {
	t   *testing.T
	dir string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t, t.TempDir()}
	u.git("init", "-q", "-b", "master")
	return u
}

func (u *upstream) git(args ...string) string {
	u.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", u.dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		u.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// put copies a real record's files into dir (published/2025, say).
func (u *upstream) put(dir, id string) {
	u.t.Helper()
	src := filepath.Join(testenv.RepoRoot(), "internal", "model", "vulns", "testdata")
	for _, ext := range []string{".json", ".dyad", ".sha1", ".cvss", ".mbox"} {
		data, err := os.ReadFile(filepath.Join(src, id+ext))
		if err != nil {
			continue
		}
		u.write(filepath.Join(dir, id+ext), string(data))
	}
}

func (u *upstream) write(rel, data string) {
	u.t.Helper()
	p := filepath.Join(u.dir, "cve", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		u.t.Fatal(err)
	}
}

func (u *upstream) commit(msg string) string {
	u.git("add", "-A")
	u.git("commit", "-q", "-m", msg)
	return u.git("rev-parse", "HEAD")
}

// TestMalformedAndFetch: a broken record is reported and skipped without
// touching the others, and is picked up once fixed; the mirror is cloned
// on the first run and fetched on the next; a move to rejected/ is seen.
func TestMalformedAndFetch(t *testing.T) {
	ctx := context.Background()
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			u := newUpstream(t)
			u.put("published/2025", "CVE-2025-21703")
			u.put("published/2024", "CVE-2024-26581")
			u.write("published/2024/CVE-2024-26581.dyad", "6.1.43:89a4d1a89751a0fbd520e64091873e19cc0979e8:6.1.x:zz\n")
			u.write("published/2024/CVE-2024-99999.cvss", "stray file of a rejected record\n")
			u.commit("two records, one broken")
			st := openStore(t, b.DSN)
			opts := cvesync.Options{Source: u.dir, MirrorDir: filepath.Join(t.TempDir(), "mirror.git")}
			sum, err := cvesync.Run(ctx, st, opts)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Added != 1 || sum.Malformed != 1 || sum.Problems[0].ID != "CVE-2024-26581" ||
				!strings.HasSuffix(sum.Problems[0].File, "CVE-2024-26581.dyad") || !strings.Contains(sum.Problems[0].Reason, "6.1.x") {
				t.Fatalf("first sync: %+v", sum)
			}
			if _, err := st.CVE(ctx, "CVE-2025-21703"); err != nil {
				t.Errorf("good record not stored: %v", err)
			}
			if ps, _ := st.Problems(ctx); len(ps) != 1 {
				t.Errorf("stored problems = %v, want one", ps)
			}

			u.put("published/2024", "CVE-2024-26581")
			u.commit("fix the dyad")
			if err := os.MkdirAll(filepath.Join(u.dir, "cve", "rejected"), 0o755); err != nil {
				t.Fatal(err)
			}
			u.git("mv", "cve/published/2025", "cve/rejected/2025")
			u.commit("reject CVE-2025-21703")
			sum, err = cvesync.Run(ctx, st, opts)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Mode != "incremental" || sum.Added != 1 || sum.Rejected != 1 || sum.Malformed != 0 {
				t.Errorf("second sync: %+v", sum)
			}
			if ps, _ := st.Problems(ctx); len(ps) != 0 {
				t.Errorf("problems after the fix = %v, want none", ps)
			}
			r, err := st.CVE(ctx, "CVE-2025-21703")
			if err != nil || r.Status != vulns.StatusRejected {
				t.Errorf("moved record: %+v, %v; want rejected", r.Status, err)
			}
			if _, err := st.CVE(ctx, "CVE-2024-99999"); err == nil {
				t.Error("a stray file without .json made a record")
			}
			u.git("rm", "-q", "-r", "cve/rejected")
			u.commit("drop it")
			if sum, err = cvesync.Run(ctx, st, opts); err != nil || sum.Deleted != 1 {
				t.Errorf("third sync: %+v, %v; want one deleted", sum, err)
			}
			if _, err := cvesync.Run(ctx, st, cvesync.Options{Source: u.dir, MirrorDir: opts.MirrorDir, Rev: "no-such-rev"}); err == nil || !strings.Contains(err.Error(), "no-such-rev") {
				t.Errorf("bad --rev: %v", err)
			}
		})
	}
}
