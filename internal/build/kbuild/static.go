package kbuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// StaticOptions tune Static.
type StaticOptions struct {
	// Arch is the kernel's ARCH. Empty means x86_64 for a 64-bit config
	// and i386 for a 32-bit one.
	Arch string
	// Jobs bounds how many directories are evaluated at once; 0 means
	// GOMAXPROCS.
	Jobs int
	// AllowVersionMismatch evaluates a config whose header names another
	// kernel version (major.minor) than the tree's Makefile.
	AllowVersionMismatch bool
	// Headers fills Deps with every file of the tree the units may read:
	// the #include lines of each unit's source and, transitively, of the
	// headers they include, resolved on the include path of the unit's
	// compile line (see static_headers.go), and sets Profile.Headers.
	// Without it Deps holds only #included .c files.
	Headers bool
}

// ErrConfigMismatch is wrapped by Static's error for a config made for
// another kernel or architecture than the source tree.
var ErrConfigMismatch = errors.New("config is for another kernel")

// Static evaluates the Kbuild makefiles of the kernel source tree in srcDir
// for cfg and returns the profile of what a build would compile: each
// source file linked into vmlinux or into a module (Target is the module's
// name as the kernel knows it: the obj-m object's base name with - turned
// into _). Constructs it cannot decide are listed in Warnings and the
// objects they affect are counted in with Possible set; objects whose
// source is generated during the build are left out with a warning. Deps
// holds the .c files that compiled .c files #include (unless a config
// test of the preprocessor rules the #include out), and the files that
// shipped or ASN.1-generated sources come from; with opts.Headers, every
// header the units may include as well.
//
// It follows the Kbuild of Linux 6.1 and later, where the top-level Kbuild
// file descends into every directory.
func Static(ctx context.Context, srcDir string, cfg kconfig.Config, opts StaticOptions) (*profile.Profile, error) {
	root, err := filepath.Abs(srcDir)
	if err != nil {
		return nil, fmt.Errorf("kernel source %s: %w", srcDir, err)
	}
	if _, err := os.Stat(filepath.Join(root, "Kbuild")); err != nil {
		return nil, fmt.Errorf("kernel source %s: no top-level Kbuild (Linux 6.1 or later expected): %w", srcDir, err)
	}
	ver, err := treeVersion(root)
	if err != nil {
		return nil, err
	}
	arch := opts.Arch
	if arch == "" {
		arch = "i386"
		if cfg.Values["CONFIG_64BIT"] == "y" {
			arch = "x86_64"
		}
	}
	srcarch := arch
	switch arch {
	case "i386", "x86_64":
		srcarch = "x86"
	}
	// The header names SRCARCH ("x86"), or ARCH when the config was made
	// with ARCH=x86_64 or ARCH=i386.
	cfgArch := cfg.Arch
	if cfgArch == "x86_64" || cfgArch == "i386" {
		cfgArch = "x86"
	}
	if cfgArch != "" && cfgArch != srcarch {
		return nil, fmt.Errorf("%w: the config is for %s, evaluating %s", ErrConfigMismatch, cfg.Arch, srcarch)
	}
	if !opts.AllowVersionMismatch && cfg.Version != "" && majorMinor(cfg.Version) != majorMinor(ver.release) {
		return nil, fmt.Errorf("%w: the config is for Linux %s, the source is %s", ErrConfigMismatch, cfg.Version, ver.release)
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	e := &staticEval{
		ctx:      ctx,
		root:     root,
		cfg:      cfg,
		jobs:     jobs,
		warnings: make(map[string]bool),
		taints:   make(map[string][]string),
		rust:     cfg.Values["CONFIG_RUST"] == "y",
		srcarch:  srcarch,
		headers:  opts.Headers,
	}
	e.global = e.baseVars(arch, srcarch, ver)
	if err := e.archSetup(srcarch); err != nil {
		return nil, err
	}
	units, err := e.walk()
	if err != nil {
		return nil, err
	}
	p := &profile.Profile{Kind: profile.KindStatic, Units: units}
	p.Sort()
	if opts.Headers {
		if err := e.scanHeaders(p); err != nil {
			return nil, err
		}
	} else if err := e.scanIncludes(p); err != nil {
		return nil, err
	}
	e.flushTaints()
	for w := range e.warnings {
		p.Warnings = append(p.Warnings, w)
	}
	slices.Sort(p.Warnings)
	return p, nil
}

type treeVer struct{ version, patchlevel, sublevel, extra, release string }

// treeVersion reads VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION from the
// head of the top-level Makefile.
func treeVersion(root string) (treeVer, error) {
	f, err := os.Open(filepath.Join(root, "Makefile"))
	if err != nil {
		return treeVer{}, fmt.Errorf("kernel source: %w", err)
	}
	defer f.Close()
	var v treeVer
	sc := bufio.NewScanner(f)
	for n := 0; sc.Scan() && n < 20; n++ {
		name, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(name) {
		case "VERSION":
			v.version = val
		case "PATCHLEVEL":
			v.patchlevel = val
		case "SUBLEVEL":
			v.sublevel = val
		case "EXTRAVERSION":
			v.extra = val
		}
	}
	if err := sc.Err(); err != nil {
		return treeVer{}, fmt.Errorf("kernel source Makefile: %w", err)
	}
	if v.version == "" || v.patchlevel == "" {
		return treeVer{}, fmt.Errorf("kernel source: %s has no VERSION/PATCHLEVEL: not a kernel tree", filepath.Join(root, "Makefile"))
	}
	v.release = v.version + "." + v.patchlevel
	if v.sublevel != "" {
		v.release += "." + v.sublevel
	}
	v.release += v.extra
	return v, nil
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
}

// staticEval is the state shared by all directories of one evaluation.
type staticEval struct {
	ctx  context.Context
	root string // absolute
	cfg  kconfig.Config
	jobs int
	rust bool

	srcarch string
	headers bool // record each unit's include flags in unitFlags

	global  map[string]*mkVar // read-only once archSetup is done
	libDirs map[string]bool   // libs-y: their lib.a is linked into vmlinux
	headY   []mkWord          // head-y of older arch Makefiles

	files onceMap[string, *mkFile]
	dirs  onceMap[string, map[string]bool]

	mu       sync.Mutex
	warnings map[string]bool
	// taints maps each uncertainty to the objects it made Possible.
	taints map[string][]string
	// unitFlags are the include flags of each object's compile line.
	unitFlags map[string]*unitFlags
}

func (e *staticEval) cancelled() bool { return e.ctx.Err() != nil }

func (e *staticEval) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	e.mu.Lock()
	e.warnings[w] = true
	e.mu.Unlock()
}

