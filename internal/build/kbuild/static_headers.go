package kbuild

import (
	"bytes"
	"errors"
	"hash/maphash"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// This file builds the static include graph (StaticOptions.Headers): each
// unit's source is read for #include lines, and so is every file they
// resolve to, transitively, the way the unit's compile line of Linux 6.1
// finds them (scripts/Makefile.lib's c_flags and a_flags):
//
//   - the forced includes of LINUXINCLUDE (include/linux/compiler-version.h,
//     include/linux/kconfig.h) and, for C, include/linux/compiler_types.h,
//     then the -include and -imacros files of the unit's flags;
//   - "file" next to the including file, then on the -iquote path;
//   - then the -I path: LINUXINCLUDE's arch/$(SRCARCH)/include,
//     arch/$(SRCARCH)/include/generated, include, and the uapi directories,
//     then the -I (-isystem, -idirafter) flags of subdir-ccflags-y (of
//     the directory and those above), ccflags-y and CFLAGS_<stem>.o
//     (asflags-y and AFLAGS_<stem>.o for assembly);
//   - when that finds nothing: asm/X.h as asm-generic/X.h (the wrapper
//     kbuild generates in arch/$(SRCARCH)/include/generated/asm, which a
//     tree not prepared lacks), then the path from the top of the tree.
//
// Conditionals are evaluated over the config and the predefined macros
// (__KERNEL__, __ASSEMBLY__ for assembly, the architecture's and the
// compiler's); whatever else they test is unknown and both branches count,
// so the graph holds every header a build may read, and some it does not.
// A second closure then decides the tests of macros that no header
// defines, only some sources (CREATE_TRACE_POINTS, DEBUG): for a unit
// whose source files and flags do not define one either, it is undefined
// (see findUndef). An #include of a macro is resolved through the #define
// lines of the files the unit reads and the config's strings. Files the
// tree does not have (generated during the build) are left out, with what
// they include.

// linuxInclude is LINUXINCLUDE's -I path of the top-level Makefile, for an
// in-tree build.
func linuxInclude(srcarch string) []string {
	a := "arch/" + srcarch + "/include"
	return []string{a, a + "/generated", "include", a + "/uapi", a + "/generated/uapi", "include/uapi", "include/generated/uapi"}
}

// unitFlags are the include flags of an object's compile line, as
// includeFlags keeps them: for a C source and for an assembly one.
type unitFlags struct{ c, a []string }

// recordFlags notes the include flags of obj, whose kbuild target-stem
// is stem.
func (b *dirBuild) recordFlags(obj, stem string) {
	r := b.r
	if !b.flagsDone {
		b.flagsDone = true
		b.dirC = slices.Concat(b.ccflags,
			b.e.includeFlags(r.words("KBUILD_CPPFLAGS")), b.e.includeFlags(r.words("KBUILD_CFLAGS")),
			b.e.includeFlags(r.words("ccflags-y")), b.e.includeFlags(r.words("EXTRA_CFLAGS")))
		b.dirA = slices.Concat(b.asflags,
			b.e.includeFlags(r.words("KBUILD_CPPFLAGS")), b.e.includeFlags(r.words("KBUILD_AFLAGS")),
			b.e.includeFlags(r.words("asflags-y")), b.e.includeFlags(r.words("EXTRA_AFLAGS")))
	}
	f := &unitFlags{
		c: slices.Concat(b.dirC, b.e.includeFlags(r.words("CFLAGS_"+stem+".o"))),
		a: slices.Concat(b.dirA, b.e.includeFlags(r.words("AFLAGS_"+stem+".o"))),
	}
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	if b.e.unitFlags == nil {
		b.e.unitFlags = make(map[string]*unitFlags)
	}
	if old, ok := b.e.unitFlags[obj]; ok {
		// Listed by two Makefiles: either's flags may be the ones.
		for _, fl := range f.c {
			if !slices.Contains(old.c, fl) {
				old.c = append(old.c, fl)
			}
		}
		for _, fl := range f.a {
			if !slices.Contains(old.a, fl) {
				old.a = append(old.a, fl)
			}
		}
		return
	}
	b.e.unitFlags[obj] = f
}

// includeFlags keeps the flags that change what a compilation includes,
// in a form of its own: "I:dir" (-I, -isystem, -idirafter), "Q:dir"
// (-iquote), "F:file" (-include, -imacros), "D:MACRO" (a -D or -U of a
// macro the evaluation would otherwise decide), "d:MACRO" (of another
// macro) and "m32". Paths are made relative to the top of the tree; those
// outside it are dropped.
func (e *staticEval) includeFlags(words []mkWord) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i].s
		opt, arg := "", ""
		for _, o := range includeOptions {
			if strings.HasPrefix(w, o) {
				opt, arg = o, w[len(o):]
				break
			}
		}
		if opt == "" {
			if w == "-m32" {
				out = append(out, "m32")
			}
			continue
		}
		if arg == "" {
			if i+1 == len(words) {
				break
			}
			i++
			arg = words[i].s
		}
		switch opt {
		case "-D", "-U":
			switch name, _ := cutIdent(arg); {
			case decidable(name):
				out = append(out, "D:"+name)
			case name != "":
				out = append(out, "d:"+name)
			}
		case "-include", "-imacros":
			if p, ok := e.treePath(arg); ok {
				out = append(out, "F:"+p)
			}
		case "-iquote":
			if p, ok := e.treePath(arg); ok {
				out = append(out, "Q:"+p)
			}
		default:
			if p, ok := e.treePath(arg); ok {
				out = append(out, "I:"+p)
			}
		}
	}
	return out
}

