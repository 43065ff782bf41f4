package elfobj

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

func TestOpenModel(t *testing.T) {
	path := compile(t, "diff/line/before.c", "kernel")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()

	if len(f.Sections) != len(ef.Sections)-1 {
		t.Fatalf("Open: %d sections, want %d", len(f.Sections), len(ef.Sections)-1)
	}
	for i, s := range f.Sections {
		es := ef.Sections[i+1]
		if s.Name != es.Name || s.Type != es.Type || s.Flags != es.Flags || s.Index != i+1 ||
			s.Entsize != es.Entsize || s.Addralign != es.Addralign {
			t.Errorf("Open: section %d = %s %v %v, want %s %v %v", i+1, s.Name, s.Type, s.Flags, es.Name, es.Type, es.Flags)
		}
		if s.Type == elf.SHT_RELA {
			if s.Target == nil || s.Target.Index != int(es.Info) || s.Link != f.Symtab {
				t.Errorf("Open: %s applies to %v, want section %d", s.Name, s.Target, es.Info)
			}
			if want := int(es.Size / relaSize); len(s.Relocs) != want {
				t.Errorf("Open: %s has %d relocations, want %d", s.Name, len(s.Relocs), want)
			}
		}
	}
	esyms, err := ef.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Symbols) != len(esyms) {
		t.Fatalf("Open: %d symbols, want %d", len(f.Symbols), len(esyms))
	}
	for i, s := range f.Symbols {
		es := esyms[i]
		if s.Name != es.Name || s.Value != es.Value || s.Size != es.Size || s.SectionIndex() != es.Section ||
			s.Type != elf.ST_TYPE(es.Info) || s.Bind != elf.ST_BIND(es.Info) || s.Index != i+1 {
			t.Errorf("Open: symbol %d = %+v, want %+v", i+1, s, es)
		}
	}
	if s := f.Symbol("unit.c"); s == nil || s.Type != elf.STT_FILE || s.Shndx != elf.SHN_ABS || s.Section != nil {
		t.Errorf("Open: FILE symbol = %+v, want unit.c in SHN_ABS", s)
	}
	if s := f.Symbol("__might_sleep"); s == nil || s.Shndx != elf.SHN_UNDEF || s.Section != nil {
		t.Errorf("Open: undefined symbol = %+v, want SHN_UNDEF", s)
	}
	// Relocations point at the symbol objects, keeping their indexes.
	for _, s := range f.RelaSections(f.Section(".text.sleepy")) {
		for _, r := range s.Relocs {
			if r.Sym == nil || f.Symbols[r.SymbolIndex()-1] != r.Sym {
				t.Errorf("Open: relocation %+v does not refer to its symbol by index", r)
			}
		}
	}
}

func TestOpenRejects(t *testing.T) {
	obj, err := os.ReadFile(compile(t, "diff/body/before.c", "user"))
	if err != nil {
		t.Fatal(err)
	}
	patch := func(off int, b ...byte) []byte {
		out := bytes.Clone(obj)
		copy(out[off:], b)
		return out
	}
	le := binary.LittleEndian
	shoff := int(le.Uint64(obj[40:]))
	symtab := -1
	for i := 0; i < int(le.Uint16(obj[60:])); i++ {
		if elf.SectionType(le.Uint32(obj[shoff+i*shdrSize+4:])) == elf.SHT_SYMTAB {
			symtab = i
		}
	}
	if symtab < 0 {
		t.Fatal("test object has no symbol table")
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"not ELF", []byte("#!/bin/sh\necho hello\n"), ErrFormat},
		{"truncated header", obj[:40], ErrFormat},
		{"truncated sections", obj[:len(obj)/2], ErrFormat},
		{"big-endian", patch(5, byte(elf.ELFDATA2MSB)), ErrUnsupported},
		{"aarch64", patch(18, byte(elf.EM_AARCH64)), ErrUnsupported},
		{"shared object", patch(16, byte(elf.ET_DYN)), ErrUnsupported},
		{"symbol table links a non-string table", patch(shoff+symtab*shdrSize+40, byte(symtab)), ErrFormat},
		{"symbol table size", patch(shoff+symtab*shdrSize+32, 23), ErrFormat},
		{"alignment not a power of two", patch(shoff+1*shdrSize+48, 3), ErrFormat},
	}
	for _, tt := range tests {
		f, err := Open(bytes.NewReader(tt.data))
		if !errors.Is(err, tt.want) {
			t.Errorf("Open(%s) = %v, %v, want %v", tt.name, f != nil, err, tt.want)
		}
	}
	if _, err := OpenFile("/nonexistent/unit.o"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenFile(missing) error = %v, want ErrNotExist", err)
	}
}
