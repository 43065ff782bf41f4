package service

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/fixsource"
	"github.com/tuxtape/tuxtape/internal/model/patch"
)

func TestWithPrerequisites(t *testing.T) {
	fix := []byte("--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-a\n+b")
	found, _ := json.Marshal(Prerequisites{From: "debian:linux-source-6.1=6.1.187-1", Found: []fixsource.Prerequisite{
		{Files: []string{"f.h"}, Diff: []byte("--- a/f.h\n+++ b/f.h\n@@ -1 +1,2 @@\n a\n+#define X 1\n")},
		{Files: []string{"g.h", "g.c"}, Diff: []byte("--- a/g.h\n+++ b/g.h\n@@ -1 +1,2 @@\n g\n+int g(void);\n")},
	}})
	none, _ := json.Marshal(Prerequisites{From: "git:/srv/linux", Unresolved: []fixsource.Missing{{Kind: fixsource.MissingFunction, Name: "h"}}})
	tests := []struct {
		name     string
		rev      patch.Revision
		wantErr  string
		wantDiff string
		wantSrc  string
	}{
		{"never looked up", patch.Revision{Rev: 1, Diff: fix}, "no prerequisites to add", "", ""},
		{"nothing found", patch.Revision{Rev: 2, Diff: fix, Prerequisites: none}, "no prerequisites to add", "", ""},
		{"corrupt", patch.Revision{Rev: 1, Diff: fix, Prerequisites: json.RawMessage(`{"found":`)}, "no prerequisites to add", "", ""},
		{"two found", patch.Revision{Rev: 3, Diff: fix, Prerequisites: found},
			"", string(fix) + "\n--- a/f.h\n+++ b/f.h\n@@ -1 +1,2 @@\n a\n+#define X 1\n--- a/g.h\n+++ b/g.h\n@@ -1 +1,2 @@\n g\n+int g(void);\n",
			"revision 3 + prerequisites from debian:linux-source-6.1=6.1.187-1: f.h, g.h, g.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diff, src, err := withPrerequisites(tt.rev)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(diff) != tt.wantDiff || src != tt.wantSrc {
				t.Errorf("got %q, %q\nwant %q, %q", diff, src, tt.wantDiff, tt.wantSrc)
			}
			if string(tt.rev.Diff) != string(fix) {
				t.Errorf("the revision's own diff changed")
			}
		})
	}
}

func TestCheckExercise(t *testing.T) {
	tests := []struct {
		name, script string
		ok           bool
	}{
		{"empty", "", true},
		{"script", "cat /proc/cmdline\nmount -o loop /root/x.iso /mnt\n", true},
		{"at the bound", strings.Repeat("x", MaxExercise), true},
		{"over the bound", strings.Repeat("x", MaxExercise+1), false},
		{"NUL", "echo\x00", false},
		{"not UTF-8", "echo \xff", false},
	}
	for _, tt := range tests {
		if _, err := checkExercise(tt.script); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
