package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// entries lists dir's names, to catch a temporary file left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func noTemp(t *testing.T, dir string) {
	t.Helper()
	for _, n := range entries(t, dir) {
		if strings.Contains(n, ".tmp-") {
			t.Errorf("temporary file %s left in %s", n, dir)
		}
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"missing", func(t *testing.T, path string) {}},
		{"regular", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("old content, longer than the new"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.json")
			tt.setup(t, path)
			if err := WriteFile(path, []byte("new"), 0o644); err != nil {
				t.Fatalf("WriteFile(%q) = %v, want nil", path, err)
			}
			if got := readString(t, path); got != "new" {
				t.Errorf("content of %q = %q, want %q", path, got, "new")
			}
			noTemp(t, dir)
		})
	}
}

// TestPerm: the mode is perm less the umask, as os.WriteFile gives a new
// file, whatever the mode of the file replaced.
func TestPerm(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	for _, perm := range []os.FileMode{0o644, 0o600, 0o755, 0o444} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(path, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), perm&^0o027; got != want {
			t.Errorf("WriteFile(%q, %v) made mode %v, want %v", path, perm, got, want)
		}
	}
}

// TestRefuse makes every kind of non-regular file for real and checks that
// it is refused and left as it was.
func TestRefuse(t *testing.T) {
	tests := []struct {
		name  string
		make  func(t *testing.T, dir, path string)
		check func(t *testing.T, dir, path string) // the thing is unchanged
		want  string                               // in the error
	}{
		{"directory", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir, path string) {
			if st, err := os.Lstat(path); err != nil || !st.IsDir() {
				t.Errorf("directory %s replaced: %v %v", path, st, err)
			}
			if _, err := os.Stat(path + ".tmp"); err == nil {
				t.Errorf("%s.tmp left behind", path)
			}
		}, "directory"},
		{"symlink to a file", func(t *testing.T, dir, path string) {
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir, path string) {
			if got := readString(t, filepath.Join(dir, "victim")); got != "victim" {
				t.Errorf("link target written: %q", got)
			}
			if l, err := os.Readlink(path); err != nil || l != filepath.Join(dir, "victim") {
				t.Errorf("link %s changed: %q %v", path, l, err)
			}
		}, "symbolic link"},
		{"dangling symlink", func(t *testing.T, dir, path string) {
			if err := os.Symlink(filepath.Join(dir, "nowhere"), path); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir, path string) {
			if _, err := os.Lstat(filepath.Join(dir, "nowhere")); err == nil {
				t.Errorf("link target created")
			}
		}, "symbolic link"},
		{"symlink to a directory", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("d", path); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir, path string) {
			if n := entries(t, filepath.Join(dir, "d")); len(n) != 0 {
				t.Errorf("files written into the linked directory: %v", n)
			}
		}, "symbolic link"},
		{"fifo", func(t *testing.T, dir, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir, path string) {
			if st, err := os.Lstat(path); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
				t.Errorf("fifo %s replaced: %v %v", path, st, err)
			}
		}, "FIFO"},
		{"socket", func(t *testing.T, dir, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the socket file when the listener closes.
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
		}, func(t *testing.T, dir, path string) {
			if st, err := os.Lstat(path); err != nil || st.Mode()&fs.ModeSocket == 0 {
				t.Errorf("socket %s replaced: %v %v", path, st, err)
			}
		}, "socket"},
		{"character device", func(t *testing.T, dir, path string) {
			// A private node with /dev/null's numbers (1, 3): the real
			// /dev is never a test target.
			if err := syscall.Mknod(path, syscall.S_IFCHR|0o600, 1<<8|3); err != nil {
				t.Skipf("mknod (needs root): %v", err)
			}
		}, func(t *testing.T, dir, path string) {
			if st, err := os.Lstat(path); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
				t.Errorf("device %s replaced: %v %v", path, st, err)
			}
		}, "character device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out")
			tt.make(t, dir, path)
			before := entries(t, dir)
			err := WriteFile(path, []byte("new"), 0o644)
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("WriteFile(%q) = %v, want %v", path, err, ErrNotRegular)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteFile(%q) = %v, want it to name the path and %q", path, err, tt.want)
			}
			tt.check(t, dir, path)
			if after := entries(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("directory after WriteFile(%q) = %v, want %v", path, after, before)
			}
		})
	}
}

