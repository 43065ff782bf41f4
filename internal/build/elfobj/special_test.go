package elfobj

import (
	"bytes"
	"debug/elf"
	"testing"
)

func TestAltEntrySize(t *testing.T) {
	// relocations at the two offset fields of n entries of size size
	layout := func(n, size int) (*Section, []Reloc) {
		s := &Section{Name: ".altinstructions", Data: make([]byte, n*size)}
		var rs []Reloc
		for i := range n {
			rs = append(rs, Reloc{Offset: uint64(i * size)}, Reloc{Offset: uint64(i*size + 4)})
		}
		return s, rs
	}
	for _, tt := range []struct {
		n, size, want, table int
	}{
		{1, 12, 12, 12}, {1, 14, 14, 12}, {6, 14, 14, 12}, {7, 12, 12, 12}, {7, 12, 12, 14},
		{12, 14, 14, 12}, {14, 12, 12, 14}, {2, 14, 14, 14}, {0, 12, 12, 12},
	} {
		s, rs := layout(tt.n, tt.size)
		if got := altEntrySize(s, rs, tt.table); got != tt.want {
			t.Errorf("altEntrySize(%d entries of %d bytes, table %d) = %d, want %d", tt.n, tt.size, tt.table, got, tt.want)
		}
	}
	s, rs := layout(1, 13)
	if got := altEntrySize(s, rs, 12); got != 0 {
		t.Errorf("altEntrySize(13 bytes) = %d, want 0", got)
	}
}

func TestSpecialSectionsFor(t *testing.T) {
	find := func(specs []SpecialSection, name string) *SpecialSection {
		for i := range specs {
			if specs[i].Name == name {
				return &specs[i]
			}
		}
		return nil
	}
	for _, tt := range []struct {
		major, minor int
		alt, altLen  int
		para         bool
	}{
		{6, 1, 12, 11, true}, {5, 15, 12, 11, true}, {6, 3, 14, 13, true}, {6, 6, 14, 13, true}, {6, 8, 14, 13, false}, {6, 12, 14, 13, false}, {7, 0, 14, 13, false},
	} {
		specs := SpecialSectionsFor(tt.major, tt.minor)
		alt := find(specs, ".altinstructions")
		if alt == nil || alt.EntrySize != tt.alt || alt.Replacement.LenOffset != tt.altLen {
			t.Errorf("SpecialSectionsFor(%d, %d) .altinstructions = %+v, want %d bytes, length at %d", tt.major, tt.minor, alt, tt.alt, tt.altLen)
		}
		if got := find(specs, ".parainstructions") != nil; got != tt.para {
			t.Errorf("SpecialSectionsFor(%d, %d) has .parainstructions: %v, want %v", tt.major, tt.minor, got, tt.para)
		}
		for _, name := range []string{"__bug_table", "__ex_table", "__jump_table", ".return_sites", ".smp_locks", "__mcount_loc"} {
			if find(specs, name) == nil {
				t.Errorf("SpecialSectionsFor(%d, %d) lacks %s", tt.major, tt.minor, name)
			}
		}
	}
	if DefaultSpecialSections[3].EntrySize != 12 {
		t.Errorf("SpecialSectionsFor changed DefaultSpecialSections: %+v", DefaultSpecialSections[3])
	}
}

// TestAltinstructions612: with the 6.1 table, an object whose alternatives
// have 6.3's 14-byte layout still gets each function its own whole entry.
func TestAltinstructions612(t *testing.T) {
	f := openObj(t, "special/alt612.c", "kernel")
	for _, specs := range [][]SpecialSection{nil, SpecialSectionsFor(6, 12)} {
		o := &DiffOptions{Special: specs}
		seen := map[uint64]bool{}
		n := 0
		for _, fn := range o.Functions(f) {
			for _, sr := range fn.Special {
				if sr.Section.Name != ".altinstructions" {
					continue
				}
				n++
				if sr.Size != 14 || sr.Offset%14 != 0 || seen[sr.Offset] {
					t.Errorf("%s: .altinstructions entry at %d, %d bytes; want a 14-byte entry of its own", fn.Name, sr.Offset, sr.Size)
				}
				seen[sr.Offset] = true
				// The entry's last byte is the replacement's length.
				if l := sr.Section.Data[sr.Offset+13]; l == 0 || l > 6 {
					t.Errorf("%s: replacementlen %d", fn.Name, l)
				}
			}
		}
		if n != 6 {
			t.Errorf("table %v: %d .altinstructions entries tied to functions, want 6", specs != nil, n)
		}
	}
}

// TestPrefixSymbols: the __pfx_ symbols objtool puts on the padding in
// front of each function (call padding, 6.2 and later) are not functions.
func TestPrefixSymbols(t *testing.T) {
	text := &Section{Name: ".text.f", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, Data: append(bytes.Repeat([]byte{0x90}, 16), 0xc3)}
	f := &File{}
	f.AddSection(text)
	f.AddSymbol(&Symbol{Name: "__pfx_f", Type: elf.STT_FUNC, Bind: elf.STB_LOCAL, Section: text, Size: 16})
	f.AddSymbol(&Symbol{Name: "f", Type: elf.STT_FUNC, Bind: elf.STB_GLOBAL, Section: text, Value: 16, Size: 1})
	var names []string
	for _, fn := range Functions(f) {
		names = append(names, fn.Name)
		if fn.Parts[0].Offset != 16 || fn.Parts[0].Size != 1 {
			t.Errorf("%s: part %+v, want 1 byte at 16", fn.Name, fn.Parts[0])
		}
	}
	if len(names) != 1 || names[0] != "f" {
		t.Errorf("Functions = %v, want [f]", names)
	}
	for name, want := range map[string]bool{"__pfx_f": true, "__cfi_f": true, "f": false, "pfx_f": false} {
		if got := IsPrefixSymbol(name); got != want {
			t.Errorf("IsPrefixSymbol(%q) = %v, want %v", name, got, want)
		}
	}
}
