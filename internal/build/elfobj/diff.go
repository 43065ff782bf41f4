package elfobj

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Changes is the function-level difference between two compilations of
// one compile unit.
type Changes struct {
	Changed []FuncChange // functions whose code, relocations or special entries differ
	New     []*Function  // functions only in the after object
	Removed []*Function  // functions only in the before object

	// LineOnly are functions whose only differences are source line
	// numbers (see DefaultLineFuncs); they are not in Changed.
	LineOnly []FuncChange

	ChangedData []DataChange // data objects whose size, placement or initial value differ
	NewData     []*Symbol    // data objects only in the after object
	RemovedData []*Symbol    // data objects only in the before object
}

// FuncChange is one function present in both objects.
type FuncChange struct {
	Name          string // name in the after object
	Before, After *Function
	Reasons       []string // human-readable, first difference of each kind
}

// DataChange is one data object present in both objects.
type DataChange struct {
	Name          string // name in the after object
	Before, After *Symbol
	Reasons       []string
	// Slots are the pointer fields the fix repoints, when nothing else
	// of the object differs; nil otherwise.
	Slots []Slot
}

// Slot is one 8-byte pointer field of a data object that a fix points
// elsewhere (an ops table's callback, a sysctl's bounds), or sets or
// clears.
type Slot struct {
	Offset uint64 // from the start of the object
	// Before and After are what is pointed to: a function (at its start),
	// a data object, or a symbol of no section (defined elsewhere), plus
	// the addend; nil for NULL.
	Before, After             *Symbol
	BeforeAddend, AfterAddend int64
}

// LineArgs is a set of integer argument positions (bit 0: the first
// argument, in %rdi; then %rsi, %rdx, %rcx, %r8, %r9).
type LineArgs uint8

// argRegs are the System V integer argument registers in ModRM numbering.
var argRegs = [6]int{7, 6, 2, 1, 8, 9}

// DefaultLineFuncs are kernel functions that receive __LINE__ (or, for
// __warn_printk, may receive it among the format arguments) in a register.
// A call to one of them whose line argument is all that differs does not
// make a function changed.
var DefaultLineFuncs = map[string]LineArgs{
	// include/linux/kernel.h, sched.h, rcupdate.h, bug.h (Linux 6.1).
	"__might_sleep":            1 << 1, // (file, line)
	"___might_sleep":           1 << 1, // (file, line, preempt_offset), before 5.15
	"__might_resched":          1 << 1, // (file, line, offsets)
	"__might_fault":            1 << 1, // (file, line)
	"__cant_sleep":             1 << 1, // (file, line, preempt_offset)
	"__cant_migrate":           1 << 1, // (file, line)
	"lockdep_rcu_suspicious":   1 << 1, // (file, line, s)
	"warn_slowpath_fmt":        1 << 1, // (file, line, taint, fmt, ...)
	"__warn_printk":            0x3e,   // (fmt, ...): WARN(c, "...%d", __LINE__)
	"__validate_creds":         1 << 2, // (cred, file, line)
	"__validate_process_creds": 1 << 2,
	"__jbd2_debug":             1 << 3, // (level, file, func, line, fmt, ...)
	// fs/ext4/ext4.h, ext4_jbd2.h.
	"__ext4_error":                     1 << 2, // (sb, func, line, ...)
	"__ext4_error_inode":               1 << 2, // (inode, func, line, ...)
	"__ext4_error_file":                1 << 2, // (file, func, line, ...)
	"__ext4_std_error":                 1 << 2, // (sb, func, line, errno)
	"__ext4_warning":                   1 << 2, // (sb, func, line, fmt, ...)
	"__ext4_warning_inode":             1 << 2, // (inode, func, line, fmt, ...)
	"__ext4_grp_locked_error":          1 << 1, // (func, line, sb, ...)
	"__ext4_check_dir_entry":           1 << 1, // (func, line, ...)
	"__dump_mmp_msg":                   1 << 3, // (sb, mmp, func, line, msg)
	"__ext4_journal_start_sb":          1 << 1, // (sb, line, type, ...)
	"__ext4_journal_stop":              1 << 1, // (where, line, handle)
	"__ext4_journal_get_write_access":  1 << 1, // (where, line, ...)
	"__ext4_journal_get_create_access": 1 << 1,
	"__ext4_handle_dirty_metadata":     1 << 1,
	"__ext4_forget":                    1 << 1,
	"__ext4_mark_inode_dirty":          1 << 3, // (handle, inode, func, line)
	// fs/btrfs/ctree.h, fs/xfs/xfs_error.h, xfs_message.h.
	"__btrfs_handle_fs_error":   1 << 2, // (fs_info, function, line, ...)
	"__btrfs_abort_transaction": 1 << 2, // (trans, function, line, ...)
	"__btrfs_panic":             1 << 2, // (fs_info, function, line, ...)
	"xfs_error_report":          1 << 4, // (tag, level, mp, filename, line, failaddr)
	"assfail":                   1 << 3, // (mp, expr, file, line)
	"asswarn":                   1 << 3,
}