var includeOptions = []string{"-I", "-iquote", "-isystem", "-idirafter", "-include", "-imacros", "-D", "-U"}

// treePath makes a path of a compile line (relative to the top of the
// tree, or absolute) tree-relative; ok is false for one outside the tree.
func (e *staticEval) treePath(p string) (string, bool) {
	if path.IsAbs(p) {
		r, err := filepath.Rel(e.root, filepath.FromSlash(p))
		if err != nil {
			return "", false
		}
		p = filepath.ToSlash(r)
	}
	p = path.Clean(p)
	if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
		return "", false
	}
	return p, true
}

// ppFile is what the include graph keeps of a file.
type ppFile struct {
	lines []ppLine
	// defs are the header names macros are #defined to, for #include
	// MACRO lines.
	defs map[string][]cInclude
	// redefs are the config and predefined macros the file #defines or
	// #undefs.
	redefs []string
	// tested are the macros its conditionals test that a unit may be
	// found not to define (see hdrGraph.undefinable).
	tested []string
	// origins are the hashes of the macros it may define, sorted: all
	// its #defines but those only read when the macro is defined already
	// (define_trace.h's #define CREATE_TRACE_POINTS).
	origins []uint64
	source  bool // a .c or .S file

	// Once undefDone (findUndef), the macros of hdrGraph.undef the file
	// tests, and those it may define if it is a source file.
	undefTested, undefDefined []string
	undefDone                 bool
}

var macroSeed = maphash.MakeSeed()

func macroHash(name string) uint64 { return maphash.String(macroSeed, name) }

// undefinable reports whether a macro may be known undefined for a unit
// when none of the files it reads defines it: not a config or predefined
// macro, none the compiler predefines (reserved names, linux, unix) and
// none a compile line's -D may give (MODULE, KBUILD_*).
func undefinable(name string) bool {
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') || decidable(name) {
		return false
	}
	switch name {
	case "defined", "IS_ENABLED", "IS_BUILTIN", "IS_MODULE", "IS_REACHABLE", "linux", "unix", "i386", "MODULE":
		return false
	}
	return !strings.HasPrefix(name, "KBUILD_")
}

