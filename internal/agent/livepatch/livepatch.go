// Package livepatch drives the kernel's livepatch interface for the agent:
// it reads /sys/kernel/livepatch, loads a patch module (finit_module),
// waits for its transition with a policy (wait, signal the stalled tasks,
// give up and take the patch out again), and disables and unloads patches.
package livepatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultRoot is where the kernel shows its livepatches.
const DefaultRoot = "/sys/kernel/livepatch"

var (
	// ErrUnsupported: the kernel has no livepatch support (no
	// /sys/kernel/livepatch).
	ErrUnsupported = errors.New("kernel has no livepatch support (no /sys/kernel/livepatch)")
	// ErrNotFound: no patch of that name is registered.
	ErrNotFound = errors.New("livepatch not found")
	// ErrTransitionStuck: the transition did not finish within the
	// policy's limits, and the patch was taken out again.
	ErrTransitionStuck = errors.New("livepatch transition did not complete")
)

// Patch is one registered livepatch, as sysfs shows it.
type Patch struct {
	Name       string
	Enabled    bool
	Transition bool
	// Funcs are the patched functions as "object/function,sympos"
	// (vmlinux/cmdline_proc_show,1).
	Funcs []string
}

// FuncNames returns the patched functions' bare names (no object, no
// sympos), as a kernel call trace names them.
func (p Patch) FuncNames() []string {
	var out []string
	for _, f := range p.Funcs {
		_, fn, _ := strings.Cut(f, "/")
		fn, _, _ = strings.Cut(fn, ",")
		if fn != "" {
			out = append(out, fn)
		}
	}
	return out
}

// Sysfs reads and writes a livepatch sysfs tree. Root is DefaultRoot on a
// host; tests point it at a directory of their own.
type Sysfs struct{ Root string }

// Supported reports whether the kernel has livepatch support.
func (s Sysfs) Supported() bool {
	st, err := os.Stat(s.root())
	return err == nil && st.IsDir()
}

func (s Sysfs) root() string {
	if s.Root == "" {
		return DefaultRoot
	}
	return s.Root
}

// List returns the registered patches, sorted by name.
func (s Sysfs) List() ([]Patch, error) {
	ents, err := os.ReadDir(s.root())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrUnsupported
	}
	if err != nil {
		return nil, fmt.Errorf("list livepatches: %w", err)
	}
	var out []Patch
	for _, e := range ents {
		p, err := s.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // unregistered between ReadDir and now
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get reads one patch.
func (s Sysfs) Get(name string) (Patch, error) {
	if !validName(name) {
		return Patch{}, fmt.Errorf("livepatch %q: %w", name, ErrNotFound)
	}
	dir := filepath.Join(s.root(), name)
	p := Patch{Name: name}
	var err error
	if p.Enabled, err = readBool(filepath.Join(dir, "enabled")); err != nil {
		if gone(err) {
			return Patch{}, fmt.Errorf("livepatch %q: %w", name, ErrNotFound)
		}
		return Patch{}, fmt.Errorf("read livepatch %s: %w", name, err)
	}
	if p.Transition, err = readBool(filepath.Join(dir, "transition")); err != nil {
		if gone(err) {
			return Patch{}, fmt.Errorf("livepatch %q: %w", name, ErrNotFound)
		}
		return Patch{}, fmt.Errorf("read livepatch %s: %w", name, err)
	}
	// <patch>/<object>/<function,sympos> directories.
	objs, _ := os.ReadDir(dir)
	for _, o := range objs {
		if !o.IsDir() {
			continue
		}
		fns, _ := os.ReadDir(filepath.Join(dir, o.Name()))
		for _, f := range fns {
			if f.IsDir() && strings.Contains(f.Name(), ",") {
				p.Funcs = append(p.Funcs, o.Name()+"/"+f.Name())
			}
		}
	}
	sort.Strings(p.Funcs)
	return p, nil
}

// gone says an attribute's patch is unregistered: ENOENT, or ENODEV
// when its kobject is being torn down as the file is opened (seen on 6.1
// right after an unpatching transition).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// validName keeps a patch name from walking out of the sysfs tree.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

func readBool(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false, fmt.Errorf("%s: %q is not 0 or 1", path, strings.TrimSpace(string(b)))
	}
	return v != 0, nil
}

