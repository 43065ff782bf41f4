// Package cli is tuxtape-agent's command line: run (the daemon), poll
// (one poll, for scripts and timers), status (with exit codes a script
// can test) and the hidden load (a module file without the archive, for
// tests). It uses the standard flag package rather than cobra: the agent
// is on every host, and every megabyte counts.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tuxtape/tuxtape/internal/agent"
	"github.com/tuxtape/tuxtape/internal/agent/archivefeed"
	"github.com/tuxtape/tuxtape/internal/agent/config"
	"github.com/tuxtape/tuxtape/internal/agent/fleetclient"
	"github.com/tuxtape/tuxtape/internal/agent/hoststate"
	"github.com/tuxtape/tuxtape/internal/agent/livepatch"
	"github.com/tuxtape/tuxtape/internal/agent/outbox"
	"github.com/tuxtape/tuxtape/internal/agent/watch"
)

// Version is the agent's version, set at link time.
var Version = "dev"

// Exit codes; status and poll use them, and --help lists them.
const (
	ExitOK          = 0 // up to date
	ExitError       = 1
	ExitUpdate      = 2 // an update is available (not loaded: kill switch, or not polled since)
	ExitNoPatches   = 3 // nothing published for this kernel (or all of it marked bad)
	ExitUnsupported = 4 // the kernel has no livepatch support
	ExitUsage       = 64
	ExitCanceled    = 130
)

const usage = `tuxtape-agent keeps this host's kernel livepatched from a signed TuxTape archive.

Usage:
  tuxtape-agent run    [--boot] [flags]   poll every interval until SIGTERM; watch the kernel log
  tuxtape-agent poll   [--boot] [flags]   one poll (and its rollback window), then exit
  tuxtape-agent status [--json] [flags]   kernel, patch level, CVEs fixed, bad versions, last poll
  tuxtape-agent version

--boot re-applies the last good version from the local cache, without the
network (run always does this first). The kill switch: tuxtape.disable=1 on
the kernel command line, or a file named "disable" in the state directory;
then nothing is loaded.

Exit codes (status, and poll):
  0  up to date
  1  error (or the patch just loaded was rolled back)
  2  update available, not loaded
  3  no patches for this kernel
  4  unsupported kernel (no /sys/kernel/livepatch)
  130 interrupted

Settings: flag > environment > file (TOML, --config or TUXTAPE_AGENT_CONFIG,
default /etc/tuxtape/agent.toml; keys metadata_url, targets_url, root, ring,
server, token, token_file, ca, cert, key, machine_id, state_dir, interval,
heartbeat, rollback_window, transition_wait, signal_wait) > default. TUXTAPE_TOKEN
holds the agent token.
`

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("tuxtape-agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	flags := config.AddFlags(fs)
	verbose := fs.Bool("v", false, "debug logging")
	var (
		boot    *bool
		asJSON  *bool
		version *int64
		name    *string
	)
	switch cmd {
	case "run", "poll":
		boot = fs.Bool("boot", false, "re-apply the last good version from the local cache, without the network")
	case "status":
		asJSON = fs.Bool("json", false, "JSON output")
	case "load":
		version = fs.Int64("version", 0, "the version number to record")
		name = fs.String("name", "", "the livepatch's name (default: the file name)")
	case "version", "--version":
		fmt.Fprintln(stdout, "tuxtape-agent", Version)
		return ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "tuxtape-agent: unknown command %q\n\n%s", cmd, usage)
		return ExitUsage
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	c, err := flags.Resolve()
	if err != nil {
		fmt.Fprintln(stderr, "tuxtape-agent:", err)
		return ExitError
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	switch cmd {
	case "status":
		return status(c, *asJSON, stdout, stderr)
	case "load":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "tuxtape-agent load: want one module file")
			return ExitUsage
		}
		return runLoad(ctx, c, log, fs.Arg(0), *name, *version, stderr)
	case "poll":
		return runPoll(ctx, c, log, *boot, stderr)
	default:
		return runDaemon(ctx, c, log, stderr)
	}
}

// host is an agent wired to this host, and what to close.
type host struct {
	a      *agent.Agent
	stream *watch.Stream
	unlock func()
	close  func()
}

