package elfobj

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

// AddSection appends s to the section header table and returns it.
func (f *File) AddSection(s *Section) *Section {
	f.Sections = append(f.Sections, s)
	s.Index = len(f.Sections)
	return s
}

// AddRelaSection adds a SHT_RELA section called name that applies to
// target, right after target and its existing relocation sections, and
// returns it. flags are added to SHF_INFO_LINK; a livepatch relocation
// section (.klp.rela.<obj>.<section>) wants SHF_ALLOC|SHFRelaLivepatch.
func (f *File) AddRelaSection(name string, target *Section, flags elf.SectionFlag, relocs []Reloc) *Section {
	s := &Section{
		Name:      name,
		Type:      elf.SHT_RELA,
		Flags:     elf.SHF_INFO_LINK | flags,
		Link:      f.Symtab,
		Target:    target,
		Entsize:   relaSize,
		Addralign: 8,
		Relocs:    relocs,
	}
	at := slices.Index(f.Sections, target)
	if at < 0 {
		return f.AddSection(s)
	}
	at++
	for at < len(f.Sections) && f.Sections[at].Type == elf.SHT_RELA && f.Sections[at].Target == target {
		at++
	}
	f.Sections = slices.Insert(f.Sections, at, s)
	for i := at; i < len(f.Sections); i++ {
		f.Sections[i].Index = i + 1
	}
	return s
}

// RemoveSection removes s, the relocation sections that apply to it, and
// the symbols defined in it. Relocations elsewhere that still refer to
// those symbols make WriteTo fail.
func (f *File) RemoveSection(s *Section) {
	gone := map[*Section]bool{s: true}
	for _, o := range f.Sections {
		if o.Type == elf.SHT_RELA && o.Target == s {
			gone[o] = true
		}
	}
	f.Sections = slices.DeleteFunc(f.Sections, func(o *Section) bool { return gone[o] })
	f.Symbols = slices.DeleteFunc(f.Symbols, func(sym *Symbol) bool { return gone[sym.Section] })
	for _, o := range f.Sections {
		if o.Type == elf.SHT_GROUP {
			o.Group = slices.DeleteFunc(o.Group, func(m *Section) bool { return gone[m] })
		}
	}
	f.Renumber()
}

// AddSymbol adds sym to the symbol table and returns it: a global symbol
// at the end, a local one after the other locals (which shifts the
// indexes of the globals).
func (f *File) AddSymbol(sym *Symbol) *Symbol {
	at := len(f.Symbols)
	if sym.Bind == elf.STB_LOCAL {
		for at > 0 && f.Symbols[at-1].Bind != elf.STB_LOCAL {
			at--
		}
	}
	f.Symbols = slices.Insert(f.Symbols, at, sym)
	for i := at; i < len(f.Symbols); i++ {
		f.Symbols[i].Index = i + 1
	}
	return sym
}

// RemoveSymbol removes sym from the symbol table. Relocations that still
// refer to it make WriteTo fail.
func (f *File) RemoveSymbol(sym *Symbol) {
	f.Symbols = slices.DeleteFunc(f.Symbols, func(s *Symbol) bool { return s == sym })
	f.Renumber()
}

// Renumber orders the symbols as ELF requires (all STB_LOCAL symbols
// first; otherwise the existing order is kept) and recomputes
// Section.Index and Symbol.Index.
func (f *File) Renumber() {
	slices.SortStableFunc(f.Symbols, func(a, b *Symbol) int {
		return cmp.Compare(rankBind(a), rankBind(b))
	})
	for i, s := range f.Sections {
		s.Index = i + 1
	}
	for i, s := range f.Symbols {
		s.Index = i + 1
	}
}

func rankBind(s *Symbol) int {
	if s.Bind == elf.STB_LOCAL {
		return 0
	}
	return 1
}

// Bytes returns the serialized object; see WriteTo.
func (f *File) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteTo serializes the object. It renumbers sections and symbols (see
// Renumber), rebuilds the symbol table, the string tables, relocation and
// group sections from the model, and lays the sections out in order, each
// at its alignment (capped at 4096 bytes), with the section header table
// last. Sections it needs
// and the model lacks (.symtab, .strtab, .shstrtab, .symtab_shndx when a
// symbol's section index needs it) are added to f.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if err := f.prepare(); err != nil {
		return 0, err
	}
	out, err := f.encode()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(out)
	if err != nil {
		return int64(n), fmt.Errorf("write object: %w", err)
	}
	return int64(n), nil
}