// parsePP scans a file. A #define is an origin unless a conditional that
// env rules out encloses it (env nil: none), or one that requires the
// macro defined already.
func parsePP(data []byte, env *cppEnv) *ppFile {
	f := &ppFile{}
	var conds cppStack
	// implied holds, per open conditional group, the macros its current
	// branch can only be read with defined.
	var implied [][]string
	var ifndef []string // per group: the macro of an #ifndef, for its #else
	tested := map[string]bool{}
	for _, l := range scanDirectives(data) {
		switch l.kind {
		case ppCond:
			f.lines = append(f.lines, l)
			if env != nil {
				conds.directive(l.name, l.rest, env)
			}
			switch l.name {
			case "if", "elif", "ifdef", "ifndef", "elifdef", "elifndef":
				for _, t := range cppTokens(l.rest) {
					if undefinable(t) {
						tested[t] = true
					}
				}
			}
			switch l.name {
			case "if", "ifdef", "ifndef":
				implied = append(implied, definedBy(l.name, l.rest))
				m := ""
				if l.name == "ifndef" {
					m = strings.TrimSpace(l.rest)
				}
				ifndef = append(ifndef, m)
			case "elif", "elifdef", "elifndef", "else":
				if n := len(implied); n > 0 {
					implied[n-1] = definedBy(l.name, l.rest)
					if l.name == "else" && ifndef[n-1] != "" {
						implied[n-1] = []string{ifndef[n-1]}
					}
					ifndef[n-1] = ""
				}
			case "endif":
				if n := len(implied); n > 0 {
					implied, ifndef = implied[:n-1], ifndef[:n-1]
				}
			}
		case ppInclude:
			f.lines = append(f.lines, l)
		case ppDefine:
			if l.inc.name != "" {
				if f.defs == nil {
					f.defs = make(map[string][]cInclude)
				}
				f.defs[l.name] = append(f.defs[l.name], l.inc)
			}
			if decidable(l.name) && !slices.Contains(f.redefs, l.name) {
				f.redefs = append(f.redefs, l.name)
			}
			guarded := false
			for _, ms := range implied {
				guarded = guarded || slices.Contains(ms, l.name)
			}
			if !guarded && !conds.off() {
				f.origins = append(f.origins, macroHash(l.name))
			}
		case ppUndef:
			if !slices.Contains(f.redefs, l.name) {
				f.redefs = append(f.redefs, l.name)
			}
		}
	}
	for t := range tested {
		f.tested = append(f.tested, t)
	}
	slices.Sort(f.tested)
	slices.Sort(f.origins)
	f.origins = slices.Compact(f.origins)
	return f
}

// definedBy returns the macros a conditional's branch requires defined:
// #ifdef M, and #if defined(M) && ... at the top of the expression.
func definedBy(directive, expr string) []string {
	switch directive {
	case "ifdef", "elifdef":
		return []string{strings.TrimSpace(expr)}
	case "if", "elif":
	default:
		return nil
	}
	toks := cppTokens(expr)
	var out []string
	depth := 0
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "(":
			depth++
		case ")":
			depth--
		case "||", "?":
			if depth == 0 {
				return nil // a disjunction requires nothing of itself
			}
		case "defined":
			// defined M or defined(M) as a conjunct of the top level.
			if depth > 0 || (i > 0 && toks[i-1] != "&&") {
				continue
			}
			switch {
			case i+1 < len(toks) && toks[i+1] != "(":
				out = append(out, toks[i+1])
			case i+3 < len(toks) && toks[i+3] == ")":
				out = append(out, toks[i+2])
			}
		}
	}
	return out
}

// hdrGraph is the include graph of one evaluation. Files are numbered;
// the edges of a file depend on the conditionals' environment and the
// unit's include path, so they are kept per layer: per distinct pair.
type hdrGraph struct {
	e    *staticEval
	base []string // LINUXINCLUDE's -I path

	mu     sync.Mutex
	ids    map[string]int32
	paths  []string
	parsed []*ppFile // every file read, for undefinable

	files   onceMap[string, *ppFile]
	envs    onceMap[string, *hdrEnv]
	layers  onceMap[string, *hdrLayer]
	baseAng onceMap[string, string] // <name> on the base path, "" when not there

	// originEnv is what the #define lines that count for findUndef are
	// evaluated in: the config, and the predefined macros that are the
	// same for every unit, bar those a unit makes loose.
	originEnv *cppEnv
	// undef are the macros no header defines (see findUndef), by hash.
	undef map[uint64]string
}

func newHdrGraph(e *staticEval) *hdrGraph {
	return &hdrGraph{e: e, base: linuxInclude(e.srcarch), ids: make(map[string]int32)}
}

func (g *hdrGraph) id(p string) int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i, ok := g.ids[p]; ok {
		return i
	}
	i := int32(len(g.paths))
	g.ids[p] = i
	g.paths = append(g.paths, p)
	return i
}

func (g *hdrGraph) path(i int32) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paths[i]
}

// file reads and scans the tree file p once. A file that cannot be read
// is warned about and includes nothing.
func (g *hdrGraph) file(p string) *ppFile {
	f, _ := g.files.get(p, func() (*ppFile, error) {
		buf := readBufs.Get().(*bytes.Buffer)
		defer readBufs.Put(buf)
		buf.Reset()
		if err := readInto(buf, g.e.fsPath(p)); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				g.e.warn("%s: %v; the files it includes are left out", p, err)
			}
			return &ppFile{}, nil
		}
		// parsePP keeps no part of the buffer.
		f := parsePP(buf.Bytes(), g.originEnv)
		f.source = isSourceFile(p)
		g.mu.Lock()
		g.parsed = append(g.parsed, f)
		g.mu.Unlock()
		return f, nil
	})
	return f
}

