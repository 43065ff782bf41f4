// Package kbuild answers which source files a kernel configuration compiles,
// and where each one ends up (vmlinux or a named module): from a real build's
// kbuild records, or statically from the Kbuild Makefiles and a .config.
package profile

import (
	"slices"
	"strings"
)

// Kind says how a profile was made.
type Kind string

const (
	// KindReal profiles come from a finished build's .cmd files.
	KindReal Kind = "real"
	// KindStatic profiles come from evaluating Makefiles against a .config.
	KindStatic Kind = "static"
)

// Vmlinux is the Target of units linked into the kernel image.
const Vmlinux = "vmlinux"

// Unit is one compiled object and the source file it is compiled from.
type Unit struct {
	Source string `json:"source"` // fs/ext4/inode.c (relative to the source root)
	Object string `json:"object"` // fs/ext4/inode.o
	Target string `json:"target"` // "vmlinux" or a module name ("ext4")
	// Built is the path kbuild built the object under when it is not
	// Object: a Makefile that names an object in another directory
	// (arch/x86/kvm/../../../virt/kvm/eventfd.o). Building that path gets
	// the flags of the Makefile that owns it (-DMODULE, KBUILD_MODNAME).
	Built string `json:"built,omitempty"`
	// Possible marks a static answer given conservatively: the evaluator
	// met a construct it could not decide and counted the unit in.
	Possible bool `json:"possible,omitempty"`
}

// Profile is a kernel configuration's build profile.
type Profile struct {
	Kind  Kind   `json:"kind"`
	Units []Unit `json:"units"` // sorted by Source, then Object
	// Deps maps every other file a unit's compilation read (headers, and
	// .c files #included by another .c) to the indices of those units in
	// Units. Real profiles have every header; static ones only the .c
	// files found in #include lines, unless Headers is set.
	Deps map[string][]int32 `json:"deps,omitempty"`
	// Headers is set on a static profile whose Deps also hold the headers
	// of the static include graph: every header of the tree a unit may
	// read (counted in when a conditional or a macro leaves it open), so
	// a header's units are a superset of a real build's, bar headers
	// only reached through files generated during the build.
	Headers bool `json:"headers,omitempty"`
	// Warnings are the constructs a static evaluation could not decide.
	Warnings []string `json:"warnings,omitempty"`
}

// HeaderDeps reports whether Deps may be trusted for headers: a real
// profile, or a static one with the include graph.
func (p *Profile) HeaderDeps() bool { return p.Kind == KindReal || p.Headers }

// Sort puts Units in their canonical order. Deps indices refer to positions
// in Units, so call it before filling Deps.
func (p *Profile) Sort() {
	slices.SortFunc(p.Units, func(a, b Unit) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return strings.Compare(a.Object, b.Object)
	})
}

// Where tells where a source file or dependency is compiled in.
type Where struct {
	// Targets are "vmlinux" and module names, sorted, without repeats.
	Targets []string
	// Direct is true when the file is itself a unit's source; false when it
	// is only read by units (a header, an #included .c).
	Direct bool
	// Possible is true when every unit that puts the file in is a
	// conservative static guess.
	Possible bool
}

// CompareTargets orders targets: vmlinux first (it matters most, and a
// long list would hide it), then modules by name.
func CompareTargets(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == Vmlinux:
		return -1
	case b == Vmlinux:
		return 1
	}
	return strings.Compare(a, b)
}

// Index is a profile prepared for lookups by file.
type Index struct {
	p      *Profile
	source map[string][]int32
}

// NewIndex indexes p by source file.
func NewIndex(p *Profile) *Index {
	ix := &Index{p: p, source: make(map[string][]int32, len(p.Units))}
	for i, u := range p.Units {
		ix.source[u.Source] = append(ix.source[u.Source], int32(i))
	}
	return ix
}

// Profile returns the indexed profile.
func (ix *Index) Profile() *Profile { return ix.p }

// Lookup says where path is compiled; ok is false when no unit compiles or
// reads it.
func (ix *Index) Lookup(path string) (w Where, ok bool) {
	units, direct := ix.source[path]
	if !direct {
		units = ix.p.Deps[path]
	}
	if len(units) == 0 {
		return Where{}, false
	}
	w.Direct = direct
	w.Possible = true
	for _, i := range units {
		u := ix.p.Units[i]
		w.Targets = append(w.Targets, u.Target)
		w.Possible = w.Possible && u.Possible
	}
	slices.SortFunc(w.Targets, CompareTargets)
	w.Targets = slices.Compact(w.Targets)
	return w, true
}

// Units returns the units that compile or read path.
func (ix *Index) Units(path string) []Unit {
	units, ok := ix.source[path]
	if !ok {
		units = ix.p.Deps[path]
	}
	out := make([]Unit, 0, len(units))
	for _, i := range units {
		out = append(out, ix.p.Units[i])
	}
	return out
}

// Sources returns the set of files compiled as units.
func (p *Profile) Sources() map[string]bool {
	s := make(map[string]bool, len(p.Units))
	for _, u := range p.Units {
		s[u.Source] = true
	}
	return s
}
