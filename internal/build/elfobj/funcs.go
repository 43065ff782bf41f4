package elfobj

import (
	"cmp"
	"debug/elf"
	"slices"
	"sort"
	"strings"
)

// Function is one function of an object: its main body and the parts GCC
// split off it (foo.cold), each a range of an executable section.
type Function struct {
	Name    string    // symbol name of the main body
	Key     string    // NormalizeName(Name): how Diff matches functions across objects
	Sym     *Symbol   // symbol of the main body
	Aliases []*Symbol // other function symbols for the same bytes
	Parts   []Part    // Parts[0] is the main body, then cold parts by name

	// Refs are the symbols the function's code and its special-section
	// entries refer to (other than the function itself), by symbol
	// index: what a patch containing this function must also provide or
	// resolve. References through a section symbol are reported as the
	// function or object defined at the referenced place when there is
	// one, else as the section symbol.
	Refs []*Symbol

	// Special lists the entries of special sections (see
	// DefaultSpecialSections) that point into this function, or that its
	// code refers to, in section order.
	Special []SpecialRef
}

// Part is one contiguous range of a function.
type Part struct {
	Sym     *Symbol
	Section *Section
	Offset  uint64 // within Section
	Size    uint64
}

// SpecialRef is one special-section entry tied to a function.
type SpecialRef struct {
	Section *Section
	Offset  uint64 // start of the entry within Section
	Size    uint64 // entry size; 0 when unknown, and then Offset is that of the relocation
	// Part is the index in Function.Parts of the part the entry points
	// into and At the offset there; Part is -1 (and At 0) when it is the
	// function's code that refers to the entry (a __dyndbg descriptor).
	Part int
	At   uint64
}

// SpecialSection describes a section whose entries refer to code and must
// travel with the functions they point into.
type SpecialSection struct {
	Name string
	// EntrySize is the size of one entry; 0 when entries are delimited
	// by symbols (__dyndbg descriptors) or unknown.
	EntrySize int
	// Line is a field holding a source line number; its bits are
	// ignored when comparing entries.
	Line Field
	// Replacement, if set, locates a relocation to out-of-line
	// replacement code and the u8 holding its length (alternatives):
	// the replacement's bytes are compared instead of where it sits.
	Replacement *Replacement
}

// Field is a little-endian bit field of an entry, starting at bit 0 of
// the byte at Offset. Bits 0 means there is none.
type Field struct{ Offset, Bits int }

// Replacement locates alternative replacement code from an entry.
type Replacement struct{ RelocOffset, LenOffset int }

// DefaultSpecialSections describes the special sections of an x86_64
// Linux 6.1 object (struct layouts from arch/x86/include/asm/*.h and
// include/linux/dynamic_debug.h of that version). Entry sizes change
// across kernel versions (SpecialSectionsFor has the later layouts; pass
// the target kernel's in DiffOptions). The one change that matters for
// every patch, struct alt_instr growing from 12 to 14 bytes in 6.3, is
// measured from the object whatever the table says (see altEntrySize).
var DefaultSpecialSections = []SpecialSection{
	{Name: "__bug_table", EntrySize: 12, Line: Field{Offset: 8, Bits: 16}}, // disp, file, line, flags
	{Name: "__ex_table", EntrySize: 12},                                    // insn, fixup, data
	{Name: "__jump_table", EntrySize: 16},                                  // code, target, key
	{Name: ".altinstructions", EntrySize: 12, // instr, repl, cpuid, instrlen, replacementlen
		Replacement: &Replacement{RelocOffset: 4, LenOffset: 11}},
	{Name: ".static_call_sites", EntrySize: 8},
	{Name: ".retpoline_sites", EntrySize: 4},
	{Name: ".return_sites", EntrySize: 4},
	{Name: ".call_sites", EntrySize: 4},
	{Name: ".ibt_endbr_seal", EntrySize: 4},
	{Name: ".smp_locks", EntrySize: 4},
	{Name: ".parainstructions", EntrySize: 16}, // instr, type, len, padding
	{Name: "__dyndbg", Line: Field{Offset: 32, Bits: 18}},
	{Name: "__mcount_loc", EntrySize: 8},
	{Name: "__patchable_function_entries", EntrySize: 8},
	{Name: ".orc_unwind_ip", EntrySize: 4},
}

// IsPrefixSymbol says whether name is one objtool gives the padding in
// front of a function (CONFIG_PREFIX_SYMBOLS: __pfx_<function>; Clang's
// kCFI: __cfi_<function>): NOPs, not a function of their own. They are in
// the objects objtool ran on before the link (with IBT, those of
// single-object modules) and in the running kernel's symbol table.
func IsPrefixSymbol(name string) bool {
	return strings.HasPrefix(name, "__pfx_") || strings.HasPrefix(name, "__cfi_")
}