// readBufs are the buffers files are read into, to be scanned.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func readInto(buf *bytes.Buffer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = buf.ReadFrom(f)
	return err
}

// isSourceFile reports whether p is a C or assembly source rather than
// a header (whatever its role: an #included .c counts).
func isSourceFile(p string) bool { return strings.HasSuffix(p, ".c") || strings.HasSuffix(p, ".S") }

// lookup reports whether dir/name is a file of the tree.
func (g *hdrGraph) lookup(dir, name string) (string, bool) {
	p := path.Join(dir, name)
	if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
		return "", false
	}
	return p, g.e.exists(p)
}

// onBase resolves <name> on LINUXINCLUDE's path.
func (g *hdrGraph) onBase(name string) string {
	p, _ := g.baseAng.get(name, func() (string, error) {
		for _, d := range g.base {
			if p, ok := g.lookup(d, name); ok {
				return p, nil
			}
		}
		return "", nil
	})
	return p
}

// findUndef sets g.undef after a first closure of every unit: the macros
// some file read tests, that no header read defines and that no Makefile
// of the build machinery passes with -D. Such a macro is undefined in a
// unit that reads no source file (.c, .S) defining it and has no -D for
// it: a test of it is decided for that unit. The files read by the first
// closures are all any unit can read, so this stays conservative.
func (g *hdrGraph) findUndef() {
	inHeaders := make(map[uint64]bool)
	tested := make(map[string]bool)
	for _, f := range g.parsed {
		for _, t := range f.tested {
			tested[t] = true
		}
		if !f.source {
			for _, h := range f.origins {
				inHeaders[h] = true
			}
		}
	}
	onLines := g.e.machineryDefines()
	g.undef = make(map[uint64]string)
	for t := range tested {
		if h := macroHash(t); !inHeaders[h] && !onLines[t] {
			g.undef[h] = t
		}
	}
	for _, f := range g.parsed {
		f.undefTested, f.undefDefined = g.undefOf(f)
		f.undefDone = true
	}
}

// undefUse returns the macros of g.undef that the file of n tests, and
// those it may define (a source file).
func (g *hdrGraph) undefUse(n *hdrNode) (tested, defined []string) {
	if n.pf.undefDone {
		return n.pf.undefTested, n.pf.undefDefined
	}
	return g.undefOf(n.pf)
}

func (g *hdrGraph) undefOf(f *ppFile) (tested, defined []string) {
	for _, t := range f.tested {
		if _, ok := g.undef[macroHash(t)]; ok {
			tested = append(tested, t)
		}
	}
	if f.source {
		for _, h := range f.origins {
			if m, ok := g.undef[h]; ok {
				defined = append(defined, m)
			}
		}
	}
	return tested, defined
}

// machineryDefines are the macros the top-level Makefile, the arch
// Makefile and scripts/Makefile.* may pass with -D or -U.
func (e *staticEval) machineryDefines() map[string]bool {
	names := []string{"Makefile", "arch/" + e.srcarch + "/Makefile"}
	if ents, err := os.ReadDir(e.fsPath("scripts")); err == nil {
		for _, ent := range ents {
			if strings.HasPrefix(ent.Name(), "Makefile.") {
				names = append(names, "scripts/"+ent.Name())
			}
		}
	}
	out := make(map[string]bool)
	for _, n := range names {
		data, err := os.ReadFile(e.fsPath(n))
		if err != nil {
			continue
		}
		s := string(data)
		for i := 0; i+2 < len(s); i++ {
			if s[i] == '-' && (s[i+1] == 'D' || s[i+1] == 'U') && (i == 0 || !isIdentByte(s[i-1])) {
				if m, _ := cutIdent(s[i+2:]); m != "" {
					out[m] = true
				}
			}
		}
	}
	return out
}

// hdrEnv is a conditionals environment and, per file, the #include lines
// live in it, resolved where that does not depend on the unit's flags.
type hdrEnv struct {
	key   string
	env   *cppEnv
	edges onceMap[int32, []hdrEdge]
}

// hdrEdge is a live #include line of a file and the file it names when
// found next to the includer or on LINUXINCLUDE's path (-1 otherwise).
type hdrEdge struct {
	line int32 // in the file's ppFile.lines
	to   int32
}

