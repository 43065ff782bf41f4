package klp

import (
	"cmp"
	"debug/elf"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

// Livepatch relocations travel through the module's link as ordinary
// relocations against stand-in symbols: weak undefined symbols named
// placeholderPrefix…, which modpost leaves alone (an unresolved weak
// symbol is no error) and which finalize turns back into .klp.rela
// entries against .klp.sym symbols, wherever the link put their place.
// Without them the places would have no relocation at all while the
// module is linked, and objtool, which kernels built with IBT
// (CONFIG_X86_KERNEL_IBT, Debian's 6.12 line) run on the linked module
// rather than on each object, takes a call without a relocation for a
// call to the next instruction ("unannotated intra-function call") and
// gives up on the whole module: no .return_sites (every return of the
// patch then goes through the unpatched return thunk and WARNs in
// __warn_thunk), no ORC data, no .retpoline_sites, .call_sites or
// .ibt_endbr_seal.
const placeholderPrefix = "__tuxtape_klp."

// placeholderName is the stand-in symbol of r's target: one per patched
// object, symbol object, name and position.
func placeholderName(r KlpReloc) string {
	return fmt.Sprintf("%s%s.%s.%s,%d", placeholderPrefix, r.Object, cmp.Or(r.SymObject, r.Object), r.Name, r.Sympos)
}

// klpSymName is the livepatch symbol of r's target.
func klpSymName(r KlpReloc) string {
	return fmt.Sprintf(".klp.sym.%s.%s,%d", cmp.Or(r.SymObject, r.Object), r.Name, r.Sympos)
}

// addPlaceholders gives each livepatch relocation of u an ordinary
// relocation at its place, against its stand-in symbol.
func addPlaceholders(u *Extracted) error {
	syms := map[string]*elfobj.Symbol{}
	added := map[*elfobj.Section][]elfobj.Reloc{}
	var order []*elfobj.Section
	for _, r := range u.Klp {
		sec := u.File.Section(r.Section)
		if sec == nil {
			return fmt.Errorf("livepatch relocation against %s: the patch object has no section %s", r.Name, r.Section)
		}
		name := placeholderName(r)
		sym := syms[name]
		if sym == nil {
			if sym = u.File.Symbol(name); sym == nil {
				sym = u.File.AddSymbol(&elfobj.Symbol{Name: name, Type: elf.STT_NOTYPE, Bind: elf.STB_WEAK, Shndx: elf.SHN_UNDEF})
			}
			syms[name] = sym
		}
		if _, ok := added[sec]; !ok {
			order = append(order, sec)
		}
		added[sec] = append(added[sec], elfobj.Reloc{Offset: r.Offset, Type: r.Type, Sym: sym, Addend: r.Addend})
	}
	for _, sec := range order {
		if rs := u.File.RelaSections(sec); len(rs) > 0 {
			rs[0].Relocs = append(rs[0].Relocs, added[sec]...)
			sort.SliceStable(rs[0].Relocs, func(i, j int) bool { return rs[0].Relocs[i].Offset < rs[0].Relocs[j].Offset })
			continue
		}
		u.File.AddRelaSection(".rela"+sec.Name, sec, 0, added[sec])
	}
	return nil
}

// klpRelocate moves the relocations of the linked module f against
// stand-in symbols into .klp.rela.<object>.<section> sections against
// .klp.sym symbols, and removes the stand-ins. Every relocation of klp
// must be found.
func klpRelocate(f *elfobj.File, klp []KlpReloc) error {
	byName := map[string]KlpReloc{}
	for _, r := range klp {
		byName[placeholderName(r)] = r
	}
	syms := map[string]*elfobj.Symbol{}
	groups := map[string][]elfobj.Reloc{}
	targets := map[string]*elfobj.Section{}
	found := map[string]bool{}
	var emptied []*elfobj.Section
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA || s.Flags&elfobj.SHFRelaLivepatch != 0 {
			continue
		}
		kept := s.Relocs[:0]
		moved := false
		for _, rel := range s.Relocs {
			if rel.Sym == nil || rel.Sym.Section != nil || !strings.HasPrefix(rel.Sym.Name, placeholderPrefix) {
				kept = append(kept, rel)
				continue
			}
			r, ok := byName[rel.Sym.Name]
			if !ok {
				return fmt.Errorf("finalize: %s refers to %s, which no livepatch relocation names", s.Name, rel.Sym.Name)
			}
			if s.Target == nil {
				return fmt.Errorf("finalize: %s applies to no section", s.Name)
			}
			found[rel.Sym.Name], moved = true, true
			symName := klpSymName(r)
			sym := syms[symName]
			if sym == nil {
				sym = f.AddSymbol(&elfobj.Symbol{Name: symName, Type: elf.STT_NOTYPE, Bind: elf.STB_GLOBAL, Shndx: elfobj.SHNLivepatch})
				syms[symName] = sym
			}
			key := ".klp.rela." + r.Object + "." + s.Target.Name
			targets[key] = s.Target
			groups[key] = append(groups[key], elfobj.Reloc{Offset: rel.Offset, Type: rel.Type, Sym: sym, Addend: rel.Addend})
		}
		s.Relocs = kept
		if moved && len(kept) == 0 {
			emptied = append(emptied, s)
		}
	}
	for name := range byName {
		if !found[name] {
			return fmt.Errorf("finalize: the linked module lost the livepatch relocations against %s", name)
		}
	}
	for _, s := range emptied {
		f.RemoveSection(s)
	}
	for _, sym := range slices.Clone(f.Symbols) {
		if sym.Section == nil && strings.HasPrefix(sym.Name, placeholderPrefix) {
			f.RemoveSymbol(sym)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		rs := groups[key]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
		f.AddRelaSection(key, targets[key], elf.SHF_ALLOC|elfobj.SHFRelaLivepatch, rs)
	}
	return nil
}

// relocSize is how many bytes an x86_64 relocation writes; 0 for those
// that write none (R_X86_64_NONE) or that the module loader does not
// know.
func relocSize(t elf.R_X86_64) int {
	switch t {
	case elf.R_X86_64_64, elf.R_X86_64_PC64:
		return 8
	case elf.R_X86_64_32, elf.R_X86_64_32S, elf.R_X86_64_PC32, elf.R_X86_64_PLT32,
		elf.R_X86_64_GOTPCREL, elf.R_X86_64_GOTPCRELX, elf.R_X86_64_REX_GOTPCRELX:
		return 4
	case elf.R_X86_64_16, elf.R_X86_64_PC16:
		return 2
	case elf.R_X86_64_8, elf.R_X86_64_PC8:
		return 1
	}
	return 0
}

// zeroRelocated clears the bytes under every relocation (ordinary and
// livepatch) of the module's allocated sections. With RELA the value is
// the symbol plus the addend, and the bytes there are not read, but the
// 6.12 module loader refuses a place that is not zero ("x86/modules:
// Invalid relocation target, existing value is nonzero for type N"), so
// whatever code or data copied into the patch left there must go.
func zeroRelocated(f *elfobj.File) error {
	for _, s := range f.Sections {
		t := s.Target
		if s.Type != elf.SHT_RELA || t == nil || t.Type == elf.SHT_NOBITS || t.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		for _, r := range s.Relocs {
			n := uint64(relocSize(r.Type))
			if n == 0 {
				continue
			}
			if r.Offset+n > uint64(len(t.Data)) || r.Offset+n < r.Offset {
				return fmt.Errorf("finalize: %s: relocation at %#x is past the end of %s (%d bytes)", s.Name, r.Offset, t.Name, len(t.Data))
			}
			clear(t.Data[r.Offset : r.Offset+n])
		}
	}
	return nil
}

// checkReturnSites says whether every `jmp __x86_return_thunk` of the
// module's code is listed in .return_sites, where the module loader
// rewrites it (apply_returns): one that is not runs the unpatched thunk,
// which WARNs in __warn_thunk. Only for a module that has such returns.
func checkReturnSites(f *elfobj.File) error {
	type place struct {
		sec *elfobj.Section
		off uint64
	}
	listed := map[place]bool{}
	if rs := f.Section(".return_sites"); rs != nil {
		for _, rel := range f.RelaSections(rs) {
			for _, r := range rel.Relocs {
				if r.Sym != nil && r.Sym.Section != nil {
					listed[place{r.Sym.Section, r.Sym.Value + uint64(r.Addend)}] = true
				}
			}
		}
	}
	var missing []string
	for _, s := range f.Sections {
		t := s.Target
		if s.Type != elf.SHT_RELA || t == nil || t.Flags&elf.SHF_EXECINSTR == 0 {
			continue
		}
		for _, r := range s.Relocs {
			if r.Sym == nil || r.Sym.Name != "__x86_return_thunk" || r.Offset == 0 || r.Offset > uint64(len(t.Data)) || t.Data[r.Offset-1] != 0xe9 {
				continue
			}
			if !listed[place{t, r.Offset - 1}] {
				missing = append(missing, fmt.Sprintf("%s+%#x", t.Name, r.Offset-1))
			}
		}
	}
	if len(missing) > 0 {
		if len(missing) > 5 {
			missing = append(missing[:5], "…")
		}
		return fmt.Errorf("check module: returns through __x86_return_thunk that .return_sites does not list, which would run the unpatched thunk (objtool did not finish on the module?): %s", strings.Join(missing, ", "))
	}
	return nil
}
