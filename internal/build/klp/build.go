// Package klp turns kernel fixes into livepatch modules: it compiles only
// the compile units a fix changes, before and after, compares the objects
// function by function, lifts the changed functions out, and builds a
// module with the upstream livepatch API around them, with the livepatch
// relocations (Documentation/livepatch/module-elf-format.rst) written into
// the final .ko.
package klp

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// Kernel is everything about the target kernel the generator needs.
type Kernel struct {
	Tree       *ktree.Tree // prepared source
	HeadersDir string      // build tree for external modules
	Vmlinux    string      // vmlinux with its full symbol table (Debian: the -dbg package's)
	ModulesDir string      // /lib/modules/<release> of the target
	Exports    Exports     // Module.symvers
	Vmlinuz    string      // the bootable image, for tests in a VM
	// Profile is the kernel's real build profile, when it has one: which
	// units read each header, and which units #include a .c file.
	Profile *profile.Index

	mu      sync.Mutex
	symtabs map[string]*SymbolTable
}

// Symbols returns the symbol table of vmlinux or of a module, read once.
func (k *Kernel) Symbols(object string) (*SymbolTable, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st, ok := k.symtabs[object]; ok {
		return st, nil
	}
	path := k.Vmlinux
	if object != "vmlinux" {
		var err error
		if path, err = k.modulePath(object); err != nil {
			return nil, err
		}
	}
	st, err := ReadSymbolTable(path, object)
	if err != nil {
		return nil, err
	}
	if k.symtabs == nil {
		k.symtabs = map[string]*SymbolTable{}
	}
	k.symtabs[object] = st
	return st, nil
}