// Diff compares the functions and data objects of two compilations of the
// same compile unit, with the default options.
func Diff(before, after *File) (*Changes, error) {
	return (*DiffOptions)(nil).Diff(before, after)
}

// Diff compares the functions and data objects of two compilations of the
// same compile unit.
//
// Functions are matched by NormalizeName of their symbol; a function
// matches when the bytes of each of its parts are equal with relocated
// fields masked, its relocations are equal after normalization, and its
// special-section entries (SpecialSection) are equal with line-number
// fields masked. A relocation is normalized to (offset in the part, type,
// target), the target being: a symbol by normalized name and addend; a
// place inside the function itself by part and offset; a string or
// constant in a mergeable section by its contents (so literals that
// merely moved don't count, changed ones do); a place in another section
// by the function or object defined there; else the section by
// normalized name, offset and a digest of its contents (switch tables).
//
// Line numbers. A WARN/BUG line sits in its __bug_table entry (and a
// pr_debug line in its __dyndbg descriptor), whose line field is masked
// (SpecialSection.Line). might_sleep() and friends pass __LINE__ in a
// register instead, so a function whose only differing bytes are such an
// immediate is reported in LineOnly, not Changed, when:
//
//   - both versions decode (x86 length decoder) at the same instruction
//     boundaries and their relocations are equal;
//   - every differing byte lies in the immediate of a `mov $imm, %reg`
//     (B8+r or C7 /0 to a register, no prefix but REX) whose old and new
//     values both look like line numbers (1 to 2^24-1);
//   - after that mov, with only register moves, loads, LEAs, XOR-zeroing
//     and NOPs that leave %reg alone in between, comes a direct call (or
//     tail jump) relocated against a function of LineFuncs for which %reg
//     is a line argument.
//
// Limits: a line number that travels through the stack (7th argument and
// later), another register or arithmetic, a call through a pointer or
// thunk, or a line stringified into a string literal (lockdep class names,
// "file:line" messages) is not recognised and counts as a change: the
// heuristic errs towards reporting. The exception is a function whose
// varargs are marked as possible line arguments (__warn_printk): any
// changed small integer passed there is taken for a line number.
func (o *DiffOptions) Diff(before, after *File) (*Changes, error) {
	if before == nil || after == nil {
		return nil, errors.New("diff objects: nil file")
	}
	bv, av := newView(before, o), newView(after, o)
	for _, fn := range bv.funcs {
		bv.shape(fn)
	}
	for _, fn := range av.funcs {
		av.shape(fn)
	}
	ch := &Changes{}
	fingerprint := func(fn *Function) string {
		if bv.byPart[fn.Sym] == fn {
			return bv.fingerprint(fn)
		}
		return av.fingerprint(fn)
	}
	pairs, removed, added := match(bv.funcs, av.funcs, func(fn *Function) string { return fn.Key }, fingerprint)
	for _, p := range pairs {
		reasons, lineDiff := compareFuncs(bv, p[0], av, p[1], o.lineFuncs())
		c := FuncChange{Name: p[1].Name, Before: p[0], After: p[1], Reasons: reasons}
		switch {
		case len(reasons) > 0:
			ch.Changed = append(ch.Changed, c)
		case lineDiff:
			ch.LineOnly = append(ch.LineOnly, c)
		}
	}
	ch.Removed, ch.New = removed, added

	bobjs, aobjs := bv.objects(), av.objects()
	bset := make(map[*Symbol]bool, len(bobjs))
	for _, s := range bobjs {
		bset[s] = true
	}
	objPrint := func(s *Symbol) string {
		if bset[s] {
			return bv.objectFingerprint(s)
		}
		return av.objectFingerprint(s)
	}
	dpairs, dremoved, dadded := match(bobjs, aobjs, func(s *Symbol) string { return NormalizeName(s.Name) }, objPrint)
	for _, p := range dpairs {
		if r, slots := compareObjects(bv, p[0], av, p[1]); len(r) > 0 {
			ch.ChangedData = append(ch.ChangedData, DataChange{Name: p[1].Name, Before: p[0], After: p[1], Reasons: r, Slots: slots})
		}
	}
	ch.RemovedData, ch.NewData = dremoved, dadded

	byName := func(a, b string) int { return strings.Compare(a, b) }
	slices.SortFunc(ch.Changed, func(a, b FuncChange) int { return byName(a.Name, b.Name) })
	slices.SortFunc(ch.LineOnly, func(a, b FuncChange) int { return byName(a.Name, b.Name) })
	slices.SortFunc(ch.New, func(a, b *Function) int { return byName(a.Name, b.Name) })
	slices.SortFunc(ch.Removed, func(a, b *Function) int { return byName(a.Name, b.Name) })
	slices.SortFunc(ch.ChangedData, func(a, b DataChange) int { return byName(a.Name, b.Name) })
	slices.SortFunc(ch.NewData, func(a, b *Symbol) int { return byName(a.Name, b.Name) })
	slices.SortFunc(ch.RemovedData, func(a, b *Symbol) int { return byName(a.Name, b.Name) })
	return ch, nil
}

