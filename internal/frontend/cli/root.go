// Package cli implements the tuxtape command line: each subcommand is an
// options struct plus a run function that tests can call directly.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/frontend/config"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitNotFound = 3
	// ExitNotLivepatchable: the generator refused a fix, with the reason.
	ExitNotLivepatchable = 4
	// ExitBusy: another sync of the same data directory is running.
	ExitBusy = 5
	// ExitNotCompiled: the fix changes code this kernel does not build
	// (its configuration leaves it out): nothing to patch.
	ExitNotCompiled = 6
	// ExitNoChange: the fix changes no compiled code of this kernel.
	ExitNoChange = 7
	// ExitFixMismatch: the fix does not apply to, or compile against,
	// this kernel's source (most often a prerequisite change is missing).
	ExitFixMismatch = 8
	ExitCanceled    = 130
)

// Globals are the flags every subcommand takes.
type Globals struct {
	Flags   config.Flags
	Quiet   bool
	Verbose bool

	Stdout, Stderr io.Writer
	Insecure       bool
	cfg            config.Config
	log            *slog.Logger
	svc            *service.Service
	// q runs the queries: the local service, or the server's with --server.
	q      queries
	client *api.Client
}

// queries are the use cases a command can run locally or on a server
// (with --server): *service.Service and api.Remote both have them, with
// the same results, so that a command prints the same either way.
type queries interface {
	ListCVEs(ctx context.Context, q service.CVEQuery) (*service.CVEList, error)
	ShowCVE(ctx context.Context, id string, o service.ShowOptions) (*service.CVE, error)
	Kernels(ctx context.Context) ([]service.KernelView, error)
	Kernel(ctx context.Context, name string) (service.KernelView, error)
	AddKernel(ctx context.Context, o service.AddKernelOptions) (*kernel.Kernel, error)
	RemoveKernel(ctx context.Context, name string, by service.Actor) error
	VEX(ctx context.Context, o service.VEXOptions) (*vex.VEX, error)
	CreateToken(ctx context.Context, o service.CreateTokenOptions) (authz.Token, string, error)
	Tokens(ctx context.Context) ([]authz.Token, error)
	RevokeToken(ctx context.Context, id string, by service.Actor) error
	Audit(ctx context.Context, limit int) ([]authz.AuditEntry, error)
	Sync(ctx context.Context, o service.SyncOptions) (cvesync.Summary, error)
	SyncStatus(ctx context.Context) (service.SyncStatus, error)
	ListMachines(ctx context.Context, q service.MachineQuery) ([]fleet.Machine, error)
	Machine(ctx context.Context, id string, events int) (service.MachineDetail, error)
	Watch(ctx context.Context, o service.WatchOptions, fn func(event.Event) error) error
	jobQueries
	workflowQueries
	FleetHealth(ctx context.Context, patch string) ([]service.RingHealth, error)
	Profile(ctx context.Context, name string, o service.ProfileOptions) (*profile.Profile, error)
}