func setUp(c config.Config, log *slog.Logger) (*host, error) {
	store := hoststate.Store{Dir: c.StateDir}
	lock, err := store.Lock()
	if err != nil {
		return nil, err
	}
	h := &host{unlock: func() { lock.Close() }, close: func() {}}
	cmdline, _ := os.ReadFile(c.Cmdline)
	a := &agent.Agent{
		Config: agent.Config{MachineID: c.MachineID, AgentVersion: Version, Ring: c.Ring,
			Window: c.Window.Duration, Cmdline: string(cmdline), StateDir: c.StateDir},
		Patcher: &livepatch.Manager{Sysfs: livepatch.Sysfs{Root: c.SysfsRoot}, Modules: livepatch.System{},
			Policy: livepatch.Policy{Wait: c.TransitionWait.Duration, SignalWait: c.SignalWait.Duration},
			Log:    log.With("component", "livepatch")},
		Store:   store,
		Release: uname,
		Log:     log.With("component", "agent"),
		Feed:    noFeed{},
	}
	a.Config.Hostname, _ = os.Hostname()
	if c.MetadataURL != "" {
		var root []byte
		if c.Root != "" {
			if root, err = os.ReadFile(c.Root); err != nil {
				h.unlock()
				return nil, fmt.Errorf("trusted root: %w", err)
			}
		}
		targets := c.TargetsURL
		if targets == "" {
			targets = strings.TrimSuffix(c.MetadataURL, "/metadata") + "/targets"
		}
		a.Feed = archivefeed.New(c.MetadataURL, targets, root, filepath.Join(c.StateDir, "archive"), nil)
	}
	if c.Server != "" {
		cl, err := fleetclient.Dial(fleetclient.Options{Addr: c.Server, Token: c.Token, CA: c.CA, Cert: c.Cert, Key: c.Key})
		if err != nil {
			h.unlock()
			return nil, err
		}
		a.Reporter = cl
		a.Outbox = &outbox.Queue{Dir: c.StateDir}
		h.close = func() { cl.Close() }
	}
	// Open the kernel log before anything loads, so nothing is missed.
	h.stream, err = (&watch.Watcher{Path: c.KmsgPath, Log: log.With("component", "watch")}).Open()
	if err != nil {
		h.close()
		h.unlock()
		return nil, err
	}
	h.a = a
	return h, nil
}

func (h *host) done() {
	h.close()
	h.unlock()
}

// watchLog runs the watcher until ctx is done; the returned func waits
// for it.
func (h *host) watchLog(ctx context.Context, log *slog.Logger) func() {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := h.stream.Run(ctx, func(p watch.Problem) { h.a.Problem(ctx, p) }); err != nil {
			log.Error("kernel log watch stopped", "err", err)
		}
	}()
	return func() { <-ended }
}

type noFeed struct{}

var errNoArchive = errors.New("no archive configured (metadata_url)")

func (noFeed) Versions(context.Context, string, bool) ([]agent.Release, error) {
	return nil, errNoArchive
}
func (noFeed) Fetch(context.Context, agent.Release, bool) (string, error) { return "", errNoArchive }

func uname() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

func exitFor(o agent.Outcome) int {
	switch o.Result {
	case agent.ResultUpToDate, agent.ResultUpdated, agent.ResultDisabled:
		return ExitOK
	case agent.ResultUpdateAvailable:
		return ExitUpdate
	case agent.ResultNoPatches:
		return ExitNoPatches
	case agent.ResultUnsupported:
		return ExitUnsupported
	}
	if errors.Is(o.Err, context.Canceled) {
		return ExitCanceled
	}
	return ExitError
}

