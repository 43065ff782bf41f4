package vmtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/model/kmsg"
)

// The kernel the project tests against (see docs/DESIGN.md).
const (
	testRelease = "6.1.0-50-cloud-amd64"
	testVersion = "6.1.176-1"
)

// needVM skips only when TUXTAPE_SKIP_VM=1; otherwise missing QEMU or
// packages make the test fail, so a broken set-up is not mistaken for a
// pass.
func needVM(t *testing.T) {
	t.Helper()
	if os.Getenv("TUXTAPE_SKIP_VM") == "1" {
		t.Skip("TUXTAPE_SKIP_VM=1")
	}
	for _, tool := range []string{"qemu-system-x86_64", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (install qemu-system-x86 and busybox-static, or set TUXTAPE_SKIP_VM=1)", tool, err)
		}
	}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
}

// The image package is fetched once per test binary; the debs are cached
// across runs (and $TUXTAPE_DEB_DIRS, colon-separated, seeds the cache).
var (
	kernelOnce sync.Once
	kernel     *debpkg.Kernel
	image      debpkg.ImageFiles
	imageErr   error
)

func testKernel(t *testing.T) (*debpkg.Kernel, debpkg.ImageFiles) {
	t.Helper()
	kernelOnce.Do(func() {
		opts := debpkg.Options{Logger: testLogger(t)}
		if v := os.Getenv("TUXTAPE_DEB_DIRS"); v != "" {
			opts.SeedDirs = filepath.SplitList(v)
		}
		kernel, imageErr = debpkg.NewKernel(opts, testRelease, testVersion)
		if imageErr == nil {
			image, imageErr = kernel.Image(context.Background())
		}
	})
	if imageErr != nil {
		t.Fatalf("get kernel image %s=%s: %v", testRelease, testVersion, imageErr)
	}
	return kernel, image
}

func TestCPIOWithCpioTool(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio: %v (install the cpio package)", err)
	}
	var b bytes.Buffer
	w := newCPIOWriter(&b)
	_ = w.File("/a/b/c.txt", 0o644, []byte("hello"))
	_ = w.Symlink("bin/sh", "/bin/busybox")
	_ = w.CharDev("dev/console", 0o600, 5, 1)
	_ = w.File("odd", 0o755, []byte("12345"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := newCPIOWriter(io.Discard).File("x", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	dupw := newCPIOWriter(io.Discard)
	_ = dupw.File("/a/x", 0o644, nil)
	if err := dupw.File("a/x", 0o644, nil); err == nil {
		t.Errorf("adding a/x twice: no error")
	}
	if b.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", b.Len())
	}
	cmd := exec.Command("cpio", "--quiet", "-itv")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	list := string(out)
	for _, want := range []string{"drwxr-xr-x", " a\n", " a/b\n", " a/b/c.txt\n", "bin/sh -> /bin/busybox", "crw-------", "5,   1", " odd\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("cpio -itv output lacks %q:\n%s", want, list)
		}
	}

	dir := t.TempDir()
	cmd = exec.Command("cpio", "--quiet", "-id", "a/b/c.txt", "odd")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"a/b/c.txt": "hello", "odd": "12345"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("extracted %s = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestParseProblems(t *testing.T) {
	log := strings.Join([]string{
		"[    0.000000] Linux version 6.1.0",
		"[   12.345678] ------------[ cut here ]------------",
		"[   12.345679] WARNING: CPU: 0 PID: 1 at kernel/livepatch/core.c:123 klp_enable_patch+0x1/0x2",
		"[   12.345680] Call Trace:",
		"[   13.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000",
		"[   13.000001] Oops: 0000 [#1] PREEMPT SMP NOPTI",
		"[   13.000002] kernel BUG at mm/slub.c:42!",
		"[   14.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
		"WARNING: this line is script output, not the kernel",
		"[   15.000000] livepatch: enabling patch 'livepatch_sample'",
	}, "\r\n")
	got := kmsg.Problems(log)
	want := []string{"WARNING", "Call Trace", "BUG", "Oops", "BUG", "Kernel panic"}
	var kinds []string
	for _, p := range got {
		kinds = append(kinds, p.Kind)
		if strings.HasSuffix(p.Line, "\r") {
			t.Errorf("problem line %q keeps its carriage return", p.Line)
		}
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("kmsg.Problems kinds = %q, want %q", kinds, want)
	}
}

func TestModuleName(t *testing.T) {
	for file, want := range map[string]string{
		"kernel/fs/isofs/isofs.ko":            "isofs",
		"kernel/drivers/net/virtio_net.ko":    "virtio_net",
		"kernel/crypto/crc32c-intel.ko.xz":    "crc32c_intel",
		"kernel/arch/x86/crypto/aesni.ko.zst": "aesni",
		"extra/livepatch-sample.ko.gz":        "livepatch_sample",
	} {
		if got := moduleName(file); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", file, got, want)
		}
	}
}

