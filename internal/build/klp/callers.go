package klp

import (
	"bytes"
	"cmp"
	"context"
	"debug/elf"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// A changed global function without an ftrace entry (all of lib/ and
// kernel/trace/ are built without one in 6.1) cannot be redirected: the
// patch carries the new copy, and every function that calls the old one,
// in any unit of vmlinux or of a module, is patched instead, its call
// bound to the copy. The callers are found from the build profile's
// sources (and the headers whose inline code or macros name the
// function), then from their compiled objects; a caller without an ftrace
// entry itself passes the job to its own callers, a few levels deep.

// MaxCallerUnits bounds the units a patch compiles to reach the callers of
// functions it cannot redirect.
const MaxCallerUnits = 40

// maxCallerLevels bounds how far up the call chain a patch goes.
const maxCallerLevels = 3

// reachCallers makes the callers of the stranded functions
// (Extracted.Stranded) not yet in reached changed functions of units,
// adding (compiled) the units that call them; the functions become
// provided, so that the calls bind to the patch's copies. The patch is
// then extracted again.
func reachCallers(ctx context.Context, k *Kernel, units []*unit, stranded []string, reached map[string]bool, provided map[string]bool, log *slog.Logger) ([]*unit, error) {
	var names []string
	for _, n := range stranded {
		if !reached[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return units, nil
	}
	for _, n := range names {
		reached[n] = true
		provided[n] = true
	}
	have := map[string]bool{}
	for _, u := range units {
		have[u.path] = true
	}
	ix, err := k.units(ctx)
	if err != nil {
		return nil, err
	}
	found, err := callerSources(ctx, k, ix, names, have)
	if err != nil {
		return nil, err
	}
	total := len(found)
	for _, u := range units {
		if u.caller {
			total++
		}
	}
	if total > MaxCallerUnits {
		return nil, refuse(refusal.CallersTooMany, names[0], "%s %s no ftrace entry, so their callers must be patched instead, and %d compile units of this kernel call them (a patch follows at most %d): %s",
			strings.Join(names, ", "), plural(len(names), "has", "have"), total, MaxCallerUnits, strings.Join(unitPaths(found[:min(5, len(found))]), ", "))
	}
	if len(found) > 0 {
		log.Info("compiling the callers of functions livepatch cannot redirect", "functions", names, "units", unitPaths(found))
		kept, err := compileBefore(ctx, k, found, log)
		if r, ok := AsRefusal(err); ok && r.Code == refusal.NotCompiled {
			kept, err = nil, nil // none of them is built: no callers there
		}
		if err != nil {
			return nil, err
		}
		for _, u := range kept {
			ok, err := u.place(k)
			if err != nil || !ok {
				continue // not part of this kernel after all
			}
			u.after, u.caller = u.before, true
			u.changes = &elfobj.Changes{}
			u.result = UnitResult{Unit: u.path, Object: u.object}
			units = append(units, u)
		}
	}
	all := map[string]bool{}
	for n := range reached {
		all[n] = true
	}
	var kept []*unit
	for _, u := range units {
		n, err := u.forceCallers(all)
		if err != nil {
			return nil, withUnit(err, u)
		}
		if u.caller && n == 0 && len(u.changes.Changed) == 0 {
			continue // named the function in a comment, or in code not built
		}
		kept = append(kept, u)
	}
	return kept, nil
}

// bootOnly says whether f is vmlinux __init code: it ran at boot and is
// gone, so it calls nothing any more. (A module's runs again when the
// module loads again.)
func bootOnly(object string, f *elfobj.Function) bool {
	return object == "vmlinux" && strings.HasPrefix(f.Parts[0].Section.Name, ".init.")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// forceCallers makes the functions of u that call one of names (defined
// elsewhere) changed functions of u, so that the patch redirects them; it
// returns how many it added. A reference to one of names that is not a
// call is refused: the address would keep reaching the old code.
func (u *unit) forceCallers(names map[string]bool) (int, error) {
	obj := u.after
	for n := range names {
		if err := addressTaken(obj, n, false); err != nil {
			return 0, err
		}
	}
	in := map[string]bool{}
	for _, c := range u.changes.Changed {
		in[c.Name] = true
	}
	for _, f := range u.changes.New {
		in[f.Name] = true
	}
	added := 0
	for _, f := range elfobj.Functions(obj) {
		var calls []string
		for _, r := range f.Refs {
			if r.Section == nil && r.Shndx == elf.SHN_UNDEF && names[r.Name] {
				calls = append(calls, r.Name)
			}
		}
		if len(calls) == 0 || in[f.Name] || bootOnly(u.object, f) {
			continue
		}
		in[f.Name] = true
		calls = uniq(calls)
		why := "calls " + strings.Join(calls, ", ") + ", which the patch changes but cannot redirect"
		u.changes.Changed = append(u.changes.Changed, elfobj.FuncChange{Name: f.Name, Before: f, After: f, Reasons: []string{why}})
		u.result.Callers = append(u.result.Callers, f.Name+" "+why)
		added++
	}
	return added, nil
}

// addressTaken refuses a reference to function name in obj that is not a
// direct call or jump to it: a pointer made from it, in code or data,
// would keep reaching the old code (and once the patch is removed, a
// pointer to its copy would dangle). Exports (__ksymtab) are not code
// paths of this kernel's build; debug information is not loaded. defined
// says name is obj's own function, referred to by symbol or section.
func addressTaken(obj *elfobj.File, name string, defined bool) error {
	var target *elfobj.Symbol
	for _, s := range obj.Symbols {
		if s.Name == name && (s.Type == elf.STT_FUNC) == defined && (s.Section != nil) == defined {
			target = s
			break
		}
	}
	if target == nil {
		return nil
	}
	for _, rs := range obj.Sections {
		if rs.Type != elf.SHT_RELA || rs.Target == nil {
			continue
		}
		sec := rs.Target
		if sec.Flags&elf.SHF_ALLOC == 0 || strings.Contains(sec.Name, "__ksymtab") || strings.HasPrefix(sec.Name, ".discard") || skipAddressSection[sec.Name] || specials[sec.Name] {
			continue
		}
		for _, r := range rs.Relocs {
			if r.Sym == nil {
				continue
			}
			if !relocTo(r, target) {
				continue
			}
			if sec.Flags&elf.SHF_EXECINSTR != 0 && branchAt(sec.Data, r.Offset) {
				continue
			}
			return refuse(refusal.AddressTaken, name, "%s has no ftrace entry, so the patch must replace its callers, but its address is taken (%s): code that calls it through that pointer would keep running the old %s", name, sec.Name, name)
		}
	}
	return nil
}

// skipAddressSection are sections whose references to a function are not
// pointers anything calls through (nor are the specials' entries, which
// point at instructions: one may be a function's first).
var skipAddressSection = map[string]bool{
	"__mcount_loc": true, "__patchable_function_entries": true, ".orc_unwind_ip": true,
	".discard.addressable": true, ".call_sites": true, ".retpoline_sites": true, ".return_sites": true,
	".static_call_sites": true, ".ibt_endbr_seal": true, ".export_symbol": true,
}

// callerSources finds the units of the kernel that may call one of names:
// those whose source names one, and those reading a header whose inline
// code or macros do (a declaration does not count). Units in have, and
// module units whose module does not use the name, are left out.
func callerSources(ctx context.Context, k *Kernel, ix *profile.Index, names []string, have map[string]bool) ([]*unit, error) {
	p := ix.Profile()
	word := regexp.MustCompile(`\b(?:` + strings.Join(quoteAll(names), "|") + `)\b`)
	mentions := func(path string, header bool) (bool, error) {
		data, err := os.ReadFile(filepath.Join(k.Tree.Dir, path))
		if os.IsNotExist(err) {
			return false, nil // generated during a build
		}
		if err != nil {
			return false, err
		}
		if !slices.ContainsFunc(names, func(n string) bool { return bytes.Contains(data, []byte(n)) }) {
			return false, nil
		}
		return namesIn(data, word, header), nil
	}
	var cands []profile.Unit
	seen := map[string]bool{}
	add := func(pu profile.Unit) {
		path := cmp.Or(pu.Built, pu.Object)
		key := path + "\x00" + pu.Source
		if !have[path] && strings.HasSuffix(pu.Source, ".c") && !seen[key] {
			seen[key] = true
			cands = append(cands, pu)
		}
	}
	for _, pu := range p.Units {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, err := mentions(pu.Source, false)
		if err != nil {
			return nil, err
		}
		if ok {
			add(pu)
		}
	}
	headers := make([]string, 0, len(p.Deps))
	for h := range p.Deps {
		if strings.HasSuffix(h, ".h") && !strings.HasPrefix(h, "/") {
			headers = append(headers, h)
		}
	}
	slices.Sort(headers)
	for _, h := range headers {
		ok, err := mentions(h, true)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		for _, i := range p.Deps[h] {
			add(p.Units[i])
		}
	}
	// Reading a module's symbols costs (6.12 ships them compressed): when
	// vmlinux alone has more callers than a patch follows, that is the
	// verdict.
	inVmlinux := 0
	for _, pu := range cands {
		if pu.Target == profile.Vmlinux {
			inVmlinux++
		}
	}
	var set unitSet
	for _, pu := range cands {
		if pu.Target != profile.Vmlinux {
			if inVmlinux > MaxCallerUnits {
				continue
			}
			st, err := k.Symbols(pu.Target)
			if err != nil || !slices.ContainsFunc(names, st.Uses) {
				continue // a module this kernel does not ship, or one that does not call them
			}
		}
		// Optional even when known: a caller unit that does not build
		// has no callers to patch, it does not refuse the fix.
		if u := set.add(pu); !pu.Possible {
			u.known = true
		}
	}
	out := set.list
	slices.SortFunc(out, func(a, b *unit) int { return strings.Compare(a.path, b.path) })
	return out, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = regexp.QuoteMeta(n)
	}
	return out
}

// namesIn says whether C source src uses a name word matches outside
// comments; in a header, only inside braces (inline code) or in a macro,
// so that the function's own prototype does not count.
func namesIn(src []byte, word *regexp.Regexp, header bool) bool {
	code := stripComments(src)
	locs := word.FindAllIndex(code, -1)
	if len(locs) == 0 {
		return false
	}
	if !header {
		return true
	}
	depth, next := 0, 0
	lineStart, inMacro := 0, false
	for i := 0; i < len(code) && next < len(locs); i++ {
		if i == locs[next][0] {
			if depth > 0 || inMacro {
				return true
			}
			next++
		}
		switch c := code[i]; c {
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		case '\n':
			continued := i > 0 && code[i-1] == '\\'
			lineStart = i + 1
			if !continued {
				inMacro = false
			}
		case '#':
			if strings.TrimSpace(string(code[lineStart:i])) == "" && bytes.HasPrefix(bytes.TrimLeft(code[i+1:], " \t"), []byte("define")) {
				inMacro = true
			}
		}
	}
	return false
}

// stripComments blanks C comments (keeping newlines) and the contents of
// string and character literals.
func stripComments(src []byte) []byte {
	out := make([]byte, len(src))
	copy(out, src)
	for i := 0; i < len(out); i++ {
		switch {
		case out[i] == '/' && i+1 < len(out) && out[i+1] == '*':
			j := i
			for ; j < len(out) && !(out[j] == '*' && j+1 < len(out) && out[j+1] == '/'); j++ {
				if out[j] != '\n' {
					out[j] = ' '
				}
			}
			for k := j; k < min(j+2, len(out)); k++ {
				out[k] = ' '
			}
			i = j + 1
		case out[i] == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		case out[i] == '"' || out[i] == '\'':
			q := out[i]
			for i++; i < len(out) && out[i] != q && out[i] != '\n'; i++ {
				if out[i] == '\\' && i+1 < len(out) {
					out[i] = ' '
					if i++; out[i] == '\n' {
						continue // a continued line keeps its newline
					}
				}
				out[i] = ' '
			}
		}
	}
	return out
}
