package ktree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/sandbox"
)

// SectionFlags make every function and data object its own section, so
// that two builds of a unit can be compared function by function and single
// functions lifted out.
const SectionFlags = "-ffunction-sections -fdata-sections"

// Workspace is a throw-away view of a prepared tree to apply fixes in and
// compile. Where the process may mount an overlay, it is one: the tree is
// the read-only lower layer, and only the files the fixes change and what
// the compile writes land in the workspace's own directory, so making and
// removing one costs little. Elsewhere it is a copy made of hard links
// (seconds for a kernel tree), safe to patch because files are replaced,
// never written through, before anything changes them.
//
// What runs a fix's code — applying it (patch) and compiling (make) —
// runs in a sandbox (package sandbox) with the view mounted at the tree's
// own path, as the job's user. The tree is root's, so when the builder is
// root the job must own the directories it writes in: the overlay shows
// the tree through an idmapped mount on which root's files are the job's
// (Linux 5.19+), so that what the job writes is copied up as its own;
// without idmapped layers every directory of the tree is made in the
// upper layer, owned by the job (a merged directory takes the upper one's
// owner), which costs 1–3 s here (5,100 directories on a disk mounted
// with discard) and as much again to remove; a copy's directories are
// given to the job.
type Workspace struct {
	Dir  string // where the changed files and the compile's output are
	tree *Tree
	// base holds the overlay's upper (Dir), work and stage directories;
	// "" for a copy.
	base  string
	idmap bool // the overlay's lower layer is idmapped
}

// Workspace makes a workspace for the tree under parent.
func (t *Tree) Workspace(ctx context.Context, parent string) (*Workspace, error) {
	dir, err := os.MkdirTemp(parent, "ws-")
	if err != nil {
		return nil, fmt.Errorf("make workspace: %w", err)
	}
	w := &Workspace{Dir: dir, tree: t}
	switch mode := overlayMode(ctx, parent); {
	case mode != noOverlay:
		w.base, w.Dir, w.idmap = dir, filepath.Join(dir, "upper"), mode == idmapOverlay
		for _, d := range []string{w.Dir, filepath.Join(dir, "work"), filepath.Join(dir, "stage")} {
			if err == nil {
				err = os.Mkdir(d, 0o755)
			}
		}
	case sandbox.Rootless():
		// The job would own the copy's files, which are the tree's.
		err = fmt.Errorf("%w: a workspace copy needs root (it keeps the tree's hard-linked files from the job by their owner); this builder cannot mount an overlay beside %s", sandbox.ErrSetup, t.Dir)
	default:
		os.Remove(dir)
		err = t.copyTree(ctx, dir)
	}
	if err == nil {
		err = w.ownDirs()
	}
	if err == nil && !w.idmap && !sandbox.Rootless() {
		// Files kbuild writes in place at every make are root's here.
		for _, f := range rewritten {
			if err = w.unlink(f, true); err != nil {
				break
			}
		}
	}
	if err != nil {
		w.Remove()
		return nil, fmt.Errorf("make workspace: %w: %w", ErrWorkspace, err)
	}
	return w, nil
}

// rewritten are the files of a prepared tree that kbuild rewrites in place
// (not by rename) at every make of a unit: checksyscalls' dependency
// file. Without an idmapped tree they are root's, so a root builder gives
// the job its own copies.
var rewritten = []string{".missing-syscalls.d"}

