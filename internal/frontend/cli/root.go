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

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/frontend/config"
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
	ExitCanceled         = 130
)

// Globals are the flags every subcommand takes.
type Globals struct {
	Flags   config.Flags
	Quiet   bool
	Verbose bool

	Stdout, Stderr io.Writer
	cfg            config.Config
	log            *slog.Logger
	svc            *service.Service
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Run executes the tuxtape command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &Globals{Stdout: stdout, Stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if g.svc != nil {
		if cerr := g.svc.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err == nil {
		return ExitOK
	}
	switch {
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		fmt.Fprintln(stderr, "tuxtape: interrupted")
		return ExitCanceled
	case errors.Is(err, store.ErrNotFound):
		fmt.Fprintf(stderr, "tuxtape: %v (run `tuxtape sync` first if the database is new)\n", err)
		return ExitNotFound
	}
	var nl notLivepatchableError
	if errors.As(err, &nl) {
		fmt.Fprintf(stderr, "tuxtape: %v\n", err)
		return ExitNotLivepatchable
	}
	var ue usageError
	if errors.As(err, &ue) || service.IsInvalid(err) {
		fmt.Fprintf(stderr, "tuxtape: %v\nRun 'tuxtape --help' for usage.\n", err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "tuxtape: %v\n", err)
	return ExitError
}

func newRoot(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "tuxtape",
		Short: "Self-hosted Linux kernel livepatching: track CVEs, build and ship livepatches",
		Long: `tuxtape follows every Linux kernel CVE published by the kernel CNA, decides which
ones matter for your kernels, and turns their fixes into livepatch modules.

Settings come from flags, then TUXTAPE_* environment variables, then the TOML
file ` + config.DefaultFile() + ` (keys data_dir, cache_dir, db, source),
then defaults.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(g.Flags)
			if err != nil {
				return err
			}
			g.cfg = cfg
			level := slog.LevelWarn
			if g.Verbose {
				level = slog.LevelDebug
			}
			g.log = slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			g.svc = service.New(service.Config{DB: cfg.DB, CacheDir: cfg.CacheDir, MirrorDir: cfg.MirrorDir(), Source: cfg.Source, Log: g.log, Notify: g.notify})
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.Flags.DataDir, "data-dir", "", "data directory (env "+config.EnvDataDir+"; default $XDG_DATA_HOME/tuxtape)")
	pf.StringVar(&g.Flags.CacheDir, "cache-dir", "", "cache directory (env "+config.EnvCacheDir+"; default $XDG_CACHE_HOME/tuxtape)")
	pf.StringVar(&g.Flags.DB, "db", "", "database: a SQLite file path, or a postgres:// DSN (env "+config.EnvDB+"; default DATA-DIR/tuxtape.db)")
	pf.StringVar(&g.Flags.ConfigFile, "config", "", "config file (env "+config.EnvConfig+")")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress output")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "debug logging on stderr")
	root.AddCommand(newSyncCmd(g), newCVECmd(g), newKernelCmd(g), newPatchCmd(g), newVEXCmd(g))
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
