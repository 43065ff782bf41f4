// Package gauge decides, for a CVE and a kernel, whether the kernel is
// affected: first by version (the CNA's per-branch .dyad data and the fixes
// the kernel declares it carries), then by build (whether any file the fix
// touches is compiled into the kernel, and where). Every verdict carries its
// reason and the evidence for it.
package gauge

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Status is a verdict's outcome.
type Status string

const (
	Affected    Status = "affected"
	NotAffected Status = "not_affected"
	Unknown     Status = "unknown"
)

// Reason explains a verdict.
type Reason string

const (
	// Not affected:
	FixedInVersion   Reason = "fixed_in_version"   // the kernel's version has the fix
	FixedByKernel    Reason = "fixed_by_kernel"    // the kernel declares the fix (a backport)
	NotInRange       Reason = "not_in_range"       // no affected range reaches this version
	CodeNotCompiled  Reason = "code_not_compiled"  // none of the fixed files is built
	RejectedCVE      Reason = "rejected"           // the CNA rejected the CVE
	InRangeCompiled  Reason = "compiled"           // affected: in range and built
	InRangeNoProfile Reason = "no_build_profile"   // affected by version; build not checked
	HeaderUnresolved Reason = "header_unresolved"  // unknown: a header, no include data
	NoVersionData    Reason = "no_version_data"    // unknown: no usable .dyad lines
	PossiblyCompiled Reason = "possibly_compiled"  // affected: a static guess counted it in
	NoProgramFiles   Reason = "no_program_files"   // unknown: the record names no files
	BadVersionData   Reason = "bad_version_data"   // unknown: .dyad versions do not parse
	NotSourceFiles   Reason = "no_compiled_source" // not affected: only non-build files changed
)

// Verdict is the answer for one (CVE, kernel).
type Verdict struct {
	CVE    string `json:"cve"`
	Kernel string `json:"kernel"`
	Status Status `json:"status"`
	Reason Reason `json:"reason"`
	// TreatAsAffected is set on unknown verdicts that must be handled as
	// affected until someone knows better.
	TreatAsAffected bool `json:"treat_as_affected,omitempty"`
	// Where lists "vmlinux" and module names the affected code is built into.
	Where []string `json:"where,omitempty"`
	// Files are the fixed files with where each is built ("" when not).
	Files    []FileVerdict `json:"files,omitempty"`
	Evidence []string      `json:"evidence"`
}

// FileVerdict says where one of the fix's files is built.
type FileVerdict struct {
	Path    string   `json:"path"`
	Targets []string `json:"targets,omitempty"`
	// How: "compiled", "included" (a header or .c read by compiled units),
	// "possibly" (a static guess), "unresolved" or "not_compiled".
	How string `json:"how"`
}

// Counts reports whether the verdict needs action: affected, or unknown
// and treated as affected.
func (v *Verdict) Counts() bool {
	return v.Status == Affected || (v.Status == Unknown && v.TreatAsAffected)
}

// Kernel is what the gauge needs to know of a kernel.
type Kernel struct {
	Name    string
	Version vulns.Version
	// FixedCVEs and FixedCommits are fixes the kernel declares beyond its
	// version.
	FixedCVEs    map[string]bool
	FixedCommits []string // full or abbreviated (≥ 12 hex digits) commit IDs
	// Profile is nil when the kernel has none yet; the build check is then
	// skipped and said so.
	Profile *profile.Index
}

// Gauge judges records against one kernel.
type Gauge struct {
	k    Kernel
	base vulns.Version
}

// New prepares a gauge for k.
func New(k Kernel) (*Gauge, error) {
	if k.Version.IsZero() {
		return nil, fmt.Errorf("gauge kernel %s: no version", k.Name)
	}
	// A stable kernel has everything mainline had when its branch forked;
	// a mainline kernel (or release candidate) is its own branch point.
	base := k.Version
	if !base.IsMainline() {
		var err error
		if base, err = vulns.ParseVersion(k.Version.Branch()); err != nil {
			return nil, fmt.Errorf("gauge kernel %s: %w", k.Name, err)
		}
	}
	return &Gauge{k: k, base: base}, nil
}

