package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/ktree"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

func newPatchCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patch",
		Short: "Turn kernel fixes into livepatch modules",
	}
	cmd.AddCommand(newPatchBuildCmd(g), newPatchCorpusCmd(g), newPatchTryCmd(g))
	return cmd
}

// KernelFlags select the target kernel of a patch.
type KernelFlags struct {
	Kernel  string // debian:RELEASE=VERSION
	Source  string
	Config  string
	Headers string
	Symbols string
	Modules string
}

func (kf *KernelFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&kf.Kernel, "kernel", "", "target kernel: a name from `tuxtape kernel list` (a Debian kernel), or debian:RELEASE=VERSION, e.g. debian:6.1.0-50-cloud-amd64=6.1.176-1 (its image, -dbg, headers and source packages are fetched and cached)")
	f.StringVar(&kf.Source, "source", "", "kernel source: tarball or directory (instead of --kernel)")
	f.StringVar(&kf.Config, "config", "", "the kernel's .config (with --source)")
	f.StringVar(&kf.Headers, "headers", "", "the kernel's build tree for external modules, with Module.symvers (with --source)")
	f.StringVar(&kf.Symbols, "symbols", "", "vmlinux with its symbol table, or the real System.map (with --source)")
	f.StringVar(&kf.Modules, "modules", "", "the kernel's /lib/modules/RELEASE directory (with --source)")
}

func (kf *KernelFlags) resolve(ctx context.Context, g *Globals) (*klp.Kernel, error) {
	trees := filepath.Join(g.cfg.CacheDir, "trees")
	log := g.log.With("component", "klp")
	if spec, ok := strings.CutPrefix(kf.Kernel, "debian:"); ok {
		release, version, ok := strings.Cut(spec, "=")
		if !ok || release == "" || version == "" {
			return nil, usagef("--kernel %q: want debian:RELEASE=VERSION, or the name of a kernel from `tuxtape kernel list`", kf.Kernel)
		}
		return klp.DebianKernel(ctx, debpkg.Options{CacheDir: filepath.Join(g.cfg.CacheDir, "debs"), Logger: log}, release, version, trees, log)
	}
	if kf.Kernel != "" {
		return kf.named(ctx, g, trees)
	}
	if kf.Source == "" || kf.Config == "" || kf.Headers == "" || kf.Symbols == "" || kf.Modules == "" {
		return nil, usagef("give --kernel, or all of --source, --config, --headers, --symbols and --modules")
	}
	abs, err := filepath.Abs(kf.Source)
	if err != nil {
		return nil, err
	}
	tree, err := ktree.Prepare(ctx, ktree.PrepareOptions{Tarball: abs, Config: kf.Config, Dir: filepath.Join(trees, "custom-"+filepath.Base(abs)), Log: log})
	if err != nil {
		return nil, err
	}
	exports, err := klp.ReadSymvers(filepath.Join(kf.Headers, "Module.symvers"))
	if err != nil {
		return nil, err
	}
	return &klp.Kernel{Tree: tree, HeadersDir: kf.Headers, Vmlinux: kf.Symbols, ModulesDir: kf.Modules, Exports: exports}, nil
}

