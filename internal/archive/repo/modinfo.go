package repo

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// modinfo is what the archive needs from a module's .modinfo section.
type modinfo struct {
	Name      string // name=, the name the kernel shows
	Vermagic  string // vermagic=, its first word is the kernel release
	Livepatch bool   // livepatch=Y
}

// maxModinfo bounds the section read: real ones are a few hundred bytes.
const maxModinfo = 1 << 20

// readModinfo checks that data is an ELF relocatable object (a .ko) and
// reads its .modinfo. debug/elf panics on some malformed input: that comes
// back as an error.
func readModinfo(data []byte) (mi modinfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a valid ELF file: %v", r)
		}
	}()
	if len(data) < 4 || !bytes.Equal(data[:4], []byte(elf.ELFMAG)) {
		hint := ""
		if len(data) >= 2 && (bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || bytes.HasPrefix(data, []byte{0xfd, '7'}) || bytes.HasPrefix(data, []byte{0x28, 0xb5})) {
			hint = " (compressed? publish the uncompressed .ko)"
		}
		return mi, fmt.Errorf("not an ELF file%s", hint)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return mi, fmt.Errorf("not a valid ELF file: %w", err)
	}
	if f.Type != elf.ET_REL {
		return mi, fmt.Errorf("ELF type %v: a kernel module is a relocatable object (ET_REL)", f.Type)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return mi, nil
	}
	if sec.Type == elf.SHT_NOBITS || sec.Size > maxModinfo {
		return mi, fmt.Errorf(".modinfo section of %d bytes", sec.Size)
	}
	b, err := io.ReadAll(io.LimitReader(sec.Open(), maxModinfo))
	if err != nil {
		return mi, fmt.Errorf("read .modinfo: %w", err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			mi.Name = v
		case "vermagic":
			mi.Vermagic = v
		case "livepatch":
			mi.Livepatch = v == "Y"
		}
	}
	return mi, nil
}

// moduleName is the name the kernel gives the module: .modinfo's name=,
// else the file name without .ko, with dashes as underscores (as kmod
// does).
func moduleName(mi modinfo, path string) string {
	if mi.Name != "" {
		return mi.Name
	}
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(path), ".ko"), "-", "_")
}
