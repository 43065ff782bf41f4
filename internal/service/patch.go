package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/fixsource"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/build/vmcheck"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// TargetSpec names the kernel a patch is for: a stored kernel's name, a
// Debian kernel as "debian:RELEASE=VERSION", or (Kernel empty) a custom
// kernel's parts.
type TargetSpec struct {
	Kernel string
	Custom target.CustomOptions
}

// ResolveTarget sets up the kernel a patch is built for: its packages,
// its prepared source and, for a stored kernel, its real build profile
// when it has one (else the generator evaluates the static one).
func (s *Service) ResolveTarget(ctx context.Context, t TargetSpec) (*target.Kernel, error) {
	log := s.log.With("component", "klp")
	debs := debpkg.Options{CacheDir: s.debsDir(), Logger: log}
	if spec, ok := strings.CutPrefix(t.Kernel, "debian:"); ok {
		release, version, ok := strings.Cut(spec, "=")
		if !ok || release == "" || version == "" {
			return nil, invalidf("--kernel %q: want debian:RELEASE=VERSION, or the name of a kernel from `tuxtape kernel list`", t.Kernel)
		}
		return target.Debian(ctx, debs, release, version, s.treesDir(), log)
	}
	if t.Kernel != "" {
		return s.namedTarget(ctx, t.Kernel, debs, log)
	}
	c := t.Custom
	if c.Source == "" || c.Config == "" || c.Headers == "" || c.Symbols == "" || c.Modules == "" {
		return nil, invalidf("give --kernel, or all of --source, --kconfig, --headers, --symbols and --modules")
	}
	// The tree is prepared from the config later; a FIFO or device there
	// would block or never end.
	if err := CheckRegularFile("--kconfig", c.Config, MaxKernelConfig); err != nil {
		return nil, err
	}
	c.TreesDir, c.Log = s.treesDir(), log
	return target.Custom(ctx, c)
}

