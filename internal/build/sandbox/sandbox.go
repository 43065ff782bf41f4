// Package sandbox runs a build's untrusted step — make on a tree with a
// fix applied, whose Makefile changes run as code — confined: its own
// unprivileged user, mount, network, PID, IPC and UTS namespaces, overlays
// as its only writable view of the tree, the rest of the file system read
// only with the builder's directories hidden, and memory, process, CPU
// and time limits.
//
// The launcher re-executes the running binary (/proc/self/exe) as a small
// init that sets the namespaces up and then starts the command; the init
// hooks itself in with an init function, so that the tuxtape binary and
// every test binary that builds in a sandbox carry it without a main of
// their own.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors callers decide on. A run stopped by a limit matches ErrLimit and
// the limit's own sentinel (errors.Is); its *LimitError says which.
var (
	// ErrLimit: the command ran past one of its limits and was killed
	// (or, under rlimits, failed to allocate).
	ErrLimit = errors.New("sandbox limit reached")
	// ErrTimeLimit: it ran past Limits.Time.
	ErrTimeLimit = fmt.Errorf("%w: time", ErrLimit)
	// ErrMemoryLimit: it ran past Limits.Memory.
	ErrMemoryLimit = fmt.Errorf("%w: memory", ErrLimit)
	// ErrSetup: the sandbox could not be made (no namespaces, no
	// overlay, …); nothing of the command ran.
	ErrSetup = errors.New("set up sandbox")
)

// LimitError is a run stopped by a limit.
type LimitError struct {
	Limit string // "time" or "memory"
	Value string // the limit, as configured ("20m0s", "4.0 GiB")
	How   string // cgroup or rlimit
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the build step ran past its %s limit (%s, enforced by %s) and was stopped", e.Limit, e.Value, e.How)
}

// Is makes a LimitError match ErrLimit and its limit's sentinel.
func (e *LimitError) Is(target error) bool {
	switch target {
	case ErrLimit:
		return true
	case ErrTimeLimit:
		return e.Limit == "time"
	case ErrMemoryLimit:
		return e.Limit == "memory"
	}
	return false
}

// Limits bound one run. Where the builder may make cgroup v2 groups with
// the memory, pids and cpu controllers (its own cgroup delegates them),
// Memory, Procs and CPUs are the group's memory.max, pids.max and cpu.max:
// they bound the command and all its children together. Elsewhere (cgroup
// v1 or no delegation, as on the development machine) they are rlimits of
// each process: RLIMIT_AS (address space, per process), RLIMIT_NPROC
// (processes of the job's uid) and RLIMIT_CPU (CPU seconds per process,
// set to Time); CPUs is then not enforced. FileSize is always
// RLIMIT_FSIZE, and Time always a deadline that kills the whole PID
// namespace.
type Limits struct {
	Memory   int64         // bytes
	Time     time.Duration // wall clock of one run
	Procs    int           // processes and threads
	CPUs     float64       // cores (0: all)
	FileSize int64         // largest file it may write, bytes
}

// DefaultLimits are generous for a kernel unit compile (a few hundred MB
// and seconds each, up to a header fix's 40 units on a small machine).
var DefaultLimits = Limits{Memory: 4 << 30, Time: 20 * time.Minute, Procs: 2048, FileSize: 4 << 30}

// DefaultUID is the job's uid and gid when the builder runs as root: the
// conventional nobody, which owns no files.
const DefaultUID = 65534

// Config is how a builder confines its jobs.
type Config struct {
	// UID and GID the command runs as when the builder is root (0:
	// DefaultUID). A builder that is not root runs it in a user namespace
	// as that namespace's root (its own uid outside) with no capabilities:
	// without subordinate uids there is no other uid to map.
	UID, GID int
	Limits   Limits
	// Hide are directories the command must not see (the builder's data
	// directory and home, say): each is an empty read-only tmpfs there.
	Hide []string
	// CgroupParent is a cgroup v2 directory the builder may make groups
	// in, with the memory, pids and cpu controllers; "" tries the
	// builder's own cgroup, "none" uses rlimits only.
	CgroupParent string
}

