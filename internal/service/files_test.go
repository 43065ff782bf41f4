package service

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadRegularFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		limit int64
		msg   string // "" for success
	}{
		{ok, 10, ""},
		{link, 10, ""}, // a link to a regular file is that file
		{ok, 9, ok + " is larger than"},
		{dir, 1 << 20, dir + " is a directory"},
		{fifo, 1 << 20, fifo + " is a FIFO"},
		{"/dev/zero", 1 << 20, "/dev/zero is a character device"},
		{"/dev/urandom", 1 << 20, "/dev/urandom is a character device"},
		{filepath.Join(dir, "missing"), 1 << 20, "missing: no such file"},
	}
	for _, tt := range tests {
		start := time.Now()
		data, err := ReadRegularFile("--x", tt.path, tt.limit)
		if time.Since(start) > 5*time.Second {
			t.Errorf("ReadRegularFile(%s) took %s", tt.path, time.Since(start))
		}
		switch {
		case tt.msg == "" && (err != nil || string(data) != "0123456789"):
			t.Errorf("ReadRegularFile(%s) = %q, %v", tt.path, data, err)
		case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "--x ")):
			t.Errorf("ReadRegularFile(%s): %v, want an error naming the flag and %q", tt.path, err, tt.msg)
		case tt.msg != "" && !IsInvalid(err):
			t.Errorf("ReadRegularFile(%s): %v is not an InvalidError", tt.path, err)
		}
	}
}

func TestReadFixes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data, msg string
	}{
		{"good.patch", "From abc\nSubject: x\n---\n x.c | 2 +-\n\ndiff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n", ""},
		{"plain.diff", "--- x.c.orig\n+++ x.c\n@@ -1 +1 @@\n-a\n+b\n", ""},
		{"nul.patch", "--- a/x.c\n+++ b/x.c\n\x00\x01", "binary"},
		{"notes.txt", "--- only a minus line\nand no plus line\n", "not a unified diff"},
		{"swapped.patch", "+++ b/x.c\n--- a/x.c\n", "not a unified diff"},
		{"empty.patch", "", "not a unified diff"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		if err := os.WriteFile(p, []byte(tt.data), 0o644); err != nil {
			t.Fatal(err)
		}
		fixes, err := ReadFixes([]string{p})
		if tt.msg == "" {
			if err != nil || len(fixes) != 1 || fixes[0].Name != tt.name {
				t.Errorf("ReadFixes(%s) = %v, %v", tt.name, fixes, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ReadFixes(%s): %v, want an error naming the file and %q", tt.name, err, tt.msg)
		}
	}
	if _, err := ReadFixes([]string{"/dev/zero"}); err == nil || !strings.Contains(err.Error(), "character device") {
		t.Errorf("ReadFixes(/dev/zero): %v", err)
	}
}
