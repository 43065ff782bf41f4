package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/build/klp"
	"github.com/tuxtape/tuxtape/internal/build/target"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/refusal"
	"github.com/tuxtape/tuxtape/internal/service"
)

func newPatchCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patch",
		Short: "Turn kernel fixes into livepatch modules; deployable patches and their review",
	}
	cmd.AddCommand(newPatchBuildCmd(g), newPatchCorpusCmd(g), newPatchTryCmd(g))
	cmd.AddCommand(workflowCmds(g)...)
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
	// ConfigAlias is the deprecated --config spelling of --kconfig.
	ConfigAlias string
}

func (kf *KernelFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&kf.Kernel, "kernel", "", "target kernel: a name from `tuxtape kernel list` (a Debian kernel), or debian:RELEASE=VERSION, e.g. debian:6.1.0-50-cloud-amd64=6.1.176-1 (its image, -dbg, headers and source packages are fetched and cached)")
	f.StringVar(&kf.Source, "source", "", "kernel source: tarball or directory (instead of --kernel)")
	f.StringVar(&kf.Config, "kconfig", "", "the kernel's .config (with --source)")
	addConfigAlias(cmd, &kf.ConfigAlias)
	f.StringVar(&kf.Headers, "headers", "", "the kernel's build tree for external modules, with Module.symvers (with --source)")
	f.StringVar(&kf.Symbols, "symbols", "", "vmlinux with its symbol table, or the real System.map (with --source)")
	f.StringVar(&kf.Modules, "modules", "", "the kernel's /lib/modules/RELEASE directory (with --source)")
}

func (kf *KernelFlags) resolve(ctx context.Context, g *Globals) (*target.Kernel, error) {
	if err := g.kconfigAlias(&kf.Config, kf.ConfigAlias); err != nil {
		return nil, err
	}
	if err := g.local("patch"); err != nil {
		return nil, err
	}
	return g.svc.ResolveTarget(ctx, service.TargetSpec{Kernel: kf.Kernel, Custom: target.CustomOptions{
		Source: kf.Source, Config: kf.Config, Headers: kf.Headers, Symbols: kf.Symbols, Modules: kf.Modules}})
}

// PatchBuildOptions are the flags of `tuxtape patch build`.
type PatchBuildOptions struct {
	KernelFlags
	Fixes     []string
	Name      string
	NoReplace bool
	// AllowInit builds the runtime part of a fix that changes
	// __init/__exit code too.
	AllowInit bool
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
entry, headers, assembly…) is refused with the reason (exit code 4). Exit code
6: the fix changes code this kernel does not compile; 7: it changes no compiled
code; 8: it does not apply to, or compile against, this kernel's source.