// envFor returns the environment of a C (or assembly) unit with the
// loose macros, in which the macros of g.undef are undefined but for
// those of defined (when undef is set).
func (g *hdrGraph) envFor(asm bool, loose []string, undef bool, defined []string) *hdrEnv {
	key := strings.Join(loose, " ")
	if asm {
		key = "asm " + key
	}
	if undef {
		key += "\x00" + strings.Join(defined, " ")
	}
	h, _ := g.envs.get(key, func() (*hdrEnv, error) {
		cfg := g.e.cfg.Values
		known := map[string]bool{
			"__KERNEL__": true, "__ASSEMBLY__": asm,
			"__CHECKER__": false, "__GENKSYMS__": false, "__cplusplus": false,
		}
		if g.e.srcarch == "x86" {
			b64 := cfg["CONFIG_64BIT"] == "y"
			known["__x86_64__"], known["__i386__"] = b64, !b64
		}
		switch {
		case cfg["CONFIG_CC_IS_GCC"] == "y":
			known["__GNUC__"], known["__clang__"] = true, false
		case cfg["CONFIG_CC_IS_CLANG"] == "y":
			known["__GNUC__"], known["__clang__"] = true, true
		}
		values := map[string]int64{"__KERNEL__": 1, "__ASSEMBLY__": 1, "__x86_64__": 1, "__i386__": 1, "__linux__": 1, "__unix__": 1}
		if _, ok := known["__GNUC__"]; ok {
			// The kernel is built by a compiler for Linux.
			known["__INTEL_COMPILER"], known["__ECC"] = false, false
			known["__linux__"], known["__unix__"] = true, true
			known["__GNUC_MINOR__"], known["__GNUC_PATCHLEVEL__"] = true, true
			// clang says it is gcc 4.2.1.
			values["__GNUC__"], values["__GNUC_MINOR__"], values["__GNUC_PATCHLEVEL__"] = 4, 2, 1
			if v, err := strconv.Atoi(cfg["CONFIG_GCC_VERSION"]); err == nil && v > 0 {
				values["__GNUC__"], values["__GNUC_MINOR__"], values["__GNUC_PATCHLEVEL__"] = int64(v/10000), int64(v/100%100), int64(v%100)
			}
		}
		// The sanitizers' macros are on compile lines only when they are
		// configured (and then not on all).
		for sym, m := range map[string]string{"CONFIG_KASAN": "__SANITIZE_ADDRESS__", "CONFIG_KCSAN": "__SANITIZE_THREAD__", "CONFIG_KMSAN": "__SANITIZE_MEMORY__"} {
			if cfg[sym] != "y" {
				known[m] = false
			}
		}
		if undef {
			for _, m := range g.undef {
				if !slices.Contains(defined, m) {
					known[m] = false
				}
			}
		}
		env := &cppEnv{cfg: cfg, known: known, values: values}
		if len(loose) > 0 {
			env.loose = make(map[string]bool, len(loose))
			for _, m := range loose {
				env.loose[m] = true
			}
		}
		return &hdrEnv{key: key, env: env}, nil
	})
	return h
}

// edgesOf returns file f's live #include lines in h.
func (g *hdrGraph) edgesOf(h *hdrEnv, f int32) []hdrEdge {
	es, _ := h.edges.get(f, func() ([]hdrEdge, error) {
		p := g.path(f)
		lines := g.file(p).lines
		var out []hdrEdge
		for _, i := range activeIncludes(lines, h.env) {
			l := lines[i]
			e := hdrEdge{line: i, to: -1}
			if l.name == "" && !l.next && !path.IsAbs(l.inc.name) {
				to := ""
				if !l.inc.angle {
					if q, ok := g.lookup(path.Dir(p), l.inc.name); ok {
						to = q
					}
				}
				if to == "" {
					to = g.onBase(l.inc.name)
				}
				if to != "" {
					e.to = g.id(to)
				}
			}
			out = append(out, e)
		}
		return out, nil
	})
	return es
}

// hdrLayer is an environment with a unit's include path.
type hdrLayer struct {
	g     *hdrGraph
	h     *hdrEnv
	quote []string // -iquote
	extra []string // -I after LINUXINCLUDE's
	dirs  []string // the whole -I path
	nodes onceMap[int32, *hdrNode]
	angle onceMap[string, string]
}

