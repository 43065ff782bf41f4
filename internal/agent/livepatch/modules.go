package livepatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrModuleExists: a module of that name is loaded already.
	ErrModuleExists = errors.New("module already loaded")
	// ErrModuleNotLoaded: no module of that name is loaded.
	ErrModuleNotLoaded = errors.New("module not loaded")
)

// System loads and unloads modules with the kernel's own system calls, so
// the agent needs no kmod tools on the host.
type System struct{}

// Load opens path and calls finit_module on it.
func (System) Load(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	// finit_module runs the module's init, which for a livepatch
	// registers and enables it; it does not wait for the transition.
	err = unix.FinitModule(int(f.Fd()), "", 0)
	switch {
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("load module %s: %w", path, ErrModuleExists)
	case err != nil:
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

// Unload calls delete_module(name, O_NONBLOCK). EAGAIN or EBUSY (the
// livepatch core still holds it) are returned for the caller to retry.
func (System) Unload(ctx context.Context, name string) error {
	name = strings.ReplaceAll(name, "-", "_")
	err := unix.DeleteModule(name, unix.O_NONBLOCK)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("unload module %s: %w", name, ErrModuleNotLoaded)
	case err != nil:
		return fmt.Errorf("unload module %s: %w", name, err)
	}
	return nil
}

// Loaded reports whether /proc/modules lists the module.
func Loaded(name string) bool {
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		return false
	}
	name = strings.ReplaceAll(name, "-", "_")
	for _, l := range strings.Split(string(b), "\n") {
		if f, _, _ := strings.Cut(l, " "); f == name {
			return true
		}
	}
	return false
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
