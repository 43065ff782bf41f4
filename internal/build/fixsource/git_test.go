package fixsource

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/analysis/risk"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

// The corpus fix the git tests use: fib_rule_get_safe() added to a header
// and used in net/core (6.1.178's 2dfdc210d240).
const fibCVE = "CVE-2026-74288"

func run(t *testing.T, dir string, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.org",
		"GIT_AUTHOR_DATE=2026-08-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-08-01T00:00:00Z")
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func corpusPatch(t *testing.T, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Corpus(t, "debian-6.1.176"), "patches", id+".patch"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitPatch cuts a corpus diff into its files' parts.
func splitPatch(p []byte) map[string]string {
	out := map[string]string{}
	chunks := regexp.MustCompile(`(?m)^diff --git `).Split(string(p), -1)
	for _, c := range chunks[1:] {
		name := strings.Fields(c)[0][2:]
		out[name] = "diff --git " + c
	}
	return out
}

// kernelRepo makes a git repository holding the 6.1.176 versions of files
// (from the real tree), tagged v6.1.176, and returns its directory.
func kernelRepo(t *testing.T, files ...string) string {
	t.Helper()
	src := kernelenv.Source(t)
	dir := t.TempDir()
	run(t, dir, "", "git", "init", "-q", "-b", "linux-6.1.y")
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, "", "git", "add", "-A")
	run(t, dir, "", "git", "commit", "-q", "-m", "Linux 6.1.176")
	run(t, dir, "", "git", "tag", "v6.1.176")
	return dir
}

// commitPatch applies diff in repo and commits it; it returns the commit.
func commitPatch(t *testing.T, repo, diff, msg string) string {
	t.Helper()
	run(t, repo, diff, "git", "apply", "--index", "-")
	run(t, repo, "", "git", "commit", "-q", "-m", msg)
	return run(t, repo, "", "git", "rev-parse", "HEAD")
}

