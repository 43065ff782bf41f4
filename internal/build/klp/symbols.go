package klp

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/kmodfile"
)

// Exports are the symbols Module.symvers says are exported, by name, with
// the object exporting them ("vmlinux" or a module name).
type Exports map[string]string

// ReadSymvers reads a Module.symvers file: the exports and the
// namespaces of the namespaced ones.
func ReadSymvers(path string) (Exports, Namespaces, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read exports: %w", err)
	}
	defer f.Close()
	ex, ns := Exports{}, Namespaces{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 {
			return nil, nil, fmt.Errorf("read exports: %s:%d: malformed line", path, n)
		}
		obj := fields[2]
		if obj != "vmlinux" {
			// drivers/net/virtio_net → virtio_net, as the kernel names it.
			obj = strings.ReplaceAll(obj[strings.LastIndex(obj, "/")+1:], "-", "_")
		}
		ex[fields[1]] = obj
		if len(fields) >= 5 && fields[4] != "" {
			// The name goes into the module's source: nothing but an
			// identifier (or module:NAME…), whatever the file says.
			if !namespaceRE.MatchString(fields[4]) {
				return nil, nil, fmt.Errorf("read exports: %s:%d: malformed namespace %q", path, n, fields[4])
			}
			ns[fields[1]] = fields[4]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read exports: %w", err)
	}
	return ex, ns, nil
}

// ksym is one symbol of the running kernel object.
type ksym struct {
	name  string
	addr  uint64
	local bool
	file  int // index of the STT_FILE block it sits in, -1 if none
}

// SymbolTable is the symbol table of a patch target (vmlinux or a module)
// in the order the kernel's kallsyms walks it, which is what old_sympos
// and .klp.sym positions count in.
type SymbolTable struct {
	Object string // "vmlinux" or the module name
	syms   []ksym
	files  []string // STT_FILE names by block
	byName map[string][]int
	undef  map[string]bool // symbols it uses but does not define (a module's)
}

// ReadSymbolTable reads the symbol table of an ELF file: the -dbg vmlinux
// (the image's own System.map is a stub) or a module's file, plain (.ko)
// or compressed (.ko.xz, .ko.zst, .ko.gz: decompressed in memory). vmlinux
// kallsyms are sorted by address; a module's are in its symbol table order.
func ReadSymbolTable(path, object string) (st *SymbolTable, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read symbols of %s: malformed ELF: %v", path, r)
		}
	}()
	var f *elf.File
	compressed := kmodfile.Suffix(path) != "" && kmodfile.Suffix(path) != ".ko"
	if compressed {
		data, rerr := kmodfile.Read(path)
		if rerr != nil {
			return nil, fmt.Errorf("read symbols of %s: %w", path, rerr)
		}
		f, err = elf.NewFile(bytes.NewReader(data))
	} else {
		f, err = elf.Open(path)
	}
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) && !compressed {
			return readSystemMap(path, object)
		}
		return nil, fmt.Errorf("read symbols of %s: %w", path, err)
	}
	defer f.Close()
	elfSyms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("read symbols of %s: %w", path, err)
	}
	st = &SymbolTable{Object: object, byName: map[string][]int{}, undef: map[string]bool{}}
	block := -1
	for _, s := range elfSyms {
		switch elf.ST_TYPE(s.Info) {
		case elf.STT_FILE:
			st.files = append(st.files, s.Name)
			block = len(st.files) - 1
			continue
		case elf.STT_SECTION:
			continue
		}
		if s.Name != "" && s.Section == elf.SHN_UNDEF {
			st.undef[s.Name] = true
		}
		if s.Name == "" || s.Section == elf.SHN_UNDEF {
			continue
		}
		local := elf.ST_BIND(s.Info) == elf.STB_LOCAL
		file := -1
		if local {
			file = block
		}
		st.syms = append(st.syms, ksym{name: s.Name, addr: s.Value, local: local, file: file})
	}
	if object == "vmlinux" {
		sort.SliceStable(st.syms, func(i, j int) bool { return st.syms[i].addr < st.syms[j].addr })
	}
	for i, s := range st.syms {
		st.byName[s.name] = append(st.byName[s.name], i)
	}
	return st, nil
}

// Has reports whether the target defines name.
func (st *SymbolTable) Has(name string) bool { return len(st.byName[name]) > 0 }

