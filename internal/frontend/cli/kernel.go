package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/progress"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/service"
)

func newKernelCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Manage the kernels TuxTape serves and their build profiles",
		Long: `A kernel is a release (uname -r), its upstream version, the .config it was
built with and its exact source. Its build profile says which source files are
compiled into vmlinux and into which module; the CVE commands use it to decide
whether a CVE's code is in the kernel.`,
	}
	cmd.AddCommand(newKernelAddCmd(g), newKernelListCmd(g), newKernelShowCmd(g), newKernelRmCmd(g),
		newKernelBuildCmd(g), newKernelProfileCmd(g))
	return cmd
}

// KernelAddOptions are the flags of `tuxtape kernel add`.
type KernelAddOptions struct {
	Release, Version, Config, Source, Ref, Patches string
	Fixed                                          []string
	Arch                                           string
	NoChangelog                                    bool
	// Exercise is a file with the vetting script of the kernel's patches.
	Exercise string
	// ConfigAlias is the deprecated --config spelling of --kconfig.
	ConfigAlias string
}

func newKernelAddCmd(g *Globals) *cobra.Command {
	var o KernelAddOptions
	cmd := &cobra.Command{
		Use:   "add NAME --release R --source SRC [--version V] [--kconfig FILE]",
		Short: "Add a kernel",
		Long: `add records a kernel. SRC is its exact source:
  a tarball path or http(s) URL         linux-6.1.176.tar.xz
  a Debian source package               debian:linux-source-6.1=6.1.176-1
  a git repository with --ref           https://git.kernel.org/…/linux.git --ref v6.1.176
                                        (and --patches DIR: *.patch applied in name order)
  a kernel source tree                  /usr/src/linux-6.1.176

For a Debian source the kernel is a Debian kernel: its image, headers and -dbg
packages are named from the release and the package version, --version defaults
to the upstream part of the package version, --kconfig defaults to the image
package's /boot/config-RELEASE (fetched with apt and cached), and every CVE the
image package's changelog names counts as fixed (Debian's backports; turn this
off with --no-changelog).

--fixed FILE (repeatable) declares fixes the kernel carries beyond its version,
such as distribution backports: every CVE ID in the file counts as fixed (a
distribution changelog works as it is), and so does every line that is only a
commit ID.

--kconfig is the kernel's .config; it must be for the kernel's architecture
(--arch, by default the Debian release's, else x86_64). The settings file is
--settings (or --config before the subcommand).

Example:
  tuxtape kernel add cloud --release 6.1.0-50-cloud-amd64 --source debian:linux-source-6.1=6.1.176-1`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.kconfigAlias(&o.Config, o.ConfigAlias); err != nil {
				return err
			}
			return runKernelAdd(cmd.Context(), g, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Release, "release", "", "the kernel release, as uname -r prints it (required)")
	f.StringVar(&o.Version, "version", "", "the upstream version the source is based on, e.g. 6.1.176")
	f.StringVar(&o.Config, "kconfig", "", "the kernel's .config")
	addConfigAlias(cmd, &o.ConfigAlias)
	f.StringVar(&o.Source, "source", "", "the exact source: tarball path or URL, debian:PACKAGE=VERSION, or a git repository (required)")
	f.StringVar(&o.Ref, "ref", "", "git tag, branch or commit (git sources)")
	f.StringVar(&o.Patches, "patches", "", "directory of *.patch files applied in order on a git source")
	f.StringArrayVar(&o.Fixed, "fixed", nil, "file of fixes the kernel carries beyond its version (CVE IDs, commit IDs)")
	f.StringVar(&o.Arch, "arch", "", "architecture, as uname -m prints it (default: the Debian release's, else x86_64)")
	f.BoolVar(&o.NoChangelog, "no-changelog", false, "Debian kernels: do not take the CVEs the image package's changelog names as fixed")
	f.StringVar(&o.Exercise, "exercise", "", "a shell script the VM vetting of this kernel's patches runs while each is enabled (sh -s patched) and after (sh -s after), instead of the default exercise")
	return cmd
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s", cmd.CommandPath(), names)
		}
		return nil
	}
}

func runKernelAdd(ctx context.Context, g *Globals, name string, o KernelAddOptions) error {
	ko := service.AddKernelOptions{Name: name, Release: o.Release, Version: o.Version, Arch: o.Arch, Source: o.Source, Ref: o.Ref, NoChangelog: o.NoChangelog}
	var err error
	if ko.Exercise, err = readExercise(o.Exercise); err != nil {
		return err
	}
	if o.Patches != "" {
		if ko.Patches, err = readPatches(o.Patches); err != nil {
			return err
		}
	}
	if o.Config != "" {
		if ko.Config, err = service.ReadRegularFile("--kconfig", o.Config, service.MaxKernelConfig); err != nil {
			return err
		}
	}
	for _, f := range o.Fixed {
		data, err := service.ReadRegularFile("--fixed", f, service.MaxFixList)
		if err != nil {
			return err
		}
		ko.Fixed = append(ko.Fixed, service.NamedData{Name: f, Data: data})
	}
	k, err := g.q.AddKernel(ctx, ko)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "added kernel %s (%s, %s, %s)\n", k.Name, k.Release, k.Version, k.Arch)
	return nil
}