func (s *Service) namedTarget(ctx context.Context, name string, debs debpkg.Options, log *slog.Logger) (*target.Kernel, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := st.Kernel(ctx, name)
	if err != nil {
		// Not a NotFoundError: the remedy is given here, with the
		// debian: alternative.
		return nil, fmt.Errorf("--kernel: %w (see `tuxtape kernel list`, add it with `tuxtape kernel add`, or give debian:RELEASE=VERSION)", err)
	}
	if rec.Debian == nil {
		return nil, invalidf("kernel %s is not a Debian kernel: give its --source, --kconfig, --headers, --symbols and --modules instead", rec.Name)
	}
	k, err := target.Debian(ctx, debs, rec.Release, rec.Debian.Version, s.treesDir(), log)
	if err != nil {
		return nil, err
	}
	// The real profile when the kernel was built, else the static one
	// stored with it; with neither the generator evaluates the Makefiles
	// itself. Either way it decides what is compiled from a profile.
	for _, kind := range []profile.Kind{profile.KindReal, profile.KindStatic} {
		p, _, err := st.Profile(ctx, rec.Name, kind)
		switch {
		case err == nil:
			k.Profile = profile.NewIndex(p)
			return k, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	return k, nil
}

// PatchOptions shape one livepatch build.
type PatchOptions struct {
	Fixes   []klp.Fix
	Name    string // module name
	Replace bool   // cumulative: replaces every earlier patch
	// AllowInitChanges builds the runtime part of a fix that also
	// changes __init/__exit code (klp.Options.AllowInitChanges).
	AllowInitChanges bool
	Out              string // the .ko to write
	WorkDir          string // scratch space (default: a temporary directory)
}

// BuildPatch turns fixes into one livepatch module for k. A fix that does
// not become one is a *klp.Refusal.
func (s *Service) BuildPatch(ctx context.Context, k *target.Kernel, o PatchOptions) (*klp.Result, error) {
	if len(o.Fixes) == 0 || o.Out == "" {
		return nil, invalidf("patch build needs at least one --fix and -o OUT.ko")
	}
	return klp.Build(ctx, k.Kernel, klp.Options{Fixes: o.Fixes, Name: o.Name, Replace: o.Replace, AllowInitChanges: o.AllowInitChanges, Out: o.Out, WorkDir: o.WorkDir, Log: s.log.With("component", "klp")})
}

// TryPatch runs a built module through its life in a VM of k.
func (s *Service) TryPatch(ctx context.Context, k *target.Kernel, ko, name string, modules []string, exercise string) (*vmcheck.Report, error) {
	if _, err := os.Stat(ko); err != nil {
		return nil, fmt.Errorf("livepatch module: %w", err)
	}
	if k.Vmlinuz == "" {
		return nil, invalidf("patch try needs --kernel (a bootable image)")
	}
	return vmcheck.Check(ctx, k.VM(), ko, name, modules, exercise)
}

// ModuleName is a module name made from a file name: lower-case letters,
// digits and underscores.
func ModuleName(name, out string) string {
	if name != "" {
		return name
	}
	base := strings.TrimSuffix(filepath.Base(out), ".ko")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, base)
}

// ReadFixes reads fix files: regular files of at most MaxFixDiff bytes
// that are unified diffs.
func ReadFixes(paths []string) ([]klp.Fix, error) {
	var fixes []klp.Fix
	for _, p := range paths {
		d, err := ReadRegularFile("fix", p, MaxFixDiff)
		if err != nil {
			return nil, err
		}
		if err := checkDiff(p, d); err != nil {
			return nil, err
		}
		fixes = append(fixes, klp.Fix{Name: filepath.Base(p), Diff: d})
	}
	return fixes, nil
}

// CorpusEntry is the outcome for one fix of a corpus.
type CorpusEntry struct {
	ID      string           `json:"id"`
	Class   string           `json:"class"`
	Code    refusal.Code     `json:"code,omitempty"`
	Reason  string           `json:"reason,omitempty"`
	Objects []string         `json:"objects,omitempty"`
	Changed []string         `json:"changed,omitempty"`
	Seconds float64          `json:"build_seconds"`
	VM      *vmcheck.Report  `json:"vm,omitempty"`
	Units   []klp.UnitResult `json:"units,omitempty"`
	// Base: the fix changes only .c files the kernel compiles.
	Base bool `json:"base,omitempty"`
	// Prerequisites: for a fix that does not compile, what the fix source
	// offers for the names it lacks, and the outcome with them added.
	Prerequisites *CorpusPrerequisites `json:"prerequisites,omitempty"`
}

// CorpusPrerequisites is a fix's second try, with its prerequisites.
type CorpusPrerequisites struct {
	Files      []string        `json:"files,omitempty"`
	Rounds     int             `json:"rounds,omitempty"` // lookups that found something
	Unresolved []string        `json:"unresolved,omitempty"`
	Class      string          `json:"class"`
	Code       refusal.Code    `json:"code,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	VM         *vmcheck.Report `json:"vm,omitempty"`
}

// Corpus classes.
const (
	ClassNotCompiled      = "not compiled"
	ClassNotLivepatchable = "not livepatchable"
	ClassNoChange         = "no functional change"
	ClassBuilt            = "module built"
	ClassLoaded           = "loaded, transitioned, clean"
	ClassLoadedAbsent     = "loaded, target module absent in VM"
	ClassVMFailed         = "built, failed in VM"
	ClassFixIncomplete    = "fix does not compile"
	ClassFixDoesNotApply  = "fix does not apply"
	ClassFailed           = "failed"
)

// CorpusClasses in the order summaries list them.
var CorpusClasses = []string{ClassLoaded, ClassLoadedAbsent, ClassBuilt, ClassVMFailed, ClassNotLivepatchable, ClassNoChange, ClassNotCompiled, ClassFixIncomplete, ClassFixDoesNotApply, ClassFailed}

// corpusClass is the corpus class of a refusal class.
func corpusClass(c refusal.Class) string {
	switch c {
	case refusal.ClassNotCompiled:
		return ClassNotCompiled
	case refusal.ClassNotLivepatchable:
		return ClassNotLivepatchable
	case refusal.ClassNoChange:
		return ClassNoChange
	case refusal.ClassFixDoesNotCompile:
		return ClassFixIncomplete
	case refusal.ClassFixDoesNotApply:
		return ClassFixDoesNotApply
	}
	return ClassFailed
}

// CorpusOptions shape a corpus run.
type CorpusOptions struct {
	Dir   string   // the corpus: Dir/patches/*.patch
	Only  []string // only these IDs (file names without .patch)
	Limit int
	VM    bool // load each module in a VM
	// AllowInitChanges: see PatchOptions.
	AllowInitChanges bool
	// PrerequisitesFrom is a Debian fix source (debian:linux-source-X.Y=
	// VERSION, the later package the corpus's fixes were cut from): a fix
	// that does not compile gets its prerequisites looked up there and is
	// tried again with them (CorpusEntry.Prerequisites).
	PrerequisitesFrom string
	// OnEntry hears each entry as it is done.
	OnEntry func(entries []CorpusEntry)
}

// CorpusPatches lists a corpus's patch files, sorted.
func CorpusPatches(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "patches", "*.patch"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no patches in %s/patches (want *.patch files)", dir)
	}
	return paths, nil
}

// Corpus runs every fix of a corpus through the generator on its own and
// classifies it. A cancelled run stops with ctx's error.
func (s *Service) Corpus(ctx context.Context, k *target.Kernel, o CorpusOptions) ([]CorpusEntry, error) {
	paths, err := CorpusPatches(o.Dir)
	if err != nil {
		return nil, err
	}
	only := map[string]bool{}
	for _, id := range o.Only {
		only[id] = true
	}
	work, err := os.MkdirTemp("", "tuxtape-corpus-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	// The profile the generator decides with: stored, or the static one
	// it evaluates.
	ix := k.Profile
	if ix == nil {
		if ix, err = k.Kernel.BuildProfile(ctx); err != nil {
			return nil, err
		}
	}
	var prereqs fixSource
	if o.PrerequisitesFrom != "" {
		if !strings.HasPrefix(o.PrerequisitesFrom, "debian:") {
			return nil, invalidf("--prerequisites-from %q: a corpus's fixes are not commits: want debian:linux-source-X.Y=VERSION, the package they were cut from", o.PrerequisitesFrom)
		}
		if prereqs, err = s.openFixSource(ctx, o.PrerequisitesFrom, func() (string, error) { return k.Tree.Dir, nil }); err != nil {
			return nil, err
		}
	}
	var entries []CorpusEntry
	for _, p := range paths {
		id := strings.TrimSuffix(filepath.Base(p), ".patch")
		if len(only) > 0 && !only[id] {
			continue
		}
		if o.Limit > 0 && len(entries) >= o.Limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return entries, err
		}
		e, err := s.corpusOne(ctx, k, p, id, work, o, prereqs)
		if err != nil {
			return entries, err
		}
		e.Base = GoalBase(ix, p)
		entries = append(entries, e)
		if o.OnEntry != nil {
			o.OnEntry(entries)
		}
	}
	return entries, nil
}

// GoalBase says whether the fix at path changes only .c files that the
// kernel's build profile (real, or static and not a guess) compiles; false
// without a profile.
func GoalBase(ix *profile.Index, path string) bool {
	if ix == nil {
		return false
	}
	diff, err := ReadRegularFile("fix", path, MaxFixDiff)
	if err != nil {
		return false
	}
	files := ktree.PatchFiles(diff)
	for _, f := range files {
		if !strings.HasSuffix(f, ".c") || !slices.ContainsFunc(ix.Units(f), func(u profile.Unit) bool { return !u.Possible }) {
			return false
		}
	}
	return len(files) > 0
}

// corpusOne builds one fix; only a cancelled ctx is an error.
func (s *Service) corpusOne(ctx context.Context, k *target.Kernel, path, id, work string, o CorpusOptions, prereqs fixSource) (CorpusEntry, error) {
	e := CorpusEntry{ID: id}
	fixes, err := ReadFixes([]string{path})
	if err != nil {
		e.Class, e.Reason = ClassFailed, err.Error()
		return e, nil
	}
	name := ModuleName("", "tt_"+strings.ToLower(strings.ReplaceAll(id, "-", "_")))
	start := time.Now()
	try, errs, err := s.corpusTry(ctx, k, fixes, name, work, o)
	e.Seconds = time.Since(start).Seconds()
	if err != nil {
		return e, err
	}
	e.Class, e.Code, e.Reason, e.VM = try.class, try.code, try.reason, try.vm
	if try.res != nil {
		e.Units = try.res.Units
		for _, u := range try.res.Units {
			e.Objects = append(e.Objects, u.Object)
			e.Changed = append(e.Changed, u.Changed...)
		}
	}
	if prereqs == nil || e.Class != ClassFixIncomplete {
		return e, nil
	}
	// Prerequisites may need their own (a header that includes a header
	// added in the same window): a few rounds, each from the last try's
	// compiler errors.
	pe := &CorpusPrerequisites{}
	e.Prerequisites = pe
	tried := fixes
	for round := 1; round <= maxPrerequisiteRounds; round++ {
		var all []byte
		for _, f := range tried {
			all = append(all, f.Diff...)
		}
		fix := &fixsource.Fix{CVE: id, Diff: all, Kind: fixsource.KindDebian, From: k.Tree.Version, To: laterVersion(prereqs), Files: ktree.PatchFiles(all)}
		p, err := findPrerequisites(ctx, prereqs, o.PrerequisitesFrom, fix, errs)
		switch {
		case ctx.Err() != nil:
			return e, ctx.Err()
		case err != nil && round == 1:
			pe.Class, pe.Reason = ClassFailed, err.Error()
			if errors.Is(err, ErrNoMissingNames) {
				pe.Class = ClassFixIncomplete // conflicting types and the like: a person's work
			}
			return e, nil
		case err != nil:
			return e, nil // the last try's outcome stands
		}
		pe.Unresolved = pe.Unresolved[:0]
		for _, m := range p.Unresolved {
			pe.Unresolved = append(pe.Unresolved, m.Name)
		}
		if len(p.Found) == 0 {
			if round == 1 {
				pe.Class, pe.Reason = ClassFixIncomplete, "no prerequisite found for "+strings.Join(pe.Unresolved, ", ")
			}
			return e, nil
		}
		pe.Files, pe.Rounds = append(pe.Files, p.Files()...), round
		tried = append(tried, p.Fixes()...)
		again, more, err := s.corpusTry(ctx, k, tried, name, work, o)
		if err != nil {
			return e, err
		}
		pe.Class, pe.Code, pe.Reason, pe.VM = again.class, again.code, again.reason, again.vm
		if again.class != ClassFixIncomplete {
			return e, nil
		}
		errs = more
	}
	return e, nil
}

// maxPrerequisiteRounds bounds the lookups for one corpus fix.
const maxPrerequisiteRounds = 3

// laterVersion is a Debian fix source's package version.
func laterVersion(src fixSource) string {
	if d, ok := src.(*fixsource.Debian); ok {
		return d.LaterVersion
	}
	return ""
}

// corpusOutcome is one build (and VM run) of a corpus fix.
type corpusOutcome struct {
	class  string
	code   refusal.Code
	reason string
	res    *klp.Result
	vm     *vmcheck.Report
}

// corpusTry builds fixes into one module and, with o.VM, runs it in the
// VM; it returns the compiler errors of a fix that does not compile.
// Only a cancelled ctx is an error.
func (s *Service) corpusTry(ctx context.Context, k *target.Kernel, fixes []klp.Fix, name, work string, o CorpusOptions) (corpusOutcome, []string, error) {
	var c corpusOutcome
	out := filepath.Join(work, name+".ko")
	defer os.Remove(out)
	wd := filepath.Join(work, "w-"+name)
	res, err := s.BuildPatch(ctx, k, PatchOptions{Fixes: fixes, Name: name, Replace: true, AllowInitChanges: o.AllowInitChanges, Out: out, WorkDir: wd})
	os.RemoveAll(wd)
	if ctx.Err() != nil {
		return c, nil, ctx.Err()
	}
	c.res = res
	if err != nil {
		c.class, c.reason = ClassFailed, err.Error()
		r, ok := klp.AsRefusal(err)
		if !ok {
			return c, nil, nil
		}
		c.class, c.code = corpusClass(r.Code.Class()), r.Code
		return c, r.Errors, nil
	}
	c.class = ClassBuilt
	if !o.VM {
		return c, nil, nil
	}
	var objects []string
	for _, u := range res.Units {
		objects = append(objects, u.Object)
	}
	r, err := vmcheck.Check(ctx, k.VM(), out, name, objects, "")
	if err != nil {
		if ctx.Err() != nil {
			return c, nil, ctx.Err()
		}
		c.class, c.reason = ClassVMFailed, err.Error()
		return c, nil, nil
	}
	c.vm = r
	switch {
	case !r.OK():
		c.class, c.reason = ClassVMFailed, r.Summary()
	case len(r.Absent) > 0:
		c.class = ClassLoadedAbsent
		c.reason = fmt.Sprintf("%s cannot load in the VM (no such device or hypervisor there): the livepatch loaded and transitioned without it, its functions registered but not patched", strings.Join(r.Absent, ", "))
	default:
		c.class = ClassLoaded
	}
	return c, nil, nil
}