// fsPath turns a path as a Makefile names it (relative to the top of the
// tree, Make's working directory) into a file system path.
func (e *staticEval) fsPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(e.root, filepath.FromSlash(p))
}

// rel turns a file system path back into a tree-relative one.
func (e *staticEval) rel(p string) string {
	if r, err := filepath.Rel(e.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return p
}

// parsed returns the parsed makefile at p, reading each file once.
func (e *staticEval) parsed(p string) (*mkFile, error) {
	fp := e.fsPath(p)
	return e.files.get(fp, func() (*mkFile, error) {
		data, err := os.ReadFile(fp)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				err = errors.New("no such file")
			}
			return nil, err
		}
		f := parseMakefile(e.rel(fp), string(data))
		for _, m := range f.errs {
			e.warn("%s", m)
		}
		return f, nil
	})
}

// exists reports whether the tree-relative file p exists, listing each
// directory once.
func (e *staticEval) exists(p string) bool {
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	names, _ := e.dirs.get(dir, func() (map[string]bool, error) {
		names := make(map[string]bool)
		ents, err := os.ReadDir(e.fsPath(orDotDir(dir)))
		if err != nil {
			return names, nil // a missing directory has no files
		}
		for _, ent := range ents {
			names[ent.Name()] = true
		}
		return names, nil
	})
	return names[name]
}

func orDotDir(d string) string {
	if d == "" {
		return "."
	}
	return d
}

