// Package kernelenv finds the test kernels for tests: the Debian 6.1.176
// cloud kernel's source tree and config, and the names of the 6.12 line's
// kernel and corpus. It is apart from testenv because it links debpkg,
// which imports model/kernel and model/vulns: their own tests use testenv,
// and would form an import cycle.
package kernelenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

// The Debian kernel the tests run against (see docs/DESIGN.md).
const (
	Release = "6.1.0-50-cloud-amd64"
	Version = "6.1.176-1"
)

// The second kernel line the livepatch tests run against: Debian
// bookworm's 6.12 (release named 6.12.N+deb12-FLAVOUR, modules shipped as
// .ko.xz, built with IBT, call padding and return thunks). Its real
// stable changes are the corpus Corpus612.
const (
	Release612 = "6.12.107+deb12-cloud-amd64"
	Version612 = "6.12.107-1~deb12u1"
	Corpus612  = "debian-6.12.107"
)

// DebOptions are the package options of the tests: the user's package
// cache (shared with the CLI and the other tests) plus the seed
// directories in $TUXTAPE_DEB_DIRS.
func DebOptions() debpkg.Options {
	return debpkg.Options{SeedDirs: filepath.SplitList(os.Getenv("TUXTAPE_DEB_DIRS"))}
}

// debianKernel is the test kernel's packages (see DebOptions).
func debianKernel(t testing.TB) *debpkg.Kernel {
	t.Helper()
	k, err := debpkg.NewKernel(DebOptions(), Release, Version)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Source returns an unpacked source tree of the test kernel (the
// Debian-patched 6.1.176 of linux-source-6.1): $TUXTAPE_KERNEL_SRC when set,
// else the package's tarball, fetched with apt if need be and unpacked
// once into the user cache (about 1.5 GB, 30 to 60 s). The tree is only
// read. In CI a source that cannot be had fails the test.
func Source(t testing.TB) string {
	t.Helper()
	if src := os.Getenv("TUXTAPE_KERNEL_SRC"); src != "" {
		if _, err := os.Stat(filepath.Join(src, "Kbuild")); err != nil {
			t.Fatalf("TUXTAPE_KERNEL_SRC=%s: %v", src, err)
		}
		return src
	}
	ctx := context.Background()
	tarball, err := debianKernel(t).SourceTarball(ctx)
	if err != nil {
		testenv.Missing(t, "kernel source %s: %v (or set TUXTAPE_KERNEL_SRC to an unpacked tree)", Version, err)
	}
	// The key names the tarball, so a different one is unpacked afresh.
	key := tarball
	if fi, err := os.Stat(tarball); err == nil {
		key = fmt.Sprintf("%s %d %d", tarball, fi.Size(), fi.ModTime().Unix())
	}
	dir, err := testenv.CachedDir("linux-source-"+Version, key, func(dir string) error {
		t.Logf("unpacking %s into %s (once)", tarball, dir)
		start := time.Now()
		out, err := exec.CommandContext(ctx, "tar", "--strip-components=1", "-xf", tarball, "-C", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("unpack %s: %v\n%s", tarball, err, out)
		}
		t.Logf("unpacked in %v", time.Since(start).Round(time.Second))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Config returns the path of the test kernel's configuration:
// $TUXTAPE_KERNEL_CONFIG when set, else boot/config-<release> of the image
// package, fetched with apt if need be. In CI a config that cannot be had
// fails the test.
func Config(t testing.TB) string {
	t.Helper()
	if name := os.Getenv("TUXTAPE_KERNEL_CONFIG"); name != "" {
		return name
	}
	img, err := debianKernel(t).Image(context.Background())
	if err != nil {
		testenv.Missing(t, "kernel config %s=%s: %v (or set TUXTAPE_KERNEL_CONFIG)", Release, Version, err)
	}
	return img.Config
}

// Module returns a real module of the test kernel (af_key.ko, from
// Debian's image package, fetched and unpacked into the user cache if need
// be) and the kernel's release.
func Module(t testing.TB) (path, release string) {
	t.Helper()
	img, err := debianKernel(t).Image(context.Background())
	if err != nil {
		testenv.Missing(t, "kernel image %s=%s: %v", Release, Version, err)
	}
	path = filepath.Join(img.ModulesDir, "kernel", "net", "key", "af_key.ko")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the image package of %s has no af_key.ko: %v", Release, err)
	}
	return path, Release
}