// SpecialSectionsFor describes the special sections of an x86_64 object
// of Linux major.minor: DefaultSpecialSections up to 6.2. From 6.3 struct
// alt_instr holds 32 bits of CPUID and flags (s32 instr_offset, s32
// repl_offset, u32 ft_flags, u8 instrlen, u8 replacementlen: 14 bytes),
// and from 6.8 paravirt calls are alternatives, with no
// .parainstructions. The other layouts are those of 6.1 up to 6.12 at
// least (checked against 6.12's arch/x86/include/asm/{alternative,
// extable,orc_types}.h, asm-generic/bug.h, jump_label.h,
// static_call_types.h and dynamic_debug.h). Objects built with
// delayed objtool (CONFIG_X86_KERNEL_IBT) carry none of the sections
// objtool makes (.return_sites, .retpoline_sites, .call_sites,
// .ibt_endbr_seal, .static_call_sites, .orc_unwind*): objtool makes them
// when the module is linked.
func SpecialSectionsFor(major, minor int) []SpecialSection {
	after := func(ma, mi int) bool { return major > ma || major == ma && minor >= mi }
	if !after(6, 3) {
		return DefaultSpecialSections
	}
	var out []SpecialSection
	for _, s := range DefaultSpecialSections {
		switch s.Name {
		case ".altinstructions":
			s.EntrySize, s.Replacement = 14, &Replacement{RelocOffset: 4, LenOffset: 13}
		case ".parainstructions":
			if after(6, 8) {
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// altEntrySize is the size of the entries of an .altinstructions section
// with relocations rs: of 12 (up to 6.2) and 14 bytes (from 6.3), the one
// that splits the section into whole entries with relocations only at
// their two offset fields (0 and 4), want when both do (one entry of
// neither size never is), 0 when neither does.
func altEntrySize(s *Section, rs []Reloc, want int) int {
	fits := func(n uint64) bool {
		if n == 0 || s.Len()%n != 0 {
			return false
		}
		for _, r := range rs {
			if o := r.Offset % n; o != 0 && o != 4 {
				return false
			}
		}
		return true
	}
	if fits(uint64(want)) {
		return want
	}
	for _, n := range []int{14, 12} {
		if fits(uint64(n)) {
			return n
		}
	}
	return 0
}

// DiffOptions tune Functions and Diff. The zero value (or nil) uses the
// defaults.
type DiffOptions struct {
	// LineFuncs maps functions that take a source line number
	// as an argument to the argument positions that may hold it;
	// nil means DefaultLineFuncs.
	LineFuncs map[string]LineArgs
	// Special describes the special sections; nil means
	// DefaultSpecialSections.
	Special []SpecialSection
}

func (o *DiffOptions) lineFuncs() map[string]LineArgs {
	if o == nil || o.LineFuncs == nil {
		return DefaultLineFuncs
	}
	return o.LineFuncs
}

func (o *DiffOptions) special() []SpecialSection {
	if o == nil || o.Special == nil {
		return DefaultSpecialSections
	}
	return o.Special
}

// Functions returns the functions defined in f, in symbol table order.
func Functions(f *File) []*Function {
	return (*DiffOptions)(nil).Functions(f)
}

// Functions returns the functions defined in f, in symbol table order.
func (o *DiffOptions) Functions(f *File) []*Function {
	v := newView(f, o)
	for _, fn := range v.funcs {
		v.shape(fn)
	}
	return v.funcs
}

// view is an object prepared for comparison: relocations by section,
// symbols by address, functions and special entries.
type view struct {
	f       *File
	opts    *DiffOptions
	relocs  map[*Section][]Reloc    // all relocations applying to a section, by offset
	defined map[*Section][]*Symbol  // function and object symbols, by value
	parts   map[*Section][]partSpan // function parts, by offset
	special map[*Section]*SpecialSection
	funcs   []*Function
	byPart  map[*Symbol]*Function
	digests map[*Section]string
	shapes  map[*Function]*funcShape
	into    map[*Function][]SpecialRef // special entries pointing into each function
}

type partSpan struct {
	start, end uint64
	fn         *Function
	part       int
}

func newView(f *File, o *DiffOptions) *view {
	v := &view{
		f: f, opts: o,
		relocs:  map[*Section][]Reloc{},
		defined: map[*Section][]*Symbol{},
		parts:   map[*Section][]partSpan{},
		special: map[*Section]*SpecialSection{},
		byPart:  map[*Symbol]*Function{},
		digests: map[*Section]string{},
		shapes:  map[*Function]*funcShape{},
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_RELA && s.Target != nil && s.Flags&SHFRelaLivepatch == 0 {
			v.relocs[s.Target] = append(v.relocs[s.Target], s.Relocs...)
		}
	}
	for s, rs := range v.relocs {
		slices.SortStableFunc(rs, func(a, b Reloc) int { return cmp.Compare(a.Offset, b.Offset) })
		v.relocs[s] = rs
	}
	specs := o.special()
	for _, s := range f.Sections {
		for i := range specs {
			if s.Name != specs[i].Name {
				continue
			}
			v.special[s] = &specs[i]
			if rp := specs[i].Replacement; rp != nil && s.Name == ".altinstructions" {
				// The table may be for another kernel version than the
				// object's: measure.
				if n := altEntrySize(s, v.relocs[s], specs[i].EntrySize); n != specs[i].EntrySize && n > 0 {
					spec := specs[i]
					spec.EntrySize, spec.Replacement = n, &Replacement{RelocOffset: rp.RelocOffset, LenOffset: n - 1}
					v.special[s] = &spec
				}
			}
		}
	}
	for _, sym := range f.Symbols {
		if sym.Section != nil && (sym.Type == elf.STT_FUNC || sym.Type == elf.STT_OBJECT || sym.Type == elf.STT_TLS) {
			v.defined[sym.Section] = append(v.defined[sym.Section], sym)
		}
	}
	for s, syms := range v.defined {
		slices.SortStableFunc(syms, func(a, b *Symbol) int {
			if c := cmp.Compare(a.Value, b.Value); c != 0 {
				return c
			}
			return cmp.Compare(rankBind(b), rankBind(a)) // globals first among aliases
		})
		v.defined[s] = syms
	}
	v.findFunctions()
	v.indexSpecial()
	return v
}

// findFunctions groups function symbols into Functions: aliases share a
// Function, cold parts join their parent.
func (v *view) findFunctions() {
	type span struct{ start, end uint64 }
	spanOf := func(sym *Symbol) span {
		n := sym.Section.Len()
		start := min(sym.Value, n)
		end := start + min(sym.Size, n-start)
		if sym.Size == 0 {
			// Assembly may leave the size out: the function then
			// runs to the next function or the section end.
			end = n
			defs := v.defined[sym.Section]
			i := sort.Search(len(defs), func(i int) bool { return defs[i].Value > start })
			for ; i < len(defs); i++ {
				if defs[i].Type == elf.STT_FUNC {
					end = min(end, defs[i].Value)
					break
				}
			}
		}
		return span{start, end}
	}
	type key struct {
		sec *Section
		span
	}
	primary := map[key]*Function{}
	byName := map[string]*Function{}
	var cold []*Symbol
	isFunc := func(sym *Symbol) bool {
		return sym.Type == elf.STT_FUNC && sym.Section != nil && sym.Section.Flags&elf.SHF_EXECINSTR != 0 && !IsPrefixSymbol(sym.Name)
	}
	// Globals first so that an alias pair gets its global name.
	syms := slices.Clone(v.f.Symbols)
	slices.SortStableFunc(syms, func(a, b *Symbol) int { return cmp.Compare(rankBind(b), rankBind(a)) })
	for _, sym := range syms {
		if !isFunc(sym) {
			continue
		}
		if _, ok := coldParent(sym.Name); ok {
			cold = append(cold, sym)
			continue
		}
		sp := spanOf(sym)
		k := key{sym.Section, sp}
		if fn := primary[k]; fn != nil {
			fn.Aliases = append(fn.Aliases, sym)
			byName[sym.Name] = fn
			v.byPart[sym] = fn
			continue
		}
		fn := &Function{Name: sym.Name, Key: NormalizeName(sym.Name), Sym: sym,
			Parts: []Part{{Sym: sym, Section: sym.Section, Offset: sp.start, Size: sp.end - sp.start}}}
		primary[k] = fn
		byName[sym.Name] = fn
		v.byPart[sym] = fn
		v.funcs = append(v.funcs, fn)
	}
	slices.SortFunc(cold, func(a, b *Symbol) int { return strings.Compare(a.Name, b.Name) })
	for _, sym := range cold {
		parent, _ := coldParent(sym.Name)
		sp := spanOf(sym)
		fn := byName[parent]
		if fn == nil {
			// A cold part whose parent is not here stands alone.
			fn = &Function{Name: sym.Name, Key: NormalizeName(sym.Name), Sym: sym}
			byName[sym.Name] = fn
			v.funcs = append(v.funcs, fn)
		}
		fn.Parts = append(fn.Parts, Part{Sym: sym, Section: sym.Section, Offset: sp.start, Size: sp.end - sp.start})
		v.byPart[sym] = fn
	}
	slices.SortStableFunc(v.funcs, func(a, b *Function) int { return cmp.Compare(a.Sym.Index, b.Sym.Index) })
	for _, fn := range v.funcs {
		for i, p := range fn.Parts {
			v.parts[p.Section] = append(v.parts[p.Section], partSpan{p.Offset, p.Offset + p.Size, fn, i})
		}
	}
	for s, ps := range v.parts {
		slices.SortStableFunc(ps, func(a, b partSpan) int { return cmp.Compare(a.start, b.start) })
		v.parts[s] = ps
	}
}

// partAt returns the function part holding offset p of section s. An
// offset just past the end counts (labels at the end of a function).
func (v *view) partAt(s *Section, p uint64) (partSpan, bool) {
	ps := v.parts[s]
	i := sort.Search(len(ps), func(i int) bool { return ps[i].start > p }) - 1
	if i >= 0 && p <= ps[i].end {
		return ps[i], true
	}
	return partSpan{}, false
}

// symbolAt returns the function or object symbol whose range holds
// offset p of section s.
func (v *view) symbolAt(s *Section, p uint64) *Symbol {
	syms := v.defined[s]
	i := sort.Search(len(syms), func(i int) bool { return syms[i].Value > p })
	var best *Symbol
	for j := i - 1; j >= 0; j-- {
		sym := syms[j]
		if p < sym.Value+sym.Size || (sym.Size == 0 && p == sym.Value) {
			if best == nil || sym.Value > best.Value || (sym.Value == best.Value && rankBind(sym) > rankBind(best)) {
				best = sym
			}
		}
		if best != nil && sym.Value < best.Value {
			break
		}
	}
	return best
}

// relocsIn returns the relocations applying to s in [start, end).
func (v *view) relocsIn(s *Section, start, end uint64) []Reloc {
	rs := v.relocs[s]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= start })
	j := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= end })
	if j < i {
		return nil
	}
	return rs[i:j]
}