// baseVars are the variables every Kbuild directory sees: the config
// (include/config/auto.conf), what the top-level Makefile exports, and
// the helpers of scripts/Kbuild.include.
func (e *staticEval) baseVars(arch, srcarch string, v treeVer) map[string]*mkVar {
	g := make(map[string]*mkVar, len(e.cfg.Values)+64)
	set := func(name, value string, origin mkOrigin) {
		g[name] = &mkVar{segs: []mkSeg{{text: value}}, origin: origin}
	}
	for k, val := range e.cfg.Values {
		// include/config/auto.conf, which Make reads, has string values
		// unquoted since Linux 5.18, and no line for an empty string.
		if strings.HasPrefix(val, `"`) {
			val = kconfig.Unquote(val)
			if val == "" {
				continue
			}
		}
		set(k, val, originFile)
	}
	env := map[string]string{
		"srctree": ".", "objtree": ".", "VPATH": "", "building_out_of_srctree": "",
		"ARCH": arch, "SRCARCH": srcarch, "SUBARCH": srcarch,
		"KBUILD_BUILTIN": "1", "KBUILD_EXTMOD": "", "KBUILD_CHECKSRC": "0",
		"VERSION": v.version, "PATCHLEVEL": v.patchlevel, "SUBLEVEL": v.sublevel, "EXTRAVERSION": v.extra,
		"CC": "gcc", "LD": "ld", "AR": "ar", "NM": "nm", "OBJCOPY": "objcopy", "OBJDUMP": "objdump",
		"CPP": "gcc -E", "CONFIG_SHELL": "sh", "MAKE": "make", "PERL": "perl", "PYTHON3": "python3",
		"AWK": "awk", "quiet": "quiet_", "Q": "@", "KBUILD_VERBOSE": "0",
	}
	if e.cfg.Values["CONFIG_MODULES"] == "y" {
		env["KBUILD_MODULES"] = "1"
	}
	for k, val := range env {
		set(k, val, originEnv)
	}
	for k, val := range map[string]string{
		"comma": ",", "quote": `"`, "squote": "'", "empty": "", "space": " ", "pound": "#",
		"space_escape": "_-_SPACE_-_",
		"build":        "-f ./scripts/Makefile.build obj", "clean": "-f ./scripts/Makefile.clean obj",
	} {
		set(k, val, originFile)
	}
	return g
}

// archSetup evaluates arch/$(SRCARCH)/Makefile the way the top-level
// Makefile includes it, to learn core-y, libs-y and drivers-y (which the
// top-level Kbuild descends into as ARCH_CORE, ARCH_LIB, ARCH_DRIVERS) and
// the variables it exports (BITS).
func (e *staticEval) archSetup(srcarch string) error {
	r := newRun(e, e.global)
	r.file, r.line = "Makefile", 0
	r.setSimple("core-y", "", originFile)
	r.setSimple("drivers-y", "", originFile)
	r.setSimple("libs-y", "lib/", originFile)
	archMk := "arch/" + srcarch + "/Makefile"
	if _, err := e.parsed(archMk); err != nil {
		return fmt.Errorf("kernel source: %s: %w", archMk, err)
	}
	r.include(archMk, false)
	if err := e.ctx.Err(); err != nil {
		return err
	}
	g := make(map[string]*mkVar, len(e.global)+8)
	for k, v := range e.global {
		g[k] = v
	}
	for name := range r.exported {
		if v, ok := r.local[name]; ok {
			g[name] = v
		}
	}
	list := func(name string, ws []mkWord) {
		v := &mkVar{origin: originEnv}
		for _, w := range ws {
			v.segs = append(v.segs, mkSeg{text: w.s, t: w.t})
		}
		g[name] = v
	}
	libs := r.words("libs-y")
	var libDirs []mkWord
	e.libDirs = make(map[string]bool)
	for _, w := range libs {
		if strings.HasSuffix(w.s, "/") {
			libDirs = append(libDirs, w)
			e.libDirs[path.Clean(w.s)] = true
		}
	}
	list("ARCH_CORE", r.words("core-y"))
	list("ARCH_LIB", libDirs)
	list("ARCH_DRIVERS", append(r.words("drivers-y"), r.words("drivers-m")...))
	e.headY = r.words("head-y")
	e.global = g
	return nil
}

