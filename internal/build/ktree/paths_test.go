package ktree

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pathTree is a small tree with the links a hostile diff would use: one
// pointing out of the tree, one to a directory inside it.
func pathTree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"tree/drivers/net", "tree/fs", "tree/.git", "tree/real"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tree/fs/inode.c", "tree/drivers/net/tun.c", "tree/Makefile"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"tree/drivers/out":    outside,
		"tree/inside":         "real",
		"tree/fs/linked.c":    filepath.Join(outside, "victim.c"),
		"tree/unrelated-link": outside,
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "tree")
}

func TestCheckPatchPathsRefused(t *testing.T) {
	tree := pathTree(t)
	tests := []struct {
		name string
		diff string
		line int    // the line the error names
		want string // in the reason
	}{
		{"climbs out", "--- a/../../../some/dir/x.c\n+++ b/../../../some/dir/x.c\n@@ -1 +1 @@\n-a\n+b\n", 1, `".."`},
		{"climbs out in +++ only", "--- a/x.c\n+++ b/../../x.c\n", 2, `".."`},
		{"absolute", "--- /tmp/x.c\n+++ /tmp/x.c\n", 1, "absolute"},
		{"a/../../x", "--- a/../../x\n+++ b/x\n", 1, `".."`},
		{"a/.. is the tree", "--- a/fs/../../x.c\n+++ b/x.c\n", 1, `".."`},
		{"dot component", "--- a/./fs/inode.c\n+++ b/fs/inode.c\n", 1, "clean"},
		{"double slash", "--- a/fs//inode.c\n+++ b/fs/inode.c\n", 1, "clean"},
		{"leading ./", "--- ./a/fs/inode.c\n+++ ./b/fs/inode.c\n", 1, "clean"},
		{"trailing slash", "--- a/fs/\n+++ b/fs/\n", 1, "clean"},
		{"no prefix to strip", "--- inode.c\n+++ inode.c\n", 1, "-p1"},
		{"empty name", "--- \n+++ b/x.c\n", 1, "empty"},
		{"empty quoted name", "--- \"\"\n+++ b/x.c\n", 1, "empty"},
		{"dot", "--- a/.\n+++ b/.\n", 1, "clean"},
		{"nul byte", "--- a/x\x00y.c\n+++ b/x\x00y.c\n", 1, "control"},
		{"quoted newline", "--- \"a/x\\ny.c\"\n+++ \"b/x\\ny.c\"\n", 1, "control"},
		{"quoted nul", "--- \"a/x\\000.c\"\n+++ b/x.c\n", 1, "control"},
		{"quoted octal dots", "--- \"a/\\056\\056/x.c\"\n+++ b/x.c\n", 1, `".."`},
		{"quoted climbs out", "--- \"a/../x y.c\"\n+++ b/x.c\n", 1, `".."`},
		{"unterminated quote", "--- \"a/x.c\n+++ b/x.c\n", 1, "unterminated"},
		{"bad escape", "--- \"a/\\q.c\"\n+++ b/x.c\n", 1, "escape"},
		{"short octal", "--- \"a/\\05.c\"\n+++ b/x.c\n", 1, "octal"},
		{"git config", "--- a/.git/config\n+++ b/.git/config\n", 1, ".git"},
		{"git hooks upper case", "--- a/.GIT/hooks/pre-commit\n+++ b/.GIT/hooks/pre-commit\n", 1, ".git"},
		{"git dir deep", "--- a/fs/.git/x\n+++ b/fs/.git/x\n", 1, ".git"},
		{"symlink out", "--- a/drivers/out/x.c\n+++ b/drivers/out/x.c\n", 1, "symbolic link"},
		{"symlink inside", "--- a/inside/x.c\n+++ b/inside/x.c\n", 1, "symbolic link"},
		{"symlinked file", "--- a/fs/linked.c\n+++ b/fs/linked.c\n", 1, "symbolic link"},
		{"diff --git climbs out", "diff --git a/../x.c b/../x.c\nnew file mode 100644\n", 1, `".."`},
		{"diff --git absolute", "diff --git /etc/passwd /etc/passwd\n", 1, "absolute"},
		{"diff --git unreadable", "diff --git a/x y.c b/z w.c\n", 1, "apart"},
		{"diff --git quoted", "diff --git \"a/\\056\\056/x\" \"b/\\056\\056/x\"\n", 1, `".."`},
		{"rename to", "diff --git a/x.c b/y.c\nsimilarity index 100%\nrename from x.c\nrename to ../../y.c\n", 4, `".."`},
		{"rename from absolute", "diff --git a/x.c b/y.c\nrename from /etc/x.c\nrename to y.c\n", 2, "absolute"},
		{"copy to git", "diff --git a/x.c b/y.c\ncopy from x.c\ncopy to .git/config\n", 3, ".git"},
		{"rename quoted", "diff --git a/x.c b/y.c\nrename from x.c\nrename to \"../y\\ty.c\"\n", 3, "control"},
		{"index line", "Index: ../x.c\n===\n--- a/x.c\n+++ b/x.c\n", 1, `".."`},
		{"context diff", "*** a/../x.c\t2024-01-01\n--- b/x.c\t2024-01-01\n***************\n*** 1 ****\n--- 1 ----\n", 1, `".."`},
		{"after a hunk", "--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n--- a/../y.c\n+++ b/../y.c\n", 6, `".."`},
		{"hunk too long to count", "--- a/x.c\n+++ b/x.c\n@@ -1,99999999999999999999 +1 @@\n--- a/../y.c\n+++ b/../y.c\n", 4, `".."`},
		{"hunk cut short", "--- a/x.c\n+++ b/x.c\n@@ -1,5 +1,5 @@\n a\ndiff --git a/../y b/../y\n", 5, `".."`},
		{"indented", "Quoted:\n  --- a/x.c\n  +++ b/../x.c\n  @@ -1 +1 @@\n  -a\n  +b\n", 3, `".."`},
		{"indented with X", "X--- a/../x.c\nX+++ b/x.c\n", 1, `".."`},
		{"after an indented hunk", "  --- a/x.c\n  +++ b/x.c\n  @@ -1 +1 @@\n  -a\n  +b\n  --- a/../y.c\n", 6, `".."`},
		{"crlf", "--- a/../x.c\r\n+++ b/../x.c\r\n", 1, `".."`},
		// An added line "++ ../../x.c" is content to patch, but the tree's
		// file list (PatchFiles) reads every "+++ " line.
		{"added line read as a name", "--- a/x.c\n+++ b/x.c\n@@ -1 +1,2 @@\n a\n+++ ../../evil.c\n", 5, `".."`},
		{"added line absolute", "--- a/x.c\n+++ b/x.c\n@@ -1 +1,2 @@\n a\n+++ /etc/evil.c\n", 5, "absolute"},
		{"added line through a link", "--- a/x.c\n+++ b/x.c\n@@ -1 +1,2 @@\n a\n+++ b/drivers/out/x.c\n", 5, "symbolic link"},
		{"tree list reading of a header", "--- a/x.c\n+++  b/x.c\n+++ b//x.c\n", 3, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPatchPaths([]byte(tt.diff), tree)
			var pe *PathError
			if !errors.As(err, &pe) || !errors.Is(err, ErrBadPath) {
				t.Fatalf("CheckPatchPaths(%q) = %v, want a *PathError", tt.diff, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Reason, tt.want) {
				t.Errorf("CheckPatchPaths(%q) = %v, want line %d and %q", tt.diff, err, tt.line, tt.want)
			}
		})
	}
}

