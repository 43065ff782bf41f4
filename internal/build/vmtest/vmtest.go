// Package vmtest boots a kernel in QEMU with a throw-away initramfs, runs
// a shell script as the guest's init work, and returns what the script
// printed and what the kernel logged. Tests and tools use it to check that
// a module or livepatch loads and behaves on the real target kernel.
//
// The initramfs is built in Go: busybox (static) with its applets, the
// requested modules with their dependencies, and any extra files. The guest
// runs under software emulation by default, so no KVM is needed.
package vmtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/kmsg"
)

var (
	// ErrTimeout means the guest did not finish the script in time; QEMU
	// was killed.
	ErrTimeout = errors.New("guest timed out")

	// ErrGuestStopped means QEMU exited before the script finished: a
	// kernel panic (the guest runs with panic=-1 and -no-reboot), a
	// crashed init, or a QEMU error.
	ErrGuestStopped = errors.New("guest stopped before the script finished")

	// ErrPreload means a module in Config.Modules failed to load.
	ErrPreload = errors.New("preload module failed")
)

// File is an extra file for the initramfs.
type File struct {
	// Path is the absolute path in the guest; missing directories are made.
	Path string
	// Source is a host file to copy. Used when Data is nil.
	Source string
	// Data is the file's contents.
	Data []byte
	// Mode is the permission bits. Default: 0755 if the source is
	// executable, else 0644.
	Mode os.FileMode
}