// write writes "1\n"-style values to a sysfs attribute; sysfs wants one
// write call and no truncation.
func (s Sysfs) write(name, attr, value string) error {
	if !validName(name) {
		return fmt.Errorf("livepatch %q: %w", name, ErrNotFound)
	}
	path := filepath.Join(s.root(), name, attr)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		if gone(err) {
			return fmt.Errorf("livepatch %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Disable starts unpatching: enabled=0.
func (s Sysfs) Disable(name string) error { return s.write(name, "enabled", "0") }

// ErrNoSignal: the kernel has no signal attribute. Linux 5.x had
// /sys/kernel/livepatch/<patch>/signal; 6.1 has only enabled, transition
// and force, and sends the fake signal itself every 15 s.
var ErrNoSignal = errors.New("kernel has no livepatch signal attribute (it signals stalled tasks itself every 15 s)")

// Signal sends the fake signal to the tasks that keep the transition
// from finishing, where the kernel offers that (writing 1 to the patch's
// signal attribute).
func (s Sysfs) Signal(name string) error {
	if !validName(name) {
		return fmt.Errorf("livepatch %q: %w", name, ErrNotFound)
	}
	if _, err := os.Stat(filepath.Join(s.root(), name, "signal")); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(s.root(), name)); err == nil {
			return ErrNoSignal
		}
	}
	return s.write(name, "signal", "1")
}

// Modules loads and unloads kernel modules. The real one is System; tests
// give their own.
type Modules interface {
	// Load inserts the module file at path (finit_module).
	Load(ctx context.Context, path string) error
	// Unload removes the module named name (delete_module).
	Unload(ctx context.Context, name string) error
}

// Policy bounds a transition: wait up to Wait; then signal the stalled
// tasks and wait up to SignalWait more; then give up and revert.
type Policy struct {
	Wait       time.Duration // T1; default 60 s
	SignalWait time.Duration // T2, after the signal; default 60 s
	// RevertWait bounds the unpatching transition when giving up (or
	// disabling); default Wait+SignalWait, at least 30 s.
	RevertWait time.Duration
	Interval   time.Duration // how often to look; default 100 ms
}

// DefaultPolicy is the policy when none is configured.
func DefaultPolicy() Policy { return Policy{Wait: 60 * time.Second, SignalWait: 60 * time.Second} }

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.Wait <= 0 {
		p.Wait = d.Wait
	}
	if p.SignalWait <= 0 {
		p.SignalWait = d.SignalWait
	}
	if p.RevertWait <= 0 {
		// Giving up must not give up too: the revert gets at least 30 s.
		p.RevertWait = max(p.Wait+p.SignalWait, 30*time.Second)
	}
	if p.Interval <= 0 {
		p.Interval = 100 * time.Millisecond
	}
	return p
}