// prepare adds the sections the serialized form needs and checks that
// everything the model points to is still part of it.
func (f *File) prepare() error {
	if f.Shstrtab == nil {
		f.Shstrtab = f.AddSection(&Section{Name: ".shstrtab", Type: elf.SHT_STRTAB, Addralign: 1})
	}
	if f.Symtab == nil && len(f.Symbols) > 0 {
		str := f.AddSection(&Section{Name: ".strtab", Type: elf.SHT_STRTAB, Addralign: 1})
		f.Symtab = f.AddSection(&Section{Name: ".symtab", Type: elf.SHT_SYMTAB, Link: str, Entsize: symSize, Addralign: 8})
	}
	if f.Symtab != nil && f.Symtab.Link == nil {
		f.Symtab.Link = f.AddSection(&Section{Name: ".strtab", Type: elf.SHT_STRTAB, Addralign: 1})
	}
	f.Renumber()
	if f.Symtab != nil && f.shndxSection() == nil {
		for _, s := range f.Symbols {
			if s.Section != nil && s.Section.Index >= int(elf.SHN_LORESERVE) {
				f.AddSection(&Section{Name: ".symtab_shndx", Type: elf.SHT_SYMTAB_SHNDX,
					Link: f.Symtab, Entsize: 4, Addralign: 4})
				f.Renumber()
				break
			}
		}
	}

	secs := make(map[*Section]bool, len(f.Sections))
	for _, s := range f.Sections {
		if secs[s] {
			return fmt.Errorf("write section %q: %w: listed twice", s.Name, ErrFormat)
		}
		secs[s] = true
	}
	for _, s := range f.Sections {
		if strings.IndexByte(s.Name, 0) >= 0 {
			return fmt.Errorf("write section %q: %w: NUL in name", s.Name, ErrFormat)
		}
	}
	syms := make(map[*Symbol]bool, len(f.Symbols))
	for _, s := range f.Symbols {
		if strings.IndexByte(s.Name, 0) >= 0 {
			return fmt.Errorf("write symbol %q: %w: NUL in name", s.Name, ErrFormat)
		}
		if syms[s] {
			return fmt.Errorf("write symbol %q: %w: listed twice", s.Name, ErrFormat)
		}
		syms[s] = true
		if s.Section != nil && !secs[s.Section] {
			return fmt.Errorf("write symbol %q: %w: its section %q is not in the file", s.Name, ErrFormat, s.Section.Name)
		}
	}
	for _, special := range []*Section{f.Symtab, f.Shstrtab} {
		if special != nil && !secs[special] {
			return fmt.Errorf("write section %q: %w: it was removed", special.Name, ErrFormat)
		}
	}
	for _, s := range f.Sections {
		if s.Link != nil && !secs[s.Link] {
			return fmt.Errorf("write section %q: %w: sh_link section %q is not in the file", s.Name, ErrFormat, s.Link.Name)
		}
		if s.Target != nil && !secs[s.Target] {
			return fmt.Errorf("write section %q: %w: sh_info section %q is not in the file", s.Name, ErrFormat, s.Target.Name)
		}
		switch s.Type {
		case elf.SHT_RELA:
			if f.Symtab == nil && len(s.Relocs) > 0 {
				return fmt.Errorf("write section %q: %w: relocations without a symbol table", s.Name, ErrFormat)
			}
			for i, r := range s.Relocs {
				if r.Sym != nil && !syms[r.Sym] {
					return fmt.Errorf("write section %q: %w: relocation %d refers to symbol %q, which is not in the file",
						s.Name, ErrFormat, i, r.Sym.Name)
				}
			}
		case elf.SHT_GROUP:
			if s.Signature == nil || !syms[s.Signature] {
				return fmt.Errorf("write group %q: %w: signature symbol is not in the file", s.Name, ErrFormat)
			}
			for _, m := range s.Group {
				if !secs[m] {
					return fmt.Errorf("write group %q: %w: member %q is not in the file", s.Name, ErrFormat, m.Name)
				}
			}
		case elf.SHT_REL:
			return fmt.Errorf("write section %q: %w: SHT_REL on x86_64", s.Name, ErrUnsupported)
		}
	}
	return nil
}

func (f *File) shndxSection() *Section {
	for _, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB_SHNDX && (s.Link == f.Symtab || s.Link == nil) {
			return s
		}
	}
	return nil
}

// shdr is a section header about to be written.
type shdr struct {
	name                   uint32
	typ                    uint32
	flags, addr, off, size uint64
	link, info             uint32
	align, entsize         uint64
}