// copyTree makes dir a copy of the tree made of hard links, under the
// tree's lock: older versions of this program compiled in the tree
// itself, under the same lock.
func (t *Tree) copyTree(ctx context.Context, dir string) error {
	f, err := os.OpenFile(filepath.Join(t.Dir, ".tuxtape-lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("lock tree: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock tree: %w", err)
	}
	return run(ctx, "", nil, "cp", "-al", t.Dir, dir)
}

// ownDirs gives the job the workspace's directories (see Workspace); a
// rootless job already owns the builder's files.
func (w *Workspace) ownDirs() error {
	if sandbox.Rootless() {
		return nil
	}
	uid, gid := w.tree.sandbox().JobUID()
	if w.idmap {
		return os.Lchown(w.Dir, uid, gid) // the merged root
	}
	dirs, err := w.tree.dirList()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		p := filepath.Join(w.Dir, d)
		if w.base != "" {
			if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// mkdirs makes dir and its missing parents in the workspace, the job's.
func (w *Workspace) mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir && len(parent) > len(w.Dir) {
		if err := w.mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	if sandbox.Rootless() {
		return nil
	}
	uid, gid := w.tree.sandbox().JobUID()
	return os.Lchown(dir, uid, gid)
}

// dirList lists the tree's directories ("." first, parents before their
// children), once: a prepared tree does not change.
func (t *Tree) dirList() ([]string, error) {
	t.dirsOnce.Do(func() {
		t.dirsErr = filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				rel, _ := filepath.Rel(t.Dir, p)
				t.dirs = append(t.dirs, rel)
			}
			return nil
		})
		if t.dirsErr != nil {
			t.dirsErr = fmt.Errorf("list the tree's directories: %w", t.dirsErr)
		}
	})
	return t.dirs, t.dirsErr
}

// sandbox is the confinement of the tree's untrusted steps.
func (t *Tree) sandbox() *sandbox.Config {
	if t.Sandbox != nil {
		return t.Sandbox
	}
	return sandbox.Default()
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
	return w.writeOwned(p, data, st.Mode().Perm())
}

// writeOwned writes a file of the workspace the job may rewrite.
func (w *Workspace) writeOwned(p string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(p, data, perm); err != nil {
		return err
	}
	if sandbox.Rootless() {
		return nil
	}
	uid, gid := w.tree.sandbox().JobUID()
	return os.Lchown(p, uid, gid)
}

// shadow puts rel into the overlay's upper layer: a copy of the tree's
// file to be changed (keep), or a whiteout that hides it, so that the
// compile cannot take the tree's object for its own.
func (w *Workspace) shadow(rel string, keep bool) error {
	p := filepath.Join(w.Dir, rel)
	if _, err := os.Lstat(p); err == nil {
		return nil // already in the upper layer
	}
	if err := w.mkdirs(filepath.Dir(p)); err != nil {
		return err
	}
	if !keep {
		// An overlay whiteout (a 0/0 character device), even where the
		// tree has no such file: the job's directory lets it make one.
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
	return w.writeOwned(p, data, st.Mode().Perm())
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
		if w.base != "" {
			continue // patch writes through the overlay, into the upper layer
		}
		if err := w.unlink(f, true); err != nil {
			return nil, fmt.Errorf("apply fix: %w", err)
		}
	}
	var out bytes.Buffer
	err := w.run(ctx, strings.NewReader(string(diff)), &out, "patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-")
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("apply fix: %w", err)
		}
		return nil, fmt.Errorf("apply fix: it does not apply to this source: %s", strings.TrimSpace(out.String()))
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

// mounts are the workspace's view at the tree's own path: the host tools
// kbuild builds first (objtool, resolve_btfids) keep absolute paths in
// their build records, so in a directory of its own a workspace rebuilds
// them (3.6 s of a 6 s single-unit compile here), and the unfixed objects
// name the tree's path.
func (w *Workspace) mounts() []sandbox.Mount {
	if w.base != "" {
		return []sandbox.Mount{{Target: w.tree.Dir, Lower: []string{w.tree.Dir}, Upper: w.Dir, Work: filepath.Join(w.base, "work"),
			IDMap: w.idmap, Stage: filepath.Join(w.base, "stage")}}
	}
	return []sandbox.Mount{{Target: w.tree.Dir, Source: w.Dir}}
}