// named resolves a stored kernel record: its Debian packages, and its real
// build profile when it has one (which lets fixes to headers be handled).
func (kf *KernelFlags) named(ctx context.Context, g *Globals, trees string) (*klp.Kernel, error) {
	log := g.log.With("component", "klp")
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rec, err := st.Kernel(ctx, kf.Kernel)
	if err != nil {
		return nil, fmt.Errorf("--kernel: %w (add it with `tuxtape kernel add`, or give debian:RELEASE=VERSION)", err)
	}
	if rec.Debian == nil {
		return nil, usagef("kernel %s is not a Debian kernel: give its --source, --config, --headers, --symbols and --modules instead", rec.Name)
	}
	k, err := klp.DebianKernel(ctx, debpkg.Options{CacheDir: filepath.Join(g.cfg.CacheDir, "debs"), Logger: log}, rec.Release, rec.Debian.Version, trees, log)
	if err != nil {
		return nil, err
	}
	p, _, err := st.Profile(ctx, rec.Name, profile.KindReal)
	switch {
	case err == nil:
		k.Profile = profile.NewIndex(p)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return k, nil
}

// PatchBuildOptions are the flags of `tuxtape patch build`.
type PatchBuildOptions struct {
	KernelFlags
	Fixes     []string
	Name      string
	NoReplace bool
	Out       string
	JSON      bool
}

func newPatchBuildCmd(g *Globals) *cobra.Command {
	var o PatchBuildOptions
	cmd := &cobra.Command{
		Use:   "build --kernel debian:RELEASE=VERSION --fix FILE.patch [--fix …] -o OUT.ko",
		Short: "Build a livepatch module from one or more fixes",
		Long: `build applies the fixes to the kernel's exact source, compiles only the compile
units they change (before and after, with -ffunction-sections -fdata-sections),
compares the objects function by function, and builds one livepatch module
(cumulative, replace=true, unless --no-replace) that redirects the changed
functions. References the module loader cannot resolve become livepatch
relocations, written into the final .ko.

A fix that cannot be livepatched as it is (changed data, __init code, no ftrace
entry, headers, assembly…) is refused with the reason (exit code 4).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPatchBuild(cmd.Context(), g, o)
		},
	}
	o.KernelFlags.add(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&o.Fixes, "fix", nil, "a unified diff (-p1) to apply; repeat for a cumulative module")
	f.StringVar(&o.Name, "name", "", "module name (default: from the output file name)")
	f.BoolVar(&o.NoReplace, "no-replace", false, "build a non-cumulative patch (replace=false)")
	f.StringVarP(&o.Out, "output", "o", "", "the .ko to write")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return cmd
}

func moduleName(name, out string) string {
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

func readFixes(paths []string) ([]klp.Fix, error) {
	var fixes []klp.Fix
	for _, p := range paths {
		d, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read fix: %w", err)
		}
		fixes = append(fixes, klp.Fix{Name: filepath.Base(p), Diff: d})
	}
	return fixes, nil
}

func runPatchBuild(ctx context.Context, g *Globals, o PatchBuildOptions) error {
	if len(o.Fixes) == 0 || o.Out == "" {
		return usagef("patch build needs at least one --fix and -o OUT.ko")
	}
	fixes, err := readFixes(o.Fixes)
	if err != nil {
		return err
	}
	k, err := o.KernelFlags.resolve(ctx, g)
	if err != nil {
		return err
	}
	res, err := klp.Build(ctx, k, klp.Options{Fixes: fixes, Name: moduleName(o.Name, o.Out), Replace: !o.NoReplace, Out: o.Out, Log: g.log.With("component", "klp")})
	if o.JSON && res != nil {
		out := struct {
			*klp.Result
			Error string `json:"error,omitempty"`
		}{Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		if jerr := writeJSON(g.Stdout, out); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		if klp.IsNotLivepatchable(err) {
			return notLivepatchableError{err}
		}
		return err
	}
	if !o.JSON {
		for _, u := range res.Units {
			fmt.Fprintf(g.Stdout, "%s (%s): changed %s", u.Unit, u.Object, strings.Join(u.Changed, ", "))
			if len(u.New) > 0 {
				fmt.Fprintf(g.Stdout, "; new %s", strings.Join(u.New, ", "))
			}
			fmt.Fprintln(g.Stdout)
			for _, w := range u.Warnings {
				fmt.Fprintf(g.Stderr, "warning: %s\n", w)
			}
		}
		fmt.Fprintf(g.Stdout, "wrote %s (%.1fs)\n", res.Module, res.Duration.Seconds())
	}
	return nil
}

// notLivepatchableError gets its own exit code: it is a verdict, not a fault.
type notLivepatchableError struct{ error }

func (e notLivepatchableError) Unwrap() error { return e.error }

// PatchCorpusOptions are the flags of `tuxtape patch corpus`.
type PatchCorpusOptions struct {
	KernelFlags
	VM     bool
	Only   []string
	Limit  int
	Report string
	JSON   bool
	// FromReport reprints a saved report instead of running the fixes.
	FromReport string
}

func newPatchCorpusCmd(g *Globals) *cobra.Command {
	var o PatchCorpusOptions
	cmd := &cobra.Command{
		Use:   "corpus DIR --kernel debian:RELEASE=VERSION [--vm]",
		Short: "Run every fix of a corpus (DIR/patches/*.patch) through the generator and classify it",
		Long: `corpus builds a livepatch from each DIR/patches/*.patch on its own and sorts the
results: not compiled in this kernel, not livepatchable (with the reason), no
functional change, module built, loaded and transitioned in the VM (--vm), or
failed (with the error). It prints the table and the median build time.

With a kernel that has a real build profile it also counts the fixes that
change only .c files this kernel compiles, and how many of those loaded:
the base that decides, by the build and not by the generator's verdict,
which fixes a livepatch service should be able to ship. --from-report
prints the table of a saved --report again without running anything.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("patch corpus takes the corpus directory")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPatchCorpus(cmd.Context(), g, o, args[0])
		},
	}
	o.KernelFlags.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.VM, "vm", false, "load each built module in a VM of the target kernel")
	f.StringSliceVar(&o.Only, "only", nil, "only these patches (file names without .patch)")
	f.IntVar(&o.Limit, "limit", 0, "stop after this many patches")
	f.StringVar(&o.Report, "report", "", "also write the per-patch results as JSON to this file")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	f.StringVar(&o.FromReport, "from-report", "", "print the table of this saved --report instead of running the fixes")
	return cmd
}

// CorpusEntry is the outcome for one patch.
type CorpusEntry struct {
	ID      string           `json:"id"`
	Class   string           `json:"class"`
	Reason  string           `json:"reason,omitempty"`
	Objects []string         `json:"objects,omitempty"`
	Changed []string         `json:"changed,omitempty"`
	Seconds float64          `json:"build_seconds"`
	VM      *klp.VMReport    `json:"vm,omitempty"`
	Units   []klp.UnitResult `json:"units,omitempty"`
	// Base: the fix changes only .c files the kernel compiles.
	Base bool `json:"base,omitempty"`
}

// corpusClasses in the order the summary lists them.
var corpusClasses = []string{ClassLoaded, ClassLoadedAbsent, ClassBuilt, ClassVMFailed, ClassNotLivepatchable, ClassNoChange, ClassNotCompiled, ClassFixIncomplete, ClassFailed}

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
	ClassFailed           = "failed"
)

func runPatchCorpus(ctx context.Context, g *Globals, o PatchCorpusOptions, dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "patches", "*.patch"))
	if err != nil || len(paths) == 0 {
		return fmt.Errorf("no patches in %s/patches (want *.patch files)", dir)
	}
	sort.Strings(paths)
	only := map[string]bool{}
	for _, id := range o.Only {
		only[id] = true
	}
	k, err := o.KernelFlags.resolve(ctx, g)
	if err != nil {
		return err
	}
	if o.FromReport != "" {
		data, err := os.ReadFile(o.FromReport)
		if err != nil {
			return fmt.Errorf("read report: %w", err)
		}
		var entries []CorpusEntry
		if err := json.Unmarshal(data, &entries); err != nil {
			return fmt.Errorf("read report %s: %w", o.FromReport, err)
		}
		for i := range entries {
			entries[i].Base = goalBase(k, filepath.Join(dir, "patches", entries[i].ID+".patch"))
		}
		if o.JSON {
			return writeJSON(g.Stdout, entries)
		}
		printCorpus(g, entries, k.Profile != nil)
		return nil
	}
	work, err := os.MkdirTemp("", "tuxtape-corpus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var entries []CorpusEntry
	for _, p := range paths {
		id := strings.TrimSuffix(filepath.Base(p), ".patch")
		if len(only) > 0 && !only[id] {
			continue
		}
		if o.Limit > 0 && len(entries) >= o.Limit {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e := corpusOne(ctx, g, k, p, id, work, o.VM)
		e.Base = goalBase(k, p)
		if !o.JSON {
			fmt.Fprintf(g.Stderr, "%s: %s %s\n", e.ID, e.Class, firstLine(e.Reason))
		}
		entries = append(entries, e)
		if o.Report != "" {
			data, _ := json.MarshalIndent(entries, "", "  ")
			if err := os.WriteFile(o.Report, data, 0o644); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		}
	}
	if o.JSON {
		return writeJSON(g.Stdout, entries)
	}
	printCorpus(g, entries, k.Profile != nil)
	return nil
}

// goalBase says whether the fix at path changes only .c files that the
// kernel's real build profile compiles (false without a profile).
func goalBase(k *klp.Kernel, path string) bool {
	if k.Profile == nil {
		return false
	}
	diff, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	files := ktree.PatchFiles(diff)
	for _, f := range files {
		if !strings.HasSuffix(f, ".c") || len(k.Profile.Units(f)) == 0 {
			return false
		}
	}
	return len(files) > 0
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func corpusOne(ctx context.Context, g *Globals, k *klp.Kernel, path, id, work string, vm bool) CorpusEntry {
	e := CorpusEntry{ID: id}
	fixes, err := readFixes([]string{path})
	if err != nil {
		e.Class, e.Reason = ClassFailed, err.Error()
		return e
	}
	name := moduleName("", "tt_"+strings.ToLower(strings.ReplaceAll(id, "-", "_")))
	out := filepath.Join(work, name+".ko")
	start := time.Now()
	res, err := klp.Build(ctx, k, klp.Options{Fixes: fixes, Name: name, Replace: true, Out: out, WorkDir: filepath.Join(work, "w-"+id), Log: g.log.With("component", "klp")})
	os.RemoveAll(filepath.Join(work, "w-"+id))
	e.Seconds = time.Since(start).Seconds()
	if res != nil {
		e.Units = res.Units
		for _, u := range res.Units {
			e.Objects = append(e.Objects, u.Object)
			e.Changed = append(e.Changed, u.Changed...)
		}
	}
	switch {
	case errors.Is(err, klp.ErrNotCompiled):
		e.Class, e.Reason = ClassNotCompiled, err.Error()
		return e
	case klp.IsNotLivepatchable(err):
		e.Class, e.Reason = ClassNotLivepatchable, err.Error()
		return e
	case errors.Is(err, klp.ErrNoChange):
		e.Class, e.Reason = ClassNoChange, err.Error()
		return e
	case errors.Is(err, klp.ErrFixDoesNotCompile):
		e.Class, e.Reason = ClassFixIncomplete, err.Error()
		return e
	case err != nil:
		e.Class, e.Reason = ClassFailed, err.Error()
		return e
	}
	e.Class = ClassBuilt
	if !vm {
		return e
	}
	r, err := klp.CheckInVM(ctx, k, out, name, e.Objects, "")
	if err != nil {
		e.Class, e.Reason = ClassVMFailed, err.Error()
		return e
	}
	e.VM = r
	switch {
	case !r.OK():
		e.Class, e.Reason = ClassVMFailed, r.Summary()
	case len(r.Absent) > 0:
		e.Class = ClassLoadedAbsent
		e.Reason = fmt.Sprintf("%s cannot load in the VM (no such device or hypervisor there): the livepatch loaded and transitioned without it, its functions registered but not patched", strings.Join(r.Absent, ", "))
	default:
		e.Class = ClassLoaded
	}
	os.Remove(out)
	return e
}

func printCorpus(g *Globals, entries []CorpusEntry, profiled bool) {
	counts := map[string]int{}
	var times []float64
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATCH\tRESULT\tOBJECTS\tSECONDS\tREASON")
	for _, e := range entries {
		counts[e.Class]++
		if e.Class == ClassBuilt || e.Class == ClassLoaded || e.Class == ClassLoadedAbsent || e.Class == ClassVMFailed {
			times = append(times, e.Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\n", e.ID, e.Class, strings.Join(slices.Compact(slices.Sorted(slices.Values(e.Objects))), ","), e.Seconds, truncate(firstLine(e.Reason), 110))
	}
	tw.Flush()
	fmt.Fprintln(g.Stdout)
	for _, c := range corpusClasses {
		if counts[c] > 0 {
			fmt.Fprintf(g.Stdout, "%-28s %d\n", c+":", counts[c])
		}
	}
	if len(times) > 0 {
		fmt.Fprintf(g.Stdout, "median build time of built modules: %.1fs (%d modules)\n", median(times), len(times))
	}
	if !profiled {
		return
	}
	base := map[string]int{}
	n := 0
	for _, e := range entries {
		if e.Base {
			n++
			base[e.Class]++
		}
	}
	fmt.Fprintf(g.Stdout, "\nfixes that change only .c files this kernel compiles (real build profile): %d\n", n)
	for _, c := range corpusClasses {
		if base[c] > 0 {
			fmt.Fprintf(g.Stdout, "  %-36s %3d  %5.1f%%\n", c+":", base[c], 100*float64(base[c])/float64(n))
		}
	}
}

// median of xs (which it sorts).
func median(xs []float64) float64 {
	sort.Float64s(xs)
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}

// PatchTryOptions are the flags of `tuxtape patch try`.
type PatchTryOptions struct {
	KernelFlags
	Modules  []string
	Exercise string
	JSON     bool
}

func newPatchTryCmd(g *Globals) *cobra.Command {
	var o PatchTryOptions
	cmd := &cobra.Command{
		Use:   "try MODULE.ko --kernel debian:RELEASE=VERSION [--with-module NAME] [--exercise 'SHELL']",
		Short: "Load a livepatch module in a VM of the target kernel and report how it went",
		Long: `try boots the target kernel under QEMU (software emulation), loads the modules
given with --with-module (the objects the patch targets), loads the livepatch,
waits for the transition, runs the shell snippet given with --exercise (it may
print "key: value" lines), disables and unloads the patch, and checks the
kernel log for WARNING, BUG and Oops.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("patch try takes one module file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPatchTry(cmd.Context(), g, o, args[0])
		},
	}
	o.KernelFlags.add(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&o.Modules, "with-module", nil, "load these modules first (the patch's target objects)")
	f.StringVar(&o.Exercise, "exercise", "", "shell commands to run while the patch is enabled and again after")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	return cmd
}

func runPatchTry(ctx context.Context, g *Globals, o PatchTryOptions, ko string) error {
	if _, err := os.Stat(ko); err != nil {
		return fmt.Errorf("livepatch module: %w", err)
	}
	k, err := o.KernelFlags.resolve(ctx, g)
	if err != nil {
		return err
	}
	if k.Vmlinuz == "" {
		return usagef("patch try needs --kernel (a bootable image)")
	}
	exercise := ""
	if o.Exercise != "" {
		exercise = "exercise() {\n\techo \"phase: $1\"\n" + o.Exercise + "\n}"
	}
	name := moduleName("", ko)
	r, err := klp.CheckInVM(ctx, k, ko, name, o.Modules, exercise)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(g.Stdout, r)
	}
	fmt.Fprintf(g.Stdout, "enabled: %v\ntransitioned: %v\nfunctions: %s\ndisabled and unloaded: %v\n", r.Enabled, r.Transition, strings.Join(r.Functions, " "), r.Unloaded)
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "enabled", "transition", "sysfs", "disabled", "modules":
		default:
			fmt.Fprintf(g.Stdout, "  %s: %s\n", k, r.Values[k])
		}
	}
	if len(r.Absent) > 0 {
		fmt.Fprintf(g.Stdout, "absent: %s cannot load in the VM; the livepatch loaded without it\n", strings.Join(r.Absent, ", "))
	}
	if !r.OK() {
		return fmt.Errorf("the livepatch did not go through its life cleanly: %s", r.Summary())
	}
	fmt.Fprintf(g.Stdout, "clean (%.1fs in the VM)\n", r.Duration.Seconds())
	return nil
}
