package klp

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func compress(t *testing.T, data []byte, suffix string) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch suffix {
	case ".ko":
		return data
	case ".ko.xz":
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case ".ko.zst":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case ".ko.gz":
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("suffix %s", suffix)
	}
	return buf.Bytes()
}

// TestModuleFiles: a module is found under its kernel name in any of
// kmod's compressions, with updates/ first, and its symbols are read from
// the compressed file.
func TestModuleFiles(t *testing.T) {
	obj, err := os.ReadFile(linkedObject(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		files map[string]string // path in the tree → suffix to compress it with
		name  string
		want  string // the file modulePath must pick; "" if none
	}{
		{map[string]string{"kernel/fs/isofs/isofs.ko": ".ko"}, "isofs", "kernel/fs/isofs/isofs.ko"},
		{map[string]string{"kernel/fs/isofs/isofs.ko.xz": ".ko.xz"}, "isofs", "kernel/fs/isofs/isofs.ko.xz"},
		{map[string]string{"kernel/drivers/net/virtio_net.ko.zst": ".ko.zst"}, "virtio_net", "kernel/drivers/net/virtio_net.ko.zst"},
		{map[string]string{"kernel/net/netfilter/nf-nat.ko.gz": ".ko.gz"}, "nf_nat", "kernel/net/netfilter/nf-nat.ko.gz"},
		{map[string]string{"kernel/net/netfilter/nf_nat.ko.xz": ".ko.xz"}, "nf-nat", "kernel/net/netfilter/nf_nat.ko.xz"},
		{map[string]string{"kernel/fs/udf/udf.ko.xz": ".ko.xz", "updates/udf.ko": ".ko", "extra/udf.ko.xz": ".ko.xz"}, "udf", "updates/udf.ko"},
		{map[string]string{"kernel/fs/udf/udf.ko.xz": ".ko.xz", "extra/udf.ko.xz": ".ko.xz"}, "udf", "extra/udf.ko.xz"},
		{map[string]string{"kernel/fs/udf/udf.ko.xz": ".ko.xz", "kernel/fs/udf/udf.o": ".ko", "kernel/fs/udf/udfx.ko.xz": ".ko.xz"}, "udf", "kernel/fs/udf/udf.ko.xz"},
		{map[string]string{"kernel/fs/udf/udf.ko.bz2": ".ko"}, "udf", ""},
	} {
		dir := t.TempDir()
		for rel, suffix := range tc.files {
			p := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, compress(t, obj, suffix), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		k := &Kernel{ModulesDir: dir}
		got, err := k.modulePath(tc.name)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "is not in") {
				t.Errorf("modulePath(%q) in %v = %q, %v; want not found", tc.name, tc.files, got, err)
			}
			continue
		}
		if err != nil || got != filepath.Join(dir, tc.want) {
			t.Errorf("modulePath(%q) in %v = %q, %v; want %s", tc.name, tc.files, got, err, tc.want)
			continue
		}
		st, err := k.Symbols(tc.name)
		if err != nil || !st.Has("f") {
			t.Errorf("Symbols(%q) from %s: %v; want the symbol f", tc.name, tc.want, err)
		}
	}
}

// TestReadSymbolTableCompressedGarbage: a compressed module that is not
// ELF inside is an error, not a System.map to parse.
func TestReadSymbolTableCompressedGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.ko.xz")
	if err := os.WriteFile(p, compress(t, []byte("ffffffff81000000 T _text\n"), ".ko.xz"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSymbolTable(p, "x"); err == nil {
		t.Error("ReadSymbolTable(not ELF .ko.xz) = nil error, want one")
	}
	if err := os.WriteFile(p, []byte("not xz"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSymbolTable(p, "x"); err == nil || !strings.Contains(err.Error(), "xz") {
		t.Errorf("ReadSymbolTable(not xz) = %v, want an xz error", err)
	}
}