// hdrNode is a file's edges in a layer: the files it includes and the
// macros it #includes.
type hdrNode struct {
	path   string
	pf     *ppFile
	to     []int32
	macros []string
	// missing is set when a live #include "file" names a file the tree
	// lacks: one generated during the build, which may define anything.
	missing bool
}

func (g *hdrGraph) layer(h *hdrEnv, quote, extra []string) *hdrLayer {
	key := h.key + "\x01" + strings.Join(quote, " ") + "\x01" + strings.Join(extra, " ")
	l, _ := g.layers.get(key, func() (*hdrLayer, error) {
		return &hdrLayer{g: g, h: h, quote: quote, extra: extra, dirs: slices.Concat(g.base, extra)}, nil
	})
	return l
}

func (l *hdrLayer) node(f int32) *hdrNode {
	n, _ := l.nodes.get(f, func() (*hdrNode, error) {
		from := l.g.path(f)
		n := &hdrNode{path: from, pf: l.g.file(from)}
		for _, e := range l.g.edgesOf(l.h, f) {
			line := n.pf.lines[e.line]
			if line.name != "" {
				n.macros = append(n.macros, line.name)
				continue
			}
			to := e.to
			if to < 0 || (len(l.quote) > 0 && !line.inc.angle) {
				to = -1
				if p := l.resolve(line, from); p != "" {
					to = l.g.id(p)
				}
			}
			if to < 0 && strings.HasSuffix(line.inc.name, ".asn1.h") {
				// What scripts/asn1_compiler writes the header to include.
				if p := l.onPath("linux/asn1_decoder.h"); p != "" {
					n.to = append(n.to, l.g.id(p))
				}
			}
			if to < 0 {
				// A header a build generates in the unit's directory is
				// included by "name"; one the tree lacks by <name> (a
				// system header, another compiler's) is not.
				n.missing = n.missing || !line.inc.angle
			} else if !slices.Contains(n.to, to) {
				n.to = append(n.to, to)
			}
		}
		return n, nil
	})
	return n
}

// resolve finds the file an #include line of from names, "" when the
// tree has none.
func (l *hdrLayer) resolve(line ppLine, from string) string {
	name := line.inc.name
	if path.IsAbs(name) {
		return ""
	}
	if line.next {
		// #include_next: on the path after the directory from is in.
		start := 0
		for i, d := range l.dirs {
			if p, _ := l.g.lookup(d, name); p == from {
				start = i + 1
				break
			}
		}
		for _, d := range l.dirs[start:] {
			if p, ok := l.g.lookup(d, name); ok && p != from {
				return p
			}
		}
		return ""
	}
	if !line.inc.angle {
		if p, ok := l.g.lookup(path.Dir(from), name); ok {
			return p
		}
		for _, d := range l.quote {
			if p, ok := l.g.lookup(d, name); ok {
				return p
			}
		}
	}
	return l.onPath(name)
}

// onPath resolves <name> on the layer's -I path, then by the fallbacks.
func (l *hdrLayer) onPath(name string) string {
	if p := l.g.onBase(name); p != "" {
		return p
	}
	p, _ := l.angle.get(name, func() (string, error) {
		for _, d := range l.extra {
			if p, ok := l.g.lookup(d, name); ok {
				return p, nil
			}
		}
		if rest, ok := strings.CutPrefix(name, "asm/"); ok {
			for _, d := range l.dirs {
				if p, ok := l.g.lookup(d, "asm-generic/"+rest); ok {
					return p, nil
				}
			}
		}
		if p, ok := l.g.lookup(".", name); ok {
			return p, nil
		}
		return "", nil
	})
	return p
}

// hdrUnit is the set of units that read the same files: the same source
// with the same flags.
type hdrUnit struct {
	src   string
	asm   bool
	flags []string
	units []int32

	// Set by closure: the files read, whether an #include named a file
	// the tree lacks, the -D names of the flags, the layer of the first
	// closure.
	closed  []int32
	missing bool
	defines []string
	first   *hdrLayer
}