--allow-init-changes builds the runtime part of a fix that also changes
__init/__exit code or data (which ran at boot or module load, or runs only at
unload), and lists what it left out ("left out:" lines, left_out in --json)
for a reviewer to decide on.`,
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
	f.BoolVar(&o.AllowInit, "allow-init-changes", false, "leave changed __init/__exit code out of the patch (and say so) instead of refusing the fix")
	f.StringVarP(&o.Out, "output", "o", "", "the .ko to write")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return cmd
}

func runPatchBuild(ctx context.Context, g *Globals, o PatchBuildOptions) error {
	if len(o.Fixes) == 0 || o.Out == "" {
		return usagef("patch build needs at least one --fix and -o OUT.ko")
	}
	fixes, err := service.ReadFixes(o.Fixes)
	if err != nil {
		return err
	}
	k, err := o.KernelFlags.resolve(ctx, g)
	if err != nil {
		return err
	}
	res, err := g.svc.BuildPatch(ctx, k, service.PatchOptions{Fixes: fixes, Name: service.ModuleName(o.Name, o.Out), Replace: !o.NoReplace, AllowInitChanges: o.AllowInit, Out: o.Out})
	if o.JSON && res != nil {
		out := struct {
			*klp.Result
			Error   string       `json:"error,omitempty"`
			Refusal *klp.Refusal `json:"refusal,omitempty"`
		}{Result: res}
		if err != nil {
			out.Error = err.Error()
			out.Refusal, _ = klp.AsRefusal(err)
		}
		if jerr := writeJSON(g.Stdout, out); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return asVerdict(err)
	}
	if !o.JSON {
		l := termtext.Line
		for _, u := range res.Units {
			if len(u.Changed) == 0 {
				fmt.Fprintf(g.Stdout, "%s (%s): no function changed", l(u.Unit), l(u.Object))
			} else {
				fmt.Fprintf(g.Stdout, "%s (%s): changed %s", l(u.Unit), l(u.Object), l(strings.Join(u.Changed, ", ")))
			}
			if len(u.New) > 0 {
				fmt.Fprintf(g.Stdout, "; new %s", l(strings.Join(u.New, ", ")))
			}
			fmt.Fprintln(g.Stdout)
			for _, c := range u.Callers {
				fmt.Fprintf(g.Stdout, "caller patched: %s\n", l(c))
			}
			for _, w := range u.Warnings {
				fmt.Fprintf(g.Stderr, "warning: %s\n", termtext.Safe(w))
			}
			for _, w := range u.LeftOut {
				fmt.Fprintf(g.Stdout, "left out: %s\n", termtext.Safe(w))
			}
			for _, r := range u.Repointed {
				fmt.Fprintf(g.Stdout, "repointed: %s\n", termtext.Safe(r.String()))
			}
		}
		fmt.Fprintf(g.Stdout, "wrote %s (%.1fs)\n", l(res.Module), res.Duration.Seconds())
	}
	return nil
}

// verdictError is a refusal that gets an exit code of its own: it is a
// verdict on the fix, not a fault.
type verdictError struct {
	error
	code int
}

func (e verdictError) Unwrap() error { return e.error }

// asVerdict gives a generator refusal its class's exit code; other errors
// pass through.
func asVerdict(err error) error {
	r, ok := klp.AsRefusal(err)
	if !ok {
		return err
	}
	code := map[refusal.Class]int{
		refusal.ClassNotLivepatchable:  ExitNotLivepatchable,
		refusal.ClassNotCompiled:       ExitNotCompiled,
		refusal.ClassNoChange:          ExitNoChange,
		refusal.ClassFixDoesNotApply:   ExitFixMismatch,
		refusal.ClassFixDoesNotCompile: ExitFixMismatch,
	}[r.Code.Class()]
	if code == 0 {
		return err
	}
	return verdictError{err, code}
}

// PatchCorpusOptions are the flags of `tuxtape patch corpus`.
type PatchCorpusOptions struct {
	KernelFlags
	VM        bool
	AllowInit bool
	Only      []string
	Limit     int
	Report    string
	JSON      bool
	// FromReport reprints a saved report instead of running the fixes.
	FromReport string
	// PrerequisitesFrom: see service.CorpusOptions.
	PrerequisitesFrom string
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
	f.BoolVar(&o.AllowInit, "allow-init-changes", false, "build the runtime part of fixes that change __init/__exit code too (see patch build --help)")
	f.StringVar(&o.Report, "report", "", "also write the per-patch results as JSON to this file")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	f.StringVar(&o.FromReport, "from-report", "", "print the table of this saved --report instead of running the fixes")
	f.StringVar(&o.PrerequisitesFrom, "prerequisites-from", "", "debian:linux-source-X.Y=VERSION: try each fix that does not compile again with the prerequisites found in that package")
	return cmd
}

func runPatchCorpus(ctx context.Context, g *Globals, o PatchCorpusOptions, dir string) error {
	if _, err := service.CorpusPatches(dir); err != nil {
		return err
	}
	k, err := o.KernelFlags.resolve(ctx, g)
	if err != nil {
		return err
	}
	profiled := k.Profile != nil && k.Profile.Profile().Kind == profile.KindReal
	if o.FromReport != "" {
		data, err := service.ReadRegularFile("--from-report", o.FromReport, maxReport)
		if err != nil {
			return err
		}
		var entries []service.CorpusEntry
		if err := json.Unmarshal(data, &entries); err != nil {
			return fmt.Errorf("read report %s: %w", o.FromReport, err)
		}
		for i := range entries {
			entries[i].Base = service.GoalBase(k.Profile, filepath.Join(dir, "patches", entries[i].ID+".patch"))
		}
		if o.JSON {
			return writeJSON(g.Stdout, entries)
		}
		printCorpus(g, entries, profiled)
		return nil
	}
	var reportErr error
	entries, err := g.svc.Corpus(ctx, k, service.CorpusOptions{Dir: dir, Only: o.Only, Limit: o.Limit, VM: o.VM, AllowInitChanges: o.AllowInit, PrerequisitesFrom: o.PrerequisitesFrom,
		OnEntry: func(entries []service.CorpusEntry) {
			e := entries[len(entries)-1]
			if !o.JSON {
				fmt.Fprintf(g.Stderr, "%s: %s %s\n", termtext.Line(e.ID), e.Class, termtext.Line(firstLine(e.Reason)))
			}
			if o.Report != "" && reportErr == nil {
				data, _ := json.MarshalIndent(entries, "", "  ")
				if err := atomicfile.WriteFile(o.Report, data, 0o644); err != nil {
					reportErr = fmt.Errorf("write report: %w", err)
				}
			}
		}})
	if err != nil {
		return err
	}
	if reportErr != nil {
		return reportErr
	}
	if o.JSON {
		return writeJSON(g.Stdout, entries)
	}
	// A static profile gives the base too (patch corpus computes it).
	profiled = profiled || slices.ContainsFunc(entries, func(e service.CorpusEntry) bool { return e.Base })
	printCorpus(g, entries, profiled)
	return nil
}

// maxReport bounds a saved corpus report (about 5 KiB a fix).
const maxReport = 256 << 20

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func printCorpus(g *Globals, entries []service.CorpusEntry, profiled bool) {
	counts := map[string]int{}
	var times []float64
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATCH\tRESULT\tOBJECTS\tSECONDS\tREASON")
	for _, e := range entries {
		counts[e.Class]++
		if e.Class == service.ClassBuilt || e.Class == service.ClassLoaded || e.Class == service.ClassLoadedAbsent || e.Class == service.ClassVMFailed {
			times = append(times, e.Seconds)
		}
		// A saved report, compiler errors and VM logs are all outside text.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\n", termtext.Line(e.ID), termtext.Line(e.Class), termtext.Line(strings.Join(slices.Compact(slices.Sorted(slices.Values(e.Objects))), ",")), e.Seconds, truncate(termtext.Line(firstLine(e.Reason)), 110))
	}
	tw.Flush()
	fmt.Fprintln(g.Stdout)
	for _, c := range service.CorpusClasses {
		if counts[c] > 0 {
			fmt.Fprintf(g.Stdout, "%-28s %d\n", c+":", counts[c]) // c is one of ours
		}
	}
	if len(times) > 0 {
		fmt.Fprintf(g.Stdout, "median build time of built modules: %.1fs (%d modules)\n", median(times), len(times))
	}
	printPrerequisites(g, entries)
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
	fmt.Fprintf(g.Stdout, "\nfixes that change only .c files this kernel compiles (by its build profile): %d\n", n)
	for _, c := range service.CorpusClasses {
		if base[c] > 0 {
			fmt.Fprintf(g.Stdout, "  %-36s %3d  %5.1f%%\n", c+":", base[c], 100*float64(base[c])/float64(n))
		}
	}
}

// printPrerequisites sums up the second tries of fixes that did not
// compile (--prerequisites-from).
func printPrerequisites(g *Globals, entries []service.CorpusEntry) {
	counts := map[string]int{}
	n, found := 0, 0
	for _, e := range entries {
		if p := e.Prerequisites; p != nil {
			n++
			if len(p.Files) > 0 {
				found++
			}
			counts[p.Class]++
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(g.Stdout, "\nfixes that do not compile: %d; prerequisites found for %d; with them:\n", n, found)
	for _, e := range entries {
		if p := e.Prerequisites; p != nil {
			fmt.Fprintf(g.Stdout, "  %s: %s (%s)", termtext.Line(e.ID), termtext.Line(p.Class), termtext.Line(strings.Join(p.Files, ", ")))
			if len(p.Unresolved) > 0 {
				fmt.Fprintf(g.Stdout, "; unresolved %s", termtext.Line(strings.Join(p.Unresolved, ", ")))
			}
			fmt.Fprintln(g.Stdout)
		}
	}
	for _, c := range service.CorpusClasses {
		if counts[c] > 0 {
			fmt.Fprintf(g.Stdout, "  %-36s %3d\n", c+":", counts[c])
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
		Long: `try boots the target kernel under QEMU (software emulation) and runs the
