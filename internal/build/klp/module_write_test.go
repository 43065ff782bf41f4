package klp

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
)

// linkedObject compiles a tiny object to stand in for a linked module:
// finalize only needs an ELF file with no livepatch relocations to add.
func linkedObject(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("gcc is required in CI: %v", err)
		}
		t.Skipf("gcc not installed: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.c"), []byte("int f(int x) { return x + 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcc, "-O2", "-c", "-o", "m.o", "m.c")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return filepath.Join(dir, "m.o")
}

// TestFinalizeWrite: the final .ko is written atomically, refuses to
// replace anything but a regular file, and ignores a link planted at the
// OUT.ko.tmp name the writer once used.
func TestFinalizeWrite(t *testing.T) {
	ko := linkedObject(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir, out string)
		refused bool
	}{
		{"new file", func(t *testing.T, dir, out string) {}, false},
		{"old module", func(t *testing.T, dir, out string) {
			if err := os.WriteFile(out, []byte("old module"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"planted tmp link", func(t *testing.T, dir, out string) {
			if err := os.Symlink(filepath.Join(dir, "victim"), out+".tmp"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"link at the output", func(t *testing.T, dir, out string) {
			if err := os.Symlink(filepath.Join(dir, "victim"), out); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"directory at the output", func(t *testing.T, dir, out string) {
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "m.ko")
			tt.setup(t, dir, out)
			err := finalize(ko, out, nil)
			if tt.refused {
				if !errors.Is(err, atomicfile.ErrNotRegular) {
					t.Fatalf("finalize(%q) = %v, want %v", out, err, atomicfile.ErrNotRegular)
				}
			} else {
				if err != nil {
					t.Fatalf("finalize(%q) = %v, want nil", out, err)
				}
				data, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(data), "\x7fELF") {
					t.Errorf("finalize(%q) wrote %d bytes that are not ELF", out, len(data))
				}
			}
			if b, _ := os.ReadFile(victim); string(b) != "victim" {
				t.Errorf("finalize(%q) changed the victim to %q", out, b)
			}
			des, _ := os.ReadDir(dir)
			for _, de := range des {
				if strings.Contains(de.Name(), ".tmp-") {
					t.Errorf("finalize(%q) left %s behind", out, de.Name())
				}
			}
		})
	}
}
