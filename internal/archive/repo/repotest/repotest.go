// Package repotest makes what archive tests need: small real kernel
// module files (ELF relocatables with a .modinfo), a real .ko from the
// cached Debian kernel packages, and an archive served on loopback.
package repotest

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
)

// ModuleBytes is an x86-64 ELF relocatable whose .modinfo holds
// name=<name>, vermagic=<kernel> SMP mod_unload, livepatch=Y and the
// extra key=value strings (which also make the bytes differ).
func ModuleBytes(name, kernel string, extra ...string) []byte {
	var mi bytes.Buffer
	for _, kv := range append([]string{"name=" + name, "vermagic=" + kernel + " SMP mod_unload modversions", "livepatch=Y", "license=GPL"}, extra...) {
		mi.WriteString(kv)
		mi.WriteByte(0)
	}
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	miOff := uint64(ehsize)
	strOff := miOff + uint64(mi.Len())
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7

	var b bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { binary.Write(&b, le, v) }
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	w(uint16(1))  // ET_REL
	w(uint16(62)) // EM_X86_64
	w(uint32(1))
	w(uint64(0)) // entry
	w(uint64(0)) // phoff
	w(shOff)
	w(uint32(0))
	w(uint16(ehsize))
	w(uint16(0))
	w(uint16(0))
	w(uint16(shentsize))
	w(uint16(3)) // sections: null, .modinfo, .shstrtab
	w(uint16(2)) // shstrndx
	b.Write(mi.Bytes())
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	sh := func(name, typ uint32, flags, off, size uint64) {
		w(name)
		w(typ)
		w(flags)
		w(uint64(0)) // addr
		w(off)
		w(size)
		w(uint32(0))
		w(uint32(0))
		w(uint64(1)) // align
		w(uint64(0))
	}
	sh(0, 0, 0, 0, 0)
	sh(1, 1, 2, miOff, uint64(mi.Len())) // .modinfo: PROGBITS, ALLOC
	sh(10, 3, 0, strOff, uint64(len(shstr)))
	return b.Bytes()
}

// Module writes ModuleBytes to a file <name>.ko in a test directory.
func Module(t testing.TB, name, kernel string, extra ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".ko")
	if err := os.WriteFile(p, ModuleBytes(name, kernel, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Serve serves the archive's public directory on loopback until the test
// ends, and returns feed options for a fresh client cache trusting root.
func Serve(t testing.TB, publicDir string) (feed.Options, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(publicDir)))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(publicDir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return feed.Options{
		MetadataURL: srv.URL + "/metadata/",
		TargetsURL:  srv.URL + "/targets/",
		Root:        root,
		Dir:         t.TempDir(),
		HTTPClient:  srv.Client(),
	}, srv
}
