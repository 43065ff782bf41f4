// Package klp turns kernel fixes into livepatch modules: it compiles only
// the compile units a fix changes, before and after, compares the objects
// function by function, lifts the changed functions out, and builds a
// module with the upstream livepatch API around them, with the livepatch
// relocations (Documentation/livepatch/module-elf-format.rst) written into
// the final .ko.
package klp

import (
	"cmp"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/elfobj"
	"github.com/tuxtape/tuxtape/internal/build/kbuild"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// Kernel is a target kernel ready for the generator: its prepared source,
// its headers, symbols and modules, and its build profile.
type Kernel struct {
	Tree       *ktree.Tree // prepared source
	HeadersDir string      // build tree for external modules
	Vmlinux    string      // vmlinux with its full symbol table (Debian: the -dbg package's)
	ModulesDir string      // /lib/modules/<release> of the target
	Exports    Exports     // Module.symvers
	Namespaces Namespaces  // and its namespaced exports
	// Profile is the kernel's build profile: which units compile each
	// .c file and, for a real build's profile, which read each header.
	// Without one, the generator evaluates the tree's Kbuild Makefiles
	// against its .config (a static profile, computed once).
	Profile *profile.Index

	mu      sync.Mutex
	symtabs map[string]*SymbolTable
	static  *profile.Index
}

// BuildProfile is the profile the generator decides with: Profile, or the
// static one it evaluates from the tree (once).
func (k *Kernel) BuildProfile(ctx context.Context) (*profile.Index, error) { return k.units(ctx) }

// units is the profile the generator finds compile units in.
func (k *Kernel) units(ctx context.Context) (*profile.Index, error) {
	if k.Profile != nil {
		return k.Profile, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.static != nil {
		return k.static, nil
	}
	cfg, err := kconfig.ReadConfig(filepath.Join(k.Tree.Dir, ".config"))
	if err != nil {
		return nil, fmt.Errorf("static build profile: %w", err)
	}
	p, err := kbuild.Static(ctx, k.Tree.Dir, cfg, kbuild.StaticOptions{Headers: true})
	if err != nil {
		return nil, fmt.Errorf("static build profile: %w", err)
	}
	k.static = profile.NewIndex(p)
	return k.static, nil
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

// Options for one patch build.
type Options struct {
	Fixes   []Fix
	Name    string
	Replace bool
	// AllowInitChanges builds the runtime part of a fix that also
	// changes __init/__exit code, and records what was left out
	// (UnitResult.LeftOut); by default such a fix is refused.
	AllowInitChanges bool
	// Sequential compiles the units after the fix only once the unfixed
	// compile is done, never side by side (to compare the two, say).
	Sequential bool
	WorkDir    string // scratch space; a temporary directory when empty
	Out        string
	Log        *slog.Logger
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
	// LeftOut is what of the fix the patch does not carry
	// (Options.AllowInitChanges), for a reviewer.
	LeftOut []string `json:"left_out,omitempty"`
	// Callers are functions the patch replaces only because they call a
	// changed function livepatch cannot redirect, each with what it calls.
	Callers []string `json:"callers,omitempty"`
	// Repointed are the pointers in existing data the patch's callbacks
	// repoint, for a reviewer.
	Repointed []SlotSwap `json:"repointed,omitempty"`
}

// Result is what a build made.
type Result struct {
	Module   string        `json:"module,omitempty"`
	Units    []UnitResult  `json:"units"`
	Duration time.Duration `json:"duration_ns"`
	Timing   Timing        `json:"timing"`
}

// Timing is where a build's time went. Before and After overlap when the
// two compiles run side by side.
type Timing struct {
	Before  time.Duration `json:"before_ns"`  // compiling the units as they are
	After   time.Duration `json:"after_ns"`   // copying the tree, applying the fixes, compiling
	Compare time.Duration `json:"compare_ns"` // diff and extraction
	Module  time.Duration `json:"module_ns"`  // kbuild of the module (link, modpost)
	Final   time.Duration `json:"final_ns"`   // writing the livepatch relocations, checking
}

// Build turns fixes into one livepatch module. A fix that does not become
// one is a *Refusal (errors.Is matches its class's sentinel); a cancelled
// or timed-out ctx returns ctx's error, never a verdict.
func Build(ctx context.Context, k *Kernel, o Options) (*Result, error) {
	res, err := build(ctx, k, o)
	if err != nil && ctx.Err() != nil {
		// Whatever failed, it failed because the build was stopped: a
		// compile killed half-way says nothing about the fix.
		return nil, fmt.Errorf("build livepatch: %w", ctx.Err())
	}
	return res, err
}

// unit is one compile unit on its way through a build; each phase of
// build is one method.
type unit struct {
	path string // the object kbuild builds (fs/ext4/inode.o)
	// optional units may not be built by this kernel (the profile counts
	// them in as "possibly"): they are dropped, not refused, if they fail.
	optional bool
	// known units are built by this kernel, as its build profile says.
	known bool
	// caller units are unchanged by the fix: they are in the patch for
	// their calls to changed functions livepatch cannot redirect.
	caller bool

	before, after *elfobj.File
	object        string       // the running object: vmlinux or a module
	symbols       *SymbolTable // its symbol table
	block         int          // the unit's STT_FILE block in symbols
	changes       *elfobj.Changes
	result        UnitResult
}

func build(ctx context.Context, k *Kernel, o Options) (*Result, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Name == "vmlinux" || k.ModulesDir != "" && k.hasModule(o.Name) {
		// modprobe of the target module would find the patch instead.
		return nil, fmt.Errorf("livepatch module name %q is the name of a module of this kernel: choose another (--name, or another output file name)", o.Name)
	}
	var all []byte
	for _, f := range o.Fixes {
		if len(strings.TrimSpace(string(f.Diff))) == 0 {
			return nil, refuse(refusal.BadFix, "", "fix %s is empty", f.Name)
		}
		if err := ktree.CheckPatchPaths(f.Diff, k.Tree.Dir); err != nil {
			return nil, &Refusal{Code: refusal.BadFix, Reason: fmt.Sprintf("fix %s: %v", f.Name, err)}
		}
		all = append(all, f.Diff...)
	}
	units, err := planUnits(ctx, k, uniq(ktree.PatchFiles(all)), log)
	if err != nil {
		return nil, err
	}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "tuxtape-klp-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	var tm Timing
	if units, err = compileBoth(ctx, k, units, o, log, &tm); err != nil {
		return &Result{Timing: tm}, err
	}
	compared := time.Now()
	// provided are the global functions the fix adds in one unit: another
	// unit of the same patch may call them, and the module links the two.
	provided := map[string]bool{}
	for _, u := range units {
		if err := u.diff(provided); err != nil {
			return nil, err
		}
	}
	res := &Result{Timing: tm}
	for _, u := range units {
		if err := u.checkResolved(k, provided); err != nil {
			return res, err
		}
	}
	var extracted []*Extracted
	reached := map[string]bool{}
	var callerTime time.Duration // compiling the callers of stranded functions
	for level := 0; ; level++ {
		res.Units, extracted = nil, nil
		var stranded []string
		for _, u := range units {
			ex, err := u.extract(k, provided, o.AllowInitChanges)
			res.Units = append(res.Units, u.result)
			if err != nil {
				return res, err
			}
			if ex != nil {
				extracted = append(extracted, ex)
				for _, n := range ex.Stranded {
					if !reached[n] {
						stranded = append(stranded, n)
					}
				}
			}
		}
		if len(stranded) == 0 {
			break
		}
		stranded = uniq(stranded)
		if level == maxCallerLevels {
			return res, refuse(refusal.CallersTooMany, stranded[0], "%s %s no ftrace entry, and neither do the callers %d levels up the call chain: a patch follows at most %d levels", strings.Join(stranded, ", "), plural(len(stranded), "has", "have"), level, maxCallerLevels)
		}
		t := time.Now()
		if units, err = reachCallers(ctx, k, units, stranded, reached, provided, log); err != nil {
			return res, err
		}
		callerTime += time.Since(t)
	}
	if len(extracted) == 0 {
		return res, refuse(refusal.NoChange, "", "the compiled code is the same before and after the fix (comments, line numbers or code not built)")
	}
	var redirect, carried []string
	for _, ex := range extracted {
		for _, sl := range ex.Slots {
			// The callbacks' repointing reaches the fix's code.
			redirect = append(redirect, sl.Data)
		}
		for _, f := range ex.Funcs {
			if f.New {
				carried = append(carried, f.Name)
			} else {
				redirect = append(redirect, f.Name)
			}
		}
	}
	if len(redirect) == 0 {
		return res, refuse(refusal.NothingRedirected, "", "no changed function can be redirected: %s have no ftrace entry in the running kernel (or are not symbols of it), and neither do their callers in the patched units (kernel/trace/, for one, is built without ftrace)", strings.Join(uniq(carried), ", "))
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return res, err
	}
	var names []string
	for _, f := range o.Fixes {
		names = append(names, f.Name)
	}
	tm.Before += callerTime
	tm.Compare = time.Since(compared) - callerTime
	res.Timing = tm
	log.Info("building the livepatch module", "name", o.Name)
	if err := BuildModule(ctx, ModuleOptions{Name: o.Name, Replace: o.Replace, HeadersDir: k.HeadersDir, CC: k.Tree.CC, WorkDir: work, Out: out, Timing: &res.Timing, Namespaces: k.Namespaces},
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

// compileBoth compiles the units before and after the fix and places
// them in the running kernel; it returns the units this kernel builds.
// When the profile knows every unit is built, the two compiles run side by
// side (each is mostly kbuild's single-threaded start-up); otherwise the
// unfixed compile first finds out which units exist, so that no second
// compile is spent on code this kernel does not build.
func compileBoth(ctx context.Context, k *Kernel, units []*unit, o Options, log *slog.Logger, tm *Timing) ([]*unit, error) {
	parallel := !o.Sequential
	for _, u := range units {
		parallel = parallel && u.known
	}
	var after chan error
	afterCtx, cancelAfter := context.WithCancel(ctx)
	defer cancelAfter()
	startAfter := func(units []*unit) {
		after = make(chan error, 1)
		go func() {
			t := time.Now()
			err := compileAfter(afterCtx, k, units, o.Fixes, log)
			tm.After = time.Since(t)
			after <- err
		}()
	}
	if parallel {
		startAfter(append([]*unit(nil), units...))
	}
	t := time.Now()
	log.Info("compiling before the fix", "units", unitPaths(units))
	units, err := compileBefore(ctx, k, units, log)
	if err == nil {
		units, err = placeUnits(k, units)
	}
	tm.Before = time.Since(t)
	if err != nil {
		// A verdict on what this kernel builds comes before anything the
		// fixed compile says.
		cancelAfter()
		if after != nil {
			<-after
		}
		return nil, err
	}
	if !parallel {
		startAfter(units)
	}
	if err := <-after; err != nil {
		return nil, err
	}
	return units, nil
}

// placeUnits finds the running object of each unit and drops the optional
// units this kernel does not have.
func placeUnits(k *Kernel, units []*unit) ([]*unit, error) {
	var kept []*unit
	for _, u := range units {
		ok, err := u.place(k)
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, u)
		}
	}
	if len(kept) == 0 {
		return nil, refuse(refusal.NotCompiled, "", "no unit that includes the changed files is part of this kernel")
	}
	return kept, nil
}

func unitPaths(units []*unit) []string {
	out := make([]string, len(units))
	for i, u := range units {
		out[i] = u.path
	}
	return out
}

// unitSet collects units by object path, in the order first added.
type unitSet struct {
	byPath map[string]*unit
	list   []*unit
}

// add returns the unit of pu, new (and optional) or already there.
func (s *unitSet) add(pu profile.Unit) *unit {
	path := cmp.Or(pu.Built, pu.Object) // Built: by another directory's Makefile
	u := s.byPath[path]
	if u == nil {
		if s.byPath == nil {
			s.byPath = map[string]*unit{}
		}
		u = &unit{path: path, optional: true}
		s.byPath[path] = u
		s.list = append(s.list, u)
	}
	return u
}

// planUnits finds the compile units of the kernel that compile or read
// the changed files, from its build profile, and refuses what no unit
// compare can handle.
func planUnits(ctx context.Context, k *Kernel, files []string, log *slog.Logger) ([]*unit, error) {
	ix, err := k.units(ctx)
	if err != nil {
		return nil, err
	}
	// Header fixes need the units that read the header: a real build's
	// profile has them, and so does a static one with its include graph.
	headers := ix.Profile().HeaderDeps()
	var set unitSet
	add := func(us []profile.Unit) {
		for _, pu := range us {
			if !strings.HasSuffix(pu.Source, ".c") {
				continue // assembly reads headers for their macros only
			}
			if u := set.add(pu); !pu.Possible {
				u.optional, u.known = false, true
			}
		}
	}
	var unread []string // headers no unit of this kernel reads
	for _, f := range files {
		switch {
		case strings.HasPrefix(f, "arch/") && !strings.HasPrefix(f, "arch/x86/"):
			return nil, refuse(refusal.OtherArch, "", "%s is for another architecture", f)
		case strings.HasSuffix(f, ".c"):
			us := ix.Units(f)
			if len(us) == 0 {
				// A file the tree does not have is not "configured out":
				// the fix was made for other source.
				if k.Tree != nil {
					if _, err := os.Stat(filepath.Join(k.Tree.Dir, f)); os.IsNotExist(err) {
						return nil, refuse(refusal.FixDoesNotApply, "", "the kernel source has no %s: the fix is for another tree or version", f)
					}
				}
				return nil, refuse(refusal.NotCompiled, "", "no unit of this kernel's build compiles or includes %s", f)
			}
			add(us)
		case strings.HasSuffix(f, ".h") && !headers:
			return nil, refuse(refusal.HeaderNeedsProfile, "", "the fix changes header %s: finding every unit that includes it needs a build profile with header dependencies (tuxtape kernel profile NAME --static --refresh makes one; tuxtape kernel build a real one)", f)
		case strings.HasSuffix(f, ".h"):
			us := ix.Units(f)
			if len(us) == 0 {
				log.Info("no unit of this kernel reads the header", "header", f)
				unread = append(unread, f)
				continue
			}
			if n := len(cUnits(us)); n > MaxHeaderUnits {
				return nil, refuse(refusal.HeaderTooWide, "", "the fix changes header %s, which %d compile units of this kernel read: comparing more than %d per patch is not supported", f, n, MaxHeaderUnits)
			}
			add(us)
		case strings.HasSuffix(f, ".S"):
			return nil, refuse(refusal.Assembly, "", "the fix changes assembly (%s), which livepatch cannot redirect", f)
		case strings.Contains(f, "Kconfig") || strings.Contains(f, "Makefile") || strings.HasPrefix(f, "Documentation/") || strings.HasPrefix(f, "tools/"):
			log.Info("ignoring a file that is not kernel code", "file", f)
		default:
			return nil, refuse(refusal.NotCSource, "", "the fix changes %s, which is not C source", f)
		}
	}
	units := set.list
	if len(units) == 0 && len(unread) > 0 {
		return nil, refuse(refusal.NotCompiled, "", "no unit of this kernel's build reads %s", strings.Join(unread, ", "))
	}
	if len(units) == 0 {
		return nil, refuse(refusal.NoChange, "", "the fix changes no C source")
	}
	slices.SortFunc(units, func(a, b *unit) int { return strings.Compare(a.path, b.path) })
	return units, nil
}

// cUnits are the distinct C objects among us.
func cUnits(us []profile.Unit) []string {
	var out []string
	for _, u := range us {
		if strings.HasSuffix(u.Source, ".c") {
			out = append(out, cmp.Or(u.Built, u.Object))
		}
	}
	return uniq(out)
}

// compileBefore compiles the units in the prepared tree and reads their
// objects. One make for all units is much cheaper than one each (kbuild's
// own start-up costs seconds); only when it fails are units tried alone,
// to find the ones this configuration does not build.
func compileBefore(ctx context.Context, k *Kernel, units []*unit, log *slog.Logger) ([]*unit, error) {
	batch, batchErr := k.Tree.CompileUnfixed(ctx, ktree.SectionFlags, unitPaths(units)...)
	if err := ctx.Err(); err != nil {
		return nil, err // not worth trying the units one by one
	}
	kept := units[:0]
	var skipped []string // optional units kbuild would not build, with its reason
	for i, u := range units {
		var paths []string
		var err error
		if batchErr == nil {
			paths = batch[i : i+1]
		} else {
			paths, err = k.Tree.CompileUnfixed(ctx, ktree.SectionFlags, u.path)
		}
		if errors.Is(err, ktree.ErrWorkspace) {
			return nil, err // the sandbox or workspace failed, not kbuild: no verdict on the unit
		}
		if err != nil {
			if u.optional {
				log.Info("skipping a unit this configuration does not build", "unit", u.path)
				skipped = append(skipped, u.path+": "+firstErrors(err.Error()))
				continue
			}
			// The exact source with the kernel's own config and compiler
			// built every unit the kernel has: one that does not build is
			// not configured.
			return nil, &Refusal{Code: refusal.NotCompiled, Unit: u.path, Reason: fmt.Sprintf("%s does not compile with this kernel's configuration (its code is configured out): %s", u.path, firstErrors(err.Error()))}
		}
		if u.before, err = elfobj.OpenFile(paths[0]); err != nil {
			return nil, err
		}
		kept = append(kept, u)
	}
	if len(kept) == 0 {
		// Only units the profile was unsure of, and kbuild built none.
		return nil, refuse(refusal.NotCompiled, "", "no unit that includes the changed files is built by this kernel's configuration (kbuild: %s)", strings.Join(skipped, "; "))
	}
	return kept, nil
}

// place finds the running object u belongs to, its symbol table and u's
// block in it; false: u is an optional unit this kernel does not have.
func (u *unit) place(k *Kernel) (bool, error) {
	obj, err := k.Tree.UnitModule(u.path)
	if err != nil {
		return false, err
	}
	obj = cmp.Or(obj, "vmlinux")
	st, err := k.Symbols(obj)
	if err != nil {
		if u.optional {
			return false, nil
		}
		return false, &Refusal{Code: refusal.NotCompiled, Unit: u.path, Object: obj, Reason: fmt.Sprintf("%s: %v", u.path, err)}
	}
	locals := localNames(u.before)
	block, score := st.FileBlock(filepath.Base(strings.TrimSuffix(u.path, ".o")+".c"), locals)
	// Locals that never reach the final symbol table (e.g. the
	// __UNIQUE_ID_ of an EXPORT_SYMBOL) can defeat the file-block guess;
	// a unit the build profile places in the kernel is there.
	if obj == "vmlinux" && len(locals) > 0 && score <= 0 && !u.known {
		if u.optional {
			return false, nil
		}
		return false, &Refusal{Code: refusal.NotCompiled, Unit: u.path, Object: obj, Reason: fmt.Sprintf("%s is not part of the running vmlinux", u.path)}
	}
	u.object, u.block, u.symbols = obj, block, st
	return true, nil
}

// compileAfter applies the fixes to a copy of the tree and compiles the
// units there.
func compileAfter(ctx context.Context, k *Kernel, units []*unit, fixes []Fix, log *slog.Logger) error {
	// Beside the tree: hard links need the same file system.
	ws, err := k.Tree.Workspace(ctx, filepath.Dir(k.Tree.Dir))
	if err != nil {
		return err
	}
	defer ws.Remove()
	for _, f := range fixes {
		if _, err := ws.Apply(ctx, f.Diff); err != nil {
			return &Refusal{Code: refusal.FixDoesNotApply, Reason: fmt.Sprintf("%s: %v", f.Name, err)}
		}
	}
	log.Info("compiling after the fix", "units", unitPaths(units))
	paths, err := ws.Compile(ctx, ktree.SectionFlags, unitPaths(units)...)
	if err != nil {
		// The same units built before the fix, so compiler errors now are
		// the fix's: most often it needs a change it does not carry.
		if msgs := compilerErrors(err.Error(), maxRefusalErrors); len(msgs) > 0 {
			r := refuse(refusal.FixDoesNotCompile, "", "%s (the fix needs declarations or changes it does not carry, such as a header change from a prerequisite commit; add that change as another --fix)", strings.Join(msgs[:min(3, len(msgs))], "; "))
			r.Errors = msgs
			return r
		}
		return &Refusal{Code: refusal.BuildFailed, Unit: strings.Join(unitPaths(units), " "),
			Reason: fmt.Sprintf("compiling %s after the fix failed: %s", strings.Join(unitPaths(units), ", "), firstErrors(err.Error()))}
	}
	for i, u := range units {
		if u.after, err = elfobj.OpenFile(paths[i]); err != nil {
			return err
		}
	}
	return nil
}

// diff compares u's objects function by function and records the global
// functions the fix adds in provided.
func (u *unit) diff(provided map[string]bool) error {
	ch, err := elfobj.Diff(u.before, u.after)
	if err != nil {
		return fmt.Errorf("compare %s: %w", u.path, err)
	}
	u.changes = ch
	for _, f := range ch.New {
		if f.Sym.Bind == elf.STB_GLOBAL {
			provided[f.Name] = true
		}
	}
	u.result = UnitResult{Unit: u.path, Object: u.object}
	for _, c := range ch.Changed {
		u.result.Changed = append(u.result.Changed, c.Name)
	}
	for _, f := range ch.New {
		u.result.New = append(u.result.New, f.Name)
	}
	for _, c := range ch.LineOnly {
		u.result.LineOnly = append(u.result.LineOnly, c.Name)
	}
	return nil
}

// checkResolved refuses a fix whose code refers to a symbol nothing in
// this kernel has: not the unit's running object, not vmlinux, no export
// and no other unit of the patch. The unfixed unit did not refer to it, so
// the fix needs a change it does not carry (another file's, or its
// assembly part): a full build would fail to link.
func (u *unit) checkResolved(k *Kernel, provided map[string]bool) error {
	before := map[string]bool{}
	for _, s := range u.before.Symbols {
		if s.Section == nil && s.Shndx == elf.SHN_UNDEF {
			before[s.Name] = true
		}
	}
	var missing []string
	for _, s := range u.after.Symbols {
		if s.Name == "" || s.Section != nil || s.Shndx != elf.SHN_UNDEF || s.Bind == elf.STB_WEAK || before[s.Name] {
			continue
		}
		if provided[s.Name] || u.symbols.Has(s.Name) || k.Exports[s.Name] != "" {
			continue
		}
		if u.object != "vmlinux" {
			if st, err := k.Symbols("vmlinux"); err != nil || st.Has(s.Name) {
				continue // the extraction decides on an unexported vmlinux symbol
			}
		}
		missing = append(missing, s.Name)
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	r := refuse(refusal.FixDoesNotCompile, "", "the fixed %s refers to %s, which nothing in this kernel defines or exports: the fix needs a change it does not carry (a prerequisite commit, or its assembly part); add that change as another --fix", u.path, strings.Join(missing, ", "))
	r.Unit, r.Object = u.path, u.object
	for _, m := range missing {
		r.Errors = append(r.Errors, fmt.Sprintf("%s: undefined reference to %s", u.path, m))
	}
	return r
}

// extract lifts u's changed functions into a patch object; nil when the
// fix changed nothing in u.
func (u *unit) extract(k *Kernel, provided map[string]bool, allowInit bool) (*Extracted, error) {
	ch := u.changes
	if len(ch.Changed) == 0 && len(ch.New) == 0 && len(ch.ChangedData) == 0 {
		return nil, nil
	}
	locals := map[string]bool{}
	for _, sym := range u.before.Symbols {
		if sym.Bind == elf.STB_LOCAL && sym.Name != "" && (sym.Type == elf.STT_FUNC || sym.Type == elf.STT_OBJECT) {
			locals[sym.Name] = true
		}
	}
	ex, err := Extract(u.after, ch, Target{Object: u.object, Symbols: u.symbols, Block: u.block, Locals: locals, Provided: provided, AllowInit: allowInit}, k.Exports)
	if err != nil {
		return nil, withUnit(err, u)
	}
	u.result.Funcs, u.result.Warnings, u.result.LeftOut = ex.Funcs, ex.Warnings, ex.LeftOut
	u.result.Repointed = ex.Slots
	u.result.KlpSymbols = nil
	for _, r := range ex.Klp {
		u.result.KlpSymbols = append(u.result.KlpSymbols, fmt.Sprintf("%s:%s,%d", cmp.Or(r.SymObject, r.Object), r.Name, r.Sympos))
	}
	u.result.KlpSymbols = uniq(u.result.KlpSymbols)
	return ex, nil
}

// withUnit places a refusal in u and prefixes the error with u's path.
func withUnit(err error, u *unit) error {
	if r, ok := AsRefusal(err); ok {
		r.Unit, r.Object = cmp.Or(r.Unit, u.path), cmp.Or(r.Object, u.object)
	}
	return fmt.Errorf("%s: %w", u.path, err)
}

// MaxHeaderUnits bounds how many units a header change may make the
// generator compile twice and compare: each costs seconds.
const MaxHeaderUnits = 40

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

var compilerError = regexp.MustCompile(`(?m)^([^\s:]+\.[ch]):(\d+):\d+: (?:fatal )?error: (.*)$`)

// maxRefusalErrors bounds the compiler errors a refusal carries.
const maxRefusalErrors = 50

// compilerErrors picks the distinct compiler errors (at most n) out of
// make's output, as "file:line: message".
func compilerErrors(out string, n int) []string {
	var msgs []string
	seen := map[string]bool{}
	for _, m := range compilerError.FindAllStringSubmatch(out, -1) {
		msg := m[1] + ":" + m[2] + ": " + m[3]
		if seen[m[3]] {
			continue
		}
		seen[m[3]] = true
		if msgs = append(msgs, msg); len(msgs) == n {
			break
		}
	}
	return msgs
}

// firstErrors picks what a failed make says went wrong: the compiler's
// errors, else its lines that say "error", else its last lines.
func firstErrors(out string) string {
	if msgs := compilerErrors(out, 3); len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	var picked []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.ToLower(l), "error") && !strings.HasPrefix(strings.TrimSpace(l), "make") {
			if picked = append(picked, strings.TrimSpace(l)); len(picked) == 3 {
				break
			}
		}
	}
	if len(picked) > 0 {
		return strings.Join(picked, "; ")
	}
	return cmdout.TailLine(out, 5)
}