// run runs a command of the fix's (patch, make) in the sandbox, in the
// workspace seen at the tree's path, with its output in out.
func (w *Workspace) run(ctx context.Context, stdin io.Reader, out *bytes.Buffer, args ...string) error {
	return w.tree.sandbox().Run(ctx, sandbox.Cmd{Args: args, Dir: w.tree.Dir, Mounts: w.mounts(), Stdin: stdin, Stdout: out, Stderr: out})
}

// make runs kbuild in the workspace, confined: a fix is code, and a
// Makefile it changes runs here.
func (w *Workspace) make(ctx context.Context, args ...string) error {
	var out bytes.Buffer
	err := w.run(ctx, nil, &out, append([]string{"make"}, w.tree.makeArgs(0, args...)...)...)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, sandbox.ErrSetup), errors.Is(err, sandbox.ErrLimit):
		return fmt.Errorf("make %s: %w: %w\n%s", strings.Join(args, " "), ErrWorkspace, err, failureLines(out.String()))
	}
	return fmt.Errorf("make %s: %w\n%s", strings.Join(args, " "), err, failureLines(out.String()))
}

// How workspaces under a directory are made.
const (
	noOverlay    = iota // hard-linked copies
	plainOverlay        // an overlay; a root builder makes the job's directories in it
	idmapOverlay        // an overlay over an idmapped tree (root builders)
)

// overlayMode finds how workspaces under parent can be made: whether a
// sandbox can mount an overlay with its upper layer there (not on an
// overlay itself, as in many containers), and over an idmapped tree.
// TUXTAPE_WORKSPACE_OVERLAY=0 turns overlays off, TUXTAPE_WORKSPACE_IDMAP=0
// idmapped trees (to measure the difference).
func overlayMode(ctx context.Context, parent string) int {
	if os.Getenv("TUXTAPE_WORKSPACE_OVERLAY") == "0" {
		return noOverlay
	}
	if v, ok := overlayProbes.Load(parent); ok {
		return v.(int)
	}
	mode := noOverlay
	switch {
	case !sandbox.Rootless() && os.Getenv("TUXTAPE_WORKSPACE_IDMAP") != "0" && probeOverlay(ctx, parent, true):
		mode = idmapOverlay
	case probeOverlay(ctx, parent, false):
		mode = plainOverlay
	}
	overlayProbes.Store(parent, mode)
	return mode
}

// canOverlay reports whether workspaces under parent are overlays.
func canOverlay(ctx context.Context, parent string) bool {
	return overlayMode(ctx, parent) != noOverlay
}

var overlayProbes sync.Map // parent directory → mode

func probeOverlay(ctx context.Context, parent string, idmap bool) bool {
	dir, err := os.MkdirTemp(parent, "overlay-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "lower/d", "upper", "work", "stage"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return false
		}
	}
	m := sandbox.Mount{Target: filepath.Join(dir, "lower"), Lower: []string{filepath.Join(dir, "lower")}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"),
		IDMap: idmap, Stage: filepath.Join(dir, "stage")}
	c := &sandbox.Config{Limits: sandbox.Limits{Time: time.Minute}, CgroupParent: "none"}
	// The job writes in a directory of the tree (root's), which only an
	// idmapped lower layer gives it.
	args := []string{"true"}
	if idmap {
		args = []string{"touch", filepath.Join(m.Target, "d", "probe")}
	}
	return c.Run(ctx, sandbox.Cmd{Args: args, Dir: "/", Mounts: []sandbox.Mount{m}}) == nil
}

var modName = regexp.MustCompile(`-DKBUILD_MODNAME='"([^"]+)"'`)

