package klp

import (
	"debug/elf"
	"fmt"
	"maps"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

// SlotSwap is a pointer in existing data (an ops table's callback, a
// sysctl's bounds) that the fix repoints. Livepatch cannot change data in place,
// so the patch's callbacks do it: they check that the pointer holds what
// the unfixed kernel has, write the new value once the transition is
// complete (every task then runs the patched code the new target may
// call), and write the old value back before the patch is disabled.
type SlotSwap struct {
	Data   string `json:"data"`   // the object holding the pointer
	Offset uint64 `json:"offset"` // of the pointer in it
	Before string `json:"before"` // what it pointed to (symbol+offset); "" for NULL
	After  string `json:"after"`  // what it points to; "" for NULL
	// InPatch: After is in the patch (a function or variable the fix
	// adds), not the running kernel.
	InPatch bool `json:"in_patch,omitempty"`
}

func (s SlotSwap) String() string {
	after := "NULL"
	switch {
	case s.After != "" && s.InPatch:
		after = "the patch's " + s.After
	case s.After != "":
		after = "the running kernel's " + s.After
	}
	before := s.Before
	if before == "" {
		before = "NULL"
	}
	return fmt.Sprintf("%s+%#x: %s → %s", s.Data, s.Offset, before, after)
}

// The slot table a patch object carries, one entry per repointed
// pointer: its address, the old value, the new value (8 bytes each), all
// filled by relocations. The registration's callbacks walk it.
const (
	slotSection = ".data.tuxtape_slots"
	slotSym     = "__tuxtape_slots"
	slotEntry   = 24
)

// notRepointable says why the patch cannot change a changed data object
// by repointing it, "" when it can: only pointers differ, and the kernel
// keeps the object, before the fix as after it, where it can be written at
// run time (not read-only, not read-only after init, not freed after init,
// not per-CPU, where the symbol is not the address).
func notRepointable(d elfobj.DataChange) string {
	why := strings.Join(d.Reasons, "; ")
	if len(d.Slots) == 0 {
		return why
	}
	for _, s := range []*elfobj.Section{d.Before.Section, d.After.Section} {
		switch {
		case s.Flags&elf.SHF_WRITE == 0:
			return why + ": read-only data (" + s.Name + "): its pointers cannot be written at run time"
		case strings.HasPrefix(s.Name, ".data..ro_after_init"):
			return why + ": data read-only after init (" + s.Name + "): its pointers cannot be written at run time"
		case initSection(s.Name):
			return why + ": __init/__exit data (" + s.Name + "): it was used at boot or load and freed"
		case strings.HasPrefix(s.Name, ".data..percpu"), s.Flags&elf.SHF_TLS != 0:
			return why + ": per-CPU data (" + s.Name + ")"
		}
	}
	return ""
}

// addSlots builds the slot table of the repointed data: addresses and old
// values resolve against the running object (livepatch relocations,
// applied when it loads), new values against the patch's copy of a
// function or variable the fix adds, or of a function livepatch cannot
// redirect (picks travelling as new ones), else the running symbol, which
// ftrace redirects if it is a changed function.
func (e *extractor) addSlots(changes []elfobj.DataChange, picks []pick) error {
	inPatch := maps.Clone(e.newData)
	for _, p := range picks {
		if p.new {
			inPatch[p.f.Sym] = true
		}
	}
	n := 0
	for _, d := range changes {
		n += len(d.Slots)
	}
	if n == 0 {
		return nil
	}
	src := &elfobj.Section{Name: slotSection, Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 8, Data: make([]byte, n*slotEntry)}
	dst := &elfobj.Section{Name: src.Name, Type: src.Type, Flags: src.Flags, Addralign: src.Addralign, Data: make([]byte, len(src.Data))}
	e.out.AddSection(dst)
	e.secMap[src] = dst
	e.slotSrc = src
	e.out.AddSymbol(&elfobj.Symbol{Name: slotSym, Type: elf.STT_OBJECT, Bind: elf.STB_GLOBAL, Section: dst, Size: uint64(len(dst.Data))})
	running := func(off uint64, addend int64, sym *elfobj.Symbol) error {
		nr := elfobj.Reloc{Offset: off, Type: elf.R_X86_64_64, Addend: addend}
		r, keep, err := e.external(src, nr, sym.Name, sym.Bind == elf.STB_LOCAL && sym.Section != nil)
		if err != nil {
			return err
		}
		if keep {
			e.appendReloc(dst, r)
		}
		return nil
	}
	at := uint64(0)
	for _, d := range changes {
		for _, sl := range d.Slots {
			sw := SlotSwap{Data: d.After.Name, Offset: sl.Offset}
			if err := running(at, int64(sl.Offset), d.After); err != nil {
				return fmt.Errorf("repoint %s: %w", sw, err)
			}
			if sl.Before != nil {
				sw.Before = withAddend(sl.Before.Name, sl.BeforeAddend)
				if err := running(at+8, sl.BeforeAddend, sl.Before); err != nil {
					return fmt.Errorf("repoint %s: %w", sw, err)
				}
			}
			if sl.After != nil {
				sw.After, sw.InPatch = withAddend(sl.After.Name, sl.AfterAddend), inPatch[sl.After]
				if sw.InPatch {
					r, keep, err := e.reloc(src, elfobj.Reloc{Offset: at + 16, Type: elf.R_X86_64_64, Sym: sl.After, Addend: sl.AfterAddend})
					if err != nil {
						return fmt.Errorf("repoint %s: %w", sw, err)
					}
					if keep {
						e.appendReloc(dst, r)
					}
				} else if err := running(at+16, sl.AfterAddend, sl.After); err != nil {
					return fmt.Errorf("repoint %s: %w", sw, err)
				}
			}
			e.res.Slots = append(e.res.Slots, sw)
			at += slotEntry
		}
		if by := copiedBy(e.functions(), d.After); len(by) > 0 {
			e.res.Warnings = append(e.res.Warnings, fmt.Sprintf("%s is copied by %s: copies made before the patch keep their old pointers (only the object itself and copies made later are repointed)", d.After.Name, strings.Join(by, ", ")))
		}
	}
	return e.drain()
}

func withAddend(name string, addend int64) string {
	if addend == 0 {
		return name
	}
	return fmt.Sprintf("%s%+#x", name, addend)
}

// copiers are the calls that duplicate a template object (a per-namespace
// sysctl table, say): copies made before the patch keep the old pointers.
var copiers = map[string]bool{"kmemdup": true, "kmemdup_noprof": true, "kmemdup_array": true, "memcpy": true, "__memcpy": true}

// copiedBy names the functions of obj that refer to the data object sym
// and call a copier: the object is likely a template whose existing copies
// the repointing does not reach.
func copiedBy(all []*elfobj.Function, sym *elfobj.Symbol) []string {
	var out []string
	for _, g := range all {
		copies, refers := false, false
		for _, r := range g.Refs {
			copies = copies || copiers[r.Name]
			refers = refers || r == sym
		}
		if copies && refers {
			out = append(out, g.Name)
		}
	}
	return out
}