// Config describes one VM run.
type Config struct {
	// Kernel is the kernel image (bzImage, e.g. /boot/vmlinuz-<release>).
	Kernel string
	// ModulesDir is the /lib/modules/<release> tree the modules come from,
	// e.g. from an extracted image package. Its base name is the release
	// the guest sees modules under. Needed only when Modules is set.
	ModulesDir string
	// Modules are loaded, with their dependencies first, before Script
	// runs. Names as the kernel spells them (virtio_net); dashes and
	// underscores are the same. Only these and their dependencies are in
	// the guest, uncompressed, with a modules.dep so modprobe (-r) works.
	Modules []string
	// Available are put in the guest with their dependencies like
	// Modules, but not loaded: the script loads them (modprobe), e.g.
	// after a livepatch, as a host loads a module hours after its patch.
	Available []string
	// Files are put into the initramfs, e.g. a livepatch module.
	Files []File
	// Script is the shell script (busybox ash) the guest runs after boot.
	// It starts in /root with stdin from /dev/null; its exit status is
	// Result.ExitCode.
	Script string

	// MemoryMB is the guest's memory. Default: 512.
	MemoryMB int
	// CPUs is the number of guest CPUs. Default: 1.
	CPUs int
	// Timeout bounds the whole run, boot included. Default: 2 minutes.
	Timeout time.Duration
	// Append is added to the kernel command line.
	Append string
	// Accel is QEMU's accelerator. Default: "tcg" (nested KVM is slower
	// than TCG on the build machines, and TCG works everywhere).
	Accel string
	// QEMUArgs are extra QEMU arguments, e.g. a -netdev and -device.
	QEMUArgs []string
	// QEMU is the emulator binary. Default: qemu-system-x86_64.
	QEMU string
	// Busybox is a statically linked busybox. Default: busybox in $PATH
	// (the busybox-static package).
	Busybox string

	// Console, when set, receives the serial console as it arrives.
	Console io.Writer
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

// Result is what came out of a run. Boot returns it, as far as the run got,
// with errors too.
type Result struct {
	// Console is the whole serial console (line ends normalised to \n).
	Console string
	// Output is what the script wrote to stdout and stderr, without the
	// kernel's messages.
	Output string
	// Dmesg is the kernel log read after the script ended.
	Dmesg string
	// ExitCode is the script's exit status, or -1 if it did not finish.
	ExitCode int
	// Problems are the kernel problems found in Console and Dmesg.
	Problems []kmsg.Problem
	// BootTime is from QEMU's start to the guest's init running.
	BootTime time.Duration
	// Duration is from QEMU's start to its end.
	Duration time.Duration
	// CPUTime is the user and system CPU time QEMU used: under software
	// emulation a steadier measure than wall time on a busy host.
	CPUTime time.Duration
}

// markers frame the parts of the console that Boot picks apart. The nonce
// keeps a script from faking them by accident.
type markers struct{ nonce string }

func (m markers) get(what string) string { return "@@tuxtape-" + m.nonce + "-" + what + "@@" }

// initTemplate is the guest's /init. Kernel messages printed while the
// script runs interleave with its output on the console, so the script's
// output is also kept in a file and printed again, with the console log
// level lowered, between markers.
var initTemplate = template.Must(template.New("init").Parse(`#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
echo "{{.Booted}}"
finish() {
	echo 1 > /proc/sys/kernel/printk
	echo "{{.OutputBegin}}"
	cat /tmp/.tuxtape-output
	echo "{{.OutputEnd}}"
	echo "{{.DmesgBegin}}"
	dmesg
	echo "{{.DmesgEnd}}"
	echo "{{.Exit}} $1"
	poweroff -f
	sleep 1000000
}
: > /tmp/.tuxtape-output
{{range .Modules}}insmod "/lib/modules/{{$.Release}}/{{.}}" || { echo "{{$.PreloadFailed}} {{.}}"; finish 125; }
{{end}}cd /root
set -o pipefail
sh /.tuxtape/script </dev/null 2>&1 | tee /tmp/.tuxtape-output
finish $?
`))

// Boot runs cfg.Script in a fresh VM and returns the result. A nil error
// means the script ran to its end; its status is in Result.ExitCode, and
// kernel trouble in Result.Problems. On timeout or a guest crash the
// returned Result still holds the console log.
func Boot(ctx context.Context, cfg Config) (*Result, error) {
	log := slog.New(slog.DiscardHandler)
	if cfg.Logger != nil {
		log = cfg.Logger.With("component", "vmtest")
	}
	cfg.setDefaults()
	if _, err := os.Stat(cfg.Kernel); err != nil {
		return nil, fmt.Errorf("boot VM: kernel image: %w", err)
	}
	qemu, err := exec.LookPath(cfg.QEMU)
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w (install the qemu-system-x86 package)", err)
	}

	dir, err := os.MkdirTemp("", "tuxtape-vm-")
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	defer os.RemoveAll(dir)

	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	mk := markers{hex.EncodeToString(nonce)}

	start := time.Now()
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := buildInitramfs(ctx, initrd, cfg, mk); err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	log.Debug("built initramfs", "path", initrd, "took", time.Since(start))

	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, ErrTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(cfg, initrd)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	log.Info("booting VM", "kernel", cfg.Kernel, "modules", cfg.Modules, "accel", cfg.Accel)
	start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot VM: start %s: %w", qemu, err)
	}

	con := &console{booted: mk.get("booted"), exit: mk.get("exit"), start: start, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		w := io.Writer(con)
		if cfg.Console != nil {
			w = io.MultiWriter(con, cfg.Console)
		}
		_, _ = io.Copy(w, stdout)
	}()
	exited := make(chan error, 1)
	go func() {
		<-copied
		exited <- cmd.Wait()
	}()

	var runErr error
	select {
	case <-con.done:
		// The guest powers itself off right after the exit marker; give
		// it a moment before pulling the plug.
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cancel()
			<-exited
		}
	case err := <-exited:
		if !con.finished() {
			status := "qemu exited normally"
			if err != nil {
				status = "qemu: " + err.Error()
			}
			runErr = fmt.Errorf("%w (%s%s; see the console log for a panic)", ErrGuestStopped, status, stderrHint(stderr.String()))
		}
	case <-ctx.Done():
		<-exited
		if !con.finished() {
			runErr = context.Cause(ctx)
			if errors.Is(runErr, ErrTimeout) {
				runErr = fmt.Errorf("%w after %v", ErrTimeout, cfg.Timeout)
			}
		}
	}
	res := con.result(mk)
	res.Duration = time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		res.CPUTime = ps.UserTime() + ps.SystemTime()
	}
	if runErr == nil {
		if mod, ok := preloadFailure(res.Console, mk); ok {
			runErr = fmt.Errorf("%w: %s", ErrPreload, mod)
		}
	}
	log.Info("VM finished", "boot", res.BootTime, "duration", res.Duration, "cpu", res.CPUTime, "exit", res.ExitCode, "problems", len(res.Problems))
	if runErr != nil {
		return res, fmt.Errorf("boot VM: %w", runErr)
	}
	return res, nil
}

func (cfg *Config) setDefaults() {
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 512
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.Busybox == "" {
		cfg.Busybox = "busybox"
	}
}

func stderrHint(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return ": " + s
}