func readPatches(dir string) ([]kernel.Patch, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.patch"))
	if err != nil || len(names) == 0 {
		return nil, usagef("--patches %s: no *.patch files", dir)
	}
	slices.Sort(names)
	var ps []kernel.Patch
	for _, n := range names {
		data, err := service.ReadRegularFile("--patches", n, service.MaxFixDiff)
		if err != nil {
			return nil, err
		}
		ps = append(ps, kernel.Patch{Name: filepath.Base(n), Data: data})
	}
	return ps, nil
}

func profileNames(v service.KernelView) string {
	var ks []string
	for k := range v.Profiles {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	if len(ks) == 0 {
		return "-"
	}
	return strings.Join(ks, ",")
}

func newKernelListCmd(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List kernels",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			views, err := g.q.Kernels(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.Stdout, views)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tRELEASE\tVERSION\tSOURCE\tPROFILES")
			for _, v := range views {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", termtext.Line(v.Name), termtext.Line(v.Release), termtext.Line(v.Version), termtext.Line(v.Source.String()), profileNames(v))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKernelShowCmd(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a kernel",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := g.q.Kernel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			k := v.Kernel
			if asJSON {
				return writeJSON(g.Stdout, v)
			}
			w := g.Stdout
			fmt.Fprintf(w, "Name:     %s\nRelease:  %s\nVersion:  %s\nArch:     %s\nSource:   %s\n",
				termtext.Line(k.Name), termtext.Line(k.Release), termtext.Line(k.Version), termtext.Line(k.Arch), termtext.Line(k.Source.String()))
			for _, p := range k.Source.Patches {
				fmt.Fprintf(w, "  patch   %s\n", termtext.Line(p.Name))
			}
			fmt.Fprintf(w, "Config:   %d lines, sha256 %s\n", bytes.Count(k.Config, []byte("\n")), v.ConfigSHA256[:16])
			if d := k.Debian; d != nil {
				fmt.Fprintf(w, "Debian:   %s\n", termtext.Line(fmt.Sprintf("%s, %s, %s, %s (version %s)", d.Image, d.Headers, d.Debug, d.Source, d.Version)))
			}
			if len(k.FixedCVEs)+len(k.FixedCommits) > 0 {
				fmt.Fprintf(w, "Declares: %d CVEs and %d commits fixed\n", len(k.FixedCVEs), len(k.FixedCommits))
			}
			fmt.Fprintf(w, "Added:    %s\n", k.Added.Format(time.RFC3339))
			for _, kind := range []string{"real", "static"} {
				if t, ok := v.Profiles[kind]; ok {
					fmt.Fprintf(w, "Profile:  %s, made %s\n", kind, t.Format(time.RFC3339))
				}
			}
			if len(v.Profiles) == 0 {
				fmt.Fprintf(w, "Profile:  none (tuxtape kernel profile %s --static, or kernel build %s)\n", termtext.Line(k.Name), termtext.Line(k.Name))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKernelRmCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a kernel and its profiles",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.q.RemoveKernel(cmd.Context(), args[0], service.Actor{ID: service.LocalActor}); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "removed kernel %s\n", args[0])
			return nil
		},
	}
}

// KernelBuildOptions are the flags of `tuxtape kernel build`.
type KernelBuildOptions struct {
	Jobs int
	From string
	Wait bool // with a server: follow the job
}

