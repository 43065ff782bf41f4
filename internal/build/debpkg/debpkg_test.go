package debpkg

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The kernel the project tests against (see docs/DESIGN.md).
const (
	testRelease = "6.1.0-50-cloud-amd64"
	testVersion = "6.1.176-1"
)

// testOptions uses the real user cache, so packages are downloaded once per
// machine, plus the directories in $TUXTAPE_DEB_DIRS (colon-separated) as
// seeds.
func testOptions(t *testing.T) Options {
	t.Helper()
	var seeds []string
	if v := os.Getenv("TUXTAPE_DEB_DIRS"); v != "" {
		seeds = filepath.SplitList(v)
	}
	return Options{SeedDirs: seeds, Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestNewKernel(t *testing.T) {
	tests := []struct {
		release, common, kbuild, source string
	}{
		{"6.1.0-50-cloud-amd64", "linux-headers-6.1.0-50-common", "linux-kbuild-6.1", "linux-source-6.1"},
		{"6.1.0-50-amd64", "linux-headers-6.1.0-50-common", "linux-kbuild-6.1", "linux-source-6.1"},
		{"6.1.0-50-rt-amd64", "linux-headers-6.1.0-50-common-rt", "linux-kbuild-6.1", "linux-source-6.1"},
		{"6.12.38-1-cloud-arm64", "linux-headers-6.12.38-1-common", "linux-kbuild-6.12", "linux-source-6.12"},
		// bookworm's 6.12 line: the ABI is the version and the suite.
		{"6.12.107+deb12-cloud-amd64", "linux-headers-6.12.107+deb12-common", "linux-kbuild-6.12.107+deb12", "linux-source-6.12"},
		{"6.12.107+deb12-rt-amd64", "linux-headers-6.12.107+deb12-common-rt", "linux-kbuild-6.12.107+deb12", "linux-source-6.12"},
	}
	for _, tt := range tests {
		k, err := NewKernel(Options{}, tt.release, "1")
		if err != nil {
			t.Fatalf("NewKernel(%q) error: %v", tt.release, err)
		}
		if got := k.HeadersCommonPackage(); got != tt.common {
			t.Errorf("NewKernel(%q).HeadersCommonPackage() = %q, want %q", tt.release, got, tt.common)
		}
		if got := k.KbuildPackage(); got != tt.kbuild {
			t.Errorf("NewKernel(%q).KbuildPackage() = %q, want %q", tt.release, got, tt.kbuild)
		}
		if got := k.SourcePackage(); got != tt.source {
			t.Errorf("NewKernel(%q).SourcePackage() = %q, want %q", tt.release, got, tt.source)
		}
		if got, want := k.DebugPackage(), "linux-image-"+tt.release+"-dbg"; got != want {
			t.Errorf("NewKernel(%q).DebugPackage() = %q, want %q", tt.release, got, want)
		}
		if got, want := k.HeadersDir(), "/usr/src/linux-headers-"+tt.release; got != want {
			t.Errorf("NewKernel(%q).HeadersDir() = %q, want %q", tt.release, got, want)
		}
	}
	// Ubuntu's packages are laid out otherwise: refused with the reason.
	if _, err := NewKernel(Options{}, "6.8.0-45-generic", "6.8.0-45.45"); err == nil || !strings.Contains(err.Error(), "Ubuntu") {
		t.Errorf("NewKernel(6.8.0-45-generic) = %v, want an error naming Ubuntu", err)
	}
	for _, bad := range []string{"", "6.1", "6.1.0-50", "linux-6.1.0-50-amd64", "6.1.0-50-cloud amd64", "6.12.107+deb12"} {
		if _, err := NewKernel(Options{}, bad, "1"); err == nil {
			t.Errorf("NewKernel(%q) = nil error, want one", bad)
		}
	}
}

func TestFindDeb(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"foo_1%3a2.0-1_all.deb",
		"bar_1.0_i386.deb",
		"bar_1.0_" + nativeArch() + ".deb",
		"bar_1.0.1_" + nativeArch() + ".deb",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, version, want string }{
		{"foo", "1:2.0-1", "foo_1%3a2.0-1_all.deb"},
		{"bar", "1.0", "bar_1.0_" + nativeArch() + ".deb"},
		{"bar", "1.0.2", ""},
		{"ba", "r_1.0", ""},
	}
	for _, tt := range tests {
		got := findDeb(dir, tt.name, tt.version)
		if got != "" {
			got = filepath.Base(got)
		}
		if got != tt.want {
			t.Errorf("findDeb(%q, %q) = %q, want %q", tt.name, tt.version, got, tt.want)
		}
	}
}

// TestFetch downloads a small real package into an empty cache, then
// checks that the second call is served from the cache without apt.
func TestFetch(t *testing.T) {
	ctx := context.Background()
	opts := Options{CacheDir: t.TempDir()}
	k, _ := NewKernel(opts, testRelease, testVersion)
	p, err := Fetch(ctx, opts, k.HeadersPackage(), testVersion)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if want := filepath.Join(opts.CacheDir, k.HeadersPackage()+"_"+testVersion+"_amd64.deb"); p != want {
		t.Errorf("Fetch = %q, want %q", p, want)
	}
	leftovers, _ := filepath.Glob(filepath.Join(opts.CacheDir, ".download-*"))
	if len(leftovers) > 0 {
		t.Errorf("Fetch left temporary directories: %v", leftovers)
	}

	offline := opts
	offline.AptGet = "/nonexistent/apt-get"
	p2, err := Fetch(ctx, offline, k.HeadersPackage(), testVersion)
	if err != nil || p2 != p {
		t.Errorf("Fetch from cache = %q, %v; want %q, nil", p2, err, p)
	}
}

func TestFetchUnavailable(t *testing.T) {
	ctx := context.Background()
	opts := Options{CacheDir: t.TempDir()}
	for _, tt := range []struct{ name, version, hint string }{
		{"linux-headers-" + testRelease, "0.0.0-0", "snapshot.debian.org"},
		{"tuxtape-no-such-package", "1.0", "apt-get update"},
	} {
		_, err := Fetch(ctx, opts, tt.name, tt.version)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Fetch(%s=%s) = %v, want ErrUnavailable", tt.name, tt.version, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("Fetch(%s=%s) error %q does not name the package and hint %q", tt.name, tt.version, err, tt.hint)
		}
	}
}

