package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/archive/repo"
	"github.com/tuxtape/tuxtape/internal/service"
)

// EnvArchiveDir is the archive directory's environment variable.
const EnvArchiveDir = "TUXTAPE_ARCHIVE_DIR"

// ArchiveOptions are the flags every archive subcommand takes.
type ArchiveOptions struct {
	Dir  string
	JSON bool
}

// dir is --dir, else TUXTAPE_ARCHIVE_DIR, else DATA-DIR/archive.
func (o ArchiveOptions) dir(g *Globals) string {
	switch {
	case o.Dir != "":
		return o.Dir
	case os.Getenv(EnvArchiveDir) != "":
		return os.Getenv(EnvArchiveDir)
	}
	return filepath.Join(g.cfg.DataDir, "archive")
}

func newArchiveCmd(g *Globals) *cobra.Command {
	var o ArchiveOptions
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "The signed patch archive (TUF) that hosts' agents take livepatches from",
		Long: `archive keeps the livepatch modules hosts download, in a TUF repository
(The Update Framework): every module is signed metadata's target
<release>/<patchset>-<version>.ko, with the kernel release, module name, CVEs,
rings and the version it replaces. Hosts verify signatures, versions and
expiry, so a mirror or a man in the middle cannot give them an older,
altered or other kernel's module, nor hold back a new one for long.

The archive directory (--dir, env ` + EnvArchiveDir + `, default DATA-DIR/archive)
holds the signing keys (keys/, mode 0600: back them up, and keep the root
keys offline in production), config.json and public/, the part to serve from
any static web server. Its timestamp expires in hours: run
` + "`tuxtape archive refresh`" + ` from cron, hourly.

Rings (default canary, early, stable) are stages of a rollout: a version goes
to the first ring, then ` + "`promote`" + ` moves it on. A version that must be
withdrawn is revoked; to take hosts back to an older module, ` + "`downgrade`" + `
publishes it again as a new, higher version (TUF allows no rollback).`,
	}
	cmd.PersistentFlags().StringVar(&o.Dir, "dir", "", "the archive directory (env "+EnvArchiveDir+"; default DATA-DIR/archive)")
	cmd.AddCommand(newArchiveInitCmd(g, &o), newArchivePublishCmd(g, &o), newArchivePromoteCmd(g, &o),
		newArchiveRevokeCmd(g, &o), newArchiveDowngradeCmd(g, &o), newArchiveRotateKeyCmd(g, &o),
		newArchiveRefreshCmd(g, &o), newArchiveStatusCmd(g, &o), newArchiveServeCmd(g, &o))
	return cmd
}

// ArchiveInitOptions are the flags of `archive init`.
type ArchiveInitOptions struct {
	Rings      []string
	Thresholds []string // role=N
	Expiry     map[string]string
}

func newArchiveInitCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	o := ArchiveInitOptions{Expiry: map[string]string{}}
	cmd := &cobra.Command{
		Use:   "init [--rings canary,early,stable] [--threshold root=2]",
		Short: "Make a new archive: keys, config and the first signed metadata",
		Long: `init makes a new archive in an empty (or missing) directory: an ed25519 key per
role (as many as the role's threshold), config.json, and version 1 of the root,
targets, snapshot and timestamp metadata.

Give hosts public/metadata/1.root.json (or root.json) out of band: it is
the trust they start from. Root rotations later are followed automatically.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runArchiveInit(cmd.Context(), g, *ao, o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Rings, "rings", nil, "the rings, first to last (default canary,early,stable)")
	f.StringSliceVar(&o.Thresholds, "threshold", nil, "signatures a role needs, ROLE=N (root, targets, snapshot, timestamp; default 1 each)")
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		def := map[string]string{"root": "365d", "targets": "30d", "snapshot": "7d", "timestamp": "6h"}[role]
		cmd.Flags().String(role+"-expiry", "", "how long "+role+" metadata stays valid once signed (default "+def+")")
	}
	f.BoolVar(&ao.JSON, "json", false, "print the new archive's status as JSON")
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
			if v, _ := cmd.Flags().GetString(role + "-expiry"); v != "" {
				o.Expiry[role] = v
			}
		}
		return nil
	}
	return cmd
}

func runArchiveInit(ctx context.Context, g *Globals, ao ArchiveOptions, o ArchiveInitOptions) error {
	so := service.ArchiveInitOptions{Dir: ao.dir(g), Rings: o.Rings, Thresholds: map[string]int{}}
	for _, t := range o.Thresholds {
		role, n, ok := strings.Cut(t, "=")
		v, err := strconv.Atoi(n)
		if !ok || err != nil {
			return usagef("--threshold %q: want ROLE=N, e.g. root=2", t)
		}
		so.Thresholds[role] = v
	}
	for role, v := range o.Expiry {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			return usagef("--%s-expiry %q: want a duration like 6h or 30d", role, v)
		}
		switch role {
		case "root":
			so.RootExpiry = d
		case "targets":
			so.TargetsExpiry = d
		case "snapshot":
			so.SnapshotExpiry = d
		case "timestamp":
			so.TimestampExpiry = d
		}
	}
	st, err := g.svc.ArchiveInit(ctx, so)
	if err != nil {
		return err
	}
	if ao.JSON {
		return writeJSON(g.Stdout, st)
	}
	fmt.Fprintf(g.Stdout, "archive created in %s\n", st.Dir)
	fmt.Fprintf(g.Stdout, "serve %s; give hosts %s as their trusted root\n",
		filepath.Join(st.Dir, "public"), filepath.Join(st.Dir, "public", "metadata", "1.root.json"))
	fmt.Fprintf(g.Stdout, "keys are in %s: back them up; run `tuxtape archive refresh` hourly (the timestamp expires %s)\n",
		filepath.Join(st.Dir, "keys"), st.Roles["timestamp"].Expires.Local().Format(time.RFC3339))
	return nil
}

// ArchivePublishOptions are the flags of `archive publish`.
type ArchivePublishOptions struct {
	Kernel, PatchSet, Ring, VetReport string
	CVEs                              []string
	Replaces                          int64
	AllowPlainModule                  bool
	FromPatchSet                      string // KERNEL:VERSION
}

func newArchivePublishCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	var o ArchivePublishOptions
	cmd := &cobra.Command{
		Use:   "publish MODULE.ko --kernel RELEASE --patchset NAME [--cves CVE,...] [--ring RING] | publish --from-patchset KERNEL:VERSION",
		Short: "Publish a livepatch module as the next version for a kernel release",
		Long: `publish adds a livepatch module (.ko) for one kernel release (its uname -r) as
the next version of that release, in the first ring (or --ring, and the rings
before it). The module's name is read from its .modinfo; a module built for
another kernel (its vermagic) or one that is not a livepatch is refused.
The version replaces the newest one published for the kernel, unless
--replaces says otherwise.

--from-patchset KERNEL:VERSION publishes a kernel's patch set (tuxtape patchset
build): its module, made by a builder from approved patches only and vetted in
a VM, is fetched from the database (or --server) and checked against the
SHA-256 the set records; the release, the CVEs and the vetting report come
from the set and its kernel. A set that is not ready is refused.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.FromPatchSet != "" {
				if len(args) != 0 || o.Kernel != "" || o.PatchSet != "" || len(o.CVEs) != 0 {
					return usagef("--from-patchset takes the module, kernel, name and CVEs from the patch set: give no MODULE.ko, --kernel, --patchset or --cves")
				}
				rel, err := publishPatchSet(cmd.Context(), g, ao.dir(g), o)
				if err != nil {
					return err
				}
				return printRelease(g, *ao, "published", rel)
			}
			if len(args) != 1 || o.Kernel == "" || o.PatchSet == "" {
				return usagef("publish needs MODULE.ko, --kernel RELEASE and --patchset NAME (or --from-patchset KERNEL:VERSION)")
			}
			rel, err := g.svc.ArchivePublish(cmd.Context(), service.ArchivePublishOptions{
				Dir: ao.dir(g), Module: args[0], Kernel: o.Kernel, PatchSet: o.PatchSet, CVEs: o.CVEs, Ring: o.Ring,
				Replaces: o.Replaces, VetReport: o.VetReport, AllowPlainModule: o.AllowPlainModule})
			if err != nil {
				return err
			}
			return printRelease(g, *ao, "published", rel)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kernel, "kernel", "", "the kernel release it is for, as uname -r prints it (required)")
	f.StringVar(&o.PatchSet, "patchset", "", "the patch set's name (required)")
	f.StringSliceVar(&o.CVEs, "cves", nil, "the CVEs it fixes, comma-separated")
	f.StringVar(&o.Ring, "ring", "", "the ring to publish to (default the first)")
	f.Int64Var(&o.Replaces, "replaces", 0, "the version it replaces (default the newest published)")
	f.StringVar(&o.VetReport, "vet-report", "", "sha256 of the vetting report, hex")
	f.BoolVar(&o.AllowPlainModule, "allow-plain-module", false, "take a module without livepatch=Y in its .modinfo")
	f.StringVar(&o.FromPatchSet, "from-patchset", "", "publish a kernel's patch set from the database or --server: KERNEL:VERSION (tuxtape patchset list)")
	f.BoolVar(&ao.JSON, "json", false, "print the published version as JSON")
	return cmd
}