livepatch through its life as a host sees it: the patch loads first, then the
modules given with --with-module (the objects the patch targets), which must
get patched as they load; it waits for the transition, runs the shell snippet
given with --exercise (it may print "key: value" lines), disables and unloads
the patch, loads it once more with the modules already there, removes it
again, and checks the kernel log for WARNING, BUG and Oops. A module that does
not load in the VM either way (no such device or hypervisor) is reported as
absent.`,
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
	f.StringSliceVar(&o.Modules, "with-module", nil, "load these modules after the patch (the patch's target objects)")
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
	exercise := ""
	if o.Exercise != "" {
		exercise = "exercise() {\n\techo \"phase: $1\"\n" + o.Exercise + "\n}"
	}
	r, err := g.svc.TryPatch(ctx, k, ko, service.ModuleName("", ko), o.Modules, exercise)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(g.Stdout, r)
	}
	// The report holds what the VM's kernel and the --exercise snippet
	// printed.
	fmt.Fprintf(g.Stdout, "enabled: %v\ntransitioned: %v\nfunctions: %s\ndisabled and unloaded: %v\n", r.Enabled, r.Transition, termtext.Line(strings.Join(r.Functions, " ")), r.Unloaded)
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "enabled", "transition", "sysfs", "disabled", "modules":
		default:
			fmt.Fprintf(g.Stdout, "  %s: %s\n", termtext.Line(k), termtext.Line(r.Values[k]))
		}
	}
	if len(r.Absent) > 0 {
		fmt.Fprintf(g.Stdout, "absent: %s cannot load in the VM; the livepatch loaded without it\n", termtext.Line(strings.Join(r.Absent, ", ")))
	}
	if !r.OK() {
		return fmt.Errorf("the livepatch did not go through its life cleanly: %s", r.Summary())
	}
	fmt.Fprintf(g.Stdout, "clean (%.1fs in the VM)\n", r.Duration.Seconds())
	return nil
}
