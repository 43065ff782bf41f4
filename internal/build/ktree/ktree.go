// Package ktree prepares a kernel source tree for compiling single
// translation units the way the target kernel was built, and gives cheap
// throw-away views of it in which a fix is applied and units are rebuilt,
// confined by package sandbox.
package ktree

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/build/sandbox"
)

// Errors callers decide on.
var (
	ErrCompilerMismatch = errors.New("compiler does not match the kernel's")
	ErrConfigMismatch   = errors.New("config is for another kernel")
	// ErrWorkspace: a step around a compile failed — making its
	// workspace or sandbox, a sandbox limit, the object cache — not
	// kbuild, so the failure says nothing about the units.
	ErrWorkspace = errors.New("workspace failed")
)

// Tree is a prepared source tree: configured, with modules_prepare done.
type Tree struct {
	Dir     string
	Version string // 6.1.176
	CC      string // the compiler that built the kernel, e.g. gcc-12
	// Sandbox confines the steps that run a fix's code (Workspace.Apply,
	// Workspace.Compile) and the unfixed compiles; nil: sandbox.Default().
	Sandbox *sandbox.Config
	log     *slog.Logger

	dirsOnce sync.Once
	dirs     []string // the tree's directories (dirList)
	dirsErr  error
}

// PrepareOptions say where the source comes from and where the tree lives.
type PrepareOptions struct {
	Tarball string // linux-source tarball (.tar.xz), or a source directory to copy
	Config  string // the kernel's .config
	Dir     string // where the prepared tree is kept (reused when it matches)
	Log     *slog.Logger
	// AnyConfig accepts a config without CONFIG_LIVEPATCH: a tree for a
	// full build (a build profile) need not take livepatches.
	AnyConfig bool
}

const stampFile = ".tuxtape-prepared"

// Prepare unpacks the source, installs the config, and runs
// `make olddefconfig modules_prepare` with the kernel's own compiler. A tree
// prepared before from the same tarball and config is reused as it is.
func Prepare(ctx context.Context, o PrepareOptions) (*Tree, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := os.ReadFile(o.Config)
	if err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	cc, err := CheckCompiler(ctx, cfg)
	if err != nil {
		return nil, err
	}
	stamp := stampOf(o.Tarball, cfg)
	if have, err := os.ReadFile(filepath.Join(o.Dir, stampFile)); err == nil && string(have) == stamp {
		version, err := sourceVersion(o.Dir)
		if err != nil {
			return nil, err
		}
		return &Tree{Dir: o.Dir, Version: version, CC: cc, log: log}, nil
	}
	if err := os.MkdirAll(filepath.Dir(o.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("prepare tree: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(o.Dir), ".tree-*")
	if err != nil {
		return nil, fmt.Errorf("prepare tree: %w", err)
	}
	defer os.RemoveAll(tmp)
	if st, err := os.Stat(o.Tarball); err == nil && st.IsDir() {
		log.Info("copying kernel source", "dir", o.Tarball)
		if err := run(ctx, "", nil, "cp", "-a", o.Tarball+"/.", tmp); err != nil {
			return nil, fmt.Errorf("copy %s: %w", o.Tarball, err)
		}
	} else {
		log.Info("unpacking kernel source", "tarball", o.Tarball)
		if err := run(ctx, tmp, nil, "tar", "--strip-components=1", "-xf", o.Tarball); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", o.Tarball, err)
		}
	}
	version, err := sourceVersion(tmp)
	if err != nil {
		return nil, err
	}
	if err := checkConfig(cfg, version, !o.AnyConfig); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".config"), cfg, 0o644); err != nil {
		return nil, fmt.Errorf("install config: %w", err)
	}
	log.Info("preparing kernel source", "version", version)
	t := &Tree{Dir: tmp, Version: version, CC: cc, log: log}
	if err := t.make(ctx, tmp, nil, "olddefconfig"); err != nil {
		return nil, err
	}
	if err := t.make(ctx, tmp, nil, "modules_prepare"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, stampFile), []byte(stamp), 0o644); err != nil {
		return nil, fmt.Errorf("prepare tree: %w", err)
	}
	os.RemoveAll(o.Dir)
	os.RemoveAll(objectCache(o.Dir)) // the old tree's unfixed objects
	if err := os.Rename(tmp, o.Dir); err != nil {
		return nil, fmt.Errorf("install prepared tree: %w", err)
	}
	t.Dir = o.Dir
	return t, nil
}

func stampOf(tarball string, cfg []byte) string {
	h := sha256.New()
	if st, err := os.Stat(tarball); err == nil {
		fmt.Fprintf(h, "%s %d %d\n", tarball, st.Size(), st.ModTime().UnixNano())
	}
	h.Write(cfg)
	return hex.EncodeToString(h.Sum(nil))
}

var ccText = regexp.MustCompile(`(?m)^CONFIG_CC_VERSION_TEXT="([^"]*)"`)