// match pairs before and after items by key. When a key is ambiguous
// (two constprop clones of one function, two static locals called count),
// items with the same fingerprint (identical contents) pair first, then
// the rest in order.
func match[T any](before, after []T, key, fingerprint func(T) string) (pairs [][2]T, removed, added []T) {
	group := func(xs []T) (map[string][]T, []string) {
		m := map[string][]T{}
		var order []string
		for _, x := range xs {
			k := key(x)
			if _, ok := m[k]; !ok {
				order = append(order, k)
			}
			m[k] = append(m[k], x)
		}
		return m, order
	}
	bg, border := group(before)
	ag, aorder := group(after)
	for _, k := range border {
		bs, as := bg[k], ag[k]
		if len(bs) == 1 && len(as) == 1 {
			pairs = append(pairs, [2]T{bs[0], as[0]})
			continue
		}
		usedB, usedA := make([]bool, len(bs)), make([]bool, len(as))
		if len(as) > 0 {
			byPrint := map[string][]int{}
			for j, a := range as {
				fp := fingerprint(a)
				byPrint[fp] = append(byPrint[fp], j)
			}
			for i, b := range bs {
				fp := fingerprint(b)
				if js := byPrint[fp]; len(js) > 0 {
					usedB[i], usedA[js[0]] = true, true
					byPrint[fp] = js[1:]
					pairs = append(pairs, [2]T{b, as[js[0]]})
				}
			}
		}
		j := 0
		for i, b := range bs {
			if usedB[i] {
				continue
			}
			for j < len(as) && usedA[j] {
				j++
			}
			if j == len(as) {
				removed = append(removed, b)
				continue
			}
			usedA[j] = true
			pairs = append(pairs, [2]T{b, as[j]})
		}
		for j, a := range as {
			if !usedA[j] {
				added = append(added, a)
			}
		}
	}
	for _, k := range aorder {
		if _, ok := bg[k]; !ok {
			added = append(added, ag[k]...)
		}
	}
	return pairs, removed, added
}

// fingerprint hashes everything compareFuncs compares.
func (v *view) fingerprint(fn *Function) string {
	sh := v.shape(fn)
	h := sha256.New()
	fmt.Fprintf(h, "%v %d\n", fn.Sym.Bind, len(sh.parts))
	for _, p := range sh.parts {
		fmt.Fprintf(h, "part %d %d %x\n", p.size, len(p.code), p.code)
		for _, t := range p.targets {
			fmt.Fprintf(h, "%s\n", t)
		}
	}
	for _, e := range sh.entries {
		fmt.Fprintf(h, "entry %s %d %d %x %q\n", e.section, e.part, e.at, e.data, e.relocs)
	}
	return string(h.Sum(nil))
}

// objectFingerprint hashes everything compareObjects compares.
func (v *view) objectFingerprint(s *Symbol) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d %v", s.Size, s.Section == nil)
	if s.Section != nil {
		data, relocs := objectShape(v, s)
		fmt.Fprintf(h, " %v %v %x %q", s.Section.Type, s.Section.Flags&(elf.SHF_WRITE|elf.SHF_TLS), data, relocs)
	}
	return string(h.Sum(nil))
}

// funcShape is a function normalized for comparison.
type funcShape struct {
	parts   []partShape
	entries []entryShape
}

type partShape struct {
	name    string
	size    uint64
	code    []byte   // relocated fields zeroed
	relocs  []Reloc  // offsets relative to the part
	targets []string // normalized relocation, one per relocs entry
	insns   []insn   // nil when the code did not decode
}

type entryShape struct {
	section string
	part    int
	at      uint64
	data    []byte
	relocs  []string
}

