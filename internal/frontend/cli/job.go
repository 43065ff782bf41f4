package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/build/sandbox"
	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// jobQueries are the job calls both the service and the server answer.
type jobQueries interface {
	SubmitKernelBuild(ctx context.Context, name string, jobs int, o service.SubmitOptions) (job.Job, error)
	SubmitPatchBuild(ctx context.Context, p service.PatchJobOptions, o service.SubmitOptions) (job.Job, error)
	Jobs(ctx context.Context, q service.JobQuery) ([]job.Job, error)
	Job(ctx context.Context, id string) (service.JobDetail, error)
	JobLog(ctx context.Context, id string, o service.JobLogOptions, fn func(store.JobLogLine) error) error
	CancelJob(ctx context.Context, id string, by service.Actor) (job.State, error)
	OpenArtifact(ctx context.Context, id, name string) (io.ReadCloser, job.Artifact, error)
	Builders(ctx context.Context) ([]job.Builder, error)
}

// errJobFailed is a job that ended failed or cancelled (exit 1).
var errJobFailed = errors.New("job did not succeed")

func newJobCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Builder jobs: kernel builds and livepatch builds the server hands to builders",
		Long: `A job is queued, then leased by one builder (tuxtape builder), which renews its
lease while it works, streams its log and uploads its artifacts; a builder that
stops renewing loses the job to another, and a job that fails on its last
attempt is failed with its log. States: queued, leased, done, failed, cancelled.`,
	}
	var state, kernel string
	var limit int
	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--state S] [--kernel NAME] [--limit N] [--json]",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			js, err := g.q.Jobs(cmd.Context(), service.JobQuery{State: state, Kernel: kernel, Limit: limit})
			if err != nil {
				return err
			}
			if listJSON {
				return writeJSON(g.Stdout, js)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tKERNEL\tSTATE\tATTEMPT\tBUILDER\tUPDATED")
			for _, j := range js {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, termtext.Line(j.Kernel), j.State, j.Attempts, j.MaxAttempts,
					orDash(j.Builder), j.Updated.Local().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f := list.Flags()
	f.StringVar(&state, "state", "", "only jobs in this state: queued, leased, done, failed or cancelled")
	f.StringVar(&kernel, "kernel", "", "only jobs for this kernel")
	f.IntVar(&limit, "limit", 0, "at most this many")
	f.BoolVar(&listJSON, "json", false, "print JSON")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show a job, its result and artifacts",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.q.Job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return writeJSON(g.Stdout, d)
			}
			w := g.Stdout
			fmt.Fprintf(w, "job %s: %s %s\nstate: %s (attempt %d of %d)\n", d.ID, d.Kind, termtext.Line(d.Kernel), d.State, d.Attempts, d.MaxAttempts)
			if d.Builder != "" {
				fmt.Fprintf(w, "builder: %s\n", d.Builder)
			}
			fmt.Fprintf(w, "submitted: %s by %s\nupdated: %s\n", d.Created.Local().Format(time.RFC3339), orDash(d.By), d.Updated.Local().Format(time.RFC3339))
			if d.Error != "" {
				fmt.Fprintf(w, "error: %s\n", termtext.Line(d.Error))
			}
			if len(d.Result) > 0 {
				fmt.Fprintf(w, "result: %s\n", termtext.Line(string(d.Result)))
			}
			for _, a := range d.Artifacts {
				fmt.Fprintf(w, "artifact: %s  %d bytes  sha256 %s\n", a.Name, a.Size, a.SHA256)
			}
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var after int64
	var follow bool
	logCmd := &cobra.Command{
		Use:   "log ID [--follow]",
		Short: "Print a job's log; --follow waits for more until the job is over",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return followJob(cmd.Context(), g, args[0], after, follow)
		},
	}
	logCmd.Flags().Int64Var(&after, "after", 0, "start after this line number")
	logCmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the job is over; exit 1 unless it is done")

	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job that is not over (its builder stops at its next lease renewal)",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.q.CancelJob(cmd.Context(), args[0], service.Actor{ID: service.LocalActor})
			if err != nil {
				return err
			}
			if st != job.Cancelled {
				return usagef("job %s is %s already: nothing to cancel", args[0], st)
			}
			fmt.Fprintf(g.Stdout, "cancelled job %s\n", args[0])
			return nil
		},
	}

	var out string
	artifact := &cobra.Command{
		Use:   "artifact ID NAME -o FILE",
		Short: "Save one of a job's artifacts (module.ko, profile.json) to FILE",
		Args:  exactArgs(2, "a job ID and an artifact name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("job artifact needs -o FILE")
			}
			rc, a, err := g.q.OpenArtifact(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			defer rc.Close()
			data, err := io.ReadAll(io.LimitReader(rc, service.MaxArtifact+1))
			if err != nil {
				return err
			}
			if int64(len(data)) != a.Size {
				return fmt.Errorf("artifact %s: %d bytes, %d recorded", a.Name, len(data), a.Size)
			}
			if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "wrote %s (%d bytes, sha256 %s)\n", out, a.Size, a.SHA256)
			return nil
		},
	}
	artifact.Flags().StringVarP(&out, "output", "o", "", "the file to write")

	var buildersJSON bool
	builders := &cobra.Command{
		Use:   "builders [--json]",
		Short: "List the builders that registered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := g.q.Builders(cmd.Context())
			if err != nil {
				return err
			}
			if buildersJSON {
				return writeJSON(g.Stdout, bs)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tARCH\tCORES\tKERNELS\tSEEN")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", b.ID, termtext.Line(b.Name), termtext.Line(b.Arch), b.Cores,
					orDash(termtext.Line(strings.Join(b.Kernels, ","))), b.Seen.Local().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	builders.Flags().BoolVar(&buildersJSON, "json", false, "print JSON")
	cmd.AddCommand(list, show, logCmd, cancel, artifact, builders)
	return cmd
}

// followJob prints a job's log (until it is over, with follow) and, with
// follow, fails unless the job ended done.
func followJob(ctx context.Context, g *Globals, id string, after int64, follow bool) error {
	err := g.q.JobLog(ctx, id, service.JobLogOptions{After: after, Follow: follow}, func(l store.JobLogLine) error {
		_, err := fmt.Fprintln(g.Stdout, termtext.Line(l.Text))
		return err
	})
	if err != nil || !follow {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d, err := g.q.Job(ctx, id)
	if err != nil {
		return err
	}
	if d.State != job.Done {
		msg := string(d.State)
		if d.Error != "" {
			msg += ": " + d.Error
		}
		return fmt.Errorf("job %s %s: %w", id, termtext.Line(msg), errJobFailed)
	}
	return nil
}

func newBuilderCmd(g *Globals) *cobra.Command {
	var o service.BuilderOptions
	var kinds []string
	var sbo sandboxOptions
	cmd := &cobra.Command{
		Use:   "builder --server ADDR [-j N] [--name NAME] [--kind KIND]...",
		Short: "Run a builder worker: take kernel and livepatch builds from the server",
		Long: `builder registers with the server (a builder token: tuxtape token create --role
builder) with its architecture, cores and prepared kernels, then takes jobs, -j
at a time: it renews each job's lease while it works (--lease), streams the
job's log and uploads its artifacts with their SHA-256. Kernel builds run in the
cache directory's builds/ and report the real build profile, which the server
stores with the kernel; livepatch builds set up the Debian kernel (packages and
prepared tree, cached) and report the module, or the generator's refusal.

A fix is code (a Makefile change runs at build time), so a livepatch build's
steps that run it — applying the fixes, compiling before and after them — run
sandboxed: as --job-uid with no capabilities (a builder that is not root uses a
user namespace instead: the job is that namespace's root, without capabilities),
in mount, network, PID and IPC namespaces of their own, with the tree seen
through an overlay at its own path, the rest of the file system read-only, a
private /tmp, and the data, cache and home directories hidden; --job-memory,
--job-procs and --job-cpus bound each step through a cgroup v2 group where the
builder's cgroup delegates the controllers, through rlimits otherwise, and
--job-time kills a step and everything it started. Kernel set-up (packages,
unpacking, modules_prepare) and kernel-build jobs run as the builder.
SIGINT or SIGTERM stops it; a job it was running goes to another builder once
its lease runs out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.client == nil {
				return usagef("builder needs --server (and a builder token in TUXTAPE_TOKEN)")
			}
			for _, k := range kinds {
				if !job.Kind(k).Valid() {
					return usagef("--kind %q: want kernel-build or patch-build", k)
				}
				o.Kinds = append(o.Kinds, job.Kind(k))
			}
			if o.Builder.Name == "" {
				o.Builder.Name, _ = os.Hostname()
			}
			o.Builder.Arch = runtime.GOARCH
			if o.Builder.Arch == "amd64" {
				o.Builder.Arch = "x86_64"
			}
			o.Builder.Cores = runtime.NumCPU()
			o.Server = api.BuilderClient{C: g.client, Name: o.Builder.Name}
			sb, err := jobSandbox(g, sbo)
			if err != nil {
				return err
			}
			o.Sandbox = sb
			if len(o.Kinds) == 0 || slices.Contains(o.Kinds, job.PatchBuild) {
				if err := sandbox.Available(cmd.Context()); err != nil {
					return fmt.Errorf("builder: patch builds cannot be sandboxed on this machine (run the builder as root, or allow unprivileged user namespaces): %w", err)
				}
			}
			fmt.Fprintf(g.Stderr, "builder %s: taking jobs from %s\n", o.Builder.Name, g.cfg.Server)
			err = g.svc.RunBuilder(cmd.Context(), o)
			if err == nil {
				fmt.Fprintln(g.Stderr, "builder stopped")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Builder.Name, "name", "", "the builder's name (default: the host name)")
	f.IntVarP(&o.Parallel, "jobs", "j", 1, "jobs to run at once")
	f.StringArrayVar(&kinds, "kind", nil, "only take jobs of this kind: kernel-build or patch-build (repeatable; default both)")
	f.DurationVar(&o.Lease, "lease", service.DefaultJobLease, "how long a job's lease lasts between renewals")
	f.IntVar(&sbo.uid, "job-uid", sandbox.DefaultUID, "uid and gid a job's sandboxed steps run as when the builder is root (must own no files)")
	f.StringVar(&sbo.memory, "job-memory", "4G", "memory of one sandboxed step (cgroup memory.max, else RLIMIT_AS per process)")
	f.DurationVar(&sbo.time, "job-time", sandbox.DefaultLimits.Time, "wall-clock limit of one sandboxed step")
	f.IntVar(&sbo.procs, "job-procs", sandbox.DefaultLimits.Procs, "processes of one sandboxed step (cgroup pids.max, else RLIMIT_NPROC)")
	f.Float64Var(&sbo.cpus, "job-cpus", 0, "cores one sandboxed step may use (cgroup cpu.max only; 0: all)")
	f.StringVar(&sbo.cgroup, "job-cgroup", "", "cgroup v2 directory delegated to the builder for job groups (default: its own cgroup; none: rlimits only)")
	return cmd
}

// sandboxOptions are the builder's --job-* flags.
type sandboxOptions struct {
	uid    int
	memory string
	time   time.Duration
	procs  int
	cpus   float64
	cgroup string
}

// jobSandbox is the builder's sandbox: its flags, and the directories a
// job must not see — home and settings (sandbox.DefaultHide), the data
// directory (the database, archive keys), the cache directory (other
// kernels' trees; the job's own tree is mounted back over it).
func jobSandbox(g *Globals, o sandboxOptions) (*sandbox.Config, error) {
	// A builder that is not root runs jobs in a user namespace instead.
	if os.Geteuid() == 0 && o.uid <= 0 {
		return nil, usagef("--job-uid %d: want a uid that is neither root nor the builder's own", o.uid)
	}
	mem, err := sandbox.ParseSize(o.memory)
	if err != nil {
		return nil, usagef("--job-memory: %v", err)
	}
	if o.time <= 0 || o.procs <= 0 || o.cpus < 0 {
		return nil, usagef("--job-time, --job-procs and --job-cpus must be positive")
	}
	lim := sandbox.DefaultLimits
	lim.Memory, lim.Time, lim.Procs, lim.CPUs = mem, o.time, o.procs, o.cpus
	hide := sandbox.DefaultHide()
	for _, d := range []string{g.cfg.DataDir, g.cfg.CacheDir} {
		if d != "" {
			if abs, err := filepath.Abs(d); err == nil {
				hide = append(hide, abs)
			}
		}
	}
	return &sandbox.Config{UID: o.uid, GID: o.uid, Limits: lim, Hide: hide, CgroupParent: o.cgroup}, nil
}