// Default is the configuration for a build outside a builder: the default
// uid and limits, and the user's home and TuxTape's own directories
// hidden.
func Default() *Config {
	return &Config{UID: DefaultUID, GID: DefaultUID, Limits: DefaultLimits, Hide: DefaultHide()}
}

// DefaultHide are the directories hidden by default: the home directory
// (settings, keys, tokens), the XDG data and config directories and
// TuxTape's system directories.
func DefaultHide() []string {
	var dirs []string
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, h)
	}
	if d, err := os.UserConfigDir(); err == nil {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "/root", "/etc/tuxtape", "/var/lib/tuxtape")
	return dirs
}

// Mount is a writable view the command gets at Target: an overlay of
// Lower (first on top) with Upper and Work, or Source bound there.
type Mount struct {
	Target string   `json:"target"`
	Lower  []string `json:"lower,omitempty"`
	Upper  string   `json:"upper,omitempty"`
	Work   string   `json:"work,omitempty"`
	Source string   `json:"source,omitempty"`
	// IDMap shows the overlay's lowest layer with root's files as the
	// job's (an idmapped mount, Linux 5.19 or later under an overlay), so
	// that the job may write in the tree's directories — its writes go
	// to Upper — without a directory of the upper layer made for each.
	// Stage is an empty directory where that mount is made while the
	// overlay is mounted; it is gone before the command starts. Not for
	// a rootless builder, whose job owns the builder's files already.
	IDMap bool   `json:"idmap,omitempty"`
	Stage string `json:"stage,omitempty"`
}

// Cmd is one command to run confined.
type Cmd struct {
	Args   []string // Args[0] is looked up in PATH inside the sandbox
	Dir    string   // working directory (inside a Mount, usually)
	Env    []string // the whole environment; nil: Env()
	Mounts []Mount
	Stdin  io.Reader // nil: /dev/null
	Stdout io.Writer
	Stderr io.Writer
}