// local refuses a command that works only on the database itself when a
// server is set.
func (g *Globals) local(what string) error {
	if g.client != nil {
		return usagef("%s runs against the database itself, not through --server %s (yet): run it on the server's machine, or without --server", what, g.cfg.Server)
	}
	return nil
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Run executes the tuxtape command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out := &errWriter{w: stdout}
	g := &Globals{Stdout: out, Stderr: stderr}
	root := newRoot(g)
	root.SetArgs(settingsFirst(root, args))
	root.SetOut(out)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if g.client != nil {
		g.client.Close()
	}
	if g.svc != nil {
		if cerr := g.svc.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err == nil && out.err != nil {
		// A full disk or a closed pipe: the output is incomplete, and a
		// script must not take it for the whole.
		err = fmt.Errorf("write standard output: %w", out.err)
	}
	if err == nil {
		return ExitOK
	}
	// Errors carry input from outside (record fields, compiler and VM
	// output): escape what would drive the terminal.
	msg := termtext.Safe(err.Error())
	switch {
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		fmt.Fprintln(stderr, "tuxtape: interrupted")
		return ExitCanceled
	case errors.Is(err, store.ErrNotFound):
		switch service.NotFoundKind(err) {
		case "cve":
			msg += " (run `tuxtape sync` first if the database is new)"
		case "kernel":
			msg += " (see `tuxtape kernel list`, or add it with `tuxtape kernel add`)"
		}
		fmt.Fprintf(stderr, "tuxtape: %s\n", msg)
		return ExitNotFound
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK && st.Code() != codes.Unknown {
		return remoteError(stderr, st)
	}
	if errors.Is(err, cvesync.ErrSyncRunning) {
		fmt.Fprintf(stderr, "tuxtape: %s\n", msg)
		return ExitBusy
	}
	var v verdictError
	if errors.As(err, &v) {
		fmt.Fprintf(stderr, "tuxtape: %s\n", msg)
		return v.code
	}
	var ue usageError
	if errors.As(err, &ue) || service.IsInvalid(err) || errors.Is(err, store.ErrUnsupportedDSN) {
		fmt.Fprintf(stderr, "tuxtape: %s\nRun 'tuxtape --help' for usage.\n", msg)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "tuxtape: %s\n", msg)
	return ExitError
}

// errWriter remembers the first write error, which fmt.Fprintf callers
// drop, so that Run can report it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	e.err = err
	return n, err
}

// settingsFirst turns a --config given before the subcommand into
// --settings. Cobra merges a command's flags with its parents', so on the
// commands whose own --config is the old name of --kconfig, that one would
// take a settings file given first: the position says which one is meant.
func settingsFirst(root *cobra.Command, args []string) []string {
	pf := root.PersistentFlags()
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break // the subcommand, or the end of the flags
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, hasValue := strings.Cut(name, "=")
			if name == "config" {
				out[i] = "--settings" + strings.TrimPrefix(a, "--config")
			}
			if f := pf.Lookup(name); f != nil && f.NoOptDefVal == "" && !hasValue {
				i++ // its value
			}
			continue
		}
		// Shorthands (-q, -qv): one that takes a value takes the rest of
		// the word, or the next word when it is last.
		for j, c := range a[1:] {
			if f := pf.ShorthandLookup(string(c)); f != nil && f.NoOptDefVal == "" {
				if j == len(a)-2 {
					i++
				}
				break
			}
		}
	}
	return out
}

// addConfigAlias keeps --config, the old name of a command's --kconfig,
// working and hidden. After the subcommand it can only mean the kernel's
// .config: settingsFirst has made one before the subcommand --settings.
func addConfigAlias(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "config", "", "deprecated: use --kconfig")
	_ = cmd.Flags().MarkHidden("config")
}

// kconfigAlias moves a --config given for the kernel's .config into
// kconfig, with a deprecation note.
func (g *Globals) kconfigAlias(kconfig *string, alias string) error {
	if alias == "" {
		return nil
	}
	if *kconfig != "" {
		return usagef("--config %s and --kconfig %s: give the kernel's .config once, with --kconfig (the settings file goes in --settings)", alias, *kconfig)
	}
	fmt.Fprintln(g.Stderr, "tuxtape: --config for the kernel's .config is deprecated: use --kconfig (the settings file is --settings)")
	*kconfig = alias
	return nil
}