// console collects the serial output and notices the markers as they
// arrive.
type console struct {
	booted, exit string
	start        time.Time
	done         chan struct{}

	mu       sync.Mutex
	buf      bytes.Buffer
	bootTime time.Duration
	closed   bool
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Markers can be split across writes: look at the tail of the buffer
	// that could hold the start of one, plus the new bytes.
	from := max(0, c.buf.Len()-64)
	c.buf.Write(p)
	tail := c.buf.Bytes()[from:]
	if c.bootTime == 0 && bytes.Contains(tail, []byte(c.booted)) {
		c.bootTime = time.Since(c.start)
	}
	if !c.closed {
		if i := bytes.Index(tail, []byte(c.exit+" ")); i >= 0 && bytes.IndexByte(tail[i:], '\n') >= 0 {
			c.closed = true
			close(c.done)
		}
	}
	return len(p), nil
}

func (c *console) finished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// result picks the console apart.
func (c *console) result(mk markers) *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The serial line's ONLCR turns every \n into \r\n.
	text := strings.ReplaceAll(c.buf.String(), "\r\n", "\n")
	res := &Result{Console: text, ExitCode: -1, BootTime: c.bootTime}
	res.Output, _ = between(text, mk.get("output-begin")+"\n", mk.get("output-end")+"\n")
	res.Dmesg, _ = between(text, mk.get("dmesg-begin")+"\n", mk.get("dmesg-end")+"\n")
	if i := strings.LastIndex(text, mk.get("exit")+" "); i >= 0 {
		rest := text[i+len(mk.get("exit"))+1:]
		rest, _, _ = strings.Cut(rest, "\n")
		if n, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
			res.ExitCode = n
		}
	}
	seen := map[string]bool{}
	for _, p := range append(kmsg.Problems(text), kmsg.Problems(res.Dmesg)...) {
		if !seen[p.Line] {
			seen[p.Line] = true
			res.Problems = append(res.Problems, p)
		}
	}
	return res
}