// UnitModule says which module a unit compiled by CompileUnfixed
// belongs to ("" for vmlinux), from the flags kbuild recorded for it.
func (t *Tree) UnitModule(unit string) (string, error) {
	cmd, err := os.ReadFile(filepath.Join(objectCache(t.Dir), cmdFile(unit)))
	if os.IsNotExist(err) {
		cmd, err = os.ReadFile(filepath.Join(t.Dir, cmdFile(unit)))
	}
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

// CompileUnfixed builds units as the tree has them, in a workspace of
// their own (no fix, but the same sandbox: nothing writes into the shared
// tree), and returns their objects in the tree's object cache. The cache
// (objectCache) holds each unit's object and build record; only this
// step, outside the sandbox, writes it, from a compile of the tree's own
// source. Cached objects are put in the workspace before make, with their
// times, so that kbuild finds them up to date and compiles nothing.
func (t *Tree) CompileUnfixed(ctx context.Context, extraFlags string, units ...string) ([]string, error) {
	ws, err := t.Workspace(ctx, filepath.Dir(t.Dir))
	if err != nil {
		return nil, err
	}
	defer ws.Remove()
	cache := objectCache(t.Dir)
	seeded := map[string]time.Time{}
	for _, u := range units {
		when, err := ws.seed(cache, u)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w: %w", u, ErrWorkspace, err)
		}
		seeded[u] = when
	}
	args := append([]string{"KCFLAGS=" + extraFlags}, units...)
	if err := ws.make(ctx, args...); err != nil {
		return nil, err
	}
	var paths []string
	for _, u := range units {
		obj := filepath.Join(ws.Dir, u)
		fi, err := os.Lstat(obj)
		if err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("compile: kbuild made no %s", filepath.Join(t.Dir, u))
		}
		if !fi.ModTime().Equal(seeded[u]) {
			if err := install(ws.Dir, cache, u); err != nil {
				return nil, fmt.Errorf("cache unfixed %s: %w: %w", u, ErrWorkspace, err)
			}
		}
		paths = append(paths, filepath.Join(cache, u))
	}
	return paths, nil
}

// objectCache is where a tree's unfixed objects are kept, beside it.
func objectCache(treeDir string) string {
	return filepath.Join(filepath.Dir(treeDir), "."+filepath.Base(treeDir)+".unfixed")
}

// cmdFile is the build record kbuild keeps beside an object.
func cmdFile(unit string) string {
	dir, base := filepath.Split(unit)
	return filepath.Join(dir, "."+base+".cmd")
}

// seed puts the cached object of unit and its build record into the
// workspace, or, with none cached, hides whatever the tree has there; it
// returns the seeded object's modification time (zero: not seeded).
func (w *Workspace) seed(cache, unit string) (time.Time, error) {
	fi, err := os.Stat(filepath.Join(cache, unit))
	_, cerr := os.Stat(filepath.Join(cache, cmdFile(unit)))
	if err != nil || cerr != nil {
		dir, base := filepath.Split(unit)
		for _, f := range []string{unit, cmdFile(unit), filepath.Join(dir, "."+base+".d")} {
			if err := w.unlink(f, false); err != nil {
				return time.Time{}, err
			}
		}
		return time.Time{}, nil
	}
	for _, f := range []string{unit, cmdFile(unit)} {
		if err := w.unlink(f, false); err != nil {
			return time.Time{}, err
		}
		p := filepath.Join(w.Dir, f)
		if w.base != "" {
			os.Remove(p) // the whiteout unlink made: the copy takes its place
		}
		src := filepath.Join(cache, f)
		st, err := os.Stat(src)
		if err != nil {
			return time.Time{}, err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return time.Time{}, err
		}
		if err := w.writeOwned(p, data, 0o644); err != nil {
			return time.Time{}, err
		}
		if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
			return time.Time{}, err
		}
	}
	return fi.ModTime(), nil
}

// install copies unit's object and build record from a workspace into
// the cache, each by rename, so that a reader never sees half a file.
func install(from, cache, unit string) error {
	for _, f := range []string{cmdFile(unit), unit} {
		src := filepath.Join(from, f)
		st, err := os.Lstat(src)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a file", f)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(cache, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
		if err != nil {
			return err
		}
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chtimes(tmp.Name(), st.ModTime(), st.ModTime())
		}
		if err == nil {
			err = os.Rename(tmp.Name(), dst)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return err
		}
	}
	return nil
}
