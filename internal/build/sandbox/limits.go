package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

type rlimitSpec struct {
	Resource int    `json:"r"`
	Value    uint64 `json:"v"`
}

// rlimits are the limits set on the command's processes: RLIMIT_FSIZE
// always, the others only where no cgroup bounds the job as a whole.
func rlimits(l Limits, cgroup bool) []rlimitSpec {
	var out []rlimitSpec
	if l.FileSize > 0 {
		out = append(out, rlimitSpec{unix.RLIMIT_FSIZE, uint64(l.FileSize)})
	}
	if cgroup {
		return out
	}
	if l.Memory > 0 {
		out = append(out, rlimitSpec{unix.RLIMIT_AS, uint64(l.Memory)})
	}
	if l.Procs > 0 {
		out = append(out, rlimitSpec{unix.RLIMIT_NPROC, uint64(l.Procs)})
	}
	if t := orDefault(l.Time, DefaultLimits.Time); t > 0 {
		out = append(out, rlimitSpec{unix.RLIMIT_CPU, uint64(t / time.Second)})
	}
	return out
}

func encodeRlimits(rs []rlimitSpec) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d=%d", r.Resource, r.Value))
	}
	return strings.Join(parts, ",")
}

// applyRlimits sets the encoded limits, soft and hard, on this process.
func applyRlimits(enc string) error {
	if enc == "" {
		return nil
	}
	for _, p := range strings.Split(enc, ",") {
		k, v, _ := strings.Cut(p, "=")
		res, err1 := strconv.Atoi(k)
		val, err2 := strconv.ParseUint(v, 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad limit %q", p)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: val, Max: val}); err != nil {
			return fmt.Errorf("limit %d to %d: %w", res, val, err)
		}
	}
	return nil
}

// cgroup is one job's cgroup v2 group.
type cgroup struct {
	dir string
	fd  int
}

var cgroupSeq atomic.Int64

// newCgroup makes a group for one run under parent ("": the process's
// own cgroup; "none": no group) with the limits set, or returns nil and
// why not: no cgroup v2, or the controllers are not delegated here.
func newCgroup(parent string, l Limits) (*cgroup, error) {
	if parent == "none" {
		return nil, errors.New("cgroups turned off")
	}
	if parent == "" {
		p, err := ownCgroup()
		if err != nil {
			return nil, err
		}
		parent = p
	}
	ctrl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("no cgroup v2 at %s: %w", parent, err)
	}
	have := strings.Fields(string(ctrl))
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !contains(have, c) {
			return nil, fmt.Errorf("cgroup %s lacks the %s controller", parent, c)
		}
	}
	// Enabling controllers for children fails (EBUSY) in a group that has
	// processes of its own, unless it is the root: then rlimits apply.
	if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
		return nil, fmt.Errorf("delegate controllers in %s: %w", parent, err)
	}
	dir := filepath.Join(parent, fmt.Sprintf("tuxtape-job-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make cgroup: %w", err)
	}
	cg := &cgroup{dir: dir, fd: -1}
	set := func(file, val string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
			return fmt.Errorf("set %s: %w", file, err)
		}
		return nil
	}
	err = nil
	if l.Memory > 0 {
		err = errors.Join(set("memory.max", strconv.FormatInt(l.Memory, 10)))
		if _, serr := os.Stat(filepath.Join(dir, "memory.swap.max")); serr == nil {
			err = errors.Join(err, set("memory.swap.max", "0"))
		}
	}
	if l.Procs > 0 {
		err = errors.Join(err, set("pids.max", strconv.Itoa(l.Procs)))
	}
	if l.CPUs > 0 && l.CPUs < float64(runtime.NumCPU()) {
		const period = 100000
		err = errors.Join(err, set("cpu.max", fmt.Sprintf("%d %d", int(l.CPUs*period), period)))
	}
	if err == nil {
		cg.fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// ownCgroup is this process's cgroup v2 directory.
func ownCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var rel string
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			rel = p
		}
	}
	if rel == "" {
		return "", errors.New("no cgroup v2 hierarchy")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" {
				return filepath.Join(fields[4], rel), nil
			}
		}
	}
	return "", errors.New("cgroup2 is not mounted")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// kill kills every process in the group.
func (c *cgroup) kill() {
	os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
}

// oomKilled reports whether the memory limit killed a process of the group.
func (c *cgroup) oomKilled() bool {
	data, err := os.ReadFile(filepath.Join(c.dir, "memory.events"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return false
}

// remove deletes the group once its processes are gone.
func (c *cgroup) remove() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	for i := 0; i < 50; i++ {
		if err := os.Remove(c.dir); err == nil || os.IsNotExist(err) {
			return
		}
		c.kill()
		time.Sleep(20 * time.Millisecond)
	}
}