// between returns the text after the last begin and before the end that
// follows it. The end marker is printed after output that may lack a
// final newline, so it may start mid-line.
func between(text, begin, end string) (string, bool) {
	i := strings.LastIndex(text, begin)
	if i < 0 {
		return "", false
	}
	rest := text[i+len(begin):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

func preloadFailure(text string, mk markers) (string, bool) {
	m := mk.get("preload-failed") + " "
	i := strings.Index(text, m)
	if i < 0 {
		return "", false
	}
	mod, _, _ := strings.Cut(text[i+len(m):], "\n")
	return strings.TrimSpace(mod), true
}

// buildInitramfs writes the gzipped cpio archive for cfg to dst.
func buildInitramfs(ctx context.Context, dst string, cfg Config, mk markers) error {
	busybox, err := exec.LookPath(cfg.Busybox)
	if err != nil {
		return fmt.Errorf("build initramfs: %w (install the busybox-static package)", err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	if err := checkStatic(bb); err != nil {
		return fmt.Errorf("build initramfs: %s: %w (install the busybox-static package)", busybox, err)
	}
	// The applet list comes from the same binary that goes into the guest.
	list, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("build initramfs: %s --list-full: %w", busybox, err)
	}

	var release string
	var mods []string
	preload := map[string]bool{} // of mods, those the init loads
	var tree *moduleTree
	if len(cfg.Modules)+len(cfg.Available) > 0 {
		if cfg.ModulesDir == "" {
			return errors.New("build initramfs: Modules set but ModulesDir is empty")
		}
		release = filepath.Base(filepath.Clean(cfg.ModulesDir))
		tree, err = openModuleTree(cfg.ModulesDir)
		if err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		if mods, err = tree.resolve(ctx, cfg.Modules); err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		for _, m := range mods {
			preload[m] = true
		}
		more, err := tree.resolve(ctx, cfg.Available)
		if err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		for _, m := range more {
			if !preload[m] {
				mods = append(mods, m)
			}
		}
	}

	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	w := newCPIOWriter(zw)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "root", "etc", ".tuxtape"} {
		_ = w.Dir(d, 0o755)
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	_ = w.CharDev("dev/console", 0o600, 5, 1)
	_ = w.File("bin/busybox", 0o755, bb)
	for _, applet := range strings.Fields(string(list)) {
		if cleanName(applet) == "bin/busybox" {
			continue
		}
		// Relative to the root, so the link works wherever it sits.
		_ = w.Symlink(applet, "/bin/busybox")
	}

	var loaded, inGuest []string // module paths in the guest, relative to /lib/modules/<release>
	for _, rel := range mods {
		data, err := readModule(ctx, filepath.Join(cfg.ModulesDir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		guest := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(rel, ".xz"), ".zst"), ".gz")
		if err := w.File(path.Join("lib/modules", release, guest), 0o644, data); err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		inGuest = append(inGuest, guest)
		if preload[rel] {
			loaded = append(loaded, guest)
		}
	}
	if len(inGuest) > 0 {
		// A modules.dep for what is in the guest, so that the script can
		// use modprobe and modprobe -r too.
		dep, err := modulesDep(ctx, tree, inGuest)
		if err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		_ = w.File(path.Join("lib/modules", release, "modules.dep"), 0o644, dep)
	}

	for _, ef := range cfg.Files {
		if !path.IsAbs(ef.Path) {
			return fmt.Errorf("build initramfs: file %q: want an absolute guest path", ef.Path)
		}
		data, mode := ef.Data, ef.Mode
		if data == nil {
			if data, err = os.ReadFile(ef.Source); err != nil {
				return fmt.Errorf("build initramfs: %w", err)
			}
			if fi, err := os.Stat(ef.Source); err == nil && mode == 0 {
				mode = fi.Mode().Perm()
				if mode&0o111 != 0 {
					mode = 0o755
				} else {
					mode = 0o644
				}
			}
		}
		if mode == 0 {
			mode = 0o644
		}
		if err := w.File(ef.Path, uint32(mode.Perm()), data); err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
	}

	var init bytes.Buffer
	if err := initTemplate.Execute(&init, map[string]any{
		"Booted":        mk.get("booted"),
		"OutputBegin":   mk.get("output-begin"),
		"OutputEnd":     mk.get("output-end"),
		"DmesgBegin":    mk.get("dmesg-begin"),
		"DmesgEnd":      mk.get("dmesg-end"),
		"Exit":          mk.get("exit"),
		"PreloadFailed": mk.get("preload-failed"),
		"Release":       release,
		"Modules":       loaded,
	}); err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	_ = w.File("init", 0o755, init.Bytes())
	_ = w.File(".tuxtape/script", 0o755, []byte(cfg.Script))
	if err := w.Close(); err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	return f.Close()
}

// modulesDep writes depmod's format for the modules in the guest: each
// module with its transitive dependencies, the one to load last first.
func modulesDep(ctx context.Context, tree *moduleTree, loaded []string) ([]byte, error) {
	var b bytes.Buffer
	guestPath := map[string]string{}
	for _, g := range loaded {
		guestPath[moduleName(g)] = g
	}
	for _, g := range loaded {
		order, err := tree.resolve(ctx, []string{moduleName(g)})
		if err != nil {
			return nil, err
		}
		order = order[:len(order)-1] // the module itself comes last
		fmt.Fprintf(&b, "%s:", g)
		for i := len(order) - 1; i >= 0; i-- {
			fmt.Fprintf(&b, " %s", guestPath[moduleName(order[i])])
		}
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}

// checkStatic refuses a dynamically linked binary: the initramfs has no
// libc or loader.
func checkStatic(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse ELF: %v", r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("parse ELF: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked, want a static binary")
		}
	}
	return nil
}

// qemuArgs are the guest's QEMU arguments. Without a network of the
// caller's (QEMUArgs), the guest gets none: QEMU would otherwise add a
// user-mode NIC through which a guest with its driver reaches the host's
// loopback services, and what a vetting VM runs is untrusted.
func qemuArgs(cfg Config, initrd string) []string {
	args := []string{
		"-accel", cfg.Accel, "-cpu", "max",
		"-m", strconv.Itoa(cfg.MemoryMB), "-smp", strconv.Itoa(cfg.CPUs),
		"-nographic", "-no-reboot",
		"-kernel", cfg.Kernel, "-initrd", initrd,
		// printk.time makes kernel lines recognisable (see kmsg.Problems).
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 printk.time=1 " + cfg.Append),
	}
	if !slices.ContainsFunc(cfg.QEMUArgs, func(a string) bool { return a == "-nic" || a == "-netdev" || a == "-net" }) {
		args = append(args, "-nic", "none")
	}
	return append(args, cfg.QEMUArgs...)
}