// shape normalizes fn and fills in its Refs and Special.
func (v *view) shape(fn *Function) *funcShape {
	if sh := v.shapes[fn]; sh != nil {
		return sh
	}
	sh := &funcShape{}
	v.shapes[fn] = sh
	refs := map[*Symbol]bool{}
	addRef := func(s *Symbol) {
		if s != nil && v.byPart[s] != fn {
			refs[s] = true
		}
	}
	special := slices.Clone(v.into[fn])
	for _, part := range fn.Parts {
		ps := partShape{name: part.Sym.Name, size: part.Size}
		raw := bytesOf(part.Section, part.Offset, part.Size)
		rs := v.relocsIn(part.Section, part.Offset, part.Offset+part.Size)
		ps.code = slices.Clone(raw)
		mask(ps.code, part.Offset, rs)
		if insns, err := decodeAll(raw); err == nil {
			ps.insns = insns
		}
		for _, r := range rs {
			rel := r.Offset - part.Offset
			bias := int64(0)
			if pcRelative(r.Type) {
				bias = int64(relocSize(r.Type))
				if in, ok := insnAt(ps.insns, rel); ok {
					bias = int64(in.off+in.len) - int64(rel)
				}
			}
			repr, ref := v.target(r, bias, fn, true)
			addRef(ref)
			if r.Sym != nil && r.Sym.Section != nil && v.special[r.Sym.Section] != nil {
				// The code refers to an entry (a dynamic debug
				// descriptor): it belongs to the function too.
				special = append(special, v.entryAt(r.Sym.Section, r.Sym.Value+uint64(r.Addend+bias), -1, 0))
			}
			r.Offset = rel
			ps.relocs = append(ps.relocs, r)
			ps.targets = append(ps.targets, fmt.Sprintf("%#x %v %s", rel, r.Type, repr))
		}
		sh.parts = append(sh.parts, ps)
	}

	slices.SortStableFunc(special, func(a, b SpecialRef) int {
		return cmp.Or(cmp.Compare(a.Section.Index, b.Section.Index), cmp.Compare(a.Offset, b.Offset))
	})
	special = slices.CompactFunc(special, func(a, b SpecialRef) bool { return a.Section == b.Section && a.Offset == b.Offset })
	fn.Special = special
	for _, e := range special {
		sh.entries = append(sh.entries, v.entryShape(fn, e, addRef))
	}
	slices.SortStableFunc(sh.entries, func(a, b entryShape) int {
		return cmp.Or(strings.Compare(a.section, b.section), cmp.Compare(a.part, b.part), cmp.Compare(a.at, b.at))
	})

	fn.Refs = fn.Refs[:0]
	for s := range refs {
		fn.Refs = append(fn.Refs, s)
	}
	slices.SortFunc(fn.Refs, func(a, b *Symbol) int { return cmp.Compare(a.Index, b.Index) })
	return sh
}

// insnAt returns the instruction holding offset off.
func insnAt(insns []insn, off uint64) (insn, bool) {
	i := sort.Search(len(insns), func(i int) bool { return uint64(insns[i].off) > off }) - 1
	if i < 0 || off >= uint64(insns[i].off+insns[i].len) {
		return insn{}, false
	}
	return insns[i], true
}

// indexSpecial finds, for every function, the special-section entries
// whose relocations point into it.
func (v *view) indexSpecial() {
	v.into = map[*Function][]SpecialRef{}
	for _, s := range v.f.Sections {
		if v.special[s] == nil {
			continue
		}
		for _, r := range v.relocs[s] {
			if r.Sym == nil || r.Sym.Section == nil {
				continue
			}
			p := r.Sym.Value + uint64(r.Addend)
			ps, ok := v.partAt(r.Sym.Section, p)
			if !ok {
				continue
			}
			v.into[ps.fn] = append(v.into[ps.fn], v.entryAt(s, r.Offset, ps.part, p-ps.start))
		}
	}
}

// entryAt returns the entry of special section s holding offset off.
func (v *view) entryAt(s *Section, off uint64, part int, at uint64) SpecialRef {
	ref := SpecialRef{Section: s, Offset: off, Part: part, At: at}
	if n := uint64(v.special[s].EntrySize); n > 0 && s.Len()%n == 0 {
		ref.Offset, ref.Size = off-off%n, n
	} else if sym := v.symbolAt(s, off); sym != nil && sym.Size > 0 {
		ref.Offset, ref.Size = sym.Value, sym.Size
	}
	return ref
}