func TestPatchPathsAccepted(t *testing.T) {
	tree := pathTree(t)
	kernel, err := os.ReadFile("testdata/keys-request-auth.patch")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		diff string
		want []string
	}{
		{"kernel fix", string(kernel), []string{
			"include/keys/request_key_auth-type.h", "security/keys/internal.h",
			"security/keys/keyctl.c", "security/keys/request_key_auth.c"}},
		{"new file", "diff --git a/fs/new.c b/fs/new.c\nnew file mode 100644\n--- /dev/null\n+++ b/fs/new.c\n@@ -0,0 +1 @@\n+x\n", []string{"fs/new.c"}},
		{"new directory", "--- /dev/null\n+++ b/fs/newdir/new.c\n", []string{"fs/newdir/new.c"}},
		{"deleted file", "--- a/fs/inode.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n", []string{"fs/inode.c"}},
		{"timestamps", "--- a/fs/inode.c\t2024-01-01 00:00:00.000000000 +0000\n+++ b/fs/inode.c\t2024-01-02 00:00:00.000000000 +0000\n", []string{"fs/inode.c"}},
		{"other prefixes", "--- i/fs/inode.c\n+++ w/fs/inode.c\n", []string{"fs/inode.c"}},
		{"space before a tab", "--- a/fs/x y.c\t\n+++ b/fs/x y.c\t\n", []string{"fs/x y.c"}},
		{"git names with a space", "diff --git a/fs/x y.c b/fs/x y.c\n--- a/fs/x y.c\t\n+++ b/fs/x y.c\t\n", []string{"fs/x y.c"}},
		{"quoted utf-8", "--- \"a/fs/caf\\303\\251.c\"\n+++ \"b/fs/caf\\303\\251.c\"\n", []string{"fs/café.c"}},
		{"quoted quote", "--- \"a/fs/x\\\"y.c\"\n+++ \"b/fs/x\\\"y.c\"\n", []string{`fs/x"y.c`}},
		{"rename", "diff --git a/fs/inode.c b/fs/node.c\nsimilarity index 90%\nrename from fs/inode.c\nrename to fs/node.c\n--- a/fs/inode.c\n+++ b/fs/node.c\n", []string{"fs/inode.c", "fs/node.c"}},
		{"quoted rename", "diff --git \"a/fs/x y.c\" \"b/fs/x\\\"z.c\"\nrename from fs/x y.c\nrename to \"fs/x\\\"z.c\"\n", []string{"fs/x y.c", `fs/x"z.c`}},
		{"ended hunk", "--- a/fs/inode.c\n+++ b/fs/inode.c\n@@ -1 +1 @@\n-a\n+b\n--- a/fs/x.c\n+++ b/fs/x.c\n", []string{"fs/inode.c", "fs/x.c"}},
		{"removed line like a header", "--- a/fs/inode.c\n+++ b/fs/inode.c\n@@ -1,2 +1 @@\n a\n--- ../../not-a-name\n", []string{"fs/inode.c"}},
		{"empty context line", "--- a/fs/inode.c\n+++ b/fs/inode.c\n@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n--- a/fs/x.c\n+++ b/fs/x.c\n", []string{"fs/inode.c", "fs/x.c"}},
		{"no newline marker", "--- a/fs/inode.c\n+++ b/fs/inode.c\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n", []string{"fs/inode.c"}},
		{"context diff", "*** a/fs/inode.c\t2024-01-01\n--- b/fs/inode.c\t2024-01-01\n***************\n*** 1,2 ****\n  a\n! b\n--- 1,2 ----\n  a\n! c\n", []string{"fs/inode.c"}},
		{"mail around it", "From: someone\nSubject: [PATCH] fix\n\nbody\n---\n fs/inode.c | 2 +-\n\n--- a/fs/inode.c\n+++ b/fs/inode.c\n@@ -1 +1 @@\n-a\n+b\n-- \n2.39.2\n", []string{"fs/inode.c"}},
		{"a link elsewhere in the tree", "--- a/drivers/net/tun.c\n+++ b/drivers/net/tun.c\n", []string{"drivers/net/tun.c"}},
		{"top-level file", "--- a/Makefile\n+++ b/Makefile\n", []string{"Makefile"}},
		{"dotfile that is not .git", "--- a/.gitignore\n+++ b/.gitignore\n", []string{".gitignore"}},
		{"no names", "just text\n", nil},
		{"indented", "  --- a/fs/inode.c\n  +++ b/fs/inode.c\n  @@ -1,2 +1,2 @@\n   a\n  --- ../../not-a-name\n  +b\n", []string{"fs/inode.c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PatchPaths([]byte(tt.diff), tree)
			if err != nil {
				t.Fatalf("PatchPaths(%q) = %v, want %q", tt.diff, err, tt.want)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PatchPaths(%q) = %q, want %q", tt.diff, got, tt.want)
			}
		})
	}
}