// dirVisit is one run of scripts/Makefile.build in a directory.
type dirVisit struct {
	dir      string
	builtin  bool // need-builtin: obj-y objects are linked into vmlinux
	modorder bool // need-modorder: obj-m objects become modules
	t        *taint
	// ccflags and asflags are the include flags of subdir-ccflags-y and
	// subdir-asflags-y of the directories above (KBUILD_CFLAGS and
	// KBUILD_AFLAGS, which the sub-make inherits).
	ccflags, asflags []string
}

type visitKey struct {
	dir               string
	builtin, modorder bool
	possible          bool
}

// walk evaluates the directory tree from the top-level Kbuild down.
func (e *staticEval) walk() ([]profile.Unit, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		seen  = make(map[visitKey]bool)
		units = make(map[[2]string]profile.Unit)
		sem   = make(chan struct{}, e.jobs)
	)
	var start func(v dirVisit)
	start = func(v dirVisit) {
		k := visitKey{v.dir, v.builtin, v.modorder, v.t != nil}
		mu.Lock()
		if seen[k] {
			mu.Unlock()
			return
		}
		seen[k] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			if e.cancelled() {
				<-sem
				return
			}
			us, children := e.evalDir(v)
			<-sem
			mu.Lock()
			for _, u := range us {
				key := [2]string{u.Object, u.Target}
				if old, ok := units[key]; ok && !old.Possible {
					continue
				}
				units[key] = u
			}
			mu.Unlock()
			for _, c := range children {
				start(c)
			}
		}()
	}
	start(dirVisit{dir: ".", builtin: true, modorder: e.cfg.Values["CONFIG_MODULES"] == "y"})
	wg.Wait()
	if err := e.ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]profile.Unit, 0, len(units))
	for _, u := range units {
		out = append(out, u)
	}
	return out, nil
}

// kbuildVarsInit are the variables scripts/Makefile.build empties before
// including a directory's Kbuild file.
var kbuildVarsInit = []string{
	"obj-y", "obj-m", "lib-y", "lib-m", "always-y", "always-m", "targets", "subdir-y", "subdir-m",
	"EXTRA_AFLAGS", "EXTRA_CFLAGS", "EXTRA_CPPFLAGS", "EXTRA_LDFLAGS", "asflags-y", "ccflags-y",
	"rustflags-y", "cppflags-y", "ldflags-y", "subdir-asflags-y", "subdir-ccflags-y",
}

