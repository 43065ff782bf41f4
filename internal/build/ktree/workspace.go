package ktree

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
)

// SectionFlags make every function and data object its own section, so
// that two builds of a unit can be compared function by function and single
// functions lifted out.
const SectionFlags = "-ffunction-sections -fdata-sections"

// Workspace is a throw-away view of a prepared tree to apply fixes in and
// compile. Where the process may mount (root), it is an overlay: the tree
// is the read-only lower layer, and only the files the fixes change and
// what the compile writes land in the workspace's own directory, so making
// and removing one costs nothing. Elsewhere it is a copy made of hard
// links (seconds for a kernel tree), safe to patch because files are
// replaced, never written through, before anything changes them.
type Workspace struct {
	Dir  string // where the changed files and the compile's output are
	tree *Tree
	// base holds the overlay's upper (Dir) and work directories; "" for
	// a copy.
	base string
}

// Workspace makes a workspace for the tree under parent.
func (t *Tree) Workspace(ctx context.Context, parent string) (*Workspace, error) {
	dir, err := os.MkdirTemp(parent, "ws-")
	if err != nil {
		return nil, fmt.Errorf("make workspace: %w", err)
	}
	if canOverlay(parent) {
		upper := filepath.Join(dir, "upper")
		if err := os.Mkdir(upper, 0o755); err == nil {
			if err = os.Mkdir(filepath.Join(dir, "work"), 0o755); err == nil {
				return &Workspace{Dir: upper, tree: t, base: dir}, nil
			}
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("make workspace: %w", err)
	}
	os.Remove(dir)
	unlock, err := t.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := run(ctx, "", nil, "cp", "-al", t.Dir, dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("make workspace: %w", err)
	}
	return &Workspace{Dir: dir, tree: t}, nil
}

// Remove deletes the workspace.
func (w *Workspace) Remove() error {
	if w.base != "" {
		return os.RemoveAll(w.base)
	}
	return os.RemoveAll(w.Dir)
}

// unlink replaces a hard-linked file by a private copy (or removes it), so
// that writing it cannot change the prepared tree.
func (w *Workspace) unlink(rel string, keep bool) error {
	if w.base != "" {
		return w.shadow(rel, keep)
	}
	p := filepath.Join(w.Dir, rel)
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	if !keep {
		return nil
	}
	return os.WriteFile(p, data, st.Mode().Perm())
}

// shadow puts rel into the overlay's upper layer: a copy of the tree's
// file to be changed (keep), or a whiteout that hides it, so that the
// compile cannot take the tree's object for its own.
func (w *Workspace) shadow(rel string, keep bool) error {
	p := filepath.Join(w.Dir, rel)
	if _, err := os.Lstat(p); err == nil {
		return nil // already in the upper layer
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if !keep {
		// An overlay whiteout (a 0/0 character device), even where the
		// tree has no such file yet: an unfixed compile running beside
		// this one may be about to write it there.
		return syscall.Mknod(p, syscall.S_IFCHR|0o600, 0)
	}
	src := filepath.Join(w.tree.Dir, rel)
	st, err := os.Stat(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(p, data, st.Mode().Perm())
}

var patchFile = regexp.MustCompile(`(?m)^\+\+\+ (?:b/)?(\S+)`)

// PatchFiles lists the files a unified diff changes.
func PatchFiles(diff []byte) []string {
	var files []string
	for _, m := range patchFile.FindAllSubmatch(diff, -1) {
		if f := string(m[1]); f != "/dev/null" {
			files = append(files, f)
		}
	}
	return files
}

// Apply applies a unified diff (-p1). A fix that does not apply fails with
// patch's own words, which name the file and the hunk.
func (w *Workspace) Apply(ctx context.Context, diff []byte) ([]string, error) {
	files := PatchFiles(diff)
	if len(files) == 0 {
		return nil, fmt.Errorf("apply fix: no file changes in the diff (is it a unified diff?)")
	}
	for _, f := range files {
		if strings.Contains(f, "..") || filepath.IsAbs(f) {
			return nil, fmt.Errorf("apply fix: refusing path %q", f)
		}
		if err := w.unlink(f, true); err != nil {
			return nil, fmt.Errorf("apply fix: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, "patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-")
	cmd.Dir = w.Dir
	cmd.Stdin = strings.NewReader(string(diff))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("apply fix: it does not apply to this source: %s", strings.TrimSpace(string(out)))
	}
	return files, nil
}

// Compile builds units (paths of .o files relative to the tree) with the
// kernel's own flags plus extraFlags, and returns the objects' paths.
func (w *Workspace) Compile(ctx context.Context, extraFlags string, units ...string) ([]string, error) {
	var paths []string
	for _, u := range units {
		dir, base := filepath.Split(u)
		for _, f := range []string{u, filepath.Join(dir, "."+base+".cmd"), filepath.Join(dir, "."+base+".d")} {
			if err := w.unlink(f, false); err != nil {
				return nil, fmt.Errorf("compile %s: %w", u, err)
			}
		}
		paths = append(paths, filepath.Join(w.Dir, u))
	}
	args := append([]string{"KCFLAGS=" + extraFlags}, units...)
	if err := w.make(ctx, args...); err != nil {
		return nil, err
	}
	for _, p := range paths {
		// A whiteout left in place means kbuild made nothing.
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("compile: kbuild made no %s", p)
		}
	}
	return paths, nil
}

// make runs make for the workspace as if it were the tree itself: a private
// mount namespace binds the workspace over the tree's path. The host tools
// kbuild builds first (objtool, resolve_btfids) keep absolute paths in
// their build records, so in a directory of its own a workspace rebuilds
// them: 3.6 s of a 6 s single-unit compile here. The namespace has no
// network either: a fix is code, and a Makefile it changes runs here.
// Without the privilege to mount, make runs in the workspace's own
// directory.
func (w *Workspace) make(ctx context.Context, args ...string) error {
	var full []string
	switch {
	case w.base != "":
		const script = `mount -t overlay overlay -o "lowerdir=$2,upperdir=$1/upper,workdir=$1/work" "$2" && cd "$2" && shift 2 && exec make "$@"`
		full = append([]string{"--mount", "--net", "--propagation", "private", "--", "sh", "-c", script, "sh", w.base, w.tree.Dir}, w.tree.makeArgs(0, args...)...)
	case canBindMount():
		const script = `mount --bind "$1" "$2" && cd "$2" && shift 2 && exec make "$@"`
		full = append([]string{"--mount", "--net", "--propagation", "private", "--", "sh", "-c", script, "sh", w.Dir, w.tree.Dir}, w.tree.makeArgs(0, args...)...)
	default:
		return w.tree.make(ctx, w.Dir, nil, args...)
	}
	if err := run(ctx, "", nil, "unshare", full...); err != nil {
		return fmt.Errorf("make %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// canBindMount reports whether this process may bind-mount in a mount
// namespace of its own (root, or a container that allows it).
// TUXTAPE_WORKSPACE_MOUNT=0 turns it off (to measure the difference, or
// where mount namespaces misbehave).
var canBindMount = sync.OnceValue(func() bool {
	if os.Getenv("TUXTAPE_WORKSPACE_MOUNT") == "0" {
		return false
	}
	dir := os.TempDir()
	err := exec.Command("unshare", "--mount", "--net", "--propagation", "private", "--", "mount", "--bind", dir, dir).Run()
	return err == nil
})

// canOverlay reports whether workspaces under parent can be overlays: the
// process may mount an overlay in a mount namespace of its own with its
// upper layer there (not on an overlay itself, as in many containers).
// TUXTAPE_WORKSPACE_OVERLAY=0 turns it off (to measure the difference).
func canOverlay(parent string) bool {
	if os.Getenv("TUXTAPE_WORKSPACE_OVERLAY") == "0" {
		return false
	}
	if v, ok := overlayProbes.Load(parent); ok {
		return v.(bool)
	}
	ok := probeOverlay(parent)
	overlayProbes.Store(parent, ok)
	return ok
}

var overlayProbes sync.Map // parent directory → bool

func probeOverlay(parent string) bool {
	dir, err := os.MkdirTemp(parent, "overlay-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return false
		}
	}
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	err = exec.Command("unshare", "--mount", "--net", "--propagation", "private", "--", "mount", "-t", "overlay", "overlay", "-o", opts, filepath.Join(dir, "merged")).Run()
	return err == nil
}

var modName = regexp.MustCompile(`-DKBUILD_MODNAME='"([^"]+)"'`)

// UnitModule says which module a unit compiled in the prepared tree
// belongs to ("" for vmlinux), from the flags kbuild recorded for it.
func (t *Tree) UnitModule(unit string) (string, error) {
	dir, base := filepath.Split(unit)
	cmd, err := os.ReadFile(filepath.Join(t.Dir, dir, "."+base+".cmd"))
	if err != nil {
		return "", fmt.Errorf("read build command of %s: %w", unit, err)
	}
	if !strings.Contains(string(cmd), " -DMODULE ") {
		return "", nil
	}
	m := modName.FindSubmatch(cmd)
	if m == nil {
		return "", fmt.Errorf("build command of %s names no module", unit)
	}
	return string(m[1]), nil
}

// CompileUnfixed builds units in the prepared tree itself, where the
// objects double as a cache of unfixed units: workspaces link to them and
// replace them before rebuilding. A lock keeps two builds of the tree
// apart.
func (t *Tree) CompileUnfixed(ctx context.Context, extraFlags string, units ...string) ([]string, error) {
	unlock, err := t.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var paths []string
	for _, u := range units {
		paths = append(paths, filepath.Join(t.Dir, u))
	}
	args := append([]string{"KCFLAGS=" + extraFlags}, units...)
	if err := t.make(ctx, t.Dir, nil, args...); err != nil {
		return nil, err
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("compile: kbuild made no %s", p)
		}
	}
	return paths, nil
}

// lock serializes changes to the prepared tree (unfixed compiles) and
// copies of it, across processes.
func (t *Tree) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(t.Dir, ".tuxtape-lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock tree: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock tree: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
