package gitrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSource(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"https://git.kernel.org/pub/scm/linux/security/vulns.git", "https://git.kernel.org/pub/scm/linux/security/vulns.git"},
		{"file:///srv/vulns.git", "file:///srv/vulns.git"},
		{"ssh://git@example.org/vulns.git", "ssh://git@example.org/vulns.git"},
		{"git@example.org:vulns.git", "git@example.org:vulns.git"},
		{"example.org:vulns.git", "example.org:vulns.git"},
		{"/srv/vulns.git", "/srv/vulns.git"},
		{"/srv/../srv/vulns.git", "/srv/vulns.git"},
		{"vulns", filepath.Join(cwd, "vulns")},
		{"./vulns.bundle", filepath.Join(cwd, "vulns.bundle")},
		{"../data/vulns.bundle", filepath.Join(filepath.Dir(cwd), "data", "vulns.bundle")},
		{"dir/with:colon", filepath.Join(cwd, "dir/with:colon")}, // a slash before the colon: a path, as git reads it
		{"./-vulns", filepath.Join(cwd, "-vulns")},
		{"-vulns", ""},
		{"--upload-pack=touch /tmp/x", ""},
		{"-", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := Source(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Source(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Source(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// upstream makes a repository with one commit at dir and returns a
// function that adds another and returns its id.
func upstream(t *testing.T, dir string) func() string {
	t.Helper()
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q", "-b", "master")
	n := 0
	commit := func() string {
		n++
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(strings.Repeat("x", n)), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "f")
		git("commit", "-q", "-m", "c")
		return git("rev-parse", "HEAD")
	}
	commit()
	return commit
}

func remoteURL(t *testing.T, mirror string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", mirror, "config", "remote.origin.url").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestMirrorRelativeSource: a relative source works on the fetch after the
// clone too (the fetch runs inside the mirror, where the relative path
// would name another directory), and from another working directory.
func TestMirrorRelativeSource(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	commit := upstream(t, filepath.Join(work, "vulns"))
	mirror := filepath.Join(t.TempDir(), "vulns.git")
	t.Chdir(work)
	abs := filepath.Join(work, "vulns")
	for i, src := range []string{"vulns", "vulns", "./vulns"} {
		want := commit()
		r, err := Mirror(ctx, src, mirror)
		if err != nil {
			t.Fatalf("run %d: Mirror(%q) = %v, want nil", i+1, src, err)
		}
		if got, err := r.Resolve(ctx, ""); err != nil || got != want {
			t.Errorf("run %d: Mirror(%q) resolves to %s, %v, want %s", i+1, src, got, err, want)
		}
		if got := remoteURL(t, mirror); got != abs {
			t.Errorf("run %d: Mirror(%q) set the remote to %q, want %q", i+1, src, got, abs)
		}
	}
	other := t.TempDir()
	t.Chdir(other)
	rel, err := filepath.Rel(other, abs)
	if err != nil {
		t.Fatal(err)
	}
	want := commit()
	if r, err := Mirror(ctx, rel, mirror); err != nil {
		t.Errorf("Mirror(%q) from %s = %v, want nil", rel, other, err)
	} else if got, _ := r.Resolve(ctx, ""); got != want {
		t.Errorf("Mirror(%q) from %s resolves to %s, want %s", rel, other, got, want)
	}
}

// TestMirrorOptionSource: a source git would read as an option is refused
// before git runs, on a first clone and on a fetch.
func TestMirrorOptionSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	upstream(t, filepath.Join(dir, "src"))
	existing := filepath.Join(dir, "existing.git")
	if _, err := Mirror(ctx, filepath.Join(dir, "src"), existing); err != nil {
		t.Fatal(err)
	}
	before := remoteURL(t, existing)
	for _, mirror := range []string{filepath.Join(dir, "new.git"), existing} {
		for _, src := range []string{"--upload-pack=touch " + marker, "-c", "-"} {
			_, err := Mirror(ctx, src, mirror)
			if err == nil || !strings.Contains(err.Error(), `"-"`) {
				t.Errorf("Mirror(%q, %s) = %v, want a refusal", src, mirror, err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("Mirror(%q, %s) ran the upload pack", src, mirror)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new.git")); err == nil {
		t.Errorf("a refused source left a mirror behind")
	}
	if got := remoteURL(t, existing); got != before {
		t.Errorf("a refused source changed the remote to %q, want %q", got, before)
	}
}

// TestMirrorDashPath: a local path that starts with "-" works when
// written ./-name: it reaches git absolute, after "--".
func TestMirrorDashPath(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	commit := upstream(t, filepath.Join(work, "-src"))
	t.Chdir(work)
	mirror := filepath.Join(work, "-mirror.git")
	for range 2 {
		want := commit()
		r, err := Mirror(ctx, "./-src", mirror)
		if err != nil {
			t.Fatalf("Mirror(%q) = %v, want nil", "./-src", err)
		}
		if got, _ := r.Resolve(ctx, ""); got != want {
			t.Errorf("Mirror(%q) resolves to %s, want %s", "./-src", got, want)
		}
	}
}

func TestResolveOption(t *testing.T) {
	dir := t.TempDir()
	upstream(t, dir)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"--all", "-h"} {
		if got, err := r.Resolve(context.Background(), rev); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", rev, got)
		}
	}
}