// TestResolveModules resolves against the real image tree, which has no
// modules.dep, and against a copy with compressed modules and a
// modules.dep.
func TestResolveModules(t *testing.T) {
	needVM(t)
	ctx := context.Background()
	_, img := testKernel(t)
	tree, err := openModuleTree(img.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	if tree.dep != nil {
		t.Logf("note: %s has a modules.dep", img.ModulesDir)
	}
	order, err := tree.resolve(ctx, []string{"virtio-net", "isofs", "virtio_net"})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	checkOrder(t, order, map[string][]string{
		"virtio_net":   {"virtio", "virtio_ring", "net_failover"},
		"net_failover": {"failover"},
		"isofs":        {"cdrom"},
	}, 7)
	if _, err := tree.resolve(ctx, []string{"no_such_module"}); err == nil {
		t.Errorf("resolve(no_such_module) = nil error")
	}

	// The same modules compressed three ways, with a modules.dep.
	dir := filepath.Join(t.TempDir(), testRelease)
	var dep bytes.Buffer
	for _, rel := range order {
		name := moduleName(rel)
		var comp string
		switch {
		case name == "virtio_net" || name == "cdrom":
			comp = ".xz"
		case name == "failover":
			comp = ".zst"
		case name == "isofs":
			comp = ".gz"
		}
		dst := filepath.Join(dir, rel+comp)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(img.ModulesDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, compress(t, comp, data), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readModule(ctx, dst)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("readModule(%s) = %d bytes, %v; want the %d original bytes", dst, len(got), err, len(data))
		}
		deps, _ := tree.deps(ctx, name)
		dep.WriteString(rel + comp + ":")
		for _, d := range deps {
			dep.WriteString(" " + tree.byName[d] + map[string]string{"virtio_net": ".xz", "cdrom": ".xz", "failover": ".zst", "isofs": ".gz"}[d])
		}
		dep.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), dep.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctree, err := openModuleTree(dir)
	if err != nil || ctree.dep == nil {
		t.Fatalf("openModuleTree(compressed copy) = %v, dep %v", err, ctree.dep)
	}
	corder, err := ctree.resolve(ctx, []string{"isofs", "virtio_net"})
	if err != nil {
		t.Fatalf("resolve compressed: %v", err)
	}
	checkOrder(t, corder, map[string][]string{
		"virtio_net":   {"virtio", "virtio_ring", "net_failover"},
		"net_failover": {"failover"},
		"isofs":        {"cdrom"},
	}, 7)
}

func compress(t *testing.T, suffix string, data []byte) []byte {
	t.Helper()
	switch suffix {
	case "":
		return data
	case ".gz":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(data)
		_ = zw.Close()
		return b.Bytes()
	}
	tool := map[string]string{".xz": "xz", ".zst": "zstd"}[suffix]
	cmd := exec.Command(tool, "--stdout", "-")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

// checkOrder checks that order has n modules, each once, and each after
// the dependencies listed for it.
func checkOrder(t *testing.T, order []string, deps map[string][]string, n int) {
	t.Helper()
	pos := map[string]int{}
	for i, rel := range order {
		name := moduleName(rel)
		if _, dup := pos[name]; dup {
			t.Errorf("order %q lists %s twice", order, name)
		}
		pos[name] = i
	}
	if len(order) != n {
		t.Errorf("order %q has %d modules, want %d", order, len(order), n)
	}
	for m, ds := range deps {
		for _, d := range ds {
			pm, okm := pos[m]
			pd, okd := pos[d]
			if !okm || !okd || pd > pm {
				t.Errorf("order %q: %s must come before %s", order, d, m)
			}
		}
	}
}

// TestBoot boots the Debian kernel, loads a module with dependencies from
// the image package, and checks the script's output and exit status come
// back apart from the kernel's messages.
func TestBoot(t *testing.T) {
	needVM(t)
	_, img := testKernel(t)
	ctx := context.Background()
	res, err := Boot(ctx, Config{
		Kernel:     img.Vmlinuz,
		ModulesDir: img.ModulesDir,
		Modules:    []string{"virtio_net", "isofs"},
		Files:      []File{{Path: "/etc/tuxtape-test", Data: []byte("extra file\n")}},
		Script: `uname -r
cut -d' ' -f1 /proc/modules | sort | tr '\n' ' '; echo
cat /etc/tuxtape-test
modprobe -r isofs && echo "isofs removed"
printf 'no newline at the end'
exit 7
`,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("Boot: %v\nconsole:\n%s", err, tail(res))
	}
	t.Logf("boot time %v, run %v, QEMU CPU time %v", res.BootTime, res.Duration, res.CPUTime)
	want := testRelease + "\n" +
		"cdrom failover isofs net_failover virtio virtio_net virtio_ring \n" +
		"extra file\n" +
		"isofs removed\n" +
		"no newline at the end"
	if res.Output != want {
		t.Errorf("Output = %q, want %q", res.Output, want)
	}
	if res.ExitCode != 7 {
		t.Errorf("ExitCode = %d, want 7", res.ExitCode)
	}
	if len(res.Problems) > 0 {
		t.Errorf("kernel problems: %v", res.Problems)
	}
	if !strings.Contains(res.Dmesg, "Linux version "+testRelease) {
		t.Errorf("Dmesg does not start with the kernel banner:\n%.500s", res.Dmesg)
	}
	if res.BootTime <= 0 || res.BootTime > res.Duration {
		t.Errorf("BootTime = %v, Duration = %v", res.BootTime, res.Duration)
	}
}

// TestBootTimeout checks that a hanging guest is stopped and reported with
// its console.
func TestBootTimeout(t *testing.T) {
	needVM(t)
	_, img := testKernel(t)
	res, err := Boot(context.Background(), Config{
		Kernel:  img.Vmlinuz,
		Script:  "sleep 1000",
		Timeout: 5 * time.Second,
	})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Boot with a hanging script = %v, want ErrTimeout", err)
	}
	if res == nil || res.Console == "" || res.ExitCode != -1 {
		t.Errorf("timed-out Boot returned %+v, want the console so far and exit code -1", res)
	}
}

func tail(res *Result) string {
	if res == nil {
		return "(no result)"
	}
	c := res.Console
	if len(c) > 6000 {
		c = "…" + c[len(c)-6000:]
	}
	return c
}

// TestLivepatchSample is the end-to-end check of the livepatch chain:
// headers installed with apt, the kernel's own livepatch sample built
// against them as an external module, loaded into the real Debian kernel
// in QEMU, enabled, transitioned, observed, disabled and removed.
func TestLivepatchSample(t *testing.T) {
	needVM(t)
	ctx := context.Background()
	k, img := testKernel(t)
	start := time.Now()
	headers, err := k.InstallHeaders(ctx)
	if err != nil {
		t.Fatalf("InstallHeaders: %v", err)
	}
	t.Logf("headers %s ready in %v", headers, time.Since(start))

	start = time.Now()
	src, err := k.SourceFile(ctx, "samples/livepatch/livepatch-sample.c")
	if err != nil {
		t.Fatalf("SourceFile: %v", err)
	}
	t.Logf("sample source %s ready in %v", src, time.Since(start))
	dir := t.TempDir()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "livepatch-sample.c"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte("obj-m := livepatch-sample.o\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if out, err := exec.CommandContext(ctx, "make", "-C", headers, "M="+dir, "modules").CombinedOutput(); err != nil {
		t.Fatalf("build livepatch-sample.ko: %v\n%s", err, out)
	}
	t.Logf("module built in %v", time.Since(start))
	ko := filepath.Join(dir, "livepatch-sample.ko")

	res, err := Boot(ctx, Config{
		Kernel:  img.Vmlinuz,
		Files:   []File{{Path: "/root/livepatch-sample.ko", Source: ko}},
		Script:  livepatchScript,
		Timeout: 90 * time.Second,
		Logger:  testLogger(t),
	})
	if err != nil {
		t.Fatalf("Boot: %v\nconsole:\n%s", err, tail(res))
	}
	t.Logf("boot time %v, run %v, QEMU CPU time %v", res.BootTime, res.Duration, res.CPUTime)
	t.Logf("script output:\n%s", res.Output)
	if res.ExitCode != 0 {
		t.Fatalf("script exit %d\nconsole:\n%s", res.ExitCode, tail(res))
	}
	got := map[string]string{}
	for _, line := range strings.Split(res.Output, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			got[k] = v
		}
	}
	for key, want := range map[string]string{
		"enabled":    "1",
		"transition": "0",
		"patched":    "this has been live patched",
		"sysfs":      "vmlinux/cmdline_proc_show,1",
		"disabled":   "gone",
		"modules":    "0",
	} {
		if got[key] != want {
			t.Errorf("%s: got %q, want %q", key, got[key], want)
		}
	}
	if !strings.Contains(got["before"], "console=ttyS0") || got["after"] != got["before"] {
		t.Errorf("/proc/cmdline before %q, after %q: want the real command line both times", got["before"], got["after"])
	}
	if !strings.Contains(res.Dmesg, "livepatch: 'livepatch_sample': patching complete") ||
		!strings.Contains(res.Dmesg, "livepatch: 'livepatch_sample': unpatching complete") {
		t.Errorf("dmesg lacks the livepatch transitions:\n%s", res.Dmesg)
	}
	for _, p := range res.Problems {
		t.Errorf("kernel problem: %s", p.Line)
	}
}

// livepatchScript drives the sample through its life; each "key: value"
// line is checked by the test.
const livepatchScript = `set -e
lp=/sys/kernel/livepatch/livepatch_sample
# Wait while a transition runs; the patch's directory goes away once it is
# disabled and freed.
settle() {
	i=0
	while [ -e $lp/transition ] && [ "$(cat $lp/transition 2>/dev/null)" = 1 ]; do
		i=$((i+1))
		if [ $i -gt 300 ]; then echo "transition stuck"; exit 1; fi
		sleep 0.1
	done
}
echo "before: $(cat /proc/cmdline)"
insmod /root/livepatch-sample.ko
echo "enabled: $(cat $lp/enabled)"
settle
echo "transition: $(cat $lp/transition)"
echo "sysfs: $(cd $lp && ls -d vmlinux/*,*)"
echo "patched: $(cat /proc/cmdline)"
echo 0 > $lp/enabled
settle
# The patch is freed, and its directory removed, just after the transition.
i=0
while [ -e $lp ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
if [ -e $lp ]; then echo "disabled: still there"; else echo "disabled: gone"; fi
rmmod livepatch_sample
echo "modules: $(grep -c livepatch_sample /proc/modules || true)"
echo "after: $(cat /proc/cmdline)"
`

// TestConsoleMarkers feeds a console byte by byte, as a slow serial line
// might, and checks the pieces come apart.
func TestConsoleMarkers(t *testing.T) {
	mk := markers{"abc"}
	stream := "SeaBIOS\r\n[    0.000000] Linux version 6.1\r\n" + mk.get("booted") + "\r\n" +
		"live output\r\n[    2.000000] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\r\n" +
		mk.get("output-begin") + "\r\nline 1\r\nno newline" + mk.get("output-end") + "\r\n" +
		mk.get("dmesg-begin") + "\r\n[    0.000000] Linux version 6.1\r\n[    2.000000] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\r\n" + mk.get("dmesg-end") + "\r\n" +
		mk.get("exit") + " 3\r\n[    3.000000] reboot: Power down\r\n"
	c := &console{booted: mk.get("booted"), exit: mk.get("exit"), start: time.Now(), done: make(chan struct{})}
	for i := range len(stream) {
		select {
		case <-c.done:
			if i < strings.Index(stream, mk.get("exit")+" 3\r\n")+len(mk.get("exit")+" 3\r\n") {
				t.Fatalf("done after %d bytes, before the exit marker line ended", i)
			}
		default:
		}
		_, _ = c.Write([]byte{stream[i]})
	}
	select {
	case <-c.done:
	default:
		t.Fatal("exit marker not noticed")
	}
	res := c.result(mk)
	if res.Output != "line 1\nno newline" {
		t.Errorf("Output = %q", res.Output)
	}
	if res.ExitCode != 3 {
		t.Errorf("ExitCode = %d, want 3", res.ExitCode)
	}
	if res.BootTime == 0 {
		t.Errorf("BootTime not set")
	}
	if len(res.Problems) != 1 || res.Problems[0].Kind != "WARNING" {
		t.Errorf("Problems = %v, want the one WARNING once", res.Problems)
	}
	if !strings.HasPrefix(res.Dmesg, "[    0.000000] Linux version") {
		t.Errorf("Dmesg = %q", res.Dmesg)
	}
}

// TestQEMUArgsNoNetwork: a guest gets no NIC unless the caller gives it a
// network of its own (QEMU's default user-mode NIC would reach the host's
// loopback).
func TestQEMUArgsNoNetwork(t *testing.T) {
	tests := []struct {
		name     string
		extra    []string
		wantNone bool
	}{
		{"none given", nil, true},
		{"other extras", []string{"-device", "virtio-rng-pci"}, true},
		{"a netdev of the caller's", []string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"}, false},
		{"a nic of the caller's", []string{"-nic", "user,model=virtio-net-pci"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := qemuArgs(Config{Accel: "tcg", MemoryMB: 512, CPUs: 1, Kernel: "/boot/vmlinuz", QEMUArgs: tt.extra}, "/tmp/initrd")
			none := strings.Contains(strings.Join(args, " "), "-nic none")
			if none != tt.wantNone {
				t.Errorf("qemuArgs(%v) = %v: -nic none %v, want %v", tt.extra, args, none, tt.wantNone)
			}
			if got := args[len(args)-len(tt.extra):]; len(tt.extra) > 0 && strings.Join(got, " ") != strings.Join(tt.extra, " ") {
				t.Errorf("the caller's arguments are not last: %v", args)
			}
		})
	}
}