func (f *File) encode() ([]byte, error) {
	le := binary.LittleEndian
	nsec := len(f.Sections) + 1

	// String tables. LLVM shares one table between section and symbol
	// names; keep it shared if the input did.
	var symStr *Section
	if f.Symtab != nil {
		symStr = f.Symtab.Link
	}
	var secNames, symNames []string
	for _, s := range f.Sections {
		secNames = append(secNames, s.Name)
	}
	for _, s := range f.Symbols {
		symNames = append(symNames, s.Name)
	}
	tabs := map[*Section]*strtab{}
	if symStr == f.Shstrtab {
		tabs[f.Shstrtab] = newStrtab(append(secNames, symNames...))
	} else {
		tabs[f.Shstrtab] = newStrtab(secNames)
		if symStr != nil {
			if symStr.Type != elf.SHT_STRTAB {
				return nil, fmt.Errorf("write symbol table: %w: sh_link section %q is not a string table", ErrFormat, symStr.Name)
			}
			tabs[symStr] = newStrtab(symNames)
		}
	}

	contents := make([][]byte, len(f.Sections))
	for i, s := range f.Sections {
		switch {
		case tabs[s] != nil:
			contents[i] = tabs[s].data
		case s == f.Symtab:
			contents[i] = f.encodeSymtab(tabs[symStr])
		case s.Type == elf.SHT_SYMTAB_SHNDX && (s.Link == f.Symtab || s.Link == nil):
			contents[i] = f.encodeShndx()
		case s.Type == elf.SHT_RELA:
			b := make([]byte, len(s.Relocs)*relaSize)
			for j, r := range s.Relocs {
				le.PutUint64(b[j*relaSize:], r.Offset)
				le.PutUint64(b[j*relaSize+8:], elf.R_INFO(uint32(r.SymbolIndex()), uint32(r.Type)))
				le.PutUint64(b[j*relaSize+16:], uint64(r.Addend))
			}
			contents[i] = b
		case s.Type == elf.SHT_GROUP:
			b := make([]byte, 4+4*len(s.Group))
			le.PutUint32(b, s.GroupFlags)
			for j, m := range s.Group {
				le.PutUint32(b[4+4*j:], uint32(m.Index))
			}
			contents[i] = b
		case s.Type != elf.SHT_NOBITS:
			contents[i] = s.Data
		}
	}

	hdrs := make([]shdr, nsec)
	off := uint64(ehdrSize)
	for i, s := range f.Sections {
		h := shdr{
			name: tabs[f.Shstrtab].offs[s.Name], typ: uint32(s.Type), flags: uint64(s.Flags),
			addr: s.Addr, align: s.Addralign, entsize: s.Entsize, info: s.Info,
		}
		if s.Link != nil {
			h.link = uint32(s.Link.Index)
		}
		switch {
		case s == f.Symtab:
			h.info = uint32(f.firstGlobal())
		case s.Type == elf.SHT_RELA:
			if s.Link == nil && f.Symtab != nil {
				h.link = uint32(f.Symtab.Index)
			}
		case s.Type == elf.SHT_SYMTAB_SHNDX:
			if s.Link == nil && f.Symtab != nil {
				h.link = uint32(f.Symtab.Index)
			}
		case s.Type == elf.SHT_GROUP:
			h.info = uint32(s.Signature.Index)
		}
		if s.Target != nil {
			h.info = uint32(s.Target.Index)
		}
		if s.Type == elf.SHT_NOBITS {
			h.size = s.Size
		} else {
			h.size = uint64(len(contents[i]))
		}
		// sh_addralign constrains where the linker or module loader
		// places the section, not its file offset; past a page, padding
		// the file only wastes space (and a corrupt 4 GiB alignment
		// would cost 4 GiB).
		off = alignUp(off, min(s.Addralign, maxFileAlign))
		h.off = off
		if s.Type != elf.SHT_NOBITS {
			off += h.size
		}
		hdrs[i+1] = h
	}
	shoff := alignUp(off, 8)
	total := shoff + uint64(nsec)*shdrSize
	if total > 1<<40 {
		return nil, fmt.Errorf("write object: %w: %d bytes", ErrUnsupported, total)
	}

	shstrndx := f.Shstrtab.Index
	if nsec >= int(elf.SHN_LORESERVE) {
		hdrs[0].size = uint64(nsec)
	}
	if shstrndx >= int(elf.SHN_LORESERVE) {
		hdrs[0].link = uint32(shstrndx)
	}

	out := make([]byte, total)
	copy(out, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(f.OSABI), f.ABIVersion})
	le.PutUint16(out[16:], uint16(elf.ET_REL))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint32(out[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(out[40:], shoff)
	le.PutUint32(out[48:], f.Flags)
	le.PutUint16(out[52:], ehdrSize)
	le.PutUint16(out[58:], shdrSize)
	if nsec < int(elf.SHN_LORESERVE) {
		le.PutUint16(out[60:], uint16(nsec))
	}
	if shstrndx < int(elf.SHN_LORESERVE) {
		le.PutUint16(out[62:], uint16(shstrndx))
	} else {
		le.PutUint16(out[62:], uint16(elf.SHN_XINDEX))
	}
	for i, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS {
			copy(out[hdrs[i+1].off:], contents[i])
		}
		// Keep the model's view of the tables it derives current.
		if s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_SYMTAB_SHNDX || tabs[s] != nil {
			s.Data = contents[i]
		}
		if s == f.Symtab && s.Target == nil {
			s.Info = hdrs[i+1].info
		}
	}
	for i, h := range hdrs {
		b := out[shoff+uint64(i)*shdrSize:]
		le.PutUint32(b[0:], h.name)
		le.PutUint32(b[4:], h.typ)
		le.PutUint64(b[8:], h.flags)
		le.PutUint64(b[16:], h.addr)
		le.PutUint64(b[24:], h.off)
		le.PutUint64(b[32:], h.size)
		le.PutUint32(b[40:], h.link)
		le.PutUint32(b[44:], h.info)
		le.PutUint64(b[48:], h.align)
		le.PutUint64(b[56:], h.entsize)
	}
	return out, nil
}

