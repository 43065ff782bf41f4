package kmodfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestName(t *testing.T) {
	for _, tt := range []struct {
		file, name, suffix string
	}{
		{"kernel/fs/isofs/isofs.ko", "isofs", ".ko"},
		{"kernel/net/netfilter/nf-nat.ko.xz", "nf_nat", ".ko.xz"},
		{"virtio_net.ko.zst", "virtio_net", ".ko.zst"},
		{"a/b/c-d.ko.gz", "c_d", ".ko.gz"},
		{"modules.dep", "modules.dep", ""},
		{"x.ko.bz2", "x.ko.bz2", ""},
	} {
		if got := Name(tt.file); got != tt.name {
			t.Errorf("Name(%q) = %q, want %q", tt.file, got, tt.name)
		}
		if got := Suffix(tt.file); got != tt.suffix {
			t.Errorf("Suffix(%q) = %q, want %q", tt.file, got, tt.suffix)
		}
		if got, want := IsModule(tt.file), tt.suffix != ""; got != want {
			t.Errorf("IsModule(%q) = %v, want %v", tt.file, got, want)
		}
	}
}

// TestRead reads files compressed by the real tools as kbuild runs them
// (xz --check=crc32 --lzma2=dict=1MiB, zstd, gzip -n).
func TestRead(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "plain.ko"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Suffixes {
		got, err := Read(filepath.Join("testdata", "plain"+s))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Read(plain%s) = %d bytes, %v; want the %d bytes of plain.ko", s, len(got), err, len(want))
		}
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "x.o")); !errors.Is(err, ErrNotModule) {
		t.Errorf("Read(x.o) = %v, want ErrNotModule", err)
	}
	if _, err := Read(filepath.Join(dir, "missing.ko.xz")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing.ko.xz) = %v, want ErrNotExist", err)
	}
	for _, s := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
		p := filepath.Join(dir, "bad"+s)
		if err := os.WriteFile(p, []byte("not compressed at all"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p); err == nil {
			t.Errorf("Read(bad%s) = nil error, want one", s)
		}
	}
	// Truncated: the data stops before the stream's end.
	for _, s := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
		data, err := os.ReadFile(filepath.Join("testdata", "plain"+s))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "short"+s)
		if err := os.WriteFile(p, data[:len(data)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p); err == nil {
			t.Errorf("Read(short%s) = nil error, want one", s)
		}
	}
}

func FuzzDecompress(f *testing.F) {
	for _, s := range Suffixes[1:] {
		data, err := os.ReadFile(filepath.Join("testdata", "plain"+s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		_, _ = Decompress(bytes.NewReader(data), Suffixes[int(which)%len(Suffixes)])
	})
}
