package risk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const formatPatch = `From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001
From: A U Thor <a@example.org>
Subject: [PATCH] net: fix a thing

A message with a line
--- that looks like a header
and more.
---
 net/core/dev.c | 3 ++-
 1 file changed, 2 insertions(+), 1 deletion(-)

diff --git a/net/core/dev.c b/net/core/dev.c
index 1111111..2222222 100644
--- a/net/core/dev.c
+++ b/net/core/dev.c
@@ -10,2 +10,3 @@ static int f(void)
 {
--- weird removed line
+-- weird added line
+	return 0;
\ No newline at end of file
-- 
2.39.2
`

func TestParseDiff(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		files []string
		hunks []int
		lines []int
	}{
		{"format-patch", formatPatch, []string{"net/core/dev.c"}, []int{1}, []int{4}},
		{"plain with timestamps", "--- a/x.c\t2024-01-01\n+++ b/x.c\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n", []string{"x.c"}, []int{1}, []int{2}},
		{"new file", "diff --git a/n.c b/n.c\nnew file mode 100644\n--- /dev/null\n+++ b/n.c\n@@ -0,0 +1,2 @@\n+a\n+b\n", []string{"n.c"}, []int{1}, []int{2}},
		{"deleted file", "--- a/d.c\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-a\n", []string{"d.c"}, []int{1}, []int{1}},
		{"binary", "diff --git a/f.bin b/f.bin\nBinary files a/f.bin and b/f.bin differ\n", []string{"f.bin"}, []int{0}, nil},
		{"two files", "--- a/a.c\n+++ b/a.c\n@@ -1,2 +1,2 @@\n x\n-a\n+b\n--- a/b.c\n+++ b/b.c\n@@ -5 +5,2 @@\n y\n+z\n", []string{"a.c", "b.c"}, []int{1, 1}, []int{3, 2}},
		{"empty context line", "--- a/a.c\n+++ b/a.c\n@@ -1,3 +1,3 @@\n x\n\n-a\n+b\n", []string{"a.c"}, []int{1}, []int{4}},
	}
	for _, tt := range tests {
		files, err := ParseDiff([]byte(tt.in))
		if err != nil {
			t.Errorf("ParseDiff(%s): %v", tt.name, err)
			continue
		}
		if len(files) != len(tt.files) {
			t.Errorf("ParseDiff(%s) = %d files, want %d", tt.name, len(files), len(tt.files))
			continue
		}
		for i, f := range files {
			if f.Path() != tt.files[i] || len(f.Hunks) != tt.hunks[i] {
				t.Errorf("ParseDiff(%s) file %d = %q with %d hunks, want %q with %d", tt.name, i, f.Path(), len(f.Hunks), tt.files[i], tt.hunks[i])
			}
			if tt.hunks[i] > 0 && len(f.Hunks[0].Lines) != tt.lines[i] {
				t.Errorf("ParseDiff(%s) file %d: %d lines, want %d", tt.name, i, len(f.Hunks[0].Lines), tt.lines[i])
			}
		}
	}
	files, err := ParseDiff([]byte(formatPatch))
	if err != nil || len(files) != 1 || len(files[0].Hunks) != 1 {
		t.Fatalf("ParseDiff(formatPatch) = %v, %v", files, err)
	}
	if s := files[0].Hunks[0].Section; s != "static int f(void)" {
		t.Errorf("section = %q", s)
	}
}

func TestParseDiffErrors(t *testing.T) {
	for _, in := range []string{
		"@@ -1 +1 @@\n-a\n+b\n",                       // no file
		"--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n", // short
		"--- a/x\n+++ b/x\n@@ -1 +1 @@\n?a\n",         // bad op
		"--- a/x\n+++ b/x\n@@ -a +1 @@\n",             // bad header
		"--- a/x\n+++ b/x\n@@ -1,99999999999 +1 @@\n", // huge count
	} {
		if _, err := ParseDiff([]byte(in)); !errors.Is(err, ErrBadDiff) {
			t.Errorf("ParseDiff(%q) error = %v, want ErrBadDiff", in, err)
		}
	}
}

// FuzzParseDiff: no input panics, and what parses is consistent with its
// own hunk headers.
func FuzzParseDiff(f *testing.F) {
	f.Add([]byte(formatPatch))
	paths, _ := filepath.Glob(filepath.Join("..", "..", "..", "..", "shared", "corpus", "debian-6.1.176", "patches", "CVE-2026-4*.patch"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := ParseDiff(data)
		if err != nil {
			return
		}
		for _, fl := range files {
			for _, h := range fl.Hunks {
				old, nw := 0, 0
				for _, l := range h.Lines {
					switch l.Op {
					case ' ':
						old++
						nw++
					case '-':
						old++
					case '+':
						nw++
					default:
						t.Fatalf("op %q", l.Op)
					}
				}
				if old != h.OldLines || nw != h.NewLines {
					t.Fatalf("hunk %+v: %d/%d lines", h, old, nw)
				}
			}
		}
		if _, err := Assess(Input{Diff: data}); err != nil && !strings.Contains(err.Error(), "assess risk") {
			t.Fatalf("unwrapped error %v", err)
		}
	})
}