func (k *Kernel) modulePath(name string) (string, error) {
	var found string
	want := map[string]bool{name + ".ko": true, strings.ReplaceAll(name, "_", "-") + ".ko": true}
	err := filepath.WalkDir(k.ModulesDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		if !d.IsDir() && want[d.Name()] {
			found = p
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("find module %s: %w", name, err)
	}
	if found == "" {
		return "", fmt.Errorf("module %s is not in %s: it is not built in this kernel's configuration", name, k.ModulesDir)
	}
	return found, nil
}

// Options for one patch build.
type Options struct {
	Fixes   []Fix
	Name    string
	Replace bool
	WorkDir string // scratch space; a temporary directory when empty
	Out     string
	Log     *slog.Logger
}

// Fix is one diff to apply.
type Fix struct {
	Name string
	Diff []byte
}

// UnitResult is what the generator found in one compile unit.
type UnitResult struct {
	Unit     string   `json:"unit"`
	Object   string   `json:"object"`
	Changed  []string `json:"changed,omitempty"`
	New      []string `json:"new,omitempty"`
	LineOnly []string `json:"line_only,omitempty"`
	Funcs    []Func   `json:"funcs,omitempty"`
	// KlpSymbols are the symbols reached through livepatch relocations.
	KlpSymbols []string `json:"klp_symbols,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Result is what a build made.
type Result struct {
	Module   string        `json:"module,omitempty"`
	Units    []UnitResult  `json:"units"`
	Duration time.Duration `json:"duration_ns"`
}

// Build turns fixes into one livepatch module.
func Build(ctx context.Context, k *Kernel, o Options) (*Result, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &Result{}
	work := o.WorkDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "tuxtape-klp-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	}
	var all []byte
	for _, f := range o.Fixes {
		if len(strings.TrimSpace(string(f.Diff))) == 0 {
			return nil, fmt.Errorf("fix %s is empty", f.Name)
		}
		all = append(all, f.Diff...)
	}
	files := uniq(ktree.PatchFiles(all))
	var units []string
	// optional units come from a search for files #including a changed
	// one; those this configuration does not build are dropped.
	optional := map[string]bool{}
	// known units come from the real build profile: the kernel has them.
	known := map[string]bool{}
	var unread []string // headers no unit of this kernel reads
	for _, f := range files {
		switch {
		case strings.HasPrefix(f, "arch/") && !strings.HasPrefix(f, "arch/x86/"):
			return nil, fmt.Errorf("%w: %s is for another architecture", ErrNotCompiled, f)
		case strings.HasSuffix(f, ".c") && k.Profile != nil:
			us := profileUnits(k.Profile, f)
			if len(us) == 0 {
				return nil, fmt.Errorf("%w: no unit of this kernel's build compiles or includes %s", ErrNotCompiled, f)
			}
			for _, u := range us {
				known[u] = true
			}
			units = append(units, us...)
		case strings.HasSuffix(f, ".c"):
			us, err := compileUnits(k.Tree.Dir, f)
			if err != nil {
				return nil, err
			}
			if len(us) > 1 || us[0] != strings.TrimSuffix(f, ".c")+".o" {
				for _, u := range us {
					optional[u] = true
				}
			}
			units = append(units, us...)
		case strings.HasSuffix(f, ".h") && k.Profile == nil:
			return nil, notLivepatchable("the fix changes header %s: finding every unit that includes it needs the kernel's real build profile (tuxtape kernel build)", f)
		case strings.HasSuffix(f, ".h"):
			us := profileUnits(k.Profile, f)
			if len(us) == 0 {
				log.Info("no unit of this kernel reads the header", "header", f)
				unread = append(unread, f)
				continue
			}
			if len(us) > MaxHeaderUnits {
				return nil, notLivepatchable("the fix changes header %s, which %d compile units of this kernel read: comparing more than %d per patch is not supported", f, len(us), MaxHeaderUnits)
			}
			for _, u := range us {
				known[u] = true
			}
			units = append(units, us...)
		case strings.HasSuffix(f, ".S"):
			return nil, notLivepatchable("the fix changes assembly (%s), which livepatch cannot redirect", f)
		case strings.Contains(f, "Kconfig") || strings.Contains(f, "Makefile") || strings.HasPrefix(f, "Documentation/") || strings.HasPrefix(f, "tools/"):
			log.Info("ignoring a file that is not kernel code", "file", f)
		default:
			return nil, notLivepatchable("the fix changes %s, which is not C source", f)
		}
	}
	units = uniq(units)
	if len(units) == 0 && len(unread) > 0 {
		return nil, fmt.Errorf("%w: no unit of this kernel's build reads %s", ErrNotCompiled, strings.Join(unread, ", "))
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: the fix changes no C source", ErrNoChange)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	log.Info("compiling before the fix", "units", units)
	var befores []*elfobj.File
	var kept []string
	// One make for all units is much cheaper than one each (kbuild's own
	// start-up costs seconds); only when it fails are units tried alone to
	// find the ones this configuration does not build.
	batch, batchErr := k.Tree.CompileUnfixed(ctx, ktree.SectionFlags, units...)
	for i, unit := range units {
		var paths []string
		var err error
		if batchErr == nil {
			paths = batch[i : i+1]
		} else {
			paths, err = k.Tree.CompileUnfixed(ctx, ktree.SectionFlags, unit)
		}
		if err != nil {
			if optional[unit] {
				log.Info("skipping a unit this configuration does not build", "unit", unit)
				continue
			}
			// The exact source with the kernel's own config and compiler
			// built every unit the kernel has: one that does not build is
			// not configured.
			return nil, fmt.Errorf("%w: %s does not compile with this kernel's configuration (its code is configured out): %v", ErrNotCompiled, unit, err)
		}
		obj, err := elfobj.OpenFile(paths[0])
		if err != nil {
			return nil, err
		}
		befores = append(befores, obj)
		kept = append(kept, unit)
	}
	units = kept
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: no unit that includes the changed files is built", ErrNotCompiled)
	}
	// Which running object each unit belongs to, before spending a
	// second compile on code this kernel does not build.
	objs := make([]string, len(units))
	blocks := make([]int, len(units))
	tables := make([]*SymbolTable, len(units))
	for i, unit := range units {
		obj, err := k.Tree.UnitModule(unit)
		if err != nil {
			return nil, err
		}
		if obj == "" {
			obj = "vmlinux"
		}
		st, err := k.Symbols(obj)
		if err != nil {
			if optional[unit] {
				continue
			}
			return res, fmt.Errorf("%w: %s: %v", ErrNotCompiled, unit, err)
		}
		locals := localNames(befores[i])
		block, score := st.FileBlock(filepath.Base(strings.TrimSuffix(unit, ".o")+".c"), locals)
		// Locals that never reach the final symbol table (e.g. the
		// __UNIQUE_ID_ of an EXPORT_SYMBOL) can defeat the file-block
		// guess; a unit the real build profile places in vmlinux is there.
		if obj == "vmlinux" && len(locals) > 0 && score <= 0 && !known[unit] {
			if optional[unit] {
				continue
			}
			return res, fmt.Errorf("%w: %s is not part of the running vmlinux", ErrNotCompiled, unit)
		}
		objs[i], blocks[i], tables[i] = obj, block, st
	}
	n := 0
	for i := range units {
		if objs[i] == "" {
			continue // an includer this kernel does not build
		}
		units[n], befores[n], objs[n], blocks[n], tables[n] = units[i], befores[i], objs[i], blocks[i], tables[i]
		n++
	}
	units, befores, objs, blocks, tables = units[:n], befores[:n], objs[:n], blocks[:n], tables[:n]
	if n == 0 {
		return res, fmt.Errorf("%w: no unit that includes the changed files is part of this kernel", ErrNotCompiled)
	}
	// Beside the tree: hard links need the same file system.
	ws, err := k.Tree.Workspace(ctx, filepath.Dir(k.Tree.Dir))
	if err != nil {
		return nil, err
	}
	defer ws.Remove()
	for _, f := range o.Fixes {
		if _, err := ws.Apply(ctx, f.Diff); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	log.Info("compiling after the fix", "units", units)
	afterPaths, err := ws.Compile(ctx, ktree.SectionFlags, units...)
	if err != nil {
		// The same units built before the fix, so compiler errors now are
		// the fix's: most often it needs a change it does not carry.
		if msgs := compilerErrors(err.Error()); len(msgs) > 0 {
			return nil, fmt.Errorf("%w: %s (the fix needs declarations or changes it does not carry, such as a header change from a prerequisite commit; add that change as another --fix)", ErrFixDoesNotCompile, strings.Join(msgs, "; "))
		}
		return nil, fmt.Errorf("compile the fixed units: %w", err)
	}
	afters := make([]*elfobj.File, len(units))
	changes := make([]*elfobj.Changes, len(units))
	// provided are the global functions the fix adds in one unit: another
	// unit of the same patch may call them, and the module links the two.
	provided := map[string]bool{}
	for i, unit := range units {
		if afters[i], err = elfobj.OpenFile(afterPaths[i]); err != nil {
			return nil, err
		}
		if changes[i], err = elfobj.Diff(befores[i], afters[i]); err != nil {
			return nil, fmt.Errorf("compare %s: %w", unit, err)
		}
		for _, f := range changes[i].New {
			if f.Sym.Bind == elf.STB_GLOBAL {
				provided[f.Name] = true
			}
		}
	}
	var extracted []*Extracted
	for i, unit := range units {
		after, ch := afters[i], changes[i]
		obj := objs[i]
		ur := UnitResult{Unit: unit, Object: obj}
		for _, c := range ch.Changed {
			ur.Changed = append(ur.Changed, c.Name)
		}
		for _, f := range ch.New {
			ur.New = append(ur.New, f.Name)
		}
		for _, c := range ch.LineOnly {
			ur.LineOnly = append(ur.LineOnly, c.Name)
		}
		res.Units = append(res.Units, ur)
		if len(ch.Changed) == 0 && len(ch.New) == 0 && len(ch.ChangedData) == 0 {
			continue
		}
		st, block := tables[i], blocks[i]
		unitLocals := map[string]bool{}
		for _, sym := range befores[i].Symbols {
			if sym.Bind == elf.STB_LOCAL && sym.Name != "" && (sym.Type == elf.STT_FUNC || sym.Type == elf.STT_OBJECT) {
				unitLocals[sym.Name] = true
			}
		}
		ex, err := Extract(after, ch, Target{Object: obj, Symbols: st, Block: block, Locals: unitLocals, Provided: provided}, k.Exports)
		if err != nil {
			return res, fmt.Errorf("%s: %w", unit, err)
		}
		last := &res.Units[len(res.Units)-1]
		last.Funcs, last.Warnings = ex.Funcs, ex.Warnings
		for _, r := range ex.Klp {
			last.KlpSymbols = append(last.KlpSymbols, fmt.Sprintf("%s:%s,%d", r.Object, r.Name, r.Sympos))
		}
		last.KlpSymbols = uniq(last.KlpSymbols)
		extracted = append(extracted, ex)
	}
	if len(extracted) == 0 {
		return res, fmt.Errorf("%w: the compiled code is the same before and after the fix (comments, line numbers or code not built)", ErrNoChange)
	}
	var redirect, carried []string
	for _, ex := range extracted {
		for _, f := range ex.Funcs {
			if f.New {
				carried = append(carried, f.Name)
			} else {
				redirect = append(redirect, f.Name)
			}
		}
	}
	if len(redirect) == 0 {
		return res, notLivepatchable("no changed function can be redirected: %s have no ftrace entry in the running kernel (or are not symbols of it), and neither do their callers in the patched units (kernel/trace/, for one, is built without ftrace)", strings.Join(uniq(carried), ", "))
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return res, err
	}
	var names []string
	for _, f := range o.Fixes {
		names = append(names, f.Name)
	}
	log.Info("building the livepatch module", "name", o.Name)
	if err := BuildModule(ctx, ModuleOptions{Name: o.Name, Replace: o.Replace, HeadersDir: k.HeadersDir, CC: k.Tree.CC, WorkDir: work, Out: out},
		extracted, "TuxTape livepatch: "+strings.Join(names, ", ")); err != nil {
		return res, err
	}
	for i := range res.Units {
		for j := range res.Units[i].Funcs {
			res.Units[i].Funcs[j].NewSym = ""
		}
	}
	res.Module = out
	res.Duration = time.Since(start)
	return res, nil
}

// MaxHeaderUnits bounds how many units a header change may make the
// generator compile twice and compare: each costs seconds.
const MaxHeaderUnits = 40

// profileUnits lists the C units of the kernel's build that compile or
// read file, as objects (fs/ext4/inode.o); assembly units are left out,
// since a change there cannot be livepatched anyway and headers they read
// carry only macros.
func profileUnits(ix *profile.Index, file string) []string {
	var out []string
	for _, u := range ix.Units(file) {
		if !strings.HasSuffix(u.Source, ".c") {
			continue
		}
		if u.Built != "" {
			out = append(out, u.Built) // built by another directory's Makefile
		} else {
			out = append(out, u.Object)
		}
	}
	return uniq(out)
}

// compileUnits finds the objects a changed .c file is compiled into: its
// own, unless its directory's Makefile never names it and a sibling .c
// #includes it (kernel/locking/rtmutex.c lives inside rtmutex_api.o).
// Without a full build's dependency data this looks one directory deep.
func compileUnits(tree, file string) ([]string, error) {
	dir, base := filepath.Split(file)
	obj := strings.TrimSuffix(base, ".c") + ".o"
	mk, _ := os.ReadFile(filepath.Join(tree, dir, "Makefile"))
	if strings.Contains(string(mk), obj) {
		return []string{strings.TrimSuffix(file, ".c") + ".o"}, nil
	}
	siblings, err := filepath.Glob(filepath.Join(tree, dir, "*.c"))
	if err != nil {
		return nil, err
	}
	var units []string
	needle := []byte(`#include "` + base + `"`)
	for _, sib := range siblings {
		data, err := os.ReadFile(sib)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, needle) {
			units = append(units, filepath.Join(dir, strings.TrimSuffix(filepath.Base(sib), ".c")+".o"))
		}
	}
	if len(units) == 0 {
		units = []string{strings.TrimSuffix(file, ".c") + ".o"}
	}
	return units, nil
}