// bytesOf returns a copy of the bytes of s in [off, off+size), cut at
// the end of its data; nil for SHT_NOBITS.
func bytesOf(s *Section, off, size uint64) []byte {
	n := uint64(len(s.Data))
	if s.Type == elf.SHT_NOBITS || off >= n {
		return nil
	}
	return slices.Clone(s.Data[off : off+min(size, n-off)])
}

// relocSize is how many bytes a relocation patches.
func relocSize(t elf.R_X86_64) uint64 {
	switch t {
	case elf.R_X86_64_NONE:
		return 0
	case elf.R_X86_64_64, elf.R_X86_64_PC64, elf.R_X86_64_GOTOFF64, elf.R_X86_64_GOTPC64,
		elf.R_X86_64_GOT64, elf.R_X86_64_GOTPCREL64, elf.R_X86_64_GOTPLT64, elf.R_X86_64_PLTOFF64,
		elf.R_X86_64_SIZE64, elf.R_X86_64_DTPOFF64, elf.R_X86_64_TPOFF64, elf.R_X86_64_DTPMOD64:
		return 8
	case elf.R_X86_64_16, elf.R_X86_64_PC16:
		return 2
	case elf.R_X86_64_8, elf.R_X86_64_PC8:
		return 1
	}
	return 4
}