// cnaRecord writes a tiny CNA repository with the real .json and .sha1 of
// id and a .dyad whose lines edit rewrites, commits it, and reads the
// record back from the commit as sync would.
func cnaRecord(t *testing.T, id string, edit func(line string) string) vulns.Record {
	t.Helper()
	real := filepath.Join(testenv.Checkout(t), "cve", "published", id[4:8])
	dir := t.TempDir()
	run(t, dir, "", "git", "init", "-q")
	rel := filepath.Join("cve", "published", id[4:8])
	if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"json", "sha1", "dyad"} {
		b, err := os.ReadFile(filepath.Join(real, id+"."+ext))
		if err != nil {
			t.Fatal(err)
		}
		if ext == "dyad" {
			lines := strings.Split(string(b), "\n")
			for i, l := range lines {
				if l != "" && l[0] != '#' {
					lines[i] = edit(l)
				}
			}
			b = []byte(strings.Join(lines, "\n"))
		}
		if err := os.WriteFile(filepath.Join(dir, rel, id+"."+ext), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, "", "git", "add", "-A")
	run(t, dir, "", "git", "commit", "-q", "-m", "add "+id)
	files := map[string][]byte{}
	for _, ext := range []string{"json", "sha1", "dyad"} {
		files[ext] = []byte(run(t, dir, "", "git", "show", "HEAD:"+filepath.ToSlash(filepath.Join(rel, id+"."+ext))) + "\n")
	}
	rec, err := vulns.Assemble(id, vulns.StatusPublished, files)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// setDyad replaces the fix commit of the dyad line fixed in version.
func setDyad(version, commit string) func(string) string {
	return func(l string) string {
		f := strings.Split(l, ":")
		if f[2] == version {
			if commit == "" {
				f[2], f[3] = "0", "0"
			} else {
				f[3] = commit
			}
		}
		return strings.Join(f, ":")
	}
}

// sameHunks compares two diffs file by file and hunk by hunk: ranges and
// lines, not git's function names in hunk headers or the mail around.
func sameHunks(t *testing.T, got, want []byte) {
	t.Helper()
	g, err := risk.ParseDiff(got)
	if err != nil {
		t.Fatalf("parse fetched diff: %v", err)
	}
	w, err := risk.ParseDiff(want)
	if err != nil {
		t.Fatalf("parse corpus diff: %v", err)
	}
	strip := func(fs []risk.File) []risk.File {
		for i := range fs {
			for j := range fs[i].Hunks {
				fs[i].Hunks[j].Section = ""
			}
		}
		return fs
	}
	if !reflect.DeepEqual(strip(g), strip(w)) {
		t.Errorf("fetched diff's hunks differ from the corpus's:\n%s\nwant\n%s", got, want)
	}
}

func TestGitFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the 6.1.176 source tree")
	}
	ctx := context.Background()
	patch := corpusPatch(t, fibCVE)
	repo := kernelRepo(t, "include/net/fib_rules.h", "net/core/fib_rules.c")
	stable := commitPatch(t, repo, string(patch), "net: fib_rules: take a reference only on live rules\n\nstable backport of 2821e85c058f")
	// Mainline's commit, on a branch of its own.
	run(t, repo, "", "git", "checkout", "-q", "-b", "master", "v6.1.176")
	mainline := commitPatch(t, repo, string(patch), "net: fib_rules: take a reference only on live rules")
	run(t, repo, "", "git", "checkout", "-q", "linux-6.1.y")
	g := Git{Repo: repo}

	tests := []struct {
		name         string
		edit         func(string) string
		version      string
		wantErr      error
		wantCommit   string
		wantMainline bool
	}{
		{"stable fix", setDyad("6.1.178", stable), "6.1.176", nil, stable, false},
		{"branch unfixed: mainline", func(l string) string { return setDyad("7.2", mainline)(setDyad("6.1.178", "")(l)) }, "6.1.176", nil, mainline, true},
		{"already fixed", setDyad("6.1.178", stable), "6.1.180", ErrAlreadyFixed, "", false},
		{"commit not in repo", setDyad("6.1.178", strings.Repeat("ab", 20)), "6.1.176", ErrNotInSource, "", false},
		// No dyad fix: the record's .sha1 still names mainline's commit,
		// which this repository does not have.
		{"no fix anywhere", func(l string) string { return setDyad("7.2", "")(setDyad("6.1.178", "")(l)) }, "6.1.176", ErrNotInSource, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := cnaRecord(t, fibCVE, tt.edit)
			fix, err := g.Fetch(ctx, rec, tt.version)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Fetch = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if fix.Commit != tt.wantCommit || fix.Mainline != tt.wantMainline || fix.Kind != KindGit || fix.Branch != "6.1" {
				t.Errorf("Fetch = commit %s mainline %v kind %s branch %s, want %s %v git 6.1", fix.Commit, fix.Mainline, fix.Kind, fix.Branch, tt.wantCommit, tt.wantMainline)
			}
			if tt.wantMainline != (fix.Note == MainlineNote) {
				t.Errorf("Fetch note = %q", fix.Note)
			}
			if !strings.HasPrefix(string(fix.Diff), "From "+tt.wantCommit) {
				t.Errorf("diff is not the commit's format-patch mail:\n%.200s", fix.Diff)
			}
			if !reflect.DeepEqual(fix.Files, []string{"include/net/fib_rules.h", "net/core/fib_rules.c"}) {
				t.Errorf("Files = %v", fix.Files)
			}
			sameHunks(t, fix.Diff, patch)
			// It applies to the tag, as the generator will apply it.
			run(t, repo, "", "git", "checkout", "-q", "--detach", "v6.1.176")
			run(t, repo, string(fix.Diff), "git", "apply", "--check", "-")
			run(t, repo, "", "git", "checkout", "-q", "linux-6.1.y")
		})
	}
}

func TestRefusesOptionLikeRefs(t *testing.T) {
	for _, c := range []string{"-p", "--output=/tmp/x", "HEAD", "abc..def", ""} {
		if err := checkCommit(c); !errors.Is(err, ErrBadInput) {
			t.Errorf("checkCommit(%q) = %v, want ErrBadInput", c, err)
		}
	}
	for _, r := range []string{"-v6.1.176", "--all", "a..b", "v6.1.176^", ""} {
		if err := checkRef(r); !errors.Is(err, ErrBadInput) {
			t.Errorf("checkRef(%q) = %v, want ErrBadInput", r, err)
		}
	}
	g := Git{Repo: t.TempDir()}
	if _, _, err := g.Prerequisites(context.Background(), &Fix{Kind: KindGit, Commit: "0123456", From: "--all"}, nil); !errors.Is(err, ErrBadInput) {
		t.Errorf("Prerequisites(From --all) = %v, want ErrBadInput", err)
	}
}