// Uses reports whether the target refers to name without defining it: a
// module's call to a vmlinux or another module's function. A linked
// vmlinux uses nothing.
func (st *SymbolTable) Uses(name string) bool { return st.undef[name] }

// FileBlock picks the STT_FILE block that is the compile unit sourceBase
// (e.g. "cmdline.c"): of the blocks with that name, the one defining most
// of the unit's local symbols, and how many it defines. -1 when no block
// has that name.
func (st *SymbolTable) FileBlock(sourceBase string, locals []string) (int, int) {
	best, bestScore := -1, -1
	for b, name := range st.files {
		if name != sourceBase {
			continue
		}
		score := 0
		for _, l := range locals {
			for _, i := range st.byName[l] {
				if st.syms[i].file == b {
					score++
					break
				}
			}
		}
		if score > bestScore {
			best, bestScore = b, score
		}
	}
	return best, bestScore
}

// Sympos is the position of symbol name, defined in file block block when
// local, among the target's symbols of that name: 0 when the name is unique
// (what klp wants then), else 1-based. unitLocals (the unit's own local
// symbols) tell same-named locals apart where the table has no STT_FILE
// blocks (modules are stripped of them): a unit's locals sit together.
func (st *SymbolTable) Sympos(name string, local bool, block int, unitLocals map[string]bool) (int, error) {
	idx := st.byName[name]
	if len(idx) == 0 {
		return 0, fmt.Errorf("%s has no symbol %q", st.Object, name)
	}
	if len(idx) == 1 {
		return 0, nil
	}
	var found []int
	for pos, i := range idx {
		s := st.syms[i]
		if !local && !s.local {
			found = append(found, pos+1)
		}
		if local && s.local && s.file == block && block >= 0 {
			found = append(found, pos+1)
		}
	}
	if len(found) == 0 && local && len(st.files) == 0 && len(unitLocals) > 0 {
		found = st.nearestUnit(idx, unitLocals)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, fmt.Errorf("%s has %d symbols %q, none in the patched file", st.Object, len(idx), name)
	default:
		return 0, fmt.Errorf("%s has %d symbols %q in the patched file: cannot tell them apart", st.Object, len(found), name)
	}
}

// readSystemMap reads a System.map ("address type name" lines). It has no
// file information, so a name that occurs more than once cannot be told
// apart: prefer vmlinux with its symbol table.
func readSystemMap(path, object string) (*SymbolTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read symbols: %w", err)
	}
	defer f.Close()
	st := &SymbolTable{Object: object, byName: map[string][]int{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			return nil, fmt.Errorf("read symbols: %s:%d: not a System.map line", path, n)
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("read symbols: %s:%d: bad address %q", path, n, fields[0])
		}
		t := fields[1]
		if t == "U" || t == "w" || t == "a" || t == "A" {
			continue
		}
		local := strings.ToLower(t) == t
		st.syms = append(st.syms, ksym{name: fields[2], addr: addr, local: local, file: -1})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read symbols: %w", err)
	}
	if len(st.syms) < 1000 {
		return nil, fmt.Errorf("read symbols: %s has only %d symbols: is it Debian's stub System.map? Use the -dbg package's", path, len(st.syms))
	}
	sort.SliceStable(st.syms, func(i, j int) bool { return st.syms[i].addr < st.syms[j].addr })
	for i, s := range st.syms {
		st.byName[s.name] = append(st.byName[s.name], i)
	}
	return st, nil
}

// nearestUnit picks, among the local symbols at indexes idx, the one with
// the most of the unit's other locals around it in the symbol table.
func (st *SymbolTable) nearestUnit(idx []int, unitLocals map[string]bool) []int {
	window := len(unitLocals) + 8
	best, bestScore, tie := 0, -1, false
	for pos, i := range idx {
		if !st.syms[i].local {
			continue
		}
		score := 0
		for j := max(0, i-window); j < min(len(st.syms), i+window); j++ {
			if j != i && st.syms[j].local && unitLocals[st.syms[j].name] {
				score++
			}
		}
		switch {
		case score > bestScore:
			best, bestScore, tie = pos+1, score, false
		case score == bestScore:
			tie = true
		}
	}
	if bestScore <= 0 || tie {
		return nil
	}
	return []int{best}
}