func newKernelBuildCmd(g *Globals) *cobra.Command {
	var o KernelBuildOptions
	cmd := &cobra.Command{
		Use:   "build NAME [-j N] [--from DIR]",
		Short: "Build a kernel and record its real build profile",
		Long: `build unpacks the kernel's source into the cache, installs its config, runs
make olddefconfig and the full build (vmlinux and modules; about 30 minutes for
a distribution config on two cores), and reads the real build profile from
kbuild's records: each object's .cmd file (its source and every header it read),
vmlinux.a, and each module's .mod file.

--from DIR reads the profile of a build that already finished in DIR instead.

With --server the build is a job for a builder (tuxtape builder): build prints
the job's ID, or with --wait follows its log and exits 1 unless it succeeds; the
server stores the real build profile the builder reports.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelBuild(cmd.Context(), g, args[0], o)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.Jobs, "jobs", "j", 0, "parallel make jobs (default: one per CPU)")
	f.StringVar(&o.From, "from", "", "read the profile of an existing finished build in this directory")
	f.BoolVar(&o.Wait, "wait", false, "with --server: follow the job's log until it is over")
	return cmd
}

func runKernelBuild(ctx context.Context, g *Globals, name string, o KernelBuildOptions) error {
	if g.client != nil {
		if o.From != "" {
			return usagef("--from reads a build on this machine: leave it out with --server")
		}
		j, err := g.q.SubmitKernelBuild(ctx, name, o.Jobs, service.SubmitOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "queued job %s: kernel-build %s\n", j.ID, name)
		if !o.Wait {
			return nil
		}
		return followJob(ctx, g, j.ID, 0, true)
	}
	var p *profile.Profile
	var err error
	if o.From != "" {
		p, err = g.svc.BuildKernel(ctx, name, service.BuildKernelOptions{From: o.From})
	} else {
		p, err = g.buildKernel(ctx, name, o)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "%s: real profile: %s\n", name, profileSummary(p))
	return nil
}

// buildKernel runs the full build with make's output in a log file and a
// count of compiled objects on the terminal.
func (g *Globals) buildKernel(ctx context.Context, name string, o KernelBuildOptions) (*profile.Profile, error) {
	if _, err := g.q.Kernel(ctx, name); err != nil {
		return nil, err
	}
	dir := g.svc.BuildDir(name)
	if err := os.MkdirAll(dir+".logs", 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir+".logs", "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	g.progressf("building %s in %s (log: %s)…", name, dir, logPath)
	counter := &compileCounter{w: logf, bar: progress.New(g.Stderr, "kernel build: objects", g.Quiet)}
	start := time.Now()
	p, err := g.svc.BuildKernel(ctx, name, service.BuildKernelOptions{Jobs: o.Jobs, Output: counter, Estimate: func(n int) { counter.total = n }})
	counter.bar.Done()
	if err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	g.progressf("built in %s", time.Since(start).Round(time.Second))
	return p, nil
}

// compileCounter passes make's output on and counts compiled objects.
type compileCounter struct {
	w       io.Writer
	bar     *progress.Bar
	total   int
	done    int
	partial []byte
}

func (c *compileCounter) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(c.partial[:i])
		if bytes.HasPrefix(line, []byte("CC ")) || bytes.HasPrefix(line, []byte("AS ")) {
			c.done++
			c.bar.Update(c.done, max(c.total, c.done))
		}
		c.partial = c.partial[i+1:]
	}
	return c.w.Write(p)
}

func profileSummary(p *profile.Profile) string {
	mods := map[string]bool{}
	var vm int
	for _, u := range p.Units {
		if u.Target == profile.Vmlinux {
			vm++
		} else {
			mods[u.Target] = true
		}
	}
	s := fmt.Sprintf("%d compiled files: %d into vmlinux, %d into %d modules", len(p.Units), vm, len(p.Units)-vm, len(mods))
	if len(p.Warnings) > 0 {
		s += fmt.Sprintf("; %d warnings", len(p.Warnings))
	}
	return s
}

// KernelProfileOptions are the flags of `tuxtape kernel profile`.
type KernelProfileOptions struct {
	Static, Real, Refresh, JSON bool
}

func newKernelProfileCmd(g *Globals) *cobra.Command {
	var o KernelProfileOptions
	cmd := &cobra.Command{
		Use:   "profile NAME [--static|--real] [--json]",
		Short: "List which source files a kernel compiles, and where each goes",
		Long: `profile lists every source file compiled into the kernel and where it goes:
vmlinux or the module's name.

--real is the profile of a real build (tuxtape kernel build NAME). --static
evaluates the kernel's Kbuild Makefiles against its .config, without a
compiler, in seconds; constructs it cannot decide are counted in and listed as
warnings. Without either, the real profile is shown when there is one, else the
static one (computed and stored the first time).`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Static && o.Real {
				return usagef("give --static or --real, not both")
			}
			choice := service.ProfileAuto
			switch {
			case o.Real:
				choice = service.ProfileReal
			case o.Static:
				choice = service.ProfileStatic
			}
			p, err := g.q.Profile(cmd.Context(), args[0], service.ProfileOptions{Choice: choice, Refresh: o.Refresh})
			if err != nil {
				return err
			}
			if o.JSON {
				return writeJSON(g.Stdout, p)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tTARGET")
			for _, u := range p.Units {
				t := u.Target
				if u.Possible {
					t += " (possibly)"
				}
				fmt.Fprintf(tw, "%s\t%s\n", termtext.Line(u.Source), termtext.Line(t))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, w := range p.Warnings {
				fmt.Fprintf(g.Stderr, "warning: %s\n", termtext.Line(w))
			}
			fmt.Fprintf(g.Stderr, "%s profile of %s: %s\n", p.Kind, args[0], profileSummary(p))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Static, "static", false, "the static profile (Makefiles and .config)")
	f.BoolVar(&o.Real, "real", false, "the real profile (from tuxtape kernel build)")
	f.BoolVar(&o.Refresh, "refresh", false, "recompute the static profile even if one is stored")
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}