// Record is a CVE record with its version data parsed once, for judging
// against many kernels.
type Record struct {
	*vulns.Record
	lines []branchLine
	bad   []string
}

// Prepare parses r's version data.
func Prepare(r *vulns.Record) Record {
	lines, bad := parseLines(r.Branches)
	return Record{Record: r, lines: lines, bad: bad}
}

// PrepareAll prepares every record of recs.
func PrepareAll(recs []vulns.Record) []Record {
	out := make([]Record, len(recs))
	for i := range recs {
		out[i] = Prepare(&recs[i])
	}
	return out
}

// Judge gives the verdict for one record.
func (g *Gauge) Judge(r *vulns.Record) Verdict {
	p := Prepare(r)
	return g.JudgePrepared(&p)
}

// JudgePrepared gives the verdict for one prepared record.
func (g *Gauge) JudgePrepared(p *Record) Verdict {
	r := p.Record
	v := Verdict{CVE: r.ID, Kernel: g.k.Name}
	if r.Status == vulns.StatusRejected {
		v.Status, v.Reason = NotAffected, RejectedCVE
		v.Evidence = []string{"the CNA rejected this CVE"}
		return v
	}
	lines, bad := p.lines, p.bad
	switch {
	case len(lines) == 0:
		if c := g.declaredFix(r); c != "" {
			v.Status, v.Reason = NotAffected, FixedByKernel
			v.Evidence = []string{c}
			return v
		}
	}
	switch {
	case len(lines) == 0 && len(bad) > 0:
		v.Status, v.Reason, v.TreatAsAffected = Unknown, BadVersionData, true
		v.Evidence = []string{"the .dyad versions do not parse (" + strings.Join(bad, ", ") + "): treated as affected"}
		return v
	case len(lines) == 0:
		v.Status, v.Reason, v.TreatAsAffected = Unknown, NoVersionData, true
		v.Evidence = []string{"the record has no per-branch version data (.dyad): treated as affected"}
		return v
	}
	ans := versionVerdict(lines, g.k.Version, g.base)
	v.Evidence = append(v.Evidence, "version: "+ans.evidence)
	if !ans.affected {
		v.Status, v.Reason = NotAffected, ans.reason
		return v
	}
	// A declared fix (a distribution backport) overrides an affected
	// version answer; it never turns "not in range" into "fixed".
	if c := g.declaredFix(r); c != "" {
		v.Status, v.Reason = NotAffected, FixedByKernel
		v.Evidence = append(v.Evidence, c)
		return v
	}
	g.judgeBuild(r, &v)
	return v
}

// declaredFix names the kernel's declaration that covers r, or "".
func (g *Gauge) declaredFix(r *vulns.Record) string {
	if g.k.FixedCVEs[r.ID] {
		return "the kernel declares " + r.ID + " fixed"
	}
	if len(g.k.FixedCommits) == 0 {
		return ""
	}
	commits := slices.Clone(r.FixCommits)
	for _, b := range r.Branches {
		if b.FixedCommit != "" {
			commits = append(commits, b.FixedCommit)
		}
	}
	for _, have := range g.k.FixedCommits {
		for _, c := range commits {
			if strings.HasPrefix(c, have) || strings.HasPrefix(have, c) && len(c) >= 12 {
				return "the kernel declares fix commit " + short(c)
			}
		}
	}
	return ""
}

