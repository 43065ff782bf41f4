// Package config is the agent's settings: a TOML file
// (/etc/tuxtape/agent.toml by default), the environment (TUXTAPE_TOKEN)
// and flags, resolved in one place with flag > environment > file >
// default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults.
const (
	DefaultFile     = "/etc/tuxtape/agent.toml"
	DefaultStateDir = "/var/lib/tuxtape-agent"
	DefaultInterval = time.Hour
	DefaultWindow   = 60 * time.Second
	// DefaultHeartbeat keeps a machine fresh on the server (fleet.StaleAfter
	// is five minutes) between hourly polls.
	DefaultHeartbeat = time.Minute
)

// Duration is a time.Duration written as "1h", "90s" in the file.
type Duration struct{ time.Duration }

// UnmarshalText reads "1h30m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Config is every setting.
type Config struct {
	MetadataURL string `toml:"metadata_url"` // the archive's metadata base URL
	TargetsURL  string `toml:"targets_url"`  // its targets base URL
	Root        string `toml:"root"`         // the trusted root.json
	Ring        string `toml:"ring"`
	Server      string `toml:"server"` // host:port of tuxtape serve; empty: no reports
	Token       string `toml:"token"`  // or TUXTAPE_TOKEN, or token_file
	TokenFile   string `toml:"token_file"`
	CA          string `toml:"ca"`
	Cert        string `toml:"cert"`
	Key         string `toml:"key"`
	MachineID   string `toml:"machine_id"` // default /etc/machine-id
	StateDir    string `toml:"state_dir"`

	Interval       Duration `toml:"interval"`        // between polls; default 1h, with up to 10 % jitter
	Heartbeat      Duration `toml:"heartbeat"`       // between heartbeats (run); default 1m
	Window         Duration `toml:"rollback_window"` // default 60s
	TransitionWait Duration `toml:"transition_wait"` // T1 before signalling; default 60s
	SignalWait     Duration `toml:"signal_wait"`     // T2 after signalling; default 60s

	// Not in the file: for tests and unusual hosts.
	SysfsRoot string `toml:"-"`
	KmsgPath  string `toml:"-"`
	Cmdline   string `toml:"-"` // the file whose text is the kernel command line
}

// Flags binds the settings' flags to fs; Resolve applies those given.
type Flags struct {
	fs   *flag.FlagSet
	file string
	c    Config
}

// AddFlags adds the settings' flags to fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.file, "config", "", "settings file (env TUXTAPE_AGENT_CONFIG; default "+DefaultFile+", if it exists)")
	fs.StringVar(&f.c.MetadataURL, "metadata-url", "", "the archive's metadata base URL")
	fs.StringVar(&f.c.TargetsURL, "targets-url", "", "the archive's targets base URL")
	fs.StringVar(&f.c.Root, "root", "", "the trusted root.json of the archive")
	fs.StringVar(&f.c.Ring, "ring", "", "rollout ring (canary, stable, …); empty takes every ring")
	fs.StringVar(&f.c.Server, "server", "", "server address host:port for heartbeats and reports")
	fs.StringVar(&f.c.Token, "token", "", "agent token (env TUXTAPE_TOKEN; prefer token_file in the settings)")
	fs.StringVar(&f.c.CA, "ca", "", "CA file the server's certificate must chain to")
	fs.StringVar(&f.c.Cert, "cert", "", "client certificate for mutual TLS")
	fs.StringVar(&f.c.Key, "key", "", "client key for mutual TLS")
	fs.StringVar(&f.c.MachineID, "machine-id", "", "machine ID (default /etc/machine-id)")
	fs.StringVar(&f.c.StateDir, "state-dir", "", "state directory (default "+DefaultStateDir+")")
	fs.DurationVar(&f.c.Interval.Duration, "interval", 0, "poll interval (default 1h, plus up to 10% jitter)")
	fs.DurationVar(&f.c.Heartbeat.Duration, "heartbeat", 0, "heartbeat interval of run (default 1m: the server calls a machine stale after 5m)")
	fs.DurationVar(&f.c.Window.Duration, "rollback-window", 0, "any kernel oops, BUG or warning this long after a load rolls it back (default 60s)")
	fs.DurationVar(&f.c.TransitionWait.Duration, "transition-wait", 0, "wait this long for a transition before signalling stalled tasks (default 60s)")
	fs.DurationVar(&f.c.SignalWait.Duration, "signal-wait", 0, "then this long before giving up and reverting (default 60s)")
	fs.StringVar(&f.c.SysfsRoot, "sysfs-root", "", "livepatch sysfs directory (tests; default /sys/kernel/livepatch)")
	fs.StringVar(&f.c.KmsgPath, "kmsg", "", "kernel log device (tests; default /dev/kmsg)")
	fs.StringVar(&f.c.Cmdline, "cmdline", "", "kernel command line file (tests; default /proc/cmdline)")
	return f
}