func (v *view) entryShape(fn *Function, e SpecialRef, addRef func(*Symbol)) entryShape {
	spec := v.special[e.Section]
	es := entryShape{section: e.Section.Name, part: e.Part, at: e.At}
	var rs []Reloc
	var raw []byte
	if e.Size > 0 {
		raw = bytesOf(e.Section, e.Offset, e.Size)
		rs = v.relocsIn(e.Section, e.Offset, e.Offset+e.Size)
	} else {
		rs = v.relocsIn(e.Section, e.Offset, e.Offset+1)
	}
	es.data = slices.Clone(raw)
	mask(es.data, e.Offset, rs)
	clearField(es.data, spec.Line)
	for _, r := range rs {
		rel := r.Offset - e.Offset
		var repr string
		if rp := spec.Replacement; rp != nil && rel == uint64(rp.RelocOffset) && rp.LenOffset < len(raw) {
			repr = v.replacement(r, uint64(raw[rp.LenOffset]), fn, addRef)
		} else {
			var ref *Symbol
			repr, ref = v.target(r, 0, fn, true)
			if ref == nil || ref.Section != e.Section {
				addRef(ref)
			}
		}
		es.relocs = append(es.relocs, fmt.Sprintf("%#x %v %s", rel, r.Type, repr))
	}
	return es
}

// replacement describes the n bytes of out-of-line code a relocation
// points to by their contents.
func (v *view) replacement(r Reloc, n uint64, fn *Function, addRef func(*Symbol)) string {
	if r.Sym == nil || r.Sym.Section == nil {
		repr, _ := v.target(r, 0, fn, false)
		return repr
	}
	s, start := r.Sym.Section, r.Sym.Value+uint64(r.Addend)
	code := bytesOf(s, start, n)
	insns, _ := decodeAll(code)
	rs := v.relocsIn(s, start, start+n)
	mask(code, start, rs)
	var b strings.Builder
	fmt.Fprintf(&b, "code:%x", code)
	for _, rr := range rs {
		rel := rr.Offset - start
		bias := int64(0)
		if pcRelative(rr.Type) {
			bias = int64(relocSize(rr.Type))
			if in, ok := insnAt(insns, rel); ok {
				bias = int64(in.off+in.len) - int64(rel)
			}
		}
		repr, ref := v.target(rr, bias, fn, true)
		addRef(ref)
		fmt.Fprintf(&b, " [%#x %v %s]", rel, rr.Type, repr)
	}
	return b.String()
}

// target normalizes a relocation's target. bias is added to the addend to
// get the referenced place (for PC-relative relocations in code, the
// distance to the end of the instruction). It also returns the symbol
// the reference is to, for Refs.
func (v *view) target(r Reloc, bias int64, fn *Function, digest bool) (string, *Symbol) {
	sym := r.Sym
	if sym == nil {
		return place("abs", r.Addend, 0), nil
	}
	s := sym.Section
	if s == nil || (sym.Type != elf.STT_SECTION && s.Flags&elf.SHF_MERGE == 0 &&
		!(sym.Type == elf.STT_NOTYPE && sym.Bind == elf.STB_LOCAL) && (fn == nil || v.byPart[sym] != fn)) {
		// Same form as a place resolved below, so that a reference
		// does not change when the assembler names a symbol instead of
		// its section (a static function made global).
		return place("sym:"+NormalizeName(sym.Name), r.Addend+bias, bias), sym
	}
	// A place in a section, named by a section symbol or by a label the
	// assembler kept (.LC0 in mergeable sections).
	p := sym.Value + uint64(r.Addend+bias)
	if fn != nil {
		for i, part := range fn.Parts {
			if part.Section == s && p >= part.Offset && p <= part.Offset+part.Size {
				return place(fmt.Sprintf("self:%d", i), int64(p-part.Offset), bias), nil
			}
		}
	}
	if s.Flags&elf.SHF_MERGE != 0 {
		if repr, off, ok := mergedAt(s, p); ok {
			return place(repr, off, bias), sym
		}
	}
	if def := v.symbolAt(s, p); def != nil {
		return place("sym:"+NormalizeName(def.Name), int64(p-def.Value), bias), def
	}
	repr := place("sec:"+NormalizeName(s.Name), int64(p), bias)
	if digest && s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_EXECINSTR == 0 {
		repr += "#" + v.digest(s)
	}
	return repr, sym
}

// place renders a normalized target: what, the offset into it, and for
// a PC-relative reference in code the distance from the relocated field
// to the end of the instruction.
func place(what string, off, bias int64) string {
	if bias == 0 {
		return fmt.Sprintf("%s%+#x", what, off)
	}
	return fmt.Sprintf("%s%+#x pc%+d", what, off, -bias)
}