// TestRefuseDevNull only looks at /dev/null: the real /dev is never written.
func TestRefuseDevNull(t *testing.T) {
	if err := checkTarget("/dev/null"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("checkTarget(%q) = %v, want %v", "/dev/null", err, ErrNotRegular)
	}
}

// TestPlantedTemp: a link planted at the fixed name an older writer used
// (OUT.tmp) neither redirects the write nor is touched.
func TestPlantedTemp(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.ko")
	for _, planted := range []string{path + ".tmp", filepath.Join(dir, ".m.ko.tmp")} {
		if err := os.Symlink(victim, planted); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(path, []byte("module"), 0o644); err != nil {
		t.Fatalf("WriteFile(%q) = %v, want nil", path, err)
	}
	if got := readString(t, victim); got != "victim" {
		t.Errorf("victim = %q, want %q", got, "victim")
	}
	if got := readString(t, path); got != "module" {
		t.Errorf("content of %q = %q, want %q", path, got, "module")
	}
	if l, err := os.Readlink(path + ".tmp"); err != nil || l != victim {
		t.Errorf("planted link = %q, %v, want %q", l, err, victim)
	}
}

// TestHardLink: a hard link at the path is replaced, not written through.
func TestHardLink(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out")
	if err := os.Link(other, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, other); got != "other" {
		t.Errorf("hard-linked file = %q, want %q", got, "other")
	}
}

func TestFailingWriter(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(io.Writer) error
	}{
		{"error before writing", func(io.Writer) error { return errBoom }},
		{"error after half", func(w io.Writer) error {
			io.WriteString(w, "half of the new")
			return errBoom
		}},
		{"panic", func(w io.Writer) error {
			io.WriteString(w, "half")
			panic(errBoom)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = r.(error)
					}
				}()
				err = Write(path, 0o644, tt.fn)
			}()
			if !errors.Is(err, errBoom) {
				t.Errorf("Write(%q) = %v, want %v", path, err, errBoom)
			}
			if got := readString(t, path); got != "old" {
				t.Errorf("content of %q = %q, want %q", path, got, "old")
			}
			if n := entries(t, dir); len(n) != 1 {
				t.Errorf("directory = %v, want only out", n)
			}
		})
	}
}

func TestMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "out")
	err := WriteFile(path, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("WriteFile(%q) = %v, want a missing-directory error", path, err)
	}
}

func TestEmptyPath(t *testing.T) {
	if err := WriteFile("", []byte("x"), 0o644); err == nil {
		t.Errorf("WriteFile(%q) = nil, want an error", "")
	}
}

// TestLongName: the temporary name stays within NAME_MAX for a 255-byte
// target name.
func TestLongName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("n", 255))
	if err := WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Errorf("WriteFile(%q) = %v, want nil", path, err)
	}
}

// TestConcurrent: writers racing on one path leave one complete version,
// and a reader meanwhile only ever sees complete versions.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	const writers, size = 8, 256 << 10
	versions := map[string]bool{}
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
		versions[string(contents[i])] = true
	}
	if err := WriteFile(path, contents[0], 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				readErr <- err
				return
			}
			if !versions[string(b)] {
				readErr <- fmt.Errorf("reader saw %d bytes that are no version", len(b))
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for range 10 {
				if err := WriteFile(path, contents[i], 0o644); err != nil {
					t.Errorf("WriteFile(%q) = %v, want nil", path, err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Error(err)
	}
	if b := readString(t, path); !versions[b] {
		t.Errorf("final content (%d bytes) is no version", len(b))
	}
	if n := entries(t, dir); len(n) != 1 {
		t.Errorf("directory = %d entries, want only out", len(n))
	}
}