// Env is a job's default environment: a PATH, HOME and TMPDIR on the
// private /tmp, and the builder's locale — nothing else of the builder's
// (its token is in its environment).
func Env() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "TMPDIR=/tmp"}
	for _, k := range []string{"LANG", "LC_ALL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Rootless reports whether runs use a user namespace (the builder is not
// root) rather than a uid of their own.
func Rootless() bool { return os.Geteuid() != 0 }

// JobUID is the uid that owns what the command must be able to write
// (the overlay's upper directories), as the builder sees it: the job's
// uid when the builder is root, the builder's own otherwise.
func (c *Config) JobUID() (uid, gid int) {
	if Rootless() {
		return os.Geteuid(), os.Getegid()
	}
	uid, gid = c.UID, c.GID
	if uid == 0 {
		uid = DefaultUID
	}
	if gid == 0 {
		gid = uid
	}
	return uid, gid
}

// spec is what the launcher hands the init, as JSON on fd 3.
type spec struct {
	Args    []string     `json:"args"`
	Dir     string       `json:"dir"`
	Env     []string     `json:"env"`
	Mounts  []Mount      `json:"mounts"`
	Hide    []string     `json:"hide"`
	UID     int          `json:"uid"`
	GID     int          `json:"gid"`
	UserNS  bool         `json:"userns"`
	Rlimits []rlimitSpec `json:"rlimits"`
	TmpSize int64        `json:"tmp_size"`
	// UsernsFD is the init's descriptor of a user namespace mapping 0 to
	// the job's uid and gid, for IDMap mounts (0: none).
	UsernsFD int `json:"userns_fd,omitempty"`
}

// Run runs cmd confined and waits for it. A non-zero exit is an
// *exec.ExitError; a limit a *LimitError; a sandbox that could not be
// made ErrSetup; a cancelled ctx ctx's error.
func (c *Config) Run(ctx context.Context, cmd Cmd) error {
	if len(cmd.Args) == 0 {
		return fmt.Errorf("%w: no command", ErrSetup)
	}
	lim := c.Limits // unset limits are the defaults
	lim.Memory = orDefault(lim.Memory, DefaultLimits.Memory)
	lim.Time = orDefault(lim.Time, DefaultLimits.Time)
	lim.Procs = orDefault(lim.Procs, DefaultLimits.Procs)
	lim.FileSize = orDefault(lim.FileSize, DefaultLimits.FileSize)
	uid, gid := c.JobUID()
	sp := spec{Args: cmd.Args, Dir: cmd.Dir, Env: cmd.Env, Mounts: cmd.Mounts, UID: uid, GID: gid, UserNS: Rootless(), TmpSize: tmpSize(lim)}
	if sp.Env == nil {
		sp.Env = Env()
	}
	for _, h := range c.Hide {
		if h != "" && filepath.IsAbs(h) {
			sp.Hide = append(sp.Hide, filepath.Clean(h))
		}
	}
	for _, m := range cmd.Mounts {
		if d := unsearchable(m.Target, uid, gid); d != "" {
			sp.Hide = append(sp.Hide, d)
		}
	}
	// Without a delegated cgroup v2 group, rlimits: see Limits.
	cg, _ := newCgroup(c.CgroupParent, lim)
	if cg != nil {
		defer cg.remove()
	}
	sp.Rlimits = rlimits(lim, cg != nil)
	how := "rlimit"
	if cg != nil {
		how = "cgroup v2"
	}

	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	defer r.Close()

	runCtx, cancel := context.WithTimeout(ctx, lim.Time)
	defer cancel()
	x := exec.CommandContext(runCtx, "/proc/self/exe")
	x.Args = []string{initName}
	x.Env = []string{}
	x.ExtraFiles = []*os.File{r}
	if needsIDMap(cmd.Mounts) && !sp.UserNS {
		ns, err := idmapUserns(uid, gid)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSetup, err)
		}
		x.ExtraFiles = append(x.ExtraFiles, ns)
		sp.UsernsFD = 4
	}
	var errBuf bytes.Buffer
	x.Stdin = cmd.Stdin
	stdout, stderr := cmd.Stdout, writerOr(cmd.Stderr)
	if stdout == cmd.Stderr && stdout != nil {
		// One writer for both: os/exec copies each from its own goroutine.
		w := &lockedWriter{w: stdout}
		stdout, stderr = w, w
	}
	x.Stdout = stdout
	x.Stderr = io.MultiWriter(stderr, &tailWriter{buf: &errBuf, max: 8 << 10})
	x.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if sp.UserNS {
		x.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		x.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		x.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		x.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	if cg != nil {
		x.SysProcAttr.UseCgroupFD, x.SysProcAttr.CgroupFD = true, cg.fd
	}
	// Killing the init (PID 1 of its namespace) kills every process in
	// it; the cgroup's kill file catches anything else in the group.
	x.Cancel = func() error {
		if cg != nil {
			cg.kill()
		}
		return x.Process.Kill()
	}
	x.WaitDelay = 10 * time.Second
	data, err := json.Marshal(sp)
	if err != nil {
		w.Close()
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if err := x.Start(); err != nil {
		w.Close()
		return fmt.Errorf("%w: start init: %w", ErrSetup, err)
	}
	_, werr := w.Write(data)
	w.Close()
	err = x.Wait()
	if werr != nil && err == nil {
		err = werr
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case runCtx.Err() == context.DeadlineExceeded:
		return &LimitError{Limit: "time", Value: lim.Time.String(), How: "deadline"}
	}
	if cg != nil && cg.oomKilled() {
		return &LimitError{Limit: "memory", Value: sizeString(lim.Memory), How: how}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == setupExit {
		if msg, ok := setupMessage(errBuf.String()); ok {
			return fmt.Errorf("%w: %s", ErrSetup, msg)
		}
	}
	if cg == nil && outOfMemory(errBuf.String()) {
		return &LimitError{Limit: "memory", Value: sizeString(lim.Memory), How: how}
	}
	return err
}

// unsearchable is the first directory on the way to target that the job
// may not search (a home directory of mode 0700, say), or "": an empty
// tmpfs there, with the way to target made again, hides nothing the job
// could see and lets it reach its view.
func unsearchable(target string, uid, gid int) string {
	p := "/"
	for _, part := range strings.Split(strings.Trim(filepath.Clean(target), "/"), "/") {
		if part == "" {
			break
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return ""
		}
		mode := st.Mode
		ok := mode&0o001 != 0 || (int(st.Gid) == gid && mode&0o010 != 0) || (int(st.Uid) == uid && mode&0o100 != 0)
		if !ok {
			return p
		}
		p = filepath.Join(p, part)
	}
	return ""
}

func needsIDMap(ms []Mount) bool {
	for _, m := range ms {
		if m.IDMap {
			return true
		}
	}
	return false
}

// idmapNS holds, per job uid and gid, a user namespace that maps 0 to
// them, made once per process: idmapped mounts take one.
var idmapNS sync.Map // [2]int → *os.File

// idmapUserns returns that namespace: a short-lived process is cloned
// into a new one with the mapping, and its namespace file kept open.
func idmapUserns(uid, gid int) (*os.File, error) {
	key := [2]int{uid, gid}
	if f, ok := idmapNS.Load(key); ok {
		return f.(*os.File), nil
	}
	hold := exec.Command("/proc/self/exe")
	hold.Args = []string{holdName}
	hold.Env = []string{}
	stdin, err := hold.StdinPipe()
	if err != nil {
		return nil, err
	}
	hold.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := hold.Start(); err != nil {
		return nil, fmt.Errorf("make the idmap namespace: %w", err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", hold.Process.Pid))
	stdin.Close()
	hold.Wait()
	if err != nil {
		return nil, fmt.Errorf("open the idmap namespace: %w", err)
	}
	if prev, loaded := idmapNS.LoadOrStore(key, f); loaded {
		f.Close()
		return prev.(*os.File), nil
	}
	return f, nil
}

// outOfMemory tells, under rlimits, an allocation the address-space limit
// refused, from the line programs print for it ("cc1: out of memory
// allocating …", "tail: memory exhausted", "bash: fork: Cannot allocate
// memory"), not from a compiler's quote of source that says so.
func outOfMemory(stderr string) bool { return oomLine.MatchString(stderr) }

var oomLine = regexp.MustCompile(`(?m)^[\w.+-]+: (?:(?:virtual )?memory exhausted|out of memory|(?:[\w ]+: )?Cannot allocate memory)`)

func tmpSize(l Limits) int64 {
	if l.Memory > 0 {
		return l.Memory
	}
	return DefaultLimits.Memory
}

func orDefault[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	buf *bytes.Buffer
	max int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

// ParseSize reads a size such as 4G, 512M, 4GiB or 1073741824 (bytes).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("parse size %q: want a positive number of bytes with an optional K, M, G or T", s)
	}
	return int64(v * float64(mult)), nil
}

func sizeString(n int64) string {
	if n <= 0 {
		n = DefaultLimits.Memory
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// Available reports whether this process can run sandboxes, and why not:
// it runs `true` in one.
func Available(ctx context.Context) error {
	c := &Config{Limits: DefaultLimits, CgroupParent: "none"}
	var out bytes.Buffer
	if err := c.Run(ctx, Cmd{Args: []string{"true"}, Dir: "/", Stderr: &out}); err != nil {
		return fmt.Errorf("sandbox unavailable: %w (%s)", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// sortedByDepth orders paths so that a directory comes before what is in
// it: mounts made in that order stack as the paths nest.
func sortedByDepth(paths []string) []string {
	out := slices.Clone(paths)
	slices.SortFunc(out, func(a, b string) int {
		if d := strings.Count(a, "/") - strings.Count(b, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}