// judgeBuild settles an in-range record by what the kernel compiles.
func (g *Gauge) judgeBuild(r *vulns.Record, v *Verdict) {
	if g.k.Profile == nil {
		v.Status, v.Reason = Affected, InRangeNoProfile
		v.Evidence = append(v.Evidence, "build: no build profile for this kernel, compiled code not checked")
		return
	}
	if len(r.ProgramFiles) == 0 {
		v.Status, v.Reason, v.TreatAsAffected = Unknown, NoProgramFiles, true
		v.Evidence = append(v.Evidence, "build: the record names no program files: treated as affected")
		return
	}
	p := g.k.Profile.Profile()
	var where []string
	var compiled, possible, unresolved int
	var anySource bool
	for _, f := range r.ProgramFiles {
		fv := FileVerdict{Path: f}
		w, ok := g.k.Profile.Lookup(f)
		kind := fileKind(f)
		anySource = anySource || kind != otherFile
		switch {
		case ok && w.Possible:
			fv.How, fv.Targets = "possibly", w.Targets
			possible++
		case ok && w.Direct:
			fv.How, fv.Targets = "compiled", w.Targets
			compiled++
		case ok:
			fv.How, fv.Targets = "included", w.Targets
			compiled++
		case kind == headerFile && !p.HeaderDeps():
			// A static profile without the include graph does not know
			// which units read a header.
			fv.How = "unresolved"
			unresolved++
		default:
			fv.How = "not_compiled"
		}
		where = append(where, fv.Targets...)
		v.Files = append(v.Files, fv)
	}
	slices.SortFunc(where, profile.CompareTargets)
	v.Where = slices.Compact(where)
	switch {
	case compiled > 0:
		v.Status, v.Reason = Affected, InRangeCompiled
		v.Evidence = append(v.Evidence, fmt.Sprintf("build (%s profile): %s", p.Kind, describeFiles(v.Files)))
	case possible > 0:
		v.Status, v.Reason = Affected, PossiblyCompiled
		v.Evidence = append(v.Evidence, fmt.Sprintf("build (%s profile): %s; the static evaluator could not decide, so counted in", p.Kind, describeFiles(v.Files)))
	case unresolved > 0:
		v.Status, v.Reason, v.TreatAsAffected = Unknown, HeaderUnresolved, true
		v.Evidence = append(v.Evidence, fmt.Sprintf("build (%s profile): %s; a static profile does not know which units include a header: treated as affected", p.Kind, describeFiles(v.Files)))
	case !anySource:
		v.Status, v.Reason = NotAffected, NotSourceFiles
		v.Evidence = append(v.Evidence, "build: the fix changes no kernel source file ("+strings.Join(r.ProgramFiles, ", ")+")")
	default:
		v.Status, v.Reason = NotAffected, CodeNotCompiled
		v.Evidence = append(v.Evidence, fmt.Sprintf("build (%s profile): not compiled: %s", p.Kind, strings.Join(r.ProgramFiles, ", ")))
	}
}

func describeFiles(fs []FileVerdict) string {
	var parts []string
	for _, f := range fs {
		switch f.How {
		case "not_compiled", "unresolved":
			parts = append(parts, f.Path+" "+strings.ReplaceAll(f.How, "_", " "))
		default:
			parts = append(parts, fmt.Sprintf("%s %s into %s", f.Path, f.How, targetList(f.Targets)))
		}
	}
	return strings.Join(parts, "; ")
}

func targetList(ts []string) string {
	const show = 5
	if len(ts) <= show {
		return strings.Join(ts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ts[:show], ", "), len(ts)-show)
}

type fileClass int

const (
	otherFile fileClass = iota
	sourceFile
	headerFile
)

func fileKind(f string) fileClass {
	if strings.HasPrefix(f, "tools/") || strings.HasPrefix(f, "Documentation/") || strings.HasPrefix(f, "scripts/") {
		return otherFile
	}
	switch path.Ext(f) {
	case ".c", ".S", ".rs":
		return sourceFile
	case ".h":
		return headerFile
	}
	return otherFile
}

// ForKernel prepares a gauge for a stored kernel and its profile (nil when
// it has none).
func ForKernel(k *kernel.Kernel, p *profile.Profile) (*Gauge, error) {
	gk := Kernel{Name: k.Name, Version: k.ParsedVersion(), FixedCommits: k.FixedCommits, FixedCVEs: map[string]bool{}}
	for _, id := range k.FixedCVEs {
		gk.FixedCVEs[id] = true
	}
	if p != nil {
		gk.Profile = profile.NewIndex(p)
	}
	return New(gk)
}