// evalDir runs one directory's Kbuild file and returns the units it builds
// and the subdirectories to visit, following scripts/Makefile.build and
// scripts/Makefile.lib.
func (e *staticEval) evalDir(v dirVisit) ([]profile.Unit, []dirVisit) {
	r := newRun(e, e.global)
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return ""
	}
	r.setSimple("obj", v.dir, originCmdline)
	r.setSimple("need-builtin", flag(v.builtin), originCmdline)
	r.setSimple("need-modorder", flag(v.modorder), originCmdline)
	r.setSimple("src", v.dir, originFile)
	for _, n := range kbuildVarsInit {
		r.setSimple(n, "", originFile)
	}
	// The file named Kbuild has precedence over Makefile.
	kfile := path.Join(v.dir, "Kbuild")
	if !e.exists(kfile) {
		kfile = path.Join(v.dir, "Makefile")
		if !e.exists(kfile) {
			e.warn("%s: directory to descend into has no Kbuild or Makefile", v.dir)
			return nil, nil
		}
	}
	r.setSimple("kbuild-dir", "./"+v.dir, originFile)
	r.file, r.line = kfile, 0
	r.include(kfile, false)
	if e.cancelled() {
		return nil, nil
	}

	objY := r.words("obj-y")
	if v.dir == "." {
		objY = append(objY, e.headY...)
	}
	inY := make(map[string]bool, len(objY))
	for _, w := range objY {
		inY[w.s] = true
	}
	var objM []mkWord
	for _, w := range r.words("obj-m") {
		if !inY[w.s] {
			objM = append(objM, w)
		}
	}
	b := &dirBuild{e: e, r: r, v: v, kfile: kfile}
	if e.headers {
		b.ccflags = append(slices.Clip(v.ccflags), e.includeFlags(r.words("subdir-ccflags-y"))...)
		b.asflags = append(slices.Clip(v.asflags), e.includeFlags(r.words("subdir-asflags-y"))...)
	}

	// Subdirectories: need-builtin passes down through obj-y, and
	// need-modorder through obj-y and obj-m. subdir-y alone builds
	// neither, so it cannot add units unless it is a libs-y directory.
	kids := make(map[string]*dirVisit)
	var order []string
	addKid := func(w mkWord, builtin, modorder bool) {
		d := path.Clean(path.Join(v.dir, w.s))
		k, ok := kids[d]
		if !ok {
			k = &dirVisit{dir: d, t: mergeTaint(v.t, w.t), ccflags: b.ccflags, asflags: b.asflags}
			kids[d] = k
			order = append(order, d)
		} else if w.t == nil && v.t == nil {
			k.t = nil
		}
		k.builtin = k.builtin || builtin
		k.modorder = k.modorder || modorder
	}
	for _, w := range objY {
		if strings.HasSuffix(w.s, "/") {
			addKid(w, v.builtin, v.modorder)
		}
	}
	for _, w := range objM {
		if strings.HasSuffix(w.s, "/") {
			addKid(w, false, v.modorder)
		}
	}
	for _, w := range append(r.words("subdir-y"), r.words("subdir-m")...) {
		addKid(mkWord{strings.TrimSuffix(w.s, "/") + "/", w.t}, false, false)
	}
	var children []dirVisit
	for _, d := range order {
		k := kids[d]
		if k.builtin || k.modorder || e.libDirs[d] {
			children = append(children, *k)
		}
	}

	if v.builtin {
		for _, w := range objY {
			b.object(w, profile.Vmlinux, false)
		}
	}
	if v.modorder {
		for _, w := range objM {
			if strings.HasSuffix(w.s, "/") {
				continue
			}
			mod := strings.TrimSuffix(path.Base(w.s), ".o")
			// Module names use _ where file names have - (KBUILD_MODNAME).
			b.object(w, strings.ReplaceAll(mod, "-", "_"), true)
		}
	}
	if e.libDirs[v.dir] {
		// lib-y objects go into lib.a, which vmlinux links; objects that
		// are also obj-y are built in already.
		libs := append(r.words("lib-y"), r.words("lib-m")...)
		for _, w := range libs {
			if !inY[w.s] {
				b.object(w, profile.Vmlinux, false)
			}
		}
	}
	return b.units, children
}

// dirBuild collects the units of one directory.
type dirBuild struct {
	e     *staticEval
	r     *mkRun
	v     dirVisit
	kfile string
	units []profile.Unit
	// ccflags and asflags are the include flags of this directory's
	// subdir-ccflags-y and subdir-asflags-y and those above.
	ccflags, asflags []string
	// dirC and dirA are the include flags of all the directory's C and
	// assembly units, once flagsDone.
	dirC, dirA []string
	flagsDone  bool
}

// object adds the units of an obj-y/obj-m/lib-y word: the object itself or,
// for a composite object, its parts.
func (b *dirBuild) object(w mkWord, target string, module bool) {
	if strings.HasSuffix(w.s, "/") {
		return
	}
	if !strings.HasSuffix(w.s, ".o") {
		// Archives and other non-objects in object lists are rare and
		// never sources of their own.
		b.e.warn("%s: %q in an object list is not an object file; ignored", b.kfile, w.s)
		return
	}
	b.leaves(w, mergeTaint(b.v.t, w.t), target, module, 0)
}

// compositeSuffixes are those of scripts/Makefile.lib's real-search.
var (
	builtinParts = []string{"-objs", "-y"}
	modParts     = []string{"-objs", "-y", "-m"}
)