// CheckCompiler finds the compiler the config says built the kernel
// (CONFIG_CC_VERSION_TEXT) and checks that it is installed and identical:
// objects from another compiler do not match the running kernel's code.
func CheckCompiler(ctx context.Context, cfg []byte) (string, error) {
	m := ccText.FindSubmatch(cfg)
	if m == nil {
		return "", fmt.Errorf("%w: the config has no CONFIG_CC_VERSION_TEXT", ErrConfigMismatch)
	}
	want := string(m[1])
	cc, _, _ := strings.Cut(want, " ")
	if _, err := exec.LookPath(cc); err != nil {
		return "", fmt.Errorf("%w: the kernel was built with %q but %s is not installed", ErrCompilerMismatch, want, cc)
	}
	out, err := exec.CommandContext(ctx, cc, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w", cc, err)
	}
	have, _, _ := strings.Cut(string(out), "\n")
	if strings.TrimSpace(have) != want {
		return "", fmt.Errorf("%w: the kernel was built with %q, %s is %q: install the exact compiler version", ErrCompilerMismatch, want, cc, have)
	}
	return cc, nil
}

var configHeader = regexp.MustCompile(`(?m)^# Linux/(\S+) (\S+) Kernel Configuration`)

// checkConfig refuses a config written for another kernel version or
// architecture; olddefconfig's cosmetic changes are fine.
func checkConfig(cfg []byte, version string, needLivepatch bool) error {
	m := configHeader.FindSubmatch(cfg)
	if m == nil {
		return fmt.Errorf("%w: no \"# Linux/<arch> <version> Kernel Configuration\" header", ErrConfigMismatch)
	}
	arch, v := string(m[1]), string(m[2])
	if arch != "x86" && arch != "x86_64" {
		return fmt.Errorf("%w: it is for %s, only x86_64 is supported", ErrConfigMismatch, arch)
	}
	// Distribution configs are written against their base (6.1.0 for any 6.1.y).
	if majorMinor(v) != majorMinor(version) {
		return fmt.Errorf("%w: it is for Linux %s, the source is %s", ErrConfigMismatch, v, version)
	}
	if !bytes.Contains(cfg, []byte("\nCONFIG_64BIT=y")) {
		return fmt.Errorf("%w: not a 64-bit config", ErrConfigMismatch)
	}
	if needLivepatch && !bytes.Contains(cfg, []byte("\nCONFIG_LIVEPATCH=y")) {
		return fmt.Errorf("%w: CONFIG_LIVEPATCH is not set in it: this kernel cannot load livepatches", ErrConfigMismatch)
	}
	return nil
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// sourceVersion reads VERSION.PATCHLEVEL.SUBLEVEL from the top Makefile.
func sourceVersion(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "Makefile"))
	if err != nil {
		return "", fmt.Errorf("read kernel version: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan() && i < 20; i++ {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			vals[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if vals["VERSION"] == "" || vals["PATCHLEVEL"] == "" {
		return "", fmt.Errorf("read kernel version: %s/Makefile has no VERSION/PATCHLEVEL", dir)
	}
	v := vals["VERSION"] + "." + vals["PATCHLEVEL"]
	if s := vals["SUBLEVEL"]; s != "" {
		v += "." + s
	}
	return v, nil
}

// make runs kbuild in dir with the kernel's compiler.
func (t *Tree) make(ctx context.Context, dir string, env []string, args ...string) error {
	if err := run(ctx, dir, env, "make", t.makeArgs(0, args...)...); err != nil {
		return fmt.Errorf("make %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// makeArgs are make's arguments for jobs parallel jobs (0: one per CPU)
// with the kernel's own compiler.
func (t *Tree) makeArgs(jobs int, args ...string) []string {
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	return append([]string{"-j" + strconv.Itoa(jobs), "CC=" + t.CC, "HOSTCC=" + t.CC}, args...)
}

func run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w\n%s", err, failureLines(out.String()))
	}
	return nil
}

// compileErrorLine is a compiler's error line (file:line:col: error: …).
var compileErrorLine = regexp.MustCompile(`(?m)^[^\s:]+:\d+:\d+: (?:fatal )?error: .*$`)

// failureLines is what a failed command's output says: its last lines,
// with the compiler's error lines first when warnings after them would
// push them out of the tail.
func failureLines(out string) string {
	tail := cmdout.Tail(out, 30)
	var missing []string
	for _, l := range compileErrorLine.FindAllString(out, 10) {
		if !strings.Contains(tail, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return tail
	}
	return strings.Join(missing, "\n") + "\n…\n" + tail
}

// Build runs the full kernel build (vmlinux and modules) in the tree with
// jobs parallel jobs (0: one per CPU), writing make's output to log. It is
// what a build profile is read from, and takes half an hour for a
// distribution config on two cores.
func (t *Tree) Build(ctx context.Context, jobs int, log io.Writer) error {
	cmd := exec.CommandContext(ctx, "make", t.makeArgs(jobs, "all")...)
	cmd.Dir = t.Dir
	// Only the end of half an hour of output is worth an error message.
	last := &cmdout.Buffer{Max: 64 << 10}
	w := io.Writer(last)
	if log != nil {
		w = io.MultiWriter(log, last)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("kernel build in %s: %w\n%s", t.Dir, err, cmdout.Tail(last.String(), 30))
	}
	return nil
}