// mergedAt describes the place p of a mergeable section by contents: the
// string holding it, or the constant, and the offset into it.
func mergedAt(s *Section, p uint64) (string, int64, bool) {
	data := s.Data
	if s.Type == elf.SHT_NOBITS || p >= uint64(len(data)) {
		return "", 0, false
	}
	n := max(s.Entsize, 1)
	if n > 16 || n > uint64(len(data)) {
		return "", 0, false // no string or constant is this wide
	}
	if s.Flags&elf.SHF_STRINGS != 0 {
		isNul := func(at uint64) bool {
			for i := uint64(0); i < n; i++ {
				if at+i >= uint64(len(data)) || data[at+i] != 0 {
					return false
				}
			}
			return true
		}
		start := p - p%n
		for start >= n && !isNul(start-n) {
			start -= n
		}
		end := p - p%n
		for end < uint64(len(data)) && !isNul(end) {
			end += n
		}
		end = min(end, uint64(len(data)))
		return fmt.Sprintf("str:%q", data[start:end]), int64(p - start), true
	}
	start := p - p%n
	if start+n > uint64(len(data)) {
		return "", 0, false
	}
	return fmt.Sprintf("const:%x", data[start:start+n]), int64(p - start), true
}

// digest summarizes the contents of a section that has no symbols to
// name its parts (a switch table in .rodata.<function>), relocations
// included, so that a function referring to it changes when it does.
func (v *view) digest(s *Section) string {
	if d, ok := v.digests[s]; ok {
		return d
	}
	v.digests[s] = "" // cycles: a table refers to the function that refers to it
	h := sha256.New()
	data := slices.Clone(s.Data)
	rs := v.relocs[s]
	mask(data, 0, rs)
	h.Write(data)
	for _, r := range rs {
		repr, _ := v.target(r, 0, nil, false)
		fmt.Fprintf(h, "\x00%#x %v %s", r.Offset, r.Type, repr)
	}
	d := hex.EncodeToString(h.Sum(nil)[:8])
	v.digests[s] = d
	return d
}

// compareFuncs lists the differences between two functions. lineDiff
// reports differences that are only line numbers (see lineOnly).
func compareFuncs(bv *view, b *Function, av *view, a *Function, lineFuncs map[string]LineArgs) (reasons []string, lineDiff bool) {
	bs, as := bv.shape(b), av.shape(a)
	if b.Sym.Bind != a.Sym.Bind {
		reasons = append(reasons, fmt.Sprintf("binding %v → %v", b.Sym.Bind, a.Sym.Bind))
	}
	if len(bs.parts) != len(as.parts) {
		reasons = append(reasons, fmt.Sprintf("%d parts → %d parts", len(bs.parts), len(as.parts)))
	}
	for i := range min(len(bs.parts), len(as.parts)) {
		bp, ap := bs.parts[i], as.parts[i]
		if bp.size != ap.size {
			reasons = append(reasons, fmt.Sprintf("size of %s %#x → %#x", ap.name, bp.size, ap.size))
			continue
		}
		relocsSame := true
		if len(bp.targets) != len(ap.targets) {
			relocsSame = false
			reasons = append(reasons, fmt.Sprintf("relocations in %s: %d → %d", ap.name, len(bp.targets), len(ap.targets)))
		} else {
			for j := range bp.targets {
				if bp.targets[j] != ap.targets[j] {
					relocsSame = false
					reasons = append(reasons, fmt.Sprintf("relocation in %s: %s → %s", ap.name, bp.targets[j], ap.targets[j]))
					break
				}
			}
		}
		if bytes.Equal(bp.code, ap.code) {
			continue
		}
		if len(bp.code) != len(ap.code) { // one of them is SHT_NOBITS
			reasons = append(reasons, fmt.Sprintf("contents of %s: %d → %d bytes", ap.name, len(bp.code), len(ap.code)))
			continue
		}
		var diffs []int
		for j := range bp.code {
			if bp.code[j] != ap.code[j] {
				diffs = append(diffs, j)
			}
		}
		if relocsSame && lineOnly(bp, ap, diffs, lineFuncs) {
			lineDiff = true
			continue
		}
		reasons = append(reasons, fmt.Sprintf("code differs at %s+%#x", ap.name, diffs[0]))
	}
	if len(bs.entries) != len(as.entries) {
		reasons = append(reasons, fmt.Sprintf("special entries %s → %s", countEntries(bs.entries), countEntries(as.entries)))
	} else {
		for j := range bs.entries {
			be, ae := bs.entries[j], as.entries[j]
			if be.section != ae.section || be.part != ae.part || be.at != ae.at ||
				!bytes.Equal(be.data, ae.data) || !slices.Equal(be.relocs, ae.relocs) {
				reasons = append(reasons, fmt.Sprintf("%s entry for %s+%#x differs", ae.section, a.Name, ae.at))
				break
			}
		}
	}
	return reasons, lineDiff
}

