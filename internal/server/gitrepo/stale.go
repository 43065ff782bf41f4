package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clonePrefix names the temporary directories Mirror clones into, beside
// the mirror.
const clonePrefix = ".mirror-"

// RemoveStaleClones removes the temporary clones Mirror left beside dir when
// it was killed (kill -9, a crash, a power cut), and kills the git
// processes still writing into them: git's children outlive git.
//
// Only a caller that holds the lock serializing Mirror calls for dir may
// call it: then no clone in progress is left, so every temporary clone is
// stale. It returns the directories it removed.
func RemoveStaleClones(ctx context.Context, dir string) ([]string, error) {
	parent := filepath.Dir(dir)
	ents, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list stale clones: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), clonePrefix) {
			continue
		}
		tmp := filepath.Join(parent, e.Name())
		if err := killWriters(ctx, tmp); err != nil {
			return removed, fmt.Errorf("remove stale clone %s: %w", tmp, err)
		}
		if err := os.RemoveAll(tmp); err != nil {
			return removed, fmt.Errorf("remove stale clone: %w", err)
		}
		removed = append(removed, tmp)
	}
	return removed, nil
}

// killWriters kills the git processes that name dir on their command line
// or have a file under it open, and waits for them to go. Only git is
// killed: a shell that happens to sit in the directory is the user's.
func killWriters(ctx context.Context, dir string) error {
	pids := gitProcessesIn(dir)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("kill git process %d: %w", pid, err)
		}
	}
	for _, pid := range pids {
		for alive(pid) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// alive reports whether pid runs and is not a zombie (a zombie writes
// nothing).
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// gitProcessesIn lists the git processes that use dir, from /proc; where
// there is no /proc, none.
func gitProcessesIn(dir string) []int {
	dirs := []string{dir}
	// /proc shows paths with symlinks resolved.
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		dirs = append(dirs, real)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		for _, d := range dirs {
			if usesDir(pid, d) && isGit(pid) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// usesDir reports whether process pid names dir (or a path under it) on
// its command line, works in it, or has a file under it open.
func usesDir(pid int, dir string) bool {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	under := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	if cmdline, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil {
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if under(arg) {
				return true
			}
		}
	}
	if cwd, err := os.Readlink(filepath.Join(base, "cwd")); err == nil && under(cwd) {
		return true
	}
	fds, err := os.ReadDir(filepath.Join(base, "fd"))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(base, "fd", fd.Name())); err == nil && under(target) {
			return true
		}
	}
	return false
}

func isGit(pid int) bool {
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return false
	}
	name := strings.TrimSpace(string(comm))
	return name == "git" || strings.HasPrefix(name, "git-")
}