// versionFlags are --kernel and --version.
type versionFlags struct {
	Kernel  string
	Version int64
	Ring    string
}

func (v *versionFlags) add(cmd *cobra.Command, versionHelp string) {
	cmd.Flags().StringVar(&v.Kernel, "kernel", "", "the kernel release (required)")
	cmd.Flags().Int64Var(&v.Version, "version", 0, versionHelp+" (required)")
}

func (v versionFlags) service(ao ArchiveOptions, g *Globals) (service.ArchiveVersion, error) {
	if v.Kernel == "" || v.Version < 1 {
		return service.ArchiveVersion{}, usagef("give the version as --kernel RELEASE --version N (see `tuxtape archive status`)")
	}
	return service.ArchiveVersion{Dir: ao.dir(g), Kernel: v.Kernel, Version: v.Version, Ring: v.Ring}, nil
}

func newArchivePromoteCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	var v versionFlags
	var soak time.Duration
	cmd := &cobra.Command{
		Use:   "promote --kernel RELEASE --version N [--to RING]",
		Short: "Move a version on to the next ring (a new signed targets version)",
		Long: `promote releases a version to the next ring after the last it is in (or to
--to and every ring before it). Hosts in that ring take it at their next poll.
A version whose livepatch failed on machines of a ring it is in (the fleet's
health, tuxtape fleet health: from the database, or --server) is halted there:
promote refuses it. --min-soak D is a time gate: the version must have run for D
on machines of the last ring it is in (from its first applied report).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sv, err := v.service(*ao, g)
			if err != nil {
				return err
			}
			rel, err := g.svc.ArchivePromoteGated(cmd.Context(), g.q, sv, soak)
			if err != nil {
				return err
			}
			return printRelease(g, *ao, "promoted", rel)
		},
	}
	v.add(cmd, "the version to promote")
	cmd.Flags().StringVar(&v.Ring, "to", "", "the ring to promote to (default the next)")
	cmd.Flags().DurationVar(&soak, "min-soak", 0, "refuse unless the version has run this long on machines of its last ring (e.g. 24h)")
	cmd.Flags().BoolVar(&ao.JSON, "json", false, "print the version as JSON")
	return cmd
}

func newArchiveRevokeCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	var v versionFlags
	cmd := &cobra.Command{
		Use:   "revoke --kernel RELEASE --version N",
		Short: "Withdraw a version: hosts no longer see it",
		Long: `revoke withdraws a version from the archive: hosts that do not have it will
not take it. Hosts that applied it keep it until a newer version replaces it:
publish a fixed one, or ` + "`archive downgrade`" + ` to an older module. Its
number is never given again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sv, err := v.service(*ao, g)
			if err != nil {
				return err
			}
			rel, err := g.svc.ArchiveRevoke(cmd.Context(), sv)
			if err != nil {
				return err
			}
			return printRelease(g, *ao, "revoked", rel)
		},
	}
	v.add(cmd, "the version to withdraw")
	cmd.Flags().BoolVar(&ao.JSON, "json", false, "print the withdrawn version as JSON")
	return cmd
}

func newArchiveDowngradeCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	var v versionFlags
	cmd := &cobra.Command{
		Use:   "downgrade --kernel RELEASE --version OLD [--ring RING]",
		Short: "Publish an older version's module again, as a new higher version",
		Long: `downgrade takes hosts back to the module of an older version (even a revoked
one) by publishing it as a new version, higher than any so far, in the rings of
the newest version (or --ring and those before it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sv, err := v.service(*ao, g)
			if err != nil {
				return err
			}
			rel, err := g.svc.ArchiveDowngrade(cmd.Context(), sv)
			if err != nil {
				return err
			}
			return printRelease(g, *ao, "published", rel)
		},
	}
	v.add(cmd, "the older version whose module to publish again")
	cmd.Flags().StringVar(&v.Ring, "ring", "", "publish to this ring and those before it (default the newest version's rings)")
	cmd.Flags().BoolVar(&ao.JSON, "json", false, "print the new version as JSON")
	return cmd
}

func newArchiveRotateKeyCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-key ROLE",
		Short: "Replace a role's signing keys (root, targets, snapshot or timestamp)",
		Long: `rotate-key makes new keys for a role and publishes a new root version that
lists them instead of the old, signed by the old root keys and the new: hosts
holding any earlier root follow the chain. The role's metadata is re-signed
with the new keys at once. The old key files move to keys/retired/.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.svc.ArchiveRotateKey(cmd.Context(), ao.dir(g), args[0])
			if err != nil {
				return err
			}
			if ao.JSON {
				return writeJSON(g.Stdout, st)
			}
			fmt.Fprintf(g.Stdout, "rotated the %s keys: now %s (root version %d)\n", args[0], strings.Join(st.Roles[args[0]].Keys, ", "), st.Roles["root"].Version)
			return nil
		},
	}
	cmd.Flags().BoolVar(&ao.JSON, "json", false, "print the archive's status as JSON")
	return cmd
}

func newArchiveRefreshCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Re-sign the timestamp (and what else is due): run it from cron",
		Long: `refresh signs a new timestamp, and a new snapshot, targets or root when less
than half their validity is left. Hosts refuse an expired timestamp, so run it
more often than the timestamp's expiry (default 6h), e.g. hourly:

  0 * * * *  tuxtape archive refresh --dir /srv/tuxtape/archive -q`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			got, err := g.svc.ArchiveRefresh(cmd.Context(), ao.dir(g))
			if err != nil {
				return err
			}
			if ao.JSON {
				return writeJSON(g.Stdout, got)
			}
			if !g.Quiet {
				fmt.Fprintf(g.Stdout, "re-signed %s; the timestamp expires %s\n", strings.Join(got.Roles, ", "), got.Timestamp.Local().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ao.JSON, "json", false, "print what was re-signed as JSON")
	return cmd
}

func newArchiveStatusCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the versions per kernel and ring, and the metadata's expiries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.svc.ArchiveStatus(cmd.Context(), ao.dir(g))
			if err != nil {
				return err
			}
			if ao.JSON {
				return writeJSON(g.Stdout, st)
			}
			return printArchiveStatus(g, st)
		},
	}
	cmd.Flags().BoolVar(&ao.JSON, "json", false, "print as JSON")
	return cmd
}