// scanHeaders fills p.Deps with the files of the tree the units read (see
// the top of this file). p must be sorted.
func (e *staticEval) scanHeaders(p *profile.Profile) error {
	g := newHdrGraph(e)
	var groups []*hdrUnit
	byKey := make(map[string]*hdrUnit)
	for i, u := range p.Units {
		var asm bool
		switch {
		case strings.HasSuffix(u.Source, ".c"):
		case strings.HasSuffix(u.Source, ".S"):
			asm = true
		default:
			continue // Rust: its bindings are generated
		}
		var flags []string
		if f := e.unitFlags[u.Object]; f != nil {
			flags = f.c
			if asm {
				flags = f.a
			}
		}
		key := u.Source + "\x00" + strings.Join(flags, "\x00")
		gr := byKey[key]
		if gr == nil {
			gr = &hdrUnit{src: u.Source, asm: asm, flags: flags}
			byKey[key] = gr
			groups = append(groups, gr)
		}
		gr.units = append(gr.units, int32(i))
	}

	run := func(second bool) error {
		var wg sync.WaitGroup
		next := make(chan *hdrUnit)
		for range e.jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c closer
				for gr := range next {
					if !e.cancelled() {
						c.closure(g, gr, second)
					}
				}
			}()
		}
		for _, gr := range groups {
			if !second || !gr.missing {
				next <- gr
			}
		}
		close(next)
		wg.Wait()
		return e.ctx.Err()
	}
	// Which #defines may count as origins: those the config does not
	// rule out for any unit but those whose source redefines a config
	// macro (they keep their first closure).
	loose := map[string]bool{"__ASSEMBLY__": true}
	for _, gr := range groups {
		for _, fl := range gr.flags {
			if m, ok := strings.CutPrefix(fl, "D:"); ok {
				loose[m] = true
			} else if fl == "m32" {
				loose["__x86_64__"], loose["__i386__"] = true, true
			}
		}
	}
	base := g.envFor(false, nil, false, nil).env
	g.originEnv = &cppEnv{cfg: e.cfg.Values, known: base.known, values: base.values, loose: loose}

	// A first closure with every undecided test open, then a second in
	// which the macros no file read defines are undefined.
	if err := run(false); err != nil {
		return err
	}
	g.findUndef()
	if err := run(true); err != nil {
		return err
	}
	deps := make([][]int32, len(g.paths))
	for _, gr := range groups {
		for _, f := range gr.closed {
			deps[f] = append(deps[f], gr.units...)
		}
		gr.closed = nil
	}
	sources := p.Sources()
	p.Deps = make(map[string][]int32)
	for f, us := range deps {
		if len(us) == 0 || sources[g.paths[f]] {
			continue
		}
		slices.Sort(us)
		p.Deps[g.paths[f]] = slices.Compact(us)
	}
	p.Headers = true
	return nil
}

// closer computes closures; each goroutine has its own.
type closer struct {
	seen  []uint32 // seen[f] == gen: f is in the closure being computed
	gen   uint32
	queue []int32
	nodes map[*hdrLayer][]*hdrNode // the nodes seen, without a lock
	// lastL and lastNs are the layer last asked and its nodes.
	lastL  *hdrLayer
	lastNs []*hdrNode
}

func (c *closer) node(l *hdrLayer, f int32) *hdrNode {
	if l != c.lastL {
		c.lastL, c.lastNs = l, c.nodes[l]
	}
	ns := c.lastNs
	if int(f) < len(ns) && ns[f] != nil {
		return ns[f]
	}
	n := l.node(f)
	if int(f) >= len(ns) {
		ns = append(ns, make([]*hdrNode, int(f)+1-len(ns)+1024)...)
		if c.nodes == nil {
			c.nodes = make(map[*hdrLayer][]*hdrNode)
		}
		c.nodes[l], c.lastNs = ns, ns
	}
	ns[f] = n
	return n
}

func (c *closer) mark(f int32) {
	if int(f) >= len(c.seen) {
		c.seen = append(c.seen, make([]uint32, int(f)+1-len(c.seen)+1024)...)
	}
	if c.seen[f] != c.gen {
		c.seen[f] = c.gen
		c.queue = append(c.queue, f)
	}
}