// Manager loads, waits for and removes livepatches.
type Manager struct {
	Sysfs   Sysfs
	Modules Modules
	Policy  Policy
	Log     *slog.Logger
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// Apply loads the patch module at path, registered as patch name (a
// livepatch is named after its module), and waits for its transition
// under the policy. When the transition does not finish, the patch is
// disabled and unloaded again and the error wraps ErrTransitionStuck.
func (m *Manager) Apply(ctx context.Context, path, name string) (Patch, error) {
	pol := m.Policy.withDefaults()
	if !m.Sysfs.Supported() {
		return Patch{}, ErrUnsupported
	}
	if err := m.Modules.Load(ctx, path); err != nil {
		return Patch{}, err
	}
	done, err := m.waitTransition(ctx, name, true, pol.Wait, pol.Interval)
	if err == nil && !done {
		m.log().Warn("livepatch transition stalled; signalling tasks", "patch", name, "waited", pol.Wait)
		if err := m.Sysfs.Signal(name); errors.Is(err, ErrNoSignal) {
			m.log().Info("not signalling", "patch", name, "why", err)
		} else if err != nil {
			m.log().Warn("signal stalled tasks", "patch", name, "err", err)
		}
		done, err = m.waitTransition(ctx, name, true, pol.SignalWait, pol.Interval)
	}
	if err != nil {
		return Patch{}, err
	}
	if !done {
		m.log().Warn("livepatch transition did not complete; reverting", "patch", name)
		// Give up with a fresh context: the revert must run even when the
		// caller is being cancelled.
		rerr := m.Remove(context.WithoutCancel(ctx), name)
		if rerr != nil {
			return Patch{}, fmt.Errorf("apply %s: %w after %v; revert: %v", name, ErrTransitionStuck, pol.Wait+pol.SignalWait, rerr)
		}
		return Patch{}, fmt.Errorf("apply %s: %w after %v (reverted)", name, ErrTransitionStuck, pol.Wait+pol.SignalWait)
	}
	return m.Sysfs.Get(name)
}

// waitTransition waits until the patch's transition is over: for
// patching, enabled=1 and transition=0; for unpatching, the patch gone
// from sysfs or enabled=0 and transition=0. It returns false when limit
// passes first.
func (m *Manager) waitTransition(ctx context.Context, name string, patching bool, limit, every time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		p, err := m.Sysfs.Get(name)
		switch {
		case errors.Is(err, ErrNotFound):
			if patching {
				return false, fmt.Errorf("apply %s: the module loaded but registered no livepatch of that name: %w", name, err)
			}
			return true, nil
		case err != nil:
			return false, err
		case !p.Transition && p.Enabled == patching:
			return true, nil
		case patching && !p.Transition && !p.Enabled:
			return false, fmt.Errorf("apply %s: the patch was disabled during its transition", name)
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		if err := sleep(ctx, every); err != nil {
			return false, err
		}
	}
}

// Remove disables the patch (if enabled), waits for the unpatching
// transition (signalling stalled tasks halfway) and unloads its module.
func (m *Manager) Remove(ctx context.Context, name string) error {
	pol := m.Policy.withDefaults()
	p, err := m.Sysfs.Get(name)
	switch {
	case errors.Is(err, ErrNotFound):
		// Not registered (already disabled and gone): just unload.
	case err != nil:
		return err
	default:
		if p.Enabled {
			if err := m.Sysfs.Disable(name); err != nil {
				return fmt.Errorf("disable %s: %w", name, err)
			}
		}
		half := pol.RevertWait / 2
		done, err := m.waitTransition(ctx, name, false, half, pol.Interval)
		if err == nil && !done {
			_ = m.Sysfs.Signal(name)
			done, err = m.waitTransition(ctx, name, false, pol.RevertWait-half, pol.Interval)
		}
		if err != nil {
			return err
		}
		if !done {
			return fmt.Errorf("disable %s: %w within %v", name, ErrTransitionStuck, pol.RevertWait)
		}
	}
	// The module's refcount drops once the patch is unregistered, which
	// the kernel does from a work item after the transition: retry.
	deadline := time.Now().Add(pol.RevertWait)
	for {
		uerr := m.Modules.Unload(ctx, name)
		if uerr == nil || errors.Is(uerr, ErrModuleNotLoaded) {
			return nil
		}
		if time.Now().After(deadline) {
			return uerr
		}
		if err := sleep(ctx, pol.Interval); err != nil {
			return err
		}
	}
}

// Supported reports whether the kernel has livepatch support.
func (m *Manager) Supported() bool { return m.Sysfs.Supported() }

// List returns the registered patches.
func (m *Manager) List() ([]Patch, error) { return m.Sysfs.List() }