// Resolve reads the file and applies the environment and the flags given.
func (f *Flags) Resolve() (Config, error) {
	file, explicit := f.file, f.file != ""
	if !explicit {
		if v := os.Getenv("TUXTAPE_AGENT_CONFIG"); v != "" {
			file, explicit = v, true
		} else {
			file = DefaultFile
		}
	}
	var c Config
	md, err := toml.DecodeFile(file, &c)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	case err != nil:
		return c, fmt.Errorf("settings %s: %w", file, err)
	default:
		if und := md.Undecoded(); len(und) > 0 {
			return c, fmt.Errorf("settings %s: unknown key %q", file, und[0].String())
		}
	}
	if v := os.Getenv("TUXTAPE_TOKEN"); v != "" {
		c.Token = v
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	str := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	dur := func(name string, dst *Duration, v Duration) {
		if set[name] {
			*dst = v
		}
	}
	fc := f.c
	str("metadata-url", &c.MetadataURL, fc.MetadataURL)
	str("targets-url", &c.TargetsURL, fc.TargetsURL)
	str("root", &c.Root, fc.Root)
	str("ring", &c.Ring, fc.Ring)
	str("server", &c.Server, fc.Server)
	str("token", &c.Token, fc.Token)
	str("ca", &c.CA, fc.CA)
	str("cert", &c.Cert, fc.Cert)
	str("key", &c.Key, fc.Key)
	str("machine-id", &c.MachineID, fc.MachineID)
	str("state-dir", &c.StateDir, fc.StateDir)
	str("sysfs-root", &c.SysfsRoot, fc.SysfsRoot)
	str("kmsg", &c.KmsgPath, fc.KmsgPath)
	str("cmdline", &c.Cmdline, fc.Cmdline)
	dur("interval", &c.Interval, fc.Interval)
	dur("heartbeat", &c.Heartbeat, fc.Heartbeat)
	dur("rollback-window", &c.Window, fc.Window)
	dur("transition-wait", &c.TransitionWait, fc.TransitionWait)
	dur("signal-wait", &c.SignalWait, fc.SignalWait)

	if c.Token == "" && c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return c, fmt.Errorf("token file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Interval.Duration <= 0 {
		c.Interval.Duration = DefaultInterval
	}
	if c.Heartbeat.Duration <= 0 {
		c.Heartbeat.Duration = DefaultHeartbeat
	}
	if c.Window.Duration <= 0 {
		c.Window.Duration = DefaultWindow
	}
	if c.Cmdline == "" {
		c.Cmdline = "/proc/cmdline"
	}
	if c.MachineID == "" {
		if b, err := os.ReadFile("/etc/machine-id"); err == nil {
			c.MachineID = strings.TrimSpace(string(b))
		}
	}
	if c.MachineID == "" {
		c.MachineID, _ = os.Hostname()
	}
	return c, nil
}