func newRoot(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "tuxtape",
		Short: "Self-hosted Linux kernel livepatching: track CVEs, build and ship livepatches",
		Long: `tuxtape follows every Linux kernel CVE published by the kernel CNA, decides which
ones matter for your kernels, and turns their fixes into livepatch modules.

Settings come from flags, then TUXTAPE_* environment variables, then the TOML
file ` + config.DefaultFile() + ` (keys data_dir, cache_dir, db, source;
another file with --settings), then defaults. The commands that take a
kernel's .config take it as --kconfig.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(g.Flags)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintf(g.Stderr, "tuxtape: warning: %s\n", termtext.Line(w))
			}
			g.cfg = cfg
			level := slog.LevelWarn
			if g.Verbose {
				level = slog.LevelDebug
			}
			g.log = slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			g.svc = service.New(service.Config{DB: cfg.DB, CacheDir: cfg.CacheDir, MirrorDir: cfg.MirrorDir(), Source: cfg.Source, Log: g.log, Notify: g.notify})
			g.q = g.svc
			if cfg.Server != "" {
				c, err := api.Dial(cfg.Server, api.ClientOptions{Token: cfg.Token, CA: cfg.CA, Cert: cfg.Cert, Key: cfg.Key, Insecure: g.Insecure})
				if err != nil {
					return usageError{err}
				}
				g.client, g.q = c, api.Remote{C: c}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.Flags.DataDir, "data-dir", "", "data directory (env "+config.EnvDataDir+"; default $XDG_DATA_HOME/tuxtape)")
	pf.StringVar(&g.Flags.CacheDir, "cache-dir", "", "cache directory (env "+config.EnvCacheDir+"; default $XDG_CACHE_HOME/tuxtape)")
	pf.StringVar(&g.Flags.DB, "db", "", "database: a SQLite file path, or a postgres:// DSN (env "+config.EnvDB+"; default DATA-DIR/tuxtape.db)")
	pf.StringVar(&g.Flags.ConfigFile, "settings", "", "settings file, TOML (env "+config.EnvConfig+"; default "+config.DefaultFile()+")")
	pf.StringVar(&g.Flags.ConfigFile, "config", "", "same as --settings (for kernel add and patch, only before the subcommand)")
	pf.StringVar(&g.Flags.Server, "server", "", "send queries to this tuxtape server, HOST:PORT (env "+config.EnvServer+")")
	pf.StringVar(&g.Flags.Token, "token", "", "the server's bearer token (env "+config.EnvToken+"; prefer the environment: flags show in ps)")
	pf.StringVar(&g.Flags.CA, "ca", "", "CA certificate to trust for the server (env "+config.EnvCA+"; default the system's)")
	pf.StringVar(&g.Flags.Cert, "cert", "", "client certificate for mutual TLS (env "+config.EnvCert+")")
	pf.StringVar(&g.Flags.Key, "key", "", "its key (env "+config.EnvKey+")")
	pf.BoolVar(&g.Insecure, "insecure", false, "no TLS: talk to --server, or serve, in plain TCP (loopback addresses only)")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress output")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "debug logging on stderr")
	root.AddCommand(newSyncCmd(g), newCVECmd(g), newKernelCmd(g), newPatchCmd(g), newVEXCmd(g),
		newServeCmd(g), newTokenCmd(g), newAuditCmd(g), newCertsCmd(g), newFleetCmd(g), newEventsCmd(g),
		newJobCmd(g), newBuilderCmd(g), newPatchSetCmd(g))
	root.AddCommand(newArchiveCmd(g))
	root.AddCommand(newDashCmd(g))
	return root
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// notify tells the user what a long step is doing, unless -q.
func (g *Globals) notify(msg string) {
	if !g.Quiet {
		fmt.Fprintln(g.Stderr, msg)
	}
}

// progressf is notify with a format.
func (g *Globals) progressf(format string, args ...any) { g.notify(fmt.Sprintf(format, args...)) }

// remoteError prints a server's refusal with what to do, and picks the
// exit code the local command would have.
func remoteError(stderr io.Writer, st *status.Status) int {
	msg := termtext.Safe(st.Message())
	hint := ""
	code := ExitError
	switch st.Code() {
	case codes.NotFound:
		code = ExitNotFound
	case codes.Aborted:
		code = ExitBusy
	case codes.InvalidArgument:
		code = ExitUsage
	case codes.Unauthenticated:
		hint = " (give a token with --token or TUXTAPE_TOKEN; an admin makes one with `tuxtape token create`)"
	case codes.PermissionDenied:
		hint = " (ask an admin for a token of a role that may)"
	case codes.Unavailable:
		switch {
		case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate"):
			hint = " (the server wants a client certificate from its CA: give --cert and --key)"
		case strings.Contains(msg, "authentication handshake failed") || strings.Contains(msg, "tls:") || strings.Contains(msg, "x509"):
			hint = " (a TLS problem: is --ca the server's CA, and --server the name or address in its certificate?)"
		case strings.Contains(msg, "connection closed before server preface") || strings.Contains(msg, "EOF") ||
			strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset"):
			hint = " (the server closed the connection: it may want a client certificate from its CA (--cert, --key), or TLS where this client spoke plain text)"
		default:
			hint = " (is `tuxtape serve` running there?)"
		}
	}
	fmt.Fprintf(stderr, "tuxtape: server: %s: %s%s\n", st.Code(), msg, hint)
	return code
}