func localNames(f *elfobj.File) []string {
	var names []string
	for _, s := range f.Symbols {
		if s.Bind == elf.STB_LOCAL && (s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT) && !strings.Contains(s.Name, ".") {
			names = append(names, s.Name)
		}
	}
	return names
}

func uniq(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// ErrNotCompiled means the fix changes code this kernel does not build.
var ErrNotCompiled = errors.New("not compiled in this kernel")

// ErrFixDoesNotCompile means the unfixed units compile and the fixed ones
// do not: the fix is incomplete for this kernel.
var ErrFixDoesNotCompile = errors.New("the fix does not compile against this kernel's source")

var compilerError = regexp.MustCompile(`(?m)^([^\s:]+\.[ch]):(\d+):\d+: error: (.*)$`)

// compilerErrors picks the distinct compiler errors (at most three) out of
// make's output, as "file:line: message".
func compilerErrors(out string) []string {
	var msgs []string
	seen := map[string]bool{}
	for _, m := range compilerError.FindAllStringSubmatch(out, -1) {
		msg := m[1] + ":" + m[2] + ": " + m[3]
		if seen[m[3]] {
			continue
		}
		seen[m[3]] = true
		if msgs = append(msgs, msg); len(msgs) == 3 {
			break
		}
	}
	return msgs
}

// IsNotLivepatchable reports whether err says a fix cannot be livepatched.
func IsNotLivepatchable(err error) bool { return errors.Is(err, ErrNotLivepatchable) }