// firstGlobal is the symbol table's sh_info: one more than the index of
// the last local symbol.
func (f *File) firstGlobal() int {
	n := 1
	for _, s := range f.Symbols {
		if s.Bind == elf.STB_LOCAL {
			n = s.Index + 1
		}
	}
	return n
}

func (f *File) encodeSymtab(names *strtab) []byte {
	le := binary.LittleEndian
	b := make([]byte, (len(f.Symbols)+1)*symSize)
	for i, s := range f.Symbols {
		e := b[(i+1)*symSize:]
		if names != nil {
			le.PutUint32(e, names.offs[s.Name])
		}
		e[4] = elf.ST_INFO(s.Bind, s.Type)
		e[5] = byte(s.Visibility)&3 | s.Other&^3
		shndx := uint16(s.Shndx)
		if s.Section != nil {
			shndx = uint16(s.Section.Index)
			if s.Section.Index >= int(elf.SHN_LORESERVE) {
				shndx = uint16(elf.SHN_XINDEX)
			}
		}
		le.PutUint16(e[6:], shndx)
		le.PutUint64(e[8:], s.Value)
		le.PutUint64(e[16:], s.Size)
	}
	return b
}

func (f *File) encodeShndx() []byte {
	b := make([]byte, (len(f.Symbols)+1)*4)
	for i, s := range f.Symbols {
		if s.Section != nil && s.Section.Index >= int(elf.SHN_LORESERVE) {
			binary.LittleEndian.PutUint32(b[(i+1)*4:], uint32(s.Section.Index))
		}
	}
	return b
}

// maxFileAlign caps the alignment of section contents in the file.
const maxFileAlign = 4096

func alignUp(off, align uint64) uint64 {
	if align <= 1 {
		return off
	}
	return (off + align - 1) &^ (align - 1)
}

// strtab is an ELF string table in which a string that is the tail of
// another shares its bytes, as binutils lays them out, so that rewriting
// an assembler's object gives tables of the same size.
type strtab struct {
	data []byte
	offs map[string]uint32
}

func newStrtab(names []string) *strtab {
	t := &strtab{data: []byte{0}, offs: map[string]uint32{"": 0}}
	uniq := slices.Compact(slices.Sorted(slices.Values(names)))
	// Sorting by reversed string puts every string right before the
	// strings it is a suffix of; walking backwards, a string is stored
	// only when it is not a suffix of the one stored last.
	rev := make([]string, len(uniq))
	for i, s := range uniq {
		rev[i] = reverse(s)
	}
	order := make([]int, len(uniq))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(rev[a], rev[b]) })
	var last string
	var lastOff uint32
	for k := len(order) - 1; k >= 0; k-- {
		s := uniq[order[k]]
		if s == "" {
			continue
		}
		if strings.HasSuffix(last, s) {
			t.offs[s] = lastOff + uint32(len(last)-len(s))
			continue
		}
		last, lastOff = s, uint32(len(t.data))
		t.offs[s] = lastOff
		t.data = append(t.data, s...)
		t.data = append(t.data, 0)
	}
	return t
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