func printArchiveStatus(g *Globals, st *repo.Status) error {
	fmt.Fprintf(g.Stdout, "archive %s, rings %s\n\n", st.Dir, strings.Join(st.Rings, " → "))
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tVERSION\tEXPIRES\tTHRESHOLD\tKEYS")
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		r := st.Roles[role]
		exp := r.Expires.Local().Format(time.RFC3339)
		if r.Expired {
			exp += " (EXPIRED: run archive refresh)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\n", role, r.Version, exp, r.Threshold, len(r.Keys))
	}
	tw.Flush()
	if len(st.Kernels) == 0 {
		fmt.Fprintln(g.Stdout, "\nnothing published yet")
		return nil
	}
	tw = tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nKERNEL\tVERSION\tRINGS\tMODULE\tREPLACES\tCVES")
	for _, k := range st.Kernels {
		for _, r := range k.Versions {
			note := ""
			if r.DowngradeOf != 0 {
				note = fmt.Sprintf(" (module of v%d)", r.DowngradeOf)
			}
			fmt.Fprintf(tw, "%s\t%d%s\t%s\t%s\t%d\t%s\n", k.Kernel, r.Version, note, strings.Join(r.Rings, ","), r.Module, r.Replaces, strings.Join(r.CVEs, ","))
		}
	}
	return tw.Flush()
}

func printRelease(g *Globals, ao ArchiveOptions, what string, rel *feed.Release) error {
	if ao.JSON {
		return writeJSON(g.Stdout, rel)
	}
	fmt.Fprintf(g.Stdout, "%s %s: version %d of %s, module %s, rings %s\n", what, rel.Target, rel.Version, rel.Kernel, rel.Module, strings.Join(rel.Rings, ","))
	return nil
}

// ArchiveServeOptions are the flags of `archive serve`.
type ArchiveServeOptions struct {
	Listen string
	// Ready, when set, hears the address once listening (tests).
	Ready func(addr string)
}

func newArchiveServeCmd(g *Globals, ao *ArchiveOptions) *cobra.Command {
	var o ArchiveServeOptions
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8787]",
		Short: "Serve the archive's public directory over plain HTTP (tests, small sites)",
		Long: `serve is a static file server for the archive's public/ directory: hosts use
http://ADDR/metadata/ and http://ADDR/targets/. TUF's signatures protect the
content, not the hosts' privacy: for anything beyond a lab, serve public/ with
your web server (TLS, caching) instead. SIGINT or SIGTERM stops it cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runArchiveServe(cmd.Context(), g, *ao, o)
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:8787", "address to listen on")
	return cmd
}

func runArchiveServe(ctx context.Context, g *Globals, ao ArchiveOptions, o ArchiveServeOptions) error {
	pub, err := g.svc.ArchivePublicDir(ao.dir(g))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("archive serve: %w", err)
	}
	files := http.FileServer(http.Dir(pub))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "read-only", http.StatusMethodNotAllowed)
				return
			}
			// Only timestamp.json and root.json change in place; every
			// other file has a name of its own for its content. A missing
			// file is not cached: N+1.root.json appears on rotation.
			cc := "no-cache"
			base := path.Base(r.URL.Path)
			if fi, err := os.Stat(filepath.Join(pub, filepath.FromSlash(path.Clean("/"+r.URL.Path)))); err == nil && fi.Mode().IsRegular() &&
				base != "timestamp.json" && base != "root.json" {
				cc = "public, max-age=31536000, immutable"
			}
			w.Header().Set("Cache-Control", cc)
			files.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	g.log.Info("serving the archive", "dir", pub, "addr", l.Addr().String())
	fmt.Fprintf(g.Stderr, "serving %s on http://%s/ (metadata/, targets/)\n", pub, l.Addr())
	if o.Ready != nil {
		o.Ready(l.Addr().String())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("archive serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("archive serve: stop: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("archive serve: %w", err)
	}
	return ctx.Err()
}
