package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The names the launcher gives the re-executed binary (argv[0]): the init
// (PID 1 of the namespaces, root there), and the last step before the
// command, which runs as the job's user and sets its rlimits.
const (
	initName = "tuxtape-sandbox-init"
	execName = "tuxtape-sandbox-exec"
	// holdName waits for its stdin to close: its user namespace is kept
	// for idmapped mounts (idmapUserns).
	holdName = "tuxtape-sandbox-hold"
	// setupExit is the init's exit code when the sandbox cannot be made;
	// its reason is the last stderr line, after setupPrefix.
	setupExit   = 125
	setupPrefix = "tuxtape-sandbox: "
)

func init() {
	switch os.Args[0] {
	case initName:
		os.Exit(runInit())
	case execName:
		runExec()
	case holdName:
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
}

func setupMessage(stderr string) (string, bool) {
	i := strings.LastIndex(stderr, setupPrefix)
	if i < 0 {
		return "", false
	}
	line, _, _ := strings.Cut(stderr[i+len(setupPrefix):], "\n")
	return line, true
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, setupPrefix+format+"\n", args...)
	return setupExit
}

// runInit sets up the namespaces the launcher cloned, starts the command
// as the job's user and reaps until it exits; the PID namespace dies with
// it, and with it everything the command left running.
func runInit() int {
	var sp spec
	f := os.NewFile(3, "spec")
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fail("read spec: %v", err)
	}
	if err := json.Unmarshal(data, &sp); err != nil {
		return fail("read spec: %v", err)
	}
	if err := setupMounts(&sp); err != nil {
		return fail("%v", err)
	}
	if err := os.Chdir(sp.Dir); err != nil {
		return fail("enter %s: %v", sp.Dir, err)
	}
	// Capabilities, securebits and no_new_privs are per thread: set them
	// on the thread that forks the command.
	runtime.LockOSThread()
	if err := dropPrivileges(sp.UserNS); err != nil {
		return fail("drop privileges: %v", err)
	}
	attr := &syscall.ProcAttr{
		Dir:   sp.Dir,
		Env:   sp.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if !sp.UserNS {
		// No supplementary groups: an empty list clears them.
		attr.Sys.Credential = &syscall.Credential{Uid: uint32(sp.UID), Gid: uint32(sp.GID), Groups: []uint32{}}
	}
	args := append([]string{execName, encodeRlimits(sp.Rlimits), "--"}, sp.Args...)
	pid, err := syscall.ForkExec("/proc/self/exe", args, attr)
	if err != nil {
		return fail("start %s: %v", sp.Args[0], err)
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fail("wait: %v", err)
		}
		if wpid != pid {
			continue // an orphan reparented to this init
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
}

// setupMounts makes the init's mount namespace the job's view: the
// mounts at their targets, everything else read-only, a private /tmp, the
// hidden directories empty, a /proc of its own PID namespace.
func setupMounts(sp *spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// Mount the views first, while their layers' paths resolve, and keep
	// detached copies to put back once tmpfs hides what lies around them.
	var views []int
	for _, m := range sp.Mounts {
		if err := mountView(m, sp.UserNS, sp.UsernsFD); err != nil {
			return err
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, m.Target, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("clone mount %s: %w", m.Target, err)
		}
		views = append(views, fd)
	}
	ro := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", unix.AT_RECURSIVE, ro); err != nil {
		return fmt.Errorf("make the file system read-only: %w", err)
	}
	size := "size=" + strconv.FormatInt(sp.TmpSize, 10)
	for _, d := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,"+size); err != nil {
			return fmt.Errorf("mount private %s: %w", d, err)
		}
	}
	var hidden []string
	for _, h := range sortedByDepth(sp.Hide) {
		if err := os.MkdirAll(h, 0o755); err != nil {
			continue // under a hidden directory already, or nowhere to hide
		}
		if err := unix.Mount("tmpfs", h, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=64k"); err != nil {
			return fmt.Errorf("hide %s: %w", h, err)
		}
		hidden = append(hidden, h)
	}
	for i, m := range sp.Mounts {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("make mount point %s: %w", m.Target, err)
		}
		if err := unix.MoveMount(views[i], "", unix.AT_FDCWD, m.Target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
		unix.Close(views[i])
	}
	// The hiding tmpfs were writable for the mount points above; the job
	// can write in none of them.
	for _, h := range hidden {
		if err := unix.MountSetattr(unix.AT_FDCWD, h, 0, ro); err != nil {
			return fmt.Errorf("hide %s: %w", h, err)
		}
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}

// mountView mounts one writable view at its target.
func mountView(m Mount, userNS bool, usernsFD int) error {
	if m.Source != "" {
		if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s at %s: %w", m.Source, m.Target, err)
		}
		return nil
	}
	lower := m.Lower
	if m.IDMap && !userNS && len(lower) > 0 {
		if usernsFD == 0 || m.Stage == "" {
			return fmt.Errorf("idmap %s: no namespace or stage directory", lower[len(lower)-1])
		}
		// An idmapped mount is set up detached, then attached at Stage;
		// the overlay keeps its own reference, so Stage is let go after.
		last := lower[len(lower)-1]
		fd, err := unix.OpenTree(unix.AT_FDCWD, last, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("idmap %s: %w", last, err)
		}
		defer unix.Close(fd)
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(usernsFD)}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("idmap %s: %w", last, err)
		}
		if err := unix.MoveMount(fd, "", unix.AT_FDCWD, m.Stage, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("idmap %s: %w", last, err)
		}
		defer unix.Unmount(m.Stage, unix.MNT_DETACH)
		lower = append(append([]string(nil), lower[:len(lower)-1]...), m.Stage)
	}
	opts := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + m.Upper + ",workdir=" + m.Work
	if userNS {
		// An unprivileged overlay keeps its attributes in user.* xattrs.
		opts += ",userxattr"
	}
	if err := unix.Mount("overlay", m.Target, "overlay", unix.MS_NOSUID, opts); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", m.Target, err)
	}
	return nil
}

// secureBits (linux/securebits.h), each with its lock: root gets no
// capabilities at exec (NOROOT), a uid change does not touch them
// (NO_SETUID_FIXUP), KEEP_CAPS stays off, ambient ones cannot be raised.
const secureBits = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<5 | 1<<6 | 1<<7

// dropPrivileges leaves the calling thread able to start the command with
// no way back to privilege: no capabilities in its bounding set, no
// ambient ones, no_new_privs (set-uid bits and file capabilities are
// ignored). In a user namespace the command stays its root, so the
// securebits also take away the capabilities root would get at exec.
func dropPrivileges(userNS bool) error {
	if userNS {
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, secureBits, 0, 0, 0); err != nil {
			return fmt.Errorf("set securebits: %w", err)
		}
	}
	last := 63
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// runExec is the last step, as the job's user: set the rlimits, then
// become the command.
func runExec() {
	if len(os.Args) < 4 || os.Args[2] != "--" {
		os.Exit(fail("bad exec arguments"))
	}
	if err := applyRlimits(os.Args[1]); err != nil {
		os.Exit(fail("set limits: %v", err))
	}
	args := os.Args[3:]
	path := args[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: command not found\n", path)
			os.Exit(127)
		}
		path = p
	}
	if !filepath.IsAbs(path) {
		if wd, err := os.Getwd(); err == nil {
			path = filepath.Join(wd, path)
		}
	}
	err := syscall.Exec(path, args, os.Environ())
	fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
	os.Exit(126)
}