// TestCheckPatchPathsNoTree: without a tree only the names are checked.
func TestCheckPatchPathsNoTree(t *testing.T) {
	diff := "--- a/drivers/out/x.c\n+++ b/drivers/out/x.c\n"
	if err := CheckPatchPaths([]byte(diff), ""); err != nil {
		t.Errorf("CheckPatchPaths(%q, \"\") = %v, want nil", diff, err)
	}
}

func FuzzCheckPatchPaths(f *testing.F) {
	seeds := []string{
		"--- a/fs/inode.c\n+++ b/fs/inode.c\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n",
		"diff --git \"a/x\\ty\" \"b/x\\ty\"\nrename from x\nrename to \"y\\303\\251\"\n",
		"--- /dev/null\n+++ b/x.c\t2024\n@@ -0,0 +1 @@\n+++ b/y.c\n",
		"*** a/x.c\n--- b/x.c\n***************\n*** 1 ****\n--- 1 ----\n",
		"Index: x.c\n--- a/../x\n+++ /x\n",
	}
	if kernel, err := os.ReadFile("testdata/keys-request-auth.patch"); err == nil {
		seeds = append(seeds, string(kernel))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, diff []byte) {
		paths, err := PatchPaths(diff, "")
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("PatchPaths(%q) = %v, want a *PathError", diff, err)
			}
			return
		}
		for _, p := range paths {
			if !escapeFree(p) || filepath.Clean(p) != p {
				t.Errorf("PatchPaths(%q) accepted %q", diff, p)
			}
		}
		// What the tree's file list reads from an accepted diff is what
		// gets compiled: it must stay inside too.
		for _, p := range PatchFiles(diff) {
			if !escapeFree(p) {
				t.Errorf("PatchFiles(%q) lists %q after PatchPaths accepted it", diff, p)
			}
		}
	})
}

func escapeFree(p string) bool {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "..") && (len(p) == 2 || p[2] == '/') {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." || strings.EqualFold(c, ".git") {
			return false
		}
	}
	return true
}