func (b *dirBuild) leaves(w mkWord, t *taint, target string, module bool, depth int) {
	base := strings.TrimSuffix(w.s, ".o")
	suffixes := builtinParts
	if module {
		suffixes = modParts
	}
	var parts []mkWord
	composite := false
	for _, s := range suffixes {
		ws := b.r.words(base + s)
		if len(ws) > 0 {
			composite = true
		}
		parts = append(parts, ws...)
	}
	if !composite && len(b.r.words(base+"-")) > 0 {
		composite = true // foo-$(CONFIG_FOO) with FOO unset: nothing to build
	}
	obj := path.Clean(path.Join(b.v.dir, w.s))
	if composite && depth > 0 {
		// Kbuild itself expands one level only; a part that is a
		// composite of its own but has a source is built from it.
		if _, ok := b.e.source(obj); ok {
			composite = false
		}
	}
	if !composite || depth > 8 {
		built := ""
		if raw := b.v.dir + "/" + w.s; strings.Contains(w.s, "../") && path.Clean(raw) == obj {
			built = raw // kvm's $(KVM)/eventfd.o: see profile.Unit.Built
		}
		b.add(obj, built, strings.TrimSuffix(w.s, ".o"), target, t)
		return
	}
	for _, p := range parts {
		if !strings.HasSuffix(p.s, ".o") {
			if !strings.HasSuffix(p.s, ".a") {
				b.e.warn("%s: part %q of %s is not an object file; ignored", b.kfile, p.s, w.s)
			}
			continue
		}
		b.leaves(p, mergeTaint(t, p.t), target, module, depth+1)
	}
}

// add records obj (built under the path built, when not "") as a unit of
// target, if its source is in the tree. stem is the object's name in the
// directory without .o (kbuild's target-stem).
func (b *dirBuild) add(obj, built, stem, target string, t *taint) {
	// The source of the pattern rules comes first: an explicit rule
	// usually adds a prerequisite (arch/x86/lib's inat.o needs the
	// generated inat-tables.c, which inat.c #includes), and only names
	// the source when the pattern rules find none.
	src, ok := b.e.source(obj)
	if !ok {
		src, ok = b.r.objRules[obj]
		if ok && !b.e.exists(src) {
			ok = false
		}
	}
	if !ok {
		base := path.Base(strings.TrimSuffix(obj, ".o"))
		b.e.warn("%s: %s has no source in the tree (%s.c, %s.S): generated at build time; left out", b.kfile, obj, base, base)
		return
	}
	u := profile.Unit{Source: src, Object: obj, Target: target, Possible: t != nil, Built: built}
	if t != nil {
		b.e.mu.Lock()
		k := t.String()
		b.e.taints[k] = append(b.e.taints[k], obj)
		b.e.mu.Unlock()
	}
	b.units = append(b.units, u)
	if b.e.headers {
		b.recordFlags(obj, stem)
	}
}

// source finds the file an object is compiled from.
func (e *staticEval) source(obj string) (string, bool) {
	stem := strings.TrimSuffix(obj, ".o")
	for _, ext := range []string{".c", ".S"} {
		if e.exists(stem + ext) {
			return stem + ext, true
		}
	}
	if e.rust && e.exists(stem+".rs") {
		return stem + ".rs", true
	}
	// Generated from a file in the tree by a fixed rule: the unit's source
	// is the generated file (as a real build records it); the file it
	// comes from is added to Deps.
	if e.exists(stem + ".c_shipped") {
		return stem + ".c", true
	}
	if strings.HasSuffix(stem, ".asn1") && e.exists(stem) {
		return stem + ".c", true
	}
	return "", false
}

// generatedFrom names the tree file a generated unit source comes from.
func generatedFrom(src string) string {
	if strings.HasSuffix(src, ".asn1.c") {
		return strings.TrimSuffix(src, ".c")
	}
	return src + "_shipped"
}

// flushTaints turns the uncertainties that reached object lists into
// warnings, one per cause.
func (e *staticEval) flushTaints() {
	for k, objs := range e.taints {
		slices.Sort(objs)
		objs = slices.Compact(objs)
		ex := strings.Join(objs[:min(3, len(objs))], ", ")
		if len(objs) > 3 {
			ex += ", ..."
		}
		e.warnings[fmt.Sprintf("%s; %d object(s) counted as possibly compiled: %s", k, len(objs), ex)] = true
	}
}