// pcRelative reports whether a relocation's value is relative to the
// place it patches, so that in code the addend also holds the distance
// from the patched bytes to the end of the instruction.
func pcRelative(t elf.R_X86_64) bool {
	switch t {
	case elf.R_X86_64_PC32, elf.R_X86_64_PLT32, elf.R_X86_64_PC16, elf.R_X86_64_PC8, elf.R_X86_64_PC64,
		elf.R_X86_64_GOTPCREL, elf.R_X86_64_GOTPCRELX, elf.R_X86_64_REX_GOTPCRELX, elf.R_X86_64_GOTPC32,
		elf.R_X86_64_TLSGD, elf.R_X86_64_TLSLD, elf.R_X86_64_GOTTPOFF, elf.R_X86_64_GOTPC32_TLSDESC:
		return true
	}
	return false
}

// mask zeroes the bytes of b (which starts at offset base) that the
// relocations patch.
func mask(b []byte, base uint64, rs []Reloc) {
	for _, r := range rs {
		for i := uint64(0); i < relocSize(r.Type); i++ {
			if o := r.Offset - base + i; r.Offset >= base && o < uint64(len(b)) {
				b[o] = 0
			}
		}
	}
}

// clearField zeroes a bit field of b.
func clearField(b []byte, fl Field) {
	for bit := 0; bit < fl.Bits; bit++ {
		if i := fl.Offset + bit/8; i >= 0 && i < len(b) {
			b[i] &^= 1 << (bit % 8)
		}
	}
}