// closure sets gr.closed to the files gr's units read, other than their
// source. The second time (second set), the macros of g.undef that
// neither the source files read nor the flags define are undefined; when
// that changes nothing the first closure is kept.
func (c *closer) closure(g *hdrGraph, gr *hdrUnit, second bool) {
	e := g.e
	c.gen++
	c.queue = c.queue[:0]

	src := gr.src
	var extraDeps []string
	var synthetic []cInclude
	if !e.exists(src) {
		from := generatedFrom(src)
		if !e.exists(from) {
			return
		}
		extraDeps = append(extraDeps, from)
		if strings.HasSuffix(src, ".asn1.c") {
			// What scripts/asn1_compiler writes the source and its
			// header to include.
			synthetic = []cInclude{{"linux/asn1_ber_bytecode.h", true}, {"linux/asn1_decoder.h", true}}
			src = ""
		} else {
			src = from // a shipped source is the file itself
		}
	}

	var loose, quote, extra, forced []string
	gr.defines = gr.defines[:0]
	for _, fl := range gr.flags {
		kind, arg, _ := strings.Cut(fl, ":")
		switch kind {
		case "D":
			loose = append(loose, arg)
		case "d":
			gr.defines = append(gr.defines, arg)
		case "m32":
			loose = append(loose, "__x86_64__", "__i386__")
		case "Q":
			quote = append(quote, arg)
		case "I":
			extra = append(extra, arg)
		case "F":
			forced = append(forced, arg)
		}
	}
	if src != "" {
		if r := g.file(src).redefs; len(r) > 0 {
			if second {
				return // see originEnv
			}
			loose = append(loose, r...)
		}
	}
	slices.Sort(loose)
	loose = slices.Compact(loose)

	var defined []string
	if second {
		// The macros of g.undef the unit may define: in its source
		// files, on its compile line.
		// Only the macros the files read test matter: keep those (the
		// fewer environments, the more of the graph is shared), and
		// stop when no test is decided anew.
		read := gr.closed
		if src != "" {
			read = append(slices.Clip(read), g.id(src))
		}
		var tested []string
		for _, f := range read {
			n := c.node(gr.first, f)
			t, d := g.undefUse(n)
			tested = append(tested, t...)
			defined = append(defined, d...)
		}
		if len(tested) == 0 {
			return
		}
		for _, m := range gr.defines {
			if _, ok := g.undef[macroHash(m)]; ok {
				defined = append(defined, m)
			}
		}
		slices.Sort(tested)
		tested = slices.Compact(tested)
		defined = slices.DeleteFunc(defined, func(m string) bool { _, ok := slices.BinarySearch(tested, m); return !ok })
		slices.Sort(defined)
		defined = slices.Compact(defined)
		if len(tested) == len(defined) {
			return
		}
	}
	l := g.layer(g.envFor(gr.asm, loose, second, defined), quote, extra)
	if !second {
		gr.first = l
	}

	// The forced includes come first on the compile line.
	base := []string{"include/linux/compiler-version.h", "include/linux/kconfig.h"}
	if !gr.asm {
		base = append(base, "include/linux/compiler_types.h")
	}
	from := src
	if from == "" {
		from = gr.src
	}
	for _, f := range slices.Concat(base, forced) {
		if e.exists(f) {
			c.mark(g.id(f))
		} else if p := l.resolve(ppLine{inc: cInclude{name: f}}, from); p != "" {
			c.mark(g.id(p))
		} else {
			gr.missing = true
		}
	}
	for _, inc := range synthetic {
		if p := l.resolve(ppLine{inc: inc}, from); p != "" {
			c.mark(g.id(p))
		}
	}
	srcID := int32(-1)
	if src != "" {
		srcID = g.id(src)
		c.mark(srcID)
	}

	type macroInc struct {
		name string
		from int32
	}
	var pending []macroInc
	done := map[macroInc]bool{}
	for i := 0; ; {
		for ; i < len(c.queue); i++ {
			n := c.node(l, c.queue[i])
			gr.missing = gr.missing || n.missing
			for _, t := range n.to {
				c.mark(t)
			}
			for _, m := range n.macros {
				if k := (macroInc{m, c.queue[i]}); !done[k] {
					done[k] = true
					pending = append(pending, k)
				}
			}
		}
		if len(pending) == 0 {
			break
		}
		// #include MACRO: whatever the files read define it to.
		for _, m := range pending {
			var names []cInclude
			for _, f := range c.queue {
				names = append(names, c.node(l, f).pf.defs[m.name]...)
			}
			if v := e.cfg.Values[m.name]; strings.HasPrefix(v, `"`) {
				names = append(names, cInclude{name: kconfig.Unquote(v)})
			}
			fp := g.path(m.from)
			found := false
			for _, inc := range names {
				if p := l.resolve(ppLine{inc: inc}, fp); p != "" {
					c.mark(g.id(p))
					found = true
				}
			}
			gr.missing = gr.missing || !found
		}
		pending = pending[:0]
	}

	out := make([]int32, 0, len(c.queue)+len(extraDeps))
	for _, f := range c.queue {
		if f != srcID {
			out = append(out, f)
		}
	}
	for _, d := range extraDeps {
		out = append(out, g.id(d)) // a shipped source too
	}
	gr.closed = out
}