func TestFetchMismatch(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	k, _ := NewKernel(opts, testRelease, testVersion)
	real, err := Fetch(ctx, opts, k.HeadersPackage(), testVersion)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	// A file renamed to promise another version must not be trusted.
	seed := t.TempDir()
	fake := filepath.Join(seed, k.HeadersPackage()+"_9.9-9_amd64.deb")
	if err := os.Link(real, fake); err != nil {
		data, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fake, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Fetch(ctx, Options{CacheDir: t.TempDir(), SeedDirs: []string{seed}}, k.HeadersPackage(), "9.9-9")
	if !errors.Is(err, ErrMismatch) {
		t.Errorf("Fetch of a misnamed file = %v, want ErrMismatch", err)
	}
}

func TestExtract(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	k, _ := NewKernel(opts, testRelease, testVersion)
	deb, err := Fetch(ctx, opts, k.HeadersPackage(), testVersion)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	parent := t.TempDir()
	dest := filepath.Join(parent, "tree")
	if err := Extract(ctx, deb, dest); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	mk, err := os.ReadFile(filepath.Join(dest, "usr/src/linux-headers-"+testRelease+"/Makefile"))
	if err != nil {
		t.Fatalf("extracted headers: %v", err)
	}
	// The reason headers must be installed with apt, not unpacked anywhere.
	if !bytes.Contains(mk, []byte("/usr/src/linux-headers-6.1.0-50-common")) {
		t.Errorf("headers Makefile does not name the -common dir by absolute path:\n%s", mk)
	}
	if err := Extract(ctx, deb, dest); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Extract = %v, want fs.ErrExist", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("Extract left %d entries in the parent dir, want 1 (no temporary dirs)", len(entries))
	}

	bad := filepath.Join(parent, "bad")
	if err := os.WriteFile(filepath.Join(parent, "not.deb"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Extract(ctx, filepath.Join(parent, "not.deb"), bad); err == nil {
		t.Errorf("Extract(junk) = nil, want an error")
	}
	if _, err := os.Stat(bad); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Extract left %s behind (stat: %v)", bad, err)
	}
}

func TestExtractFiles(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	k, _ := NewKernel(opts, testRelease, testVersion)
	deb, err := Fetch(ctx, opts, k.HeadersPackage(), testVersion)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	dest := filepath.Join(t.TempDir(), "x")
	cfg := "usr/src/linux-headers-" + testRelease + "/.config"
	if err := ExtractFiles(ctx, deb, dest, "./"+cfg); err != nil {
		t.Fatalf("ExtractFiles: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dest, cfg))
	if err != nil || !bytes.Contains(data, []byte("CONFIG_LIVEPATCH=y")) {
		t.Errorf("extracted .config: err %v, has CONFIG_LIVEPATCH=y: %v", err, bytes.Contains(data, []byte("CONFIG_LIVEPATCH=y")))
	}

	missing := filepath.Join(t.TempDir(), "y")
	err = ExtractFiles(ctx, deb, missing, cfg, "usr/no/such/file")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "usr/no/such/file") {
		t.Errorf("ExtractFiles(missing member) = %v, want fs.ErrNotExist naming it", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed ExtractFiles left %s behind", missing)
	}
}

func TestKernelImage(t *testing.T) {
	ctx := context.Background()
	k, err := NewKernel(testOptions(t), testRelease, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	img, err := k.Image(ctx)
	if err != nil {
		t.Fatalf("Image: %v", err)
	}
	cfg, err := os.ReadFile(img.Config)
	if err != nil || !bytes.Contains(cfg, []byte("\nCONFIG_LIVEPATCH=y\n")) {
		t.Errorf("config %s: err %v, or CONFIG_LIVEPATCH=y missing", img.Config, err)
	}
	if fi, err := os.Stat(img.Vmlinuz); err != nil || fi.Size() < 1<<20 {
		t.Errorf("vmlinuz %s: %v, %v", img.Vmlinuz, fi, err)
	}
	if _, err := os.Stat(filepath.Join(img.ModulesDir, "kernel/fs/isofs/isofs.ko")); err != nil {
		t.Errorf("modules dir: %v", err)
	}
	// The image's own System.map is a stub pointing at the -dbg package.
	stub, _ := os.ReadFile(filepath.Join(img.Root, "boot", "System.map-"+testRelease))
	if len(stub) > 200 || !bytes.Contains(stub, []byte("dbg")) {
		t.Errorf("image System.map is not the expected stub: %q", stub)
	}
}

// TestKernelDebug needs the 280 MB -dbg package; it runs only when that
// is cached, extracted or in a seed directory already (or with
// TUXTAPE_TEST_DBG=1), so that `make test` on a fresh machine does not
// download it.
func TestKernelDebug(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	k, _ := NewKernel(opts, testRelease, testVersion)
	root, _ := k.extractRoot(k.DebugPackage())
	_, statErr := os.Stat(root)
	if p, _ := CachedPath(opts, k.DebugPackage(), testVersion); p == "" && statErr != nil && os.Getenv("TUXTAPE_TEST_DBG") != "1" {
		t.Skipf("%s=%s is not cached; set TUXTAPE_TEST_DBG=1 to download it (280 MB)", k.DebugPackage(), testVersion)
	}
	start := time.Now()
	dbg, err := k.Debug(ctx)
	if err != nil {
		t.Fatalf("Debug: %v", err)
	}
	t.Logf("Debug took %v", time.Since(start))
	sm, err := os.ReadFile(dbg.SystemMap)
	if err != nil {
		t.Fatalf("System.map: %v", err)
	}
	if !bytes.Contains(sm, []byte(" t cmdline_proc_show\n")) {
		t.Errorf("System.map %s has no cmdline_proc_show", dbg.SystemMap)
	}
	if fi, err := os.Stat(dbg.Vmlinux); err != nil || fi.Size() < 100<<20 {
		t.Errorf("vmlinux %s: %v, %v", dbg.Vmlinux, fi, err)
	}
}

func TestSourceFileRejectsEscapes(t *testing.T) {
	k, _ := NewKernel(Options{CacheDir: t.TempDir(), AptGet: "/nonexistent/apt-get"}, testRelease, testVersion)
	for _, rel := range []string{"", "/etc/passwd", "../x", "a/../../x"} {
		if _, err := k.SourceFile(context.Background(), rel); err == nil || !strings.Contains(err.Error(), "relative") {
			t.Errorf("SourceFile(%q) = %v, want a complaint about the path", rel, err)
		}
	}
}

// The 6.12 line's kernel, whose headers package depends on its image.
const (
	testRelease612 = "6.12.107+deb12-cloud-amd64"
	testVersion612 = "6.12.107-1~deb12u1"
)

// TestInstallHeaders612: headers that depend on their kernel image are
// unpacked into the cache (apt would install that kernel here), with the
// flavour's Makefile pointed at the unpacked -common tree, and an external
// module builds against them. It needs the three packages (about 16 MB)
// and gcc-12.
func TestInstallHeaders612(t *testing.T) {
	if _, err := exec.LookPath("gcc-12"); err != nil {
		t.Skipf("gcc-12: %v", err)
	}
	ctx := context.Background()
	// Packages from the user's cache (fetched once), unpacked afresh.
	opts := testOptions(t)
	shared, err := opts.cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"linux-headers-" + testRelease612, "linux-headers-6.12.107+deb12-common", "linux-kbuild-6.12.107+deb12"} {
		if _, err := Fetch(ctx, opts, pkg, testVersion612); err != nil {
			t.Fatal(err)
		}
	}
	opts.CacheDir, opts.SeedDirs = t.TempDir(), append(opts.SeedDirs, shared)
	k, err := NewKernel(opts, testRelease612, testVersion612)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := k.InstallHeaders(ctx)
	if err != nil {
		t.Fatalf("InstallHeaders: %v", err)
	}
	if dir == k.HeadersDir() && !k.installed(ctx, k.HeadersPackage(), true) {
		t.Errorf("InstallHeaders = %s, the apt path, though the package is not installed", dir)
	}
	mk, err := os.ReadFile(filepath.Join(dir, "Makefile"))
	if err != nil || !bytes.Contains(mk, []byte("include "+filepath.Dir(dir))) {
		t.Errorf("flavour Makefile %q (%v): want it to include the unpacked -common tree", mk, err)
	}
	again, err := k.InstallHeaders(ctx)
	if err != nil || again != dir {
		t.Errorf("InstallHeaders again = %q, %v; want %q", again, err, dir)
	}
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "tt.c"), []byte("#include <linux/module.h>\nstatic int __init tt_init(void) { return 0; }\nmodule_init(tt_init);\nMODULE_LICENSE(\"GPL\");\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "Kbuild"), []byte("obj-m := tt.o\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "make", "-C", dir, "M="+mod, "CC=gcc-12", "modules").CombinedOutput()
	if err != nil {
		t.Fatalf("external module against %s: %v\n%s", dir, err, out)
	}
	if _, err := os.Stat(filepath.Join(mod, "tt.ko")); err != nil {
		t.Errorf("no tt.ko: %v\n%s", err, out)
	}
}