func countEntries(es []entryShape) string {
	n := map[string]int{}
	for _, e := range es {
		n[e.section]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, n[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// lineOnly reports whether the code differences between two parts of
// equal size, whose relocations are equal, are all explained as changed
// line numbers passed to line-taking functions (the rule is in the Diff
// documentation).
func lineOnly(bp, ap partShape, diffs []int, lineFuncs map[string]LineArgs) bool {
	if bp.insns == nil || ap.insns == nil || len(bp.insns) != len(ap.insns) {
		return false
	}
	for i := range bp.insns {
		if bp.insns[i].off != ap.insns[i].off || bp.insns[i].len != ap.insns[i].len {
			return false
		}
	}
	checked := map[int]bool{}
	for _, d := range diffs {
		k := sort.Search(len(ap.insns), func(i int) bool { return ap.insns[i].off > d }) - 1
		if k < 0 {
			return false
		}
		in := ap.insns[k]
		if d < in.off+in.immOff || d >= in.off+in.immOff+in.immLen {
			return false
		}
		if checked[k] {
			continue
		}
		checked[k] = true
		if !lineCall(ap, k, lineFuncs) || !plausibleLine(bp.code, in) || !plausibleLine(ap.code, in) {
			return false
		}
	}
	return true
}

func plausibleLine(code []byte, in insn) bool {
	imm := code[in.off+in.immOff : in.off+in.immOff+in.immLen]
	var v uint64
	switch len(imm) {
	case 4:
		v = uint64(binary.LittleEndian.Uint32(imm))
	case 8:
		v = binary.LittleEndian.Uint64(imm)
	default:
		return false
	}
	return v >= 1 && v < 1<<24
}

// lineCall checks that instruction k moves an immediate into a register
// that a following call passes as a line number.
func lineCall(p partShape, k int, lineFuncs map[string]LineArgs) bool {
	in := p.insns[k]
	if in.legacy || in.vex {
		return false
	}
	isMovImm := in.op >= 0xb8 && in.op <= 0xbf
	if in.op == 0xc7 && in.modrm >= 0 && p.code[in.off+in.modrm]&0xf8 == 0xc0 {
		isMovImm = true
	}
	if !isMovImm {
		return false
	}
	reg, ok := in.regWritten(p.code)
	if !ok || reg < 0 {
		return false
	}
	for j := k + 1; j < len(p.insns) && j <= k+16; j++ {
		n := p.insns[j]
		if (n.op == 0xe8 || n.op == 0xe9) && !n.legacy && n.rex == 0 {
			at := uint64(n.off + n.immOff)
			i := sort.Search(len(p.relocs), func(i int) bool { return p.relocs[i].Offset >= at })
			if i == len(p.relocs) || p.relocs[i].Offset != at || p.relocs[i].Sym == nil {
				return false
			}
			args := lineFuncs[NormalizeName(p.relocs[i].Sym.Name)]
			for pos, r := range argRegs {
				if args&(1<<pos) != 0 && r == reg {
					return true
				}
			}
			return false
		}
		w, ok := n.regWritten(p.code)
		if !ok || w == reg {
			return false
		}
	}
	return false
}

// dataPrefixes are the sections whose objects are data for Diff.
var dataPrefixes = []string{".data", ".bss", ".rodata", ".tdata", ".tbss",
	".init.data", ".init.rodata", ".exit.data", ".ref.data", ".meminit.data"}

func isDataSection(name string) bool {
	for _, p := range dataPrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok && (rest == "" || rest[0] == '.') {
			return true
		}
	}
	return false
}

// objects returns the data objects of the view's file.
func (v *view) objects() []*Symbol {
	var out []*Symbol
	for _, s := range v.f.Symbols {
		if s.Type != elf.STT_OBJECT && s.Type != elf.STT_TLS {
			continue
		}
		if s.Section == nil && s.Shndx == elf.SHN_COMMON ||
			s.Section != nil && v.special[s.Section] == nil && isDataSection(s.Section.Name) {
			out = append(out, s)
		}
	}
	return out
}

// compareObjects lists the differences between two data objects.
// When only pointer fields differ, slots lists them (see pointerSlots).
func compareObjects(bv *view, b *Symbol, av *view, a *Symbol) (reasons []string, slots []Slot) {
	kind := func(s *Symbol) string {
		if s.Section == nil {
			return "common"
		}
		k := "initialized"
		if s.Section.Type == elf.SHT_NOBITS {
			k = "zero-initialized"
		}
		if s.Section.Flags&elf.SHF_WRITE == 0 {
			k += " read-only"
		}
		if s.Section.Flags&elf.SHF_TLS != 0 {
			k += " thread-local"
		}
		return k
	}
	if kb, ka := kind(b), kind(a); kb != ka {
		reasons = append(reasons, fmt.Sprintf("%s → %s (%s → %s)", kb, ka, secName(b), secName(a)))
	}
	if b.Size != a.Size {
		reasons = append(reasons, fmt.Sprintf("size %d → %d", b.Size, a.Size))
	}
	if len(reasons) > 0 || b.Section == nil {
		return reasons, nil
	}
	bd, brs := objectShape(bv, b)
	ad, ars := objectShape(av, a)
	sameBytes := bytes.Equal(bd, ad)
	if !sameBytes {
		i := 0
		for i < min(len(bd), len(ad)) && bd[i] == ad[i] {
			i++
		}
		lo := i &^ 7
		reasons = append(reasons, fmt.Sprintf("initial value differs at +%#x: %x → %x",
			i, bd[lo:min(len(bd), lo+16)], ad[lo:min(len(ad), lo+16)]))
	}
	if len(brs) != len(ars) {
		reasons = append(reasons, fmt.Sprintf("pointers %d → %d", len(brs), len(ars)))
	} else {
		for i := range brs {
			if brs[i] != ars[i] {
				reasons = append(reasons, fmt.Sprintf("pointer %s → %s", brs[i], ars[i]))
				break
			}
		}
	}
	if sameBytes && len(reasons) > 0 {
		slots = pointerSlots(bv, b, av, a)
	}
	return reasons, slots
}

func secName(s *Symbol) string {
	if s.Section == nil {
		return "COMMON"
	}
	return s.Section.Name
}

// objectShape returns an object's initial bytes with relocated fields
// zeroed and its normalized relocations.
func objectShape(v *view, s *Symbol) ([]byte, []string) {
	data := bytesOf(s.Section, s.Value, s.Size)
	rs := v.relocsIn(s.Section, s.Value, s.Value+s.Size)
	mask(data, s.Value, rs)
	var out []string
	for _, r := range rs {
		repr, _ := v.target(r, 0, nil, true)
		out = append(out, fmt.Sprintf("+%#x %v %s", r.Offset-s.Value, r.Type, repr))
	}
	return data, out
}

// pointerSlots returns the pointer fields in which two versions of a data
// object of the same size, kind and bytes outside relocated fields differ,
// when each differing field is a 64-bit absolute pointer on both sides to
// the start of a function, into a data object, to a symbol defined
// elsewhere, or NULL; nil when one is not.
func pointerSlots(bv *view, b *Symbol, av *view, a *Symbol) []Slot {
	type field struct {
		repr   string
		to     *Symbol
		addend int64
		ok     bool // a pointer to a symbol the running kernel has
	}
	fields := func(v *view, s *Symbol) map[uint64]field {
		m := map[uint64]field{}
		for _, r := range v.relocsIn(s.Section, s.Value, s.Value+s.Size) {
			repr, def := v.target(r, 0, nil, true)
			f := field{repr: fmt.Sprintf("%v %s", r.Type, repr), to: def, addend: r.Addend}
			if r.Type == elf.R_X86_64_64 && def != nil && r.Sym != nil {
				if def.Section != nil {
					f.addend = int64(r.Sym.Value) + r.Addend - int64(def.Value)
				}
				switch {
				case def.Section == nil: // defined elsewhere
					f.ok = true
				case def.Type == elf.STT_FUNC:
					f.ok = f.addend == 0
				case def.Type == elf.STT_OBJECT:
					f.ok = f.addend >= 0 && uint64(f.addend) <= def.Size
				}
			}
			m[r.Offset-s.Value] = f
		}
		return m
	}
	bf, af := fields(bv, b), fields(av, a)
	offs := map[uint64]bool{}
	for o := range bf {
		offs[o] = true
	}
	for o := range af {
		offs[o] = true
	}
	var out []Slot
	for o := range offs {
		x, inB := bf[o]
		y, inA := af[o]
		if inB && inA && x.repr == y.repr {
			continue
		}
		if (inB && !x.ok) || (inA && !y.ok) || o+8 > b.Size {
			return nil
		}
		out = append(out, Slot{Offset: o, Before: x.to, After: y.to, BeforeAddend: x.addend, AfterAddend: y.addend})
	}
	// A field relocated on one side only must not overlap another one.
	for _, sl := range out {
		for o := range offs {
			if o > sl.Offset && o < sl.Offset+8 {
				return nil
			}
		}
	}
	slices.SortFunc(out, func(p, q Slot) int { return cmp.Compare(p.Offset, q.Offset) })
	return out
}