// TestGitPrerequisites: the stable branch carries the header change as a
// commit of its own before the fix; the fix alone does not compile (real
// gcc messages), and the finder names that commit.
func TestGitPrerequisites(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the 6.1.176 source tree")
	}
	ctx := context.Background()
	parts := splitPatch(corpusPatch(t, fibCVE))
	repo := kernelRepo(t, "include/net/fib_rules.h", "net/core/fib_rules.c")
	// An older commit in the window that mentions the name without
	// defining it must not be taken.
	commentOnly := "diff --git a/net/core/fib_rules.c b/net/core/fib_rules.c\n--- a/net/core/fib_rules.c\n+++ b/net/core/fib_rules.c\n@@ -1,3 +1,4 @@\n+/* fib_rule_get_safe() will come. */\n"
	src, err := os.ReadFile(filepath.Join(repo, "net/core/fib_rules.c"))
	if err != nil {
		t.Fatal(err)
	}
	first3 := strings.SplitN(string(src), "\n", 4)[:3]
	for _, l := range first3 {
		commentOnly += " " + l + "\n"
	}
	commitPatch(t, repo, commentOnly, "net: fib_rules: comment")
	prereq := commitPatch(t, repo, parts["include/net/fib_rules.h"], "net: fib_rules: add fib_rule_get_safe()")
	fixCommit := commitPatch(t, repo, parts["net/core/fib_rules.c"], "net: fib_rules: take a reference only on live rules")
	rec := cnaRecord(t, fibCVE, setDyad("6.1.178", fixCommit))
	g := Git{Repo: repo}
	fix, err := g.Fetch(ctx, rec, "6.1.176")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fix.Files, []string{"net/core/fib_rules.c"}) {
		t.Fatalf("fix files = %v", fix.Files)
	}
	// What gcc says about the fixed file's use of the helper, and of a
	// constant nothing in the window defines.
	out := realGCC(t, "C", map[string]string{
		"net/core/fib_rules.c": "struct fib_rule { int refcnt; };\nint f(struct fib_rule *rule)\n{\n\treturn fib_rule_get_safe(rule) + FIB_RULE_NOWHERE;\n}\n",
	}, "net/core/fib_rules.c")
	missing := ParseCompilerErrors(out)
	if len(missing) != 2 {
		t.Fatalf("ParseCompilerErrors(%q) = %+v, want 2 names", out, missing)
	}
	found, unresolved, err := g.Prerequisites(ctx, fix, missing)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Commit != prereq || !reflect.DeepEqual(found[0].Files, []string{"include/net/fib_rules.h"}) {
		t.Fatalf("Prerequisites = %+v, want commit %s on include/net/fib_rules.h", found, prereq)
	}
	p := found[0]
	if p.Subject != "net: fib_rules: add fib_rule_get_safe()" || !strings.Contains(p.Explanation, "fib_rule_get_safe") || !strings.Contains(p.Explanation, prereq[:12]) {
		t.Errorf("prerequisite subject %q, explanation %q", p.Subject, p.Explanation)
	}
	sameHunks(t, p.Diff, []byte(parts["include/net/fib_rules.h"]))
	if len(unresolved) != 1 || unresolved[0].Name != "FIB_RULE_NOWHERE" {
		t.Errorf("unresolved = %+v, want FIB_RULE_NOWHERE", unresolved)
	}
	// The fix stays as it was: nothing was folded in.
	if strings.Contains(string(fix.Diff), "include/net/fib_rules.h") {
		t.Errorf("the fix now carries the prerequisite")
	}
}

func TestPickFix(t *testing.T) {
	rec := vulns.Record{ID: "CVE-0000-0001", MainlineFix: "m", Branches: []vulns.Branch{
		{IntroducedVersion: "4.12", FixedVersion: "6.1.178", FixedCommit: "s61"},
		{IntroducedVersion: "4.12", FixedVersion: "6.6.145", FixedCommit: "s66"},
		{IntroducedVersion: "4.12", FixedVersion: "7.2", FixedCommit: "m"},
	}}
	tests := []struct {
		version  string
		commit   string
		mainline bool
		err      error
	}{
		{"6.1.176", "s61", false, nil},
		{"6.1.178", "", false, ErrAlreadyFixed},
		{"6.6.1", "s66", false, nil},
		{"6.12.3", "m", true, nil},
		{"7.2.1", "", false, ErrAlreadyFixed},
	}
	for _, tt := range tests {
		v, _ := vulns.ParseVersion(tt.version)
		got, err := pickFix(rec, v)
		if !errors.Is(err, tt.err) || got.commit != tt.commit || got.mainline != tt.mainline {
			t.Errorf("pickFix(%s) = %+v, %v; want %s mainline=%v, %v", tt.version, got, err, tt.commit, tt.mainline, tt.err)
		}
	}
	if _, err := pickFix(vulns.Record{ID: "CVE-0000-0002"}, vulns.Version{}); !errors.Is(err, ErrNoFix) {
		t.Errorf("pickFix(no dyad) = %v, want ErrNoFix", err)
	}
}
