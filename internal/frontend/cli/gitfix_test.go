package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

// TestGitFixSourceWorkflow runs the workflow from a kernel git repository
// with real processes on PostgreSQL (SQLite where none runs; make test
// starts one), two builders taking the jobs: the repository holds a few
// files of the real 6.1.176 tree tagged v6.1.176 and a real corpus fix
// committed on top; a small CNA repository whose .dyad names that commit
// is synced; the server fetches the raw fix itself (git format-patch of
// the commit), a builder builds and vets it, two reviewers approve it, and
// the kernel's cumulative patch set is built and vetted from it.
func TestGitFixSourceWorkflow(t *testing.T) {
	if testing.Short() || os.Getenv("TUXTAPE_SKIP_VM") != "" {
		t.Skip("builds and vets livepatches in QEMU")
	}
	const cve = "CVE-2026-64317" // isofs: a bounds check in rock.c
	bin := binary(t)
	dsn := ""
	for _, b := range testenv.Backends(t) {
		if b.Name == "postgres" {
			dsn = b.DSN
		}
	}
	git := func(dir, stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Stdin = dir, strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// The kernel repository: rock.c as 6.1.176 has it, then the fix.
	repo := t.TempDir()
	git(repo, "", "init", "-q", "-b", "linux-6.1.y")
	for _, f := range []string{"fs/isofs/rock.c"} {
		b, err := os.ReadFile(filepath.Join(kernelenv.Source(t), f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(repo, "", "add", "-A")
	git(repo, "", "commit", "-q", "-m", "Linux 6.1.176")
	git(repo, "", "tag", "v6.1.176")
	fix, err := os.ReadFile(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", cve+".patch"))
	if err != nil {
		t.Fatal(err)
	}
	git(repo, string(fix), "apply", "--index", "-")
	git(repo, "", "commit", "-q", "-m", "isofs: check the length of a Rock Ridge record")
	commit := git(repo, "", "rev-parse", "HEAD")

	// The CNA repository: the real record, its 6.1.178 fix naming the commit.
	cna := t.TempDir()
	git(cna, "", "init", "-q", "-b", "main")
	rel := filepath.Join("cve", "published", cve[4:8])
	os.MkdirAll(filepath.Join(cna, rel), 0o755)
	for _, ext := range []string{"json", "sha1", "dyad"} {
		b := []byte(git(testenv.Mirror(t), "", "show", testenv.BundleHead+":"+filepath.ToSlash(filepath.Join(rel, cve+"."+ext))) + "\n")
		if ext == "dyad" {
			lines := strings.Split(string(b), "\n")
			for i, l := range lines {
				if f := strings.Split(l, ":"); len(f) == 4 && f[2] == "6.1.178" {
					f[3] = commit
					lines[i] = strings.Join(f, ":")
				}
			}
			b = []byte(strings.Join(lines, "\n"))
		}
		if err := os.WriteFile(filepath.Join(cna, rel, cve+"."+ext), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(cna, "", "add", "-A")
	git(cna, "", "commit", "-q", "-m", "add "+cve)

	data := t.TempDir()
	local := proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + data, "TUXTAPE_CONFIG=", "TUXTAPE_SERVER=", "TUXTAPE_TOKEN=", "TUXTAPE_DB=" + dsn}}
	local.must(t, "-q", "sync", "--source", cna)
	local.must(t, "-q", "kernel", "add", "cloud", "--release", "6.1.0-50-cloud-amd64", "--source", "debian:linux-source-6.1=6.1.176-1")
	secret := map[string]string{}
	for _, who := range []string{"admin", "builder", "r1", "r2"} {
		role := who
		if strings.HasPrefix(who, "r") {
			role = "reviewer"
		}
		var tok struct{ Secret string }
		json.Unmarshal([]byte(local.must(t, "token", "create", "--role", role, "--json")), &tok)
		secret[who] = tok.Secret
	}
	addr, _ := local.serve(t, "--insecure", "--require-approvals", "2")
	as := func(who string) proc {
		return proc{bin: bin, env: []string{"TUXTAPE_DATA_DIR=" + t.TempDir(), "TUXTAPE_CONFIG=", "TUXTAPE_DB=", "TUXTAPE_SERVER=" + addr, "TUXTAPE_TOKEN=" + secret[who]},
			pre: []string{"--insecure"}}
	}
	as("builder").startBuilder(t, userCache(t), "--name", "git-builder-1", "--kind", "patch-build")
	as("builder").startBuilder(t, userCache(t), "--name", "git-builder-2", "--kind", "patch-build")

	var created struct {
		ID        string
		Revisions []struct {
			Source    string
			FixSource string `json:"fix_source"`
			Diff      []byte
		}
	}
	if err := json.Unmarshal([]byte(as("admin").must(t, "patch", "create", "--cve", cve, "--kernel", "cloud", "--fixes-from", "git:"+repo, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if len(created.Revisions) != 1 || !strings.Contains(created.Revisions[0].Source, "git:"+repo+" commit "+commit) || created.Revisions[0].FixSource != "git:"+repo ||
		!strings.Contains(string(created.Revisions[0].Diff), "fs/isofs/rock.c") || !strings.Contains(string(created.Revisions[0].Diff), "From "+commit) {
		t.Fatalf("the raw fix from git: %+v", created.Revisions)
	}
	v := as("admin").waitPatch(t, created.ID, 15*time.Minute, func(v patchView) bool { return v.State != "building" })
	if v.State != "vetted" {
		t.Fatalf("the git fix after its build-and-vet job: %+v\njob log:\n%s", v, as("admin").must(t, "job", "log", v.Revisions[0].Job))
	}
	for _, r := range []string{"r1", "r2"} {
		as(r).must(t, "patch", "review", created.ID, "--approve", "-m", "the record length is checked before use")
	}
	if v := as("admin").patch(t, created.ID); v.State != "approved" || len(v.Approvals) != 2 {
		t.Fatalf("after two approvals: %+v", v)
	}
	as("admin").must(t, "patchset", "build", "cloud")
	var sets []struct {
		Version int
		State   string
		Module  string `json:"module_name"`
		CVEs    []string
	}
	for deadline := time.Now().Add(15 * time.Minute); ; {
		json.Unmarshal([]byte(as("admin").must(t, "patchset", "list", "cloud", "--json")), &sets)
		if len(sets) == 1 && sets[0].State != "building" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("patch set after 15 min: %+v", sets)
		}
		time.Sleep(time.Second)
	}
	if s := sets[0]; s.State != "ready" || s.Version != 1 || s.Module != "tt_cloud_1" || len(s.CVEs) != 1 || s.CVEs[0] != cve {
		t.Errorf("patch set: %+v", s)
	}
	if b := as("admin").must(t, "job", "builders"); !strings.Contains(b, "git-builder-1") || !strings.Contains(b, "git-builder-2") {
		t.Errorf("both builders registered:\n%s", b)
	}
	t.Logf("backend: %s", map[bool]string{true: "postgres", false: "sqlite"}[dsn != ""])
}
