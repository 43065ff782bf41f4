package klp

import (
	"debug/elf"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// Target is the running object a compile unit belongs to.
type Target struct {
	Object  string // "vmlinux" or the module name
	Symbols *SymbolTable
	Block   int             // the unit's STT_FILE block in Symbols
	Locals  map[string]bool // the unit's local symbols, as compiled
	// Provided are global functions the patch adds in any of its units;
	// references to them stay ordinary symbols the module link resolves.
	Provided map[string]bool
	// AllowInit leaves changed __init/__exit functions and data out of
	// the patch (recorded in Extracted.LeftOut) instead of refusing.
	AllowInit bool
}

// Func is one function the patch replaces.
type Func struct {
	Object string `json:"object"`
	Name   string `json:"name"`
	Sympos int    `json:"sympos"`
	// NewSym is the global symbol of the replacement in the patch object.
	NewSym string `json:"-"`
	New    bool   `json:"new,omitempty"` // a function the fix adds: nothing to replace
}

// KlpReloc is a relocation the livepatch core resolves when the patch (or
// the patched module) loads, against a symbol the module loader cannot see.
type KlpReloc struct {
	Section string // section of the patch object it applies to
	Offset  uint64
	Type    elf.R_X86_64
	Object  string // the patched object it is applied for: vmlinux or a module
	// SymObject is the object the symbol is in, when not Object: another
	// module's export that Object's code uses. Object depends on that
	// module, so it is loaded whenever Object is.
	SymObject string
	Name      string
	Sympos    int
	Addend    int64
}

// Extracted is the patch object made from one compile unit.
type Extracted struct {
	Object   string // the running object the unit belongs to
	File     *elfobj.File
	Funcs    []Func
	Klp      []KlpReloc
	Warnings []string
	// LeftOut says what of the fix the patch does not carry, and why
	// (Target.AllowInit), for a reviewer to decide on.
	LeftOut []string
	// Stranded are global functions of the running object the patch
	// carries changed but cannot redirect (no ftrace entry): code in other
	// units that calls them reaches the old ones unless its callers are
	// patched too (see callers.go).
	Stranded []string
	// Slots are the pointers in existing data the patch repoints (see
	// SlotSwap), in the order of its slot table.
	Slots []SlotSwap
}

// extractor lifts the changed functions of a unit, and what only they
// use, into a new relocatable object.
type extractor struct {
	src     *elfobj.File
	out     *elfobj.File
	tgt     Target
	exports Exports
	include map[*elfobj.Section]bool // function sections taken whole
	newData map[*elfobj.Symbol]bool
	secMap  map[*elfobj.Section]*elfobj.Section
	symMap  map[*elfobj.Symbol]*elfobj.Symbol
	undef   map[string]*elfobj.Symbol
	queue   []*elfobj.Section
	res     *Extracted
	seq     int
	funcs   []*elfobj.Function // of src, once asked for (functions)
	// slices are functions cut out of a section they share with others
	// (__sched, __lockfunc, __kprobes code has explicit sections).
	slices  map[*elfobj.Section][]slice
	slotSrc *elfobj.Section // the slot table, as if a section of src
}

// functions lists the functions of the source object, made once.
func (e *extractor) functions() []*elfobj.Function {
	if e.funcs == nil {
		e.funcs = elfobj.Functions(e.src)
	}
	return e.funcs
}

type slice struct {
	start, end uint64
	dst        *elfobj.Section
}

// sliceAt finds the copied slice of src holding offset off.
func (e *extractor) sliceAt(src *elfobj.Section, off uint64) *slice {
	for i := range e.slices[src] {
		sl := &e.slices[src][i]
		if off >= sl.start && off < sl.end {
			return sl
		}
	}
	return nil
}

// specials are copied entry by entry with the functions they point into.
var specials = map[string]bool{
	"__bug_table": true, "__ex_table": true, "__jump_table": true, ".altinstructions": true,
	".retpoline_sites": true, ".return_sites": true, ".smp_locks": true, ".parainstructions": true,
	"__mcount_loc": true, ".orc_unwind_ip": true,
}

// Extract builds the patch object for one unit from its after-fix
// object, the diff against the before-fix object, and the target.
func Extract(after *elfobj.File, ch *elfobj.Changes, tgt Target, exports Exports) (*Extracted, error) {
	var leftOut []string
	if tgt.AllowInit {
		var nothingElse bool
		ch, leftOut, nothingElse = withoutInit(ch, tgt.Object)
		if nothingElse {
			return nil, refuse(refusal.InitExit, "", "the fix changes only __init/__exit code and data (%s), which ran at boot or module load, or runs only at unload: nothing a livepatch could change", strings.Join(leftOut, "; "))
		}
	}
	var why []string
	for _, d := range ch.ChangedData {
		if not := notRepointable(d); not != "" {
			why = append(why, fmt.Sprintf("%s (%s)", d.Name, not))
		}
	}
	if len(why) > 0 {
		return nil, refuse(refusal.ChangedData, "", "the fix changes existing data, which a livepatch cannot change in place (only pointers in writable data are repointed, by the patch's callbacks): %s", strings.Join(why, ", "))
	}
	e := &extractor{
		src: after, tgt: tgt, exports: exports,
		out:     &elfobj.File{OSABI: after.OSABI, ABIVersion: after.ABIVersion, Flags: after.Flags},
		include: map[*elfobj.Section]bool{}, newData: map[*elfobj.Symbol]bool{},
		secMap: map[*elfobj.Section]*elfobj.Section{}, symMap: map[*elfobj.Symbol]*elfobj.Symbol{},
		undef: map[string]*elfobj.Symbol{}, res: &Extracted{Object: tgt.Object, LeftOut: leftOut},
		slices: map[*elfobj.Section][]slice{},
	}
	for _, d := range ch.NewData {
		e.newData[d] = true
	}
	var picks []pick
	for _, c := range ch.Changed {
		picks = append(picks, pick{c.After, false})
	}
	for _, f := range ch.New {
		picks = append(picks, pick{f, true})
	}
	if len(picks) == 0 && len(ch.ChangedData) == 0 {
		return nil, refuse(refusal.NoChange, "", "the unit's functions are the same before and after the fix")
	}
	picks = e.expandCallers(picks)
	for i, p := range picks {
		// picks: the changed functions, the new ones, then callers.
		existing := i < len(ch.Changed) || i >= len(ch.Changed)+len(ch.New)
		if !existing || !p.new || initSection(p.f.Parts[0].Section.Name) {
			continue
		}
		// A pointer to the old function made before the patch would keep
		// it running, and one made by the patched code would dangle
		// once the patch is removed.
		if err := addressTaken(after, p.f.Name, true); err != nil {
			return nil, err
		}
		if p.f.Sym.Bind == elf.STB_GLOBAL && tgt.Symbols.Has(p.f.Name) {
			e.res.Stranded = append(e.res.Stranded, p.f.Name)
		}
	}
	for _, p := range picks {
		if err := e.checkFunc(p.f, p.new); err != nil {
			return nil, err
		}
		for _, part := range p.f.Parts {
			if part.Offset == 0 && part.Size == part.Section.Len() {
				e.include[part.Section] = true
				continue
			}
			dst := &elfobj.Section{Name: ".text.tuxtape." + part.Sym.Name, Type: part.Section.Type, Flags: part.Section.Flags,
				Data: append([]byte(nil), part.Section.Data[part.Offset:part.Offset+part.Size]...), Addralign: part.Section.Addralign}
			e.out.AddSection(dst)
			e.slices[part.Section] = append(e.slices[part.Section], slice{part.Offset, part.Offset + part.Size, dst})
		}
	}
	for _, p := range picks {
		if err := e.addFunc(p.f, p.new); err != nil {
			return nil, err
		}
	}
	if err := e.drain(); err != nil {
		return nil, err
	}
	for _, p := range picks {
		if err := e.addSpecials(p.f); err != nil {
			return nil, err
		}
	}
	if err := e.drain(); err != nil {
		return nil, err
	}
	if err := e.copiedSpecials(picks); err != nil {
		return nil, err
	}
	if err := e.addSlots(ch.ChangedData, picks); err != nil {
		return nil, err
	}
	e.res.File = e.out
	return e.res, nil
}

// copiedSpecials copies the special-section entries of the code copied
// whole because the patch's code calls or jumps to it (static helpers, a
// cold part): their __ex_table entries (a fault in a copied uaccess
// helper must be fixed up, not oops), jump labels, alternatives, bug
// entries, return sites and unwind data, as for the patched functions;
// only the entries into the parts copied. An entry may make more code
// come along; so until none does.
func (e *extractor) copiedSpecials(picks []pick) error {
	done := map[*elfobj.Symbol]bool{} // function parts, by symbol
	for _, p := range picks {
		for _, part := range p.f.Parts {
			done[part.Sym] = true
		}
	}
	for {
		var more []*elfobj.Function
		for _, fn := range e.functions() {
			copied := map[int]bool{}
			for i, part := range fn.Parts {
				if !done[part.Sym] && e.secMap[part.Section] != nil {
					copied[i] = true
					done[part.Sym] = true
				}
			}
			if len(copied) == 0 {
				continue
			}
			only := *fn
			only.Special = nil
			for _, sr := range fn.Special {
				if sr.Part >= 0 && copied[sr.Part] {
					only.Special = append(only.Special, sr)
				}
			}
			more = append(more, &only)
		}
		if len(more) == 0 {
			return nil
		}
		for _, fn := range more {
			if err := e.addSpecials(fn); err != nil {
				return err
			}
		}
		if err := e.drain(); err != nil {
			return err
		}
	}
}

// initSection says whether a section holds __init/__exit code or data.
func initSection(name string) bool {
	return strings.HasPrefix(name, ".init.") || strings.HasPrefix(name, ".exit.")
}

// withoutInit takes the changed and new __init/__exit functions and data
// out of ch, saying what it took and why; nothingElse: there was no other
// change.
func withoutInit(ch *elfobj.Changes, object string) (out *elfobj.Changes, leftOut []string, nothingElse bool) {
	isInit := func(f *elfobj.Function) bool {
		for _, p := range f.Parts {
			if initSection(p.Section.Name) {
				return true
			}
		}
		return false
	}
	when := "ran at boot"
	if object != "vmlinux" {
		when = "ran when " + object + " loaded (a later load of " + object + " runs the old code)"
	}
	c := *ch
	c.Changed, c.New, c.ChangedData = nil, nil, nil
	for _, f := range ch.Changed {
		if isInit(f.After) {
			leftOut = append(leftOut, fmt.Sprintf("changed __init/__exit function %s: %s, or runs only at unload", f.Name, when))
			continue
		}
		c.Changed = append(c.Changed, f)
	}
	for _, f := range ch.New {
		if isInit(f) {
			leftOut = append(leftOut, fmt.Sprintf("new __init/__exit function %s", f.Name))
			continue
		}
		c.New = append(c.New, f)
	}
	for _, d := range ch.ChangedData {
		if d.After != nil && d.After.Section != nil && initSection(d.After.Section.Name) {
			leftOut = append(leftOut, fmt.Sprintf("changed __initdata %s (%s)", d.Name, strings.Join(d.Reasons, "; ")))
			continue
		}
		c.ChangedData = append(c.ChangedData, d)
	}
	nothingElse = len(leftOut) > 0 && len(c.Changed)+len(c.New)+len(c.ChangedData) == 0
	return &c, leftOut, nothingElse
}

type pick struct {
	f   *elfobj.Function
	new bool // carried in the patch, but nothing in the kernel to redirect
}

func traced(f *elfobj.Function) bool {
	for _, s := range f.Special {
		if s.Section.Name == "__mcount_loc" || s.Section.Name == "__patchable_function_entries" {
			return true
		}
	}
	return false
}

// expandCallers handles changed functions livepatch cannot redirect
// itself: inline-only helpers (the kernel's inline implies notrace) and
// compiler clones (.isra, .constprop, .part) that have no ftrace entry, or
// that the running kernel does not have as a symbol. Such a function
// travels in the patch as a new one, and its callers are patched instead,
// up to callers that can be redirected.
func (e *extractor) expandCallers(picks []pick) []pick {
	all := e.functions()
	// Keyed by symbol: Diff and Functions make separate Function values.
	in := map[*elfobj.Symbol]bool{}
	for _, p := range picks {
		in[p.f.Sym] = true
	}
	var pending []*elfobj.Function
	for i, p := range picks {
		if !p.new && !strings.HasPrefix(p.f.Parts[0].Section.Name, ".init.") && (!traced(p.f) || !e.tgt.Symbols.Has(p.f.Name)) {
			picks[i].new = true
			pending = append(pending, p.f)
		}
	}
	for len(pending) > 0 {
		callee := pending[0]
		pending = pending[1:]
		for _, g := range all {
			if !refersTo(g, callee) {
				continue
			}
			if in[g.Sym] || bootOnly(e.tgt.Object, g) {
				continue
			}
			p := pick{f: g}
			if !traced(g) || !e.tgt.Symbols.Has(g.Name) {
				p.new = true
				pending = append(pending, g)
			}
			in[g.Sym] = true
			picks = append(picks, p)
		}
	}
	return picks
}

// kthreadCreators start a kernel thread running the function whose
// address they get (kthread_run and kthread_create expand to the first).
var kthreadCreators = map[string]bool{"kthread_create_on_node": true, "kthread_create_on_cpu": true}

// threadStarter returns the function of the unit that starts f as a kernel
// thread's main function: one that calls a kthread creator and takes f's
// address. "" if none does.
func threadStarter(obj *elfobj.File, all []*elfobj.Function, f *elfobj.Function) string {
	createsThread := func(s *elfobj.Symbol) bool { return kthreadCreators[s.Name] }
	for _, g := range all {
		if refersTo(g, f) && slices.ContainsFunc(g.Refs, createsThread) && takesAddress(obj, g, f) {
			return g.Name
		}
	}
	return ""
}

// takesAddress reports whether g refers to f other than by a direct call
// or jump to it.
func takesAddress(obj *elfobj.File, g, f *elfobj.Function) bool {
	for _, p := range g.Parts {
		for _, rs := range obj.RelaSections(p.Section) {
			for _, r := range rs.Relocs {
				if r.Sym == nil || r.Offset < p.Offset || r.Offset >= p.Offset+p.Size || !relocTo(r, f.Sym) {
					continue
				}
				if !branchAt(p.Section.Data, r.Offset) {
					return true
				}
			}
		}
	}
	return false
}

// relocTo says whether r refers to the function of symbol sym: by symbol,
// or by its section's symbol and its offset (PC-relative: 4 bytes before
// the place).
func relocTo(r elfobj.Reloc, sym *elfobj.Symbol) bool {
	return r.Sym == sym || sym.Section != nil && r.Sym.Type == elf.STT_SECTION && r.Sym.Section == sym.Section &&
		(uint64(r.Addend) == sym.Value || uint64(r.Addend+4) == sym.Value)
}

// branchAt says whether the 32-bit displacement at off in code belongs to
// a direct call or jump (E8, E9, or a 0F 8x conditional jump: a tail call).
func branchAt(code []byte, off uint64) bool {
	if off >= 1 && off <= uint64(len(code)) && (code[off-1] == 0xe8 || code[off-1] == 0xe9) {
		return true
	}
	return off >= 2 && off <= uint64(len(code)) && code[off-2] == 0x0f && code[off-1]&0xf0 == 0x80
}

func refersTo(g, f *elfobj.Function) bool {
	if g == f {
		return false
	}
	for _, r := range g.Refs {
		if r == f.Sym {
			return true
		}
		for _, a := range f.Aliases {
			if r == a {
				return true
			}
		}
	}
	return false
}

func (e *extractor) checkFunc(f *elfobj.Function, isNew bool) error {
	for _, p := range f.Parts {
		if strings.HasPrefix(p.Section.Name, ".init.") || strings.HasPrefix(p.Section.Name, ".exit.") {
			if isNew {
				return refuse(refusal.InitExit, f.Name, "the fix adds __init/__exit function %s, which runs only at boot or unload", f.Name)
			}
			return refuse(refusal.InitExit, f.Name, "the fix changes __init/__exit function %s: its code ran at boot (or module load) and is freed, or runs only at unload", f.Name)
		}
		if strings.HasPrefix(p.Section.Name, ".noinstr.text") || strings.HasPrefix(p.Section.Name, ".entry.text") {
			return refuse(refusal.Noinstr, f.Name, "%s is noinstr/entry code, which ftrace cannot patch", f.Name)
		}
	}
	if isNew {
		return nil
	}
	if !traced(f) {
		return refuse(refusal.NoFtrace, f.Name, "%s has no ftrace entry (notrace, or built without ftrace), so livepatch cannot redirect it", f.Name)
	}
	if starter := threadStarter(e.src, e.functions(), f); starter != "" {
		return refuse(refusal.KthreadMain, f.Name, "%s is the main function of a kernel thread (%s starts it), which never returns while the kernel runs: the patch's transition could not complete while that thread sleeps in it", f.Name, starter)
	}
	if !e.tgt.Symbols.Has(f.Name) {
		return refuse(refusal.NotRunningSymbol, f.Name, "%s is not a symbol of %s as it runs (inlined into its callers there, or not compiled in this configuration)", f.Name, e.tgt.Object)
	}
	return nil
}

func (e *extractor) copySection(s *elfobj.Section) *elfobj.Section {
	if c, ok := e.secMap[s]; ok {
		return c
	}
	c := &elfobj.Section{Name: s.Name, Type: s.Type, Flags: s.Flags, Data: append([]byte(nil), s.Data...), Size: s.Size, Entsize: s.Entsize, Addralign: s.Addralign}
	e.out.AddSection(c)
	e.secMap[s] = c
	e.queue = append(e.queue, s)
	if s.Flags&elf.SHF_EXECINSTR != 0 {
		// Code copied whole keeps its function symbols: objtool, which
		// kernels with IBT run on the linked module, wants a function
		// at every call's destination ("can't find call dest symbol"),
		// and with call padding (6.12) a function does not start at its
		// section's offset 0, where the section symbol points.
		for _, sym := range e.src.Symbols {
			if sym.Section == s && sym.Type == elf.STT_FUNC {
				e.mapDefined(sym)
			}
		}
	}
	return c
}

func (e *extractor) addFunc(f *elfobj.Function, isNew bool) error {
	for _, p := range f.Parts {
		if e.include[p.Section] {
			e.copySection(p.Section)
		} else if !e.queued(p.Section) {
			e.queue = append(e.queue, p.Section)
		}
	}
	for _, p := range f.Parts {
		e.mapDefined(p.Sym)
	}
	for _, a := range f.Aliases {
		e.mapDefined(a)
	}
	fn := Func{Object: e.tgt.Object, Name: f.Name, New: isNew}
	if isNew && f.Sym.Bind == elf.STB_GLOBAL && e.tgt.Provided[f.Name] {
		// Callable from the patch's other units under its own name.
		main := e.mapDefined(f.Sym)
		e.out.AddSymbol(&elfobj.Symbol{Name: f.Name, Type: elf.STT_FUNC, Bind: elf.STB_GLOBAL, Section: main.Section, Value: main.Value, Size: f.Sym.Size})
	}
	if !isNew {
		pos, err := e.tgt.Symbols.Sympos(f.Name, f.Sym.Bind == elf.STB_LOCAL, e.tgt.Block, e.tgt.Locals)
		if err != nil {
			return refuse(refusal.NotRunningSymbol, f.Name, "cannot find the running %s: %v", f.Name, err)
		}
		fn.Sympos = pos
		e.seq++
		fn.NewSym = fmt.Sprintf("__tuxtape_new_%d", e.seq)
		main := e.mapDefined(f.Sym)
		e.out.AddSymbol(&elfobj.Symbol{Name: fn.NewSym, Type: elf.STT_FUNC, Bind: elf.STB_GLOBAL, Section: main.Section, Value: main.Value, Size: f.Sym.Size})
	}
	e.res.Funcs = append(e.res.Funcs, fn)
	return nil
}

// mapDefined copies a symbol defined in a copied section. Copies are local:
// a global of the same name may be exported by the kernel.
func (e *extractor) mapDefined(s *elfobj.Symbol) *elfobj.Symbol {
	if c, ok := e.symMap[s]; ok {
		return c
	}
	c := &elfobj.Symbol{Name: s.Name, Value: s.Value, Size: s.Size, Type: s.Type, Bind: elf.STB_LOCAL, Section: e.secMap[s.Section]}
	if sl := e.sliceAt(s.Section, s.Value); sl != nil && c.Section == nil {
		c.Section, c.Value = sl.dst, s.Value-sl.start
	}
	if s.Type == elf.STT_SECTION {
		c.Name = ""
	}
	e.out.AddSymbol(c)
	e.symMap[s] = c
	return c
}

func (e *extractor) sectionSym(s *elfobj.Section) *elfobj.Symbol {
	for _, sym := range e.src.Symbols {
		if sym.Type == elf.STT_SECTION && sym.Section == s {
			return e.mapDefined(sym)
		}
	}
	c := &elfobj.Symbol{Type: elf.STT_SECTION, Bind: elf.STB_LOCAL, Section: e.secMap[s]}
	e.out.AddSymbol(c)
	return c
}

func (e *extractor) undefined(name string) *elfobj.Symbol {
	if s, ok := e.undef[name]; ok {
		return s
	}
	s := &elfobj.Symbol{Name: name, Type: elf.STT_NOTYPE, Bind: elf.STB_GLOBAL, Shndx: elf.SHN_UNDEF}
	e.out.AddSymbol(s)
	e.undef[name] = s
	return s
}

// drain copies the relocations of every copied section, copying what
// they need on the way.
func (e *extractor) drain() error {
	for len(e.queue) > 0 {
		s := e.queue[0]
		e.queue = e.queue[1:]
		for _, rs := range e.src.RelaSections(s) {
			var relocs []elfobj.Reloc
			sliced := map[*elfobj.Section][]elfobj.Reloc{}
			for _, r := range rs.Relocs {
				var sl *slice
				if e.secMap[s] == nil {
					if sl = e.sliceAt(s, r.Offset); sl == nil {
						continue // another function of a shared section
					}
				}
				nr, keep, err := e.reloc(s, r)
				if err != nil {
					return err
				}
				if !keep {
					continue
				}
				if sl != nil {
					nr.Offset -= sl.start
					sliced[sl.dst] = append(sliced[sl.dst], nr)
					continue
				}
				relocs = append(relocs, nr)
			}
			if len(relocs) > 0 {
				e.out.AddRelaSection(rs.Name, e.secMap[s], rs.Flags&^elf.SHF_INFO_LINK, relocs)
			}
			for _, sl := range e.slices[s] {
				if rel := sliced[sl.dst]; len(rel) > 0 {
					e.out.AddRelaSection(".rela"+sl.dst.Name, sl.dst, 0, rel)
				}
			}
		}
	}
	return nil
}

func (e *extractor) queued(s *elfobj.Section) bool {
	for _, q := range e.queue {
		if q == s {
			return true
		}
	}
	return false
}

// definedAt is the function or object symbol a section-symbol reference
// means: with -ffunction-sections -fdata-sections each lives at offset 0
// of a section of its own.
func (e *extractor) definedAt(sec *elfobj.Section) *elfobj.Symbol {
	var best *elfobj.Symbol
	for _, sym := range e.src.Symbols {
		if sym.Section == sec && sym.Value == 0 && (sym.Type == elf.STT_FUNC || sym.Type == elf.STT_OBJECT) {
			if best == nil || (best.Bind == elf.STB_LOCAL && sym.Bind != elf.STB_LOCAL) {
				best = sym
			}
		}
	}
	return best
}

// copyable says whether a referenced section may be duplicated into the
// patch instead of referring to the running kernel's copy: constant data
// whose address nobody compares (literals, switch tables, __func__).
func (e *extractor) copyable(sec *elfobj.Section, sym *elfobj.Symbol) bool {
	if sec.Flags&(elf.SHF_STRINGS|elf.SHF_MERGE) != 0 || sec.Name == ".altinstr_replacement" || sec.Name == "__dyndbg" || strings.HasPrefix(sec.Name, ".text") {
		return true
	}
	if sym != nil && e.newData[sym] {
		return true
	}
	if sym != nil && sym.Type == elf.STT_OBJECT && sym.Bind == elf.STB_LOCAL && sym.Size == 0 {
		// Empty: a lock_class_key without lockdep. No state to share,
		// so a copy serves as well as the running one.
		return true
	}
	if !strings.HasPrefix(sec.Name, ".rodata") || sec.Flags&elf.SHF_WRITE != 0 {
		return false
	}
	if sym == nil {
		return true // unnamed constants: jump tables
	}
	key := elfobj.NormalizeName(sym.Name)
	return sym.Bind == elf.STB_LOCAL && (key == "__func__" || key == "__PRETTY_FUNCTION__" || strings.HasPrefix(key, "__UNIQUE_ID_") || strings.HasPrefix(key, "CSWTCH"))
}

// reloc maps one relocation of copied section from into the patch object;
// keep is false when it becomes a livepatch relocation instead.
func (e *extractor) reloc(from *elfobj.Section, r elfobj.Reloc) (elfobj.Reloc, bool, error) {
	nr := elfobj.Reloc{Offset: r.Offset, Type: r.Type, Addend: r.Addend}
	sym := r.Sym
	if sym == nil {
		return nr, true, nil
	}
	if sym.Section != nil {
		sec := sym.Section
		target := sym
		if sym.Type == elf.STT_SECTION || (sym.Bind == elf.STB_LOCAL && strings.HasPrefix(sym.Name, ".L")) {
			// Assembler-local labels stand for a place in their section.
			target = e.definedAt(sec)
		}
		if sym.Type == elf.STT_SECTION {
			// PC-relative references point 4 bytes before their target.
			for _, off := range []int64{r.Addend, r.Addend + 4} {
				if sl := e.sliceAt(sec, uint64(off)); off >= 0 && sl != nil {
					nr.Sym = e.out.AddSymbol(&elfobj.Symbol{Type: elf.STT_SECTION, Bind: elf.STB_LOCAL, Section: sl.dst})
					nr.Addend = r.Addend - int64(sl.start)
					return nr, true, nil
				}
			}
		} else if sl := e.sliceAt(sec, sym.Value); sl != nil && sym.Type == elf.STT_FUNC {
			nr.Sym = e.mapDefined(sym)
			return nr, true, nil
		}
		switch {
		case e.include[sec] || e.secMap[sec] != nil && sym.Type == elf.STT_SECTION:
			e.copySection(sec)
			nr.Sym = e.symFor(sym)
			return nr, true, nil
		case e.copyable(sec, target):
			e.copySection(sec)
			nr.Sym = e.symFor(sym)
			return nr, true, nil
		case target == nil && sym.Type == elf.STT_SECTION && sec.Flags&elf.SHF_EXECINSTR != 0:
			// Out-of-line code of the unit without a symbol: carry the
			// block the reference jumps to.
			at := r.Addend
			if r.Type == elf.R_X86_64_PC32 || r.Type == elf.R_X86_64_PLT32 {
				at += 4 // relative to the end of the displacement
			}
			sl, err := e.auxSlice(sec, at)
			if err != nil {
				return nr, false, fmt.Errorf("%s+%#x refers to %s+%#x: %w", from.Name, r.Offset, sec.Name, at, err)
			}
			nr.Sym = e.out.AddSymbol(&elfobj.Symbol{Type: elf.STT_SECTION, Bind: elf.STB_LOCAL, Section: sl.dst})
			nr.Addend = r.Addend - int64(sl.start)
			return nr, true, nil
		case target == nil:
			return nr, false, fmt.Errorf("%s+%#x refers to section %s, which has no symbol to resolve against", from.Name, r.Offset, sec.Name)
		}
		// An existing function or variable of the unit: use the running one.
		if sym.Type == elf.STT_SECTION {
			nr.Addend = r.Addend - int64(target.Value)
		}
		return e.external(from, nr, target.Name, target.Bind == elf.STB_LOCAL)
	}
	switch sym.Shndx {
	case elf.SHN_UNDEF:
		return e.external(from, nr, sym.Name, false)
	case elf.SHN_ABS:
		nr.Sym = e.out.AddSymbol(&elfobj.Symbol{Name: sym.Name, Type: sym.Type, Bind: elf.STB_LOCAL, Shndx: elf.SHN_ABS, Value: sym.Value})
		return nr, true, nil
	}
	return nr, false, fmt.Errorf("%s+%#x: relocation against unsupported symbol %s (shndx %#x)", from.Name, r.Offset, sym.Name, sym.Shndx)
}

// auxSlice carries the block of out-of-line code at sec+at (the bit test
// static_cpu_has() puts in .altinstr_aux, say) into a section of the
// patch, with its relocations, once.
func (e *extractor) auxSlice(sec *elfobj.Section, at int64) (*slice, error) {
	if at < 0 || at >= int64(len(sec.Data)) {
		return nil, fmt.Errorf("outside the section (%d bytes)", len(sec.Data))
	}
	start := uint64(at)
	if sl := e.sliceAt(sec, start); sl != nil {
		if sl.start != start {
			return nil, fmt.Errorf("a jump into the middle of a block already carried from %#x", sl.start)
		}
		return sl, nil
	}
	end, err := elfobj.BlockEnd(sec.Data, int(start))
	if err != nil {
		return nil, err
	}
	for _, sl := range e.slices[sec] {
		if sl.start < uint64(end) && start < sl.end {
			return nil, fmt.Errorf("block %#x-%#x overlaps one already carried (%#x-%#x)", start, end, sl.start, sl.end)
		}
	}
	dst := &elfobj.Section{Name: fmt.Sprintf(".text.tuxtape%s.%d", strings.ReplaceAll(sec.Name, ".", "_"), start), Type: sec.Type, Flags: sec.Flags,
		Data: append([]byte(nil), sec.Data[start:end]...), Addralign: 1}
	e.out.AddSection(dst)
	e.slices[sec] = append(e.slices[sec], slice{start, uint64(end), dst})
	sl := &e.slices[sec][len(e.slices[sec])-1]
	for _, rs := range e.src.RelaSections(sec) {
		for _, r := range rs.Relocs {
			if r.Offset < start || r.Offset >= uint64(end) {
				continue
			}
			nr, keep, err := e.reloc(sec, r)
			if err != nil {
				return nil, err
			}
			if keep {
				nr.Offset -= start
				e.appendReloc(dst, nr)
			}
		}
	}
	return sl, nil
}

func (e *extractor) symFor(sym *elfobj.Symbol) *elfobj.Symbol {
	if sym.Type == elf.STT_SECTION {
		return e.sectionSym(sym.Section)
	}
	return e.mapDefined(sym)
}

// external resolves a reference to something the patch does not carry:
// a vmlinux export stays an ordinary undefined symbol for the module
// loader; anything else becomes a livepatch relocation, so that the patch
// never needs a module loaded before it.
func (e *extractor) external(from *elfobj.Section, nr elfobj.Reloc, name string, local bool) (elfobj.Reloc, bool, error) {
	if e.tgt.Provided[name] && !local {
		nr.Sym = e.undefined(name)
		return nr, true, nil
	}
	symObj := ""
	if obj, ok := e.exports[name]; ok && !local {
		if obj == "vmlinux" {
			nr.Sym = e.undefined(name)
			return nr, true, nil
		}
		if obj != e.tgt.Object {
			// Another module's export. As an ordinary symbol it would make
			// the patch depend on that module, so the patch could not load
			// before it: a livepatch relocation is resolved only when the
			// patched module loads, and that module depends on the
			// exporter. An export is a unique global there: position 0.
			symObj = obj
		}
	}
	if symObj != "" {
		return e.klpReloc(from, nr, symObj, name, 0)
	}
	if from.Flags&elf.SHF_EXECINSTR == 0 && !e.klpData(from) {
		return nr, false, refuse(refusal.DataReference, "", "%s refers to %s, which %s does not export, from data (%s): livepatch relocations are only supported in code", e.tgt.Object, name, e.tgt.Object, from.Name)
	}
	obj := e.tgt.Object
	if !e.tgt.Symbols.Has(name) {
		if obj != "vmlinux" {
			return nr, false, refuse(refusal.ModuleUnexported, "", "the patched code of module %s refers to %s, which neither it nor vmlinux exports (not supported yet)", obj, name)
		}
		return nr, false, refuse(refusal.MissingSymbol, "", "the patched code refers to %s, which the running %s does not have (inlined or optimized away there)", name, obj)
	}
	block := -1
	if local {
		block = e.tgt.Block
	}
	pos, err := e.tgt.Symbols.Sympos(name, local, block, e.tgt.Locals)
	if err != nil {
		return nr, false, refuse(refusal.MissingSymbol, "", "cannot resolve %s in the running kernel: %v", name, err)
	}
	return e.klpReloc(from, nr, "", name, pos)
}

// klpReloc records nr, a relocation of copied section from, as a
// livepatch relocation against name (in symObj, or the target object).
func (e *extractor) klpReloc(from *elfobj.Section, nr elfobj.Reloc, symObj, name string, pos int) (elfobj.Reloc, bool, error) {
	secName, off := "", nr.Offset
	if c := e.secMap[from]; c != nil {
		secName = c.Name
	} else if sl := e.sliceAt(from, nr.Offset); sl != nil {
		secName, off = sl.dst.Name, nr.Offset-sl.start
	} else {
		return nr, false, fmt.Errorf("%s+%#x: reference from code that is not copied", from.Name, nr.Offset)
	}
	e.res.Klp = append(e.res.Klp, KlpReloc{Section: secName, Offset: off, Type: nr.Type, Object: e.tgt.Object, SymObject: symObj, Name: name, Sympos: pos, Addend: nr.Addend})
	return nr, false, nil
}

// addSpecials copies the special-section entries of a function.
func (e *extractor) addSpecials(f *elfobj.Function) error {
	for _, sr := range f.Special {
		name := sr.Section.Name
		if !specials[name] || sr.Size == 0 || sr.Part < 0 {
			continue
		}
		relocs := e.entryRelocs(sr)
		if name == "__jump_table" {
			keep, err := e.jumpEntry(f, relocs)
			if err != nil {
				return err
			}
			if !keep {
				continue
			}
		}
		dst := e.specialSection(sr.Section)
		base := uint64(len(dst.Data))
		dst.Data = append(dst.Data, sr.Section.Data[sr.Offset:sr.Offset+sr.Size]...)
		for _, r := range relocs {
			r.Offset = r.Offset - sr.Offset + base
			nr, keep, err := e.reloc(sr.Section, r)
			if err != nil {
				return err
			}
			if !keep {
				if e.klpData(sr.Section) {
					continue // a livepatch relocation now
				}
				return refuse(refusal.SpecialEntry, f.Name, "%s entry of %s refers to %s, which needs a livepatch relocation there", name, f.Name, r.Sym.Name)
			}
			e.appendReloc(dst, nr)
		}
		if name == ".orc_unwind_ip" {
			// .orc_unwind holds the entry's unwind data at the same index.
			orc := e.src.Section(".orc_unwind")
			i := sr.Offset / 4
			if orc == nil || (i+1)*6 > orc.Len() {
				return fmt.Errorf("object has .orc_unwind_ip but no matching .orc_unwind entry")
			}
			od := e.specialSection(orc)
			od.Data = append(od.Data, orc.Data[i*6:(i+1)*6]...)
		}
	}
	return nil
}

func (e *extractor) entryRelocs(sr elfobj.SpecialRef) []elfobj.Reloc {
	var out []elfobj.Reloc
	for _, rs := range e.src.RelaSections(sr.Section) {
		for _, r := range rs.Relocs {
			if r.Offset >= sr.Offset && r.Offset < sr.Offset+sr.Size {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}

// jumpEntry decides about a static branch: its key must be reachable by the
// module loader when it sets up the patch's jump labels: a vmlinux export, or in
// a vmlinux patch any vmlinux key (see klpData). In a module patch, a
// tracepoint whose key is not exported is left as compiled (off) in the
// patched function, with a warning; other keys refuse the patch.
func (e *extractor) jumpEntry(f *elfobj.Function, relocs []elfobj.Reloc) (bool, error) {
	if len(relocs) < 3 || relocs[2].Sym == nil {
		return true, nil
	}
	key := relocs[2].Sym
	name, isNew := key.Name, e.newData[key]
	if key.Type == elf.STT_SECTION {
		if t := e.definedAt(key.Section); t != nil {
			name, isNew = t.Name, e.newData[t]
		}
	}
	// A key the fix adds (DO_ONCE's) is the patch's own data: the module
	// loader sets up its jump labels as for any module's key.
	if key.Section != nil && (key.Section.Name == "__dyndbg" || isNew) {
		return true, nil
	}
	// Another module's key would make the patch depend on that module,
	// and a livepatch relocation comes too late for the jump table.
	if obj, ok := e.exports[name]; ok && obj == "vmlinux" && key.Bind != elf.STB_LOCAL {
		return true, nil
	}
	if e.tgt.Object == "vmlinux" && (key.Section != nil || e.tgt.Symbols.Has(name)) {
		// A vmlinux key, resolved by a livepatch relocation (see klpData).
		return true, nil
	}
	if strings.HasPrefix(name, "__tracepoint_") {
		e.res.Warnings = append(e.res.Warnings, fmt.Sprintf("%s: tracepoint %s stays off in the patched code (its key is not exported)", f.Name, strings.TrimPrefix(name, "__tracepoint_")))
		return false, nil
	}
	return false, refuse(refusal.ModuleStaticKey, f.Name, "%s uses static key %s, which %s does not export: the module loader would patch the jump before livepatch can resolve the key", f.Name, name, e.tgt.Object)
}

// klpData says whether livepatch relocations may be written into section
// from of the source object: only __jump_table of a vmlinux patch. The
// module loader applies a patch's vmlinux livepatch relocations with its
// ordinary ones, before it reads the jump table (jump_label_apply_nops,
// then the module notifier), so a static branch on a key vmlinux does not
// export works. Module keys resolve only when their module loads, after
// the patch's own jump labels were set up; those stay refused.
func (e *extractor) klpData(from *elfobj.Section) bool {
	if from != nil && from == e.slotSrc {
		return true // read only by the callbacks, once its object is loaded
	}
	return e.tgt.Object == "vmlinux" && from != nil && from.Name == "__jump_table"
}

func (e *extractor) specialSection(src *elfobj.Section) *elfobj.Section {
	if c, ok := e.secMap[src]; ok {
		return c
	}
	c := &elfobj.Section{Name: src.Name, Type: src.Type, Flags: src.Flags, Entsize: src.Entsize, Addralign: src.Addralign, Data: []byte{}}
	e.out.AddSection(c)
	e.secMap[src] = c
	return c
}

func (e *extractor) appendReloc(dst *elfobj.Section, r elfobj.Reloc) {
	if rs := e.out.RelaSections(dst); len(rs) > 0 {
		rs[0].Relocs = append(rs[0].Relocs, r)
		return
	}
	e.out.AddRelaSection(".rela"+dst.Name, dst, 0, []elfobj.Reloc{r})
}
