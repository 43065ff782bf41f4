// Package hoststate is the agent's memory on the host: which patch
// version it loaded for each kernel, which one last proved good, which
// versions it rolled back (never to be loaded again, across reboots), and
// how the last poll went. The file is replaced atomically and fsynced
// (internal/atomicfile), so a crash leaves the old state or the new.
//
// It also holds the kill switch: tuxtape.disable=1 on the kernel command
// line or a "disable" file in the state directory.
package hoststate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// FileName is the state file's name in the state directory.
const FileName = "state.json"

// formatVersion is the state file's format; a newer one is refused rather
// than misread (and a rolled-back version forgotten).
const formatVersion = 1

// MaxBad bounds the bad versions kept per kernel; the oldest go first. A
// kernel's versions only grow, so an old bad one is never offered again.
const MaxBad = 256

// ErrNewerFormat: the state file was written by a newer agent.
var ErrNewerFormat = errors.New("state file has a newer format")

// Applied is a patch version the agent loaded.
type Applied struct {
	Version  int64     `json:"version"`
	Module   string    `json:"module"` // the module and livepatch name
	PatchSet string    `json:"patch_set,omitempty"`
	CVEs     []string  `json:"cves,omitempty"`
	At       time.Time `json:"at"`
	// Confirmed: it ran through the rollback window without trouble.
	Confirmed bool `json:"confirmed"`
}

// Bad is a version the agent took out; it never loads it again.
type Bad struct {
	Version int64     `json:"version"`
	Module  string    `json:"module,omitempty"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
}

// Kernel is the state for one kernel release.
type Kernel struct {
	// Loaded is what the agent loaded last and believes is running;
	// Confirmed false means it is still in its rollback window (or the
	// machine went down inside it).
	Loaded *Applied `json:"loaded,omitempty"`
	// Good is the newest version that ran through its window.
	Good *Applied `json:"good,omitempty"`
	Bad  []Bad    `json:"bad,omitempty"`
}

// IsBad reports whether version v was rolled back.
func (k *Kernel) IsBad(v int64) bool {
	return k != nil && slices.ContainsFunc(k.Bad, func(b Bad) bool { return b.Version == v })
}

// MarkBad records v as bad (once).
func (k *Kernel) MarkBad(b Bad) {
	if k.IsBad(b.Version) {
		return
	}
	k.Bad = append(k.Bad, b)
	if len(k.Bad) > MaxBad {
		k.Bad = k.Bad[len(k.Bad)-MaxBad:]
	}
	if k.Good != nil && k.Good.Version == b.Version {
		k.Good = nil
	}
}

// Poll is how the last poll went.
type Poll struct {
	At     time.Time `json:"at"`
	Kernel string    `json:"kernel"`
	Result string    `json:"result"` // see the agent's Result constants
	// Newest is the newest good version the archive offered for this
	// kernel and ring (0 when none).
	Newest int64  `json:"newest,omitempty"`
	Error  string `json:"error,omitempty"`
}

// State is the whole file.
type State struct {
	Format   int                `json:"format"`
	Kernels  map[string]*Kernel `json:"kernels"`
	LastPoll *Poll              `json:"last_poll,omitempty"`
}

// Kernel returns the state of release, made if need be.
func (s *State) Kernel(release string) *Kernel {
	if s.Kernels == nil {
		s.Kernels = map[string]*Kernel{}
	}
	k := s.Kernels[release]
	if k == nil {
		k = &Kernel{}
		s.Kernels[release] = k
	}
	return k
}

// Store is the state directory.
type Store struct{ Dir string }

// Path is the state file's path.
func (s Store) Path() string { return filepath.Join(s.Dir, FileName) }

// Load reads the state; a missing file is an empty state.
func (s Store) Load() (*State, error) {
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Format: formatVersion, Kernels: map[string]*Kernel{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		// A torn file cannot come from atomicfile; this is damage from
		// outside. Refuse rather than forget the bad versions.
		return nil, fmt.Errorf("read state %s: %w (fix or remove the file; it lists versions never to load again)", s.Path(), err)
	}
	if st.Format > formatVersion {
		return nil, fmt.Errorf("read state %s: %w (%d; this agent knows %d)", s.Path(), ErrNewerFormat, st.Format, formatVersion)
	}
	if st.Kernels == nil {
		st.Kernels = map[string]*Kernel{}
	}
	return &st, nil
}

// Save replaces the state file atomically; it is on disk when Save
// returns.
func (s Store) Save(st *State) error {
	st.Format = formatVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := atomicfile.WriteFile(s.Path(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Lock takes an exclusive lock on the state directory, so that a
// one-shot poll and the daemon do not load patches at the same time. The
// lock goes with the returned file (close it, or exit).
func (s Store) Lock() (*os.File, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock state %s: %w", s.Dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return f, nil
}

// ErrLocked: another agent holds the state directory.
var ErrLocked = errors.New("another tuxtape-agent is running on this state directory")

// DisableFile is the kill-switch file's name in the state directory.
const DisableFile = "disable"

// Disabled says whether the kill switch is on, and why: the kernel
// command line (its text in cmdline, from /proc/cmdline) has
// tuxtape.disable=1 (or a bare tuxtape.disable), or the state directory
// has a disable file.
func Disabled(cmdline, stateDir string) (bool, string) {
	for _, f := range strings.Fields(cmdline) {
		k, v, hasValue := strings.Cut(f, "=")
		if k != "tuxtape.disable" {
			continue
		}
		if !hasValue || v == "1" || v == "y" || v == "yes" || v == "true" {
			return true, "tuxtape.disable on the kernel command line"
		}
	}
	if stateDir != "" {
		if _, err := os.Lstat(filepath.Join(stateDir, DisableFile)); err == nil {
			return true, "the kill switch file " + filepath.Join(stateDir, DisableFile) + " exists"
		}
	}
	return false, ""
}