// waitWindow lets a fresh load run through its rollback window with the
// watcher on, then confirms it.
func waitWindow(ctx context.Context, a *agent.Agent) error {
	for {
		left := a.WindowLeft()
		if left <= 0 {
			return a.Confirm(ctx)
		}
		t := time.NewTimer(left + 50*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func runPoll(ctx context.Context, c config.Config, log *slog.Logger, boot bool, stderr io.Writer) int {
	return withHost(ctx, c, log, "poll", stderr, func(h *host) int {
		o := h.a.Poll(ctx, agent.PollOptions{Offline: boot})
		if o.Err != nil {
			fmt.Fprintln(stderr, "tuxtape-agent poll:", o.Err)
		}
		if o.Result == agent.ResultUpdated {
			if err := waitWindow(ctx, h.a); err != nil {
				return ExitCanceled
			}
			h.a.Sync(ctx)
			if rolledBack(h.a) {
				fmt.Fprintf(stderr, "tuxtape-agent poll: version %d was rolled back (see tuxtape-agent status)\n", o.Loaded)
				return ExitError
			}
		}
		return exitFor(o)
	})
}

func rolledBack(a *agent.Agent) bool {
	m, err := a.Machine()
	return err == nil && m.State == "rolled_back"
}

func runLoad(ctx context.Context, c config.Config, log *slog.Logger, file, name string, version int64, stderr io.Writer) int {
	if name == "" {
		name = strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".ko"), "-", "_")
	}
	return withHost(ctx, c, log, "load", stderr, func(h *host) int {
		if err := h.a.ApplyFile(ctx, file, name, version); err != nil {
			fmt.Fprintln(stderr, "tuxtape-agent load:", err)
			h.a.Sync(ctx)
			return ExitError
		}
		if err := waitWindow(ctx, h.a); err != nil {
			return ExitCanceled
		}
		h.a.Sync(ctx)
		if rolledBack(h.a) {
			fmt.Fprintf(stderr, "tuxtape-agent load: version %d was rolled back\n", version)
			return ExitError
		}
		return ExitOK
	})
}

func runDaemon(ctx context.Context, c config.Config, log *slog.Logger, stderr io.Writer) int {
	return withHost(ctx, c, log, "run", stderr, func(h *host) int {
		// First the last good version from the cache, so a reboot is patched
		// again before the network is up; then the archive.
		h.a.Poll(ctx, agent.PollOptions{Offline: true})
		// Heartbeats between polls keep the machine from looking stale, and
		// send what queued while the server was down.
		bctx, stopBeats := context.WithCancel(ctx)
		defer stopBeats()
		go func() {
			t := time.NewTicker(c.Heartbeat.Duration)
			defer t.Stop()
			for {
				select {
				case <-bctx.Done():
					return
				case <-t.C:
					h.a.Sync(bctx)
				}
			}
		}()
		for {
			h.a.Poll(ctx, agent.PollOptions{})
			if err := waitWindow(ctx, h.a); err != nil {
				break
			}
			h.a.Sync(ctx)
			// Jitter spreads a fleet's polls apart.
			next := c.Interval.Duration + time.Duration(rand.Int64N(int64(c.Interval.Duration)/10+1))
			log.Debug("next poll", "in", next)
			t := time.NewTimer(next)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			if ctx.Err() != nil {
				break
			}
		}
		log.Info("stopping")
		return ExitOK
	})
}

// Status is what status prints.
type Status struct {
	Kernel     string                       `json:"kernel"`
	Supported  bool                         `json:"livepatch_supported"`
	Disabled   string                       `json:"disabled,omitempty"` // why the kill switch is on
	Level      string                       `json:"level,omitempty"`
	Version    int64                        `json:"version,omitempty"`
	Confirmed  bool                         `json:"confirmed,omitempty"`
	CVEs       []string                     `json:"cves"`
	Patches    []livepatch.Patch            `json:"patches"`
	Good       *hoststate.Applied           `json:"last_good,omitempty"`
	Bad        []hoststate.Bad              `json:"bad_versions"`
	LastPoll   *hoststate.Poll              `json:"last_poll,omitempty"`
	State      string                       `json:"status"`
	ExitCode   int                          `json:"exit_code"`
	AllKernels map[string]*hoststate.Kernel `json:"-"`
}

func status(c config.Config, asJSON bool, stdout, stderr io.Writer) int {
	s, err := gather(c)
	if err != nil {
		fmt.Fprintln(stderr, "tuxtape-agent status:", err)
		return ExitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return s.ExitCode
	}
	fmt.Fprintf(stdout, "kernel:       %s\n", s.Kernel)
	if !s.Supported {
		fmt.Fprintf(stdout, "livepatch:    not supported by this kernel (no /sys/kernel/livepatch)\n")
	}
	if s.Disabled != "" {
		fmt.Fprintf(stdout, "kill switch:  on (%s)\n", s.Disabled)
	}
	lvl := "none"
	if s.Level != "" {
		lvl = s.Level
		if !s.Confirmed {
			lvl += " (in its rollback window)"
		}
	}
	fmt.Fprintf(stdout, "patch level:  %s\n", lvl)
	fmt.Fprintf(stdout, "CVEs fixed:   %d %s\n", len(s.CVEs), strings.Join(s.CVEs, " "))
	for _, p := range s.Patches {
		fmt.Fprintf(stdout, "loaded:       %s enabled=%t transition=%t\n", p.Name, p.Enabled, p.Transition)
	}
	for _, b := range s.Bad {
		fmt.Fprintf(stdout, "bad version:  %d %s (%s): %s\n", b.Version, b.Module, b.At.Format(time.RFC3339), b.Reason)
	}
	if p := s.LastPoll; p != nil {
		fmt.Fprintf(stdout, "last poll:    %s %s", p.At.Format(time.RFC3339), p.Result)
		if p.Newest > 0 {
			fmt.Fprintf(stdout, " (newest good version %d)", p.Newest)
		}
		if p.Error != "" {
			fmt.Fprintf(stdout, ": %s", p.Error)
		}
		fmt.Fprintln(stdout)
	} else {
		fmt.Fprintln(stdout, "last poll:    never")
	}
	fmt.Fprintf(stdout, "status:       %s\n", s.State)
	return s.ExitCode
}

func gather(c config.Config) (*Status, error) {
	kernel, err := uname()
	if err != nil {
		return nil, err
	}
	st, err := hoststate.Store{Dir: c.StateDir}.Load()
	if err != nil {
		return nil, err
	}
	cmdline, _ := os.ReadFile(c.Cmdline)
	s := &Status{Kernel: kernel, CVEs: []string{}, Patches: []livepatch.Patch{}, Bad: []hoststate.Bad{}}
	_, s.Disabled = hoststate.Disabled(string(cmdline), c.StateDir)
	sys := livepatch.Sysfs{Root: c.SysfsRoot}
	s.Supported = sys.Supported()
	ks := st.Kernel(kernel)
	s.Good = ks.Good
	s.Bad = append(s.Bad, ks.Bad...)
	if p := st.LastPoll; p != nil && p.Kernel == kernel {
		s.LastPoll = p
	}
	if !s.Supported {
		s.State, s.ExitCode = "unsupported kernel", ExitUnsupported
		return s, nil
	}
	ps, err := sys.List()
	if err != nil {
		return nil, err
	}
	s.Patches = append(s.Patches, ps...)
	lv := agent.Level(ks, ps)
	s.Level, s.Version, s.CVEs = lv.Level, lv.Version, lv.CVEs
	if ks.Loaded != nil && lv.Version == ks.Loaded.Version {
		s.Confirmed = ks.Loaded.Confirmed
	}
	switch p := s.LastPoll; {
	case p == nil:
		s.State, s.ExitCode = "never polled for this kernel", ExitError
	case p.Result == string(agent.ResultNoPatches):
		s.State, s.ExitCode = "no patches for this kernel", ExitNoPatches
	case p.Result == string(agent.ResultError) || p.Result == string(agent.ResultFailed):
		s.State, s.ExitCode = "error: "+p.Error, ExitError
	case p.Newest > s.Version && !ks.IsBad(p.Newest):
		s.State, s.ExitCode = fmt.Sprintf("update available (version %d)", p.Newest), ExitUpdate
	default:
		s.State, s.ExitCode = "up to date", ExitOK
	}
	return s, nil
}

// withHost sets the host up, watches the kernel log, recovers from a
// crash inside a rollback window, and runs fn; a failure on the way is
// printed under the subcommand's name.
func withHost(ctx context.Context, c config.Config, log *slog.Logger, cmd string, stderr io.Writer, fn func(h *host) int) int {
	h, err := setUp(c, log)
	if err != nil {
		fmt.Fprintln(stderr, "tuxtape-agent "+cmd+":", err)
		return ExitError
	}
	defer h.done()
	wctx, stop := context.WithCancel(ctx)
	wait := h.watchLog(wctx, log)
	defer func() { stop(); wait() }()
	if err := h.a.Recover(ctx); err != nil {
		fmt.Fprintln(stderr, "tuxtape-agent "+cmd+":", err)
		return ExitError
	}
	return fn(h)
}
