package debpkg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

// Kernel is one Debian kernel build: a release as `uname -r` prints it
// (6.1.0-50-cloud-amd64) at a Debian package version (6.1.176-1). Its
// packages are named by kernel.DebianRelease; Kernel knows where their
// files live.
type Kernel struct {
	kernel.DebianRelease
	// Version is the Debian package version, e.g. "6.1.176-1".
	Version string

	opts Options
}

// NewKernel describes the Debian kernel release at package version. It
// only parses; nothing is fetched until a method needs it.
func NewKernel(opts Options, release, version string) (*Kernel, error) {
	r, err := kernel.ParseDebianRelease(release)
	if err != nil {
		return nil, err
	}
	if r.Distro != kernel.DistroDebian {
		return nil, fmt.Errorf("kernel %s: an Ubuntu release: only Debian's kernel packages are supported (Ubuntu keeps modules, symbols and source in other packages and archives); give its --source, --kconfig, --headers, --symbols and --modules instead", release)
	}
	if version == "" {
		return nil, fmt.Errorf("kernel %s: package version is required (e.g. 6.1.176-1)", release)
	}
	return &Kernel{DebianRelease: r, Version: version, opts: opts}, nil
}

// HeadersDir is where InstallHeaders puts the flavour's headers when it
// installs them with apt.
func (k *Kernel) HeadersDir() string { return "/usr/src/linux-headers-" + k.Release }

// ImageFiles are the paths of an extracted image package.
type ImageFiles struct {
	Root       string // the extracted package root
	Vmlinuz    string // boot/vmlinuz-<release>
	Config     string // boot/config-<release>
	ModulesDir string // lib/modules/<release>; has no modules.dep (depmod runs at install)
}

// DebugFiles are the paths of the files taken from the -dbg package.
type DebugFiles struct {
	Root      string // the extraction root
	SystemMap string // usr/lib/debug/boot/System.map-<release>, the real one
	Vmlinux   string // usr/lib/debug/boot/vmlinux-<release>, with DWARF
}

// extractRoot is where pkg's files are extracted. An extracted tree is
// complete (it appears by rename) and is used without its .deb.
func (k *Kernel) extractRoot(pkg string) (string, error) {
	dir, err := k.opts.cacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "extracted", pkg+"_"+fileVersion(k.Version)), nil
}

// Image fetches (or reuses) the image package and its extracted tree.
func (k *Kernel) Image(ctx context.Context) (ImageFiles, error) {
	pkg := k.ImagePackage()
	root, err := k.extractRoot(pkg)
	if err != nil {
		return ImageFiles{}, fmt.Errorf("extract %s: %w", pkg, err)
	}
	if err := ensure(root, func() error {
		deb, err := Fetch(ctx, k.opts, pkg, k.Version)
		if err != nil {
			return err
		}
		k.opts.logger().Info("extracting package", "package", pkg, "dir", root)
		return Extract(ctx, deb, root)
	}); err != nil {
		return ImageFiles{}, err
	}
	f := ImageFiles{
		Root:       root,
		Vmlinuz:    filepath.Join(root, "boot", "vmlinuz-"+k.Release),
		Config:     filepath.Join(root, "boot", "config-"+k.Release),
		ModulesDir: filepath.Join(root, "lib", "modules", k.Release),
	}
	for _, p := range []string{f.Vmlinuz, f.Config, f.ModulesDir} {
		if _, err := os.Stat(p); err != nil {
			return ImageFiles{}, fmt.Errorf("image package %s=%s: %w (is the release name right?)", pkg, k.Version, err)
		}
	}
	return f, nil
}

// Debug fetches (or reuses) the -dbg package (about 280 MB) and extracts
// only the real System.map and vmlinux with debug info from it (about
// 600 MB); the debug copies of the modules are left in the package.
func (k *Kernel) Debug(ctx context.Context) (DebugFiles, error) {
	pkg := k.DebugPackage()
	root, err := k.extractRoot(pkg)
	if err != nil {
		return DebugFiles{}, fmt.Errorf("extract %s: %w", pkg, err)
	}
	sysmap := "usr/lib/debug/boot/System.map-" + k.Release
	vmlinux := "usr/lib/debug/boot/vmlinux-" + k.Release
	if err := ensure(root, func() error {
		deb, err := Fetch(ctx, k.opts, pkg, k.Version)
		if err != nil {
			return err
		}
		k.opts.logger().Info("extracting System.map and vmlinux", "package", pkg, "dir", root)
		return ExtractFiles(ctx, deb, root, sysmap, vmlinux)
	}); err != nil {
		return DebugFiles{}, err
	}
	return DebugFiles{
		Root:      root,
		SystemMap: filepath.Join(root, filepath.FromSlash(sysmap)),
		Vmlinux:   filepath.Join(root, filepath.FromSlash(vmlinux)),
	}, nil
}

// SourceTarball fetches (or reuses) the source package and returns the
// path of the linux-source-<base>.tar.xz it carries (about 140 MB; the
// tarball's top directory is linux-source-<base>/).
func (k *Kernel) SourceTarball(ctx context.Context) (string, error) {
	pkg := k.SourcePackage()
	root, err := k.extractRoot(pkg)
	if err != nil {
		return "", fmt.Errorf("extract %s: %w", pkg, err)
	}
	member := "usr/src/linux-source-" + k.Base + ".tar.xz"
	if err := ensure(root, func() error {
		deb, err := Fetch(ctx, k.opts, pkg, k.Version)
		if err != nil {
			return err
		}
		return ExtractFiles(ctx, deb, root, member)
	}); err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(member)), nil
}

// SourceFile returns the path of one file of the kernel source, given
// relative to the top of the tree (e.g. "samples/livepatch/livepatch-sample.c").
// It is taken from the source tarball the first time and cached, because
// finding one file means decompressing most of the 140 MB tarball (several
// seconds).
func (k *Kernel) SourceFile(ctx context.Context, rel string) (string, error) {
	clean := path.Clean(rel)
	if rel == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("kernel source file %q: want a path relative to the top of the tree", rel)
	}
	root, err := k.extractRoot(k.SourcePackage())
	if err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	dst := filepath.Join(root+".files", filepath.FromSlash(clean))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tarball, err := k.SourceTarball(ctx)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	removeStale(filepath.Dir(dst), globEscape("."+filepath.Base(dst)+".tmp-")+"*")
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	member := "linux-source-" + k.Base + "/" + clean
	cmd := exec.CommandContext(ctx, "tar", "--extract", "--xz", "--file", tarball, "--to-stdout", "--occurrence=1", member)
	cmd.Stdout = tmp
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("kernel source file %s: %w", rel, ctx.Err())
		}
		return "", fmt.Errorf("kernel source file %s: extract %s from %s: %w: %s", rel, member, tarball, err, cmdout.TailLine(stderr.String(), 3))
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("kernel source file %s: %w", rel, err)
	}
	return dst, fsyncDir(filepath.Dir(dst))
}

// InstallHeaders makes the headers of this kernel ready so that external
// modules can be built with `make -C <dir> M=… modules`, and returns that
// directory.
//
// It does nothing when the exact versions are installed already
// (/usr/src/linux-headers-<release>). A headers package that depends on
// its kernel image (Debian's 6.12 line) is not installed: apt would
// install that kernel on this machine, and make it the one the boot loader
// starts. Its headers, -common and kbuild packages are unpacked into the
// cache instead, and the flavour's Makefile, which includes the -common
// tree by absolute path, is pointed at the unpacked one (see
// unpackHeaders). Otherwise the three packages are fetched through the
// cache (so a version that has left the mirror still installs) and handed
// to `apt-get install`, which pulls in the compiler they depend on.
// Installing needs root.
func (k *Kernel) InstallHeaders(ctx context.Context) (string, error) {
	dir := k.HeadersDir()
	// The flavour's headers require -common at exactly this version but
	// accept any kbuild at least as new.
	need := []struct {
		pkg   string
		exact bool
	}{{k.HeadersPackage(), true}, {k.HeadersCommonPackage(), true}, {k.KbuildPackage(), false}}
	var missing []string
	for _, n := range need {
		if !k.installed(ctx, n.pkg, n.exact) {
			missing = append(missing, n.pkg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err == nil && len(missing) == 0 {
		return dir, nil
	}
	headersDeb, err := Fetch(ctx, k.opts, k.HeadersPackage(), k.Version)
	if err != nil {
		return "", fmt.Errorf("install headers for %s: %w", k.Release, err)
	}
	if needs, err := dependsOn(ctx, headersDeb, k.ImagePackage()); err != nil {
		return "", fmt.Errorf("install headers for %s: %w", k.Release, err)
	} else if needs {
		return k.unpackHeaders(ctx)
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("install headers for %s: apt-get install needs root; run `sudo apt-get install %s=%s`",
			k.Release, k.HeadersPackage(), k.Version)
	}
	// Wait for a dpkg lock held by another apt run rather than fail.
	args := []string{"install", "--yes", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}
	for _, p := range missing {
		deb, err := Fetch(ctx, k.opts, p, k.Version)
		if err != nil {
			return "", fmt.Errorf("install headers for %s: %w", k.Release, err)
		}
		abs, err := filepath.Abs(deb)
		if err != nil {
			return "", fmt.Errorf("install headers for %s: %w", k.Release, err)
		}
		// apt-get install takes a local .deb only when the argument looks
		// like a path (absolute or ./); resolving dependencies such as the
		// compiler still goes to the mirror.
		args = append(args, abs)
	}
	k.opts.logger().Info("installing kernel headers", "release", k.Release, "version", k.Version, "packages", missing)
	cmd := exec.CommandContext(ctx, k.opts.aptGet(), args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	k.opts.logger().Debug("apt-get install", "output", string(out))
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("install headers for %s: %w", k.Release, ctx.Err())
		}
		return "", fmt.Errorf("install headers for %s: apt-get install: %w: %s (run `apt-get update` if a dependency was not found)",
			k.Release, err, cmdout.TailLine(string(out), 5))
	}
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil {
		return "", fmt.Errorf("install headers for %s: %w", k.Release, err)
	}
	return dir, nil
}

// installed reports whether pkg is installed at k.Version, or when exact
// is false, at k.Version or newer.
func (k *Kernel) installed(ctx context.Context, pkg string, exact bool) bool {
	out, err := exec.CommandContext(ctx, "dpkg-query", "--show", "--showformat", "${Version} ${db:Status-Abbrev}", pkg).Output()
	if err != nil {
		return false // not known to dpkg
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || !strings.HasPrefix(f[1], "ii") {
		return false
	}
	if f[0] == k.Version {
		return true
	}
	if exact {
		return false
	}
	return exec.CommandContext(ctx, "dpkg", "--compare-versions", f[0], "ge", k.Version).Run() == nil
}

// dependsOn says whether the .deb at path depends on package pkg (in any
// alternative of its Depends field).
func dependsOn(ctx context.Context, path, pkg string) (bool, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", path, "Depends").Output()
	if err != nil {
		return false, fmt.Errorf("read Depends of %s: %w%s", path, err, exitStderr(err))
	}
	for _, dep := range strings.Split(string(out), ",") {
		for _, alt := range strings.Split(dep, "|") {
			name, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
			if strings.TrimSuffix(name, ":any") == pkg {
				return true, nil
			}
		}
	}
	return false, nil
}

// unpackHeaders unpacks the headers, -common and kbuild packages together
// into one tree in the cache (their links between each other are
// relative: usr/src/linux-headers-*/scripts -> ../../lib/linux-kbuild-*),
// points the flavour's Makefile at the -common tree there, and returns the
// flavour's directory in it. The tree appears complete, by rename, or not
// at all.
func (k *Kernel) unpackHeaders(ctx context.Context) (string, error) {
	root, err := k.extractRoot(k.HeadersPackage() + "+tree")
	if err != nil {
		return "", fmt.Errorf("unpack headers for %s: %w", k.Release, err)
	}
	src := filepath.Join(root, "usr", "src")
	dir := filepath.Join(src, "linux-headers-"+k.Release)
	common := filepath.Join(src, "linux-headers-"+strings.TrimPrefix(k.HeadersCommonPackage(), "linux-headers-"))
	err = ensure(root, func() error {
		var debs []string
		for _, pkg := range []string{k.HeadersPackage(), k.HeadersCommonPackage(), k.KbuildPackage()} {
			deb, err := Fetch(ctx, k.opts, pkg, k.Version)
			if err != nil {
				return err
			}
			debs = append(debs, deb)
		}
		tmp, err := prepareDest(root)
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		k.opts.logger().Info("unpacking kernel headers", "release", k.Release, "version", k.Version, "dir", root)
		for _, deb := range debs {
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, cmdout.TailLine(stderr.String(), 5))
			}
		}
		// The flavour's Makefile is one line that includes the -common
		// tree's by its installed path.
		mk := filepath.Join(tmp, "usr", "src", "linux-headers-"+k.Release, "Makefile")
		old, err := os.ReadFile(mk)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(bytes.TrimSpace(old), []byte("include /usr/src/")) {
			return fmt.Errorf("%s: want the one include line of a Debian flavour's Makefile, have %q", mk, cmdout.TailLine(string(old), 3))
		}
		if err := os.WriteFile(mk, []byte("include "+filepath.Join(common, "Makefile")+"\n"), 0o644); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "sync", "--file-system", tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("sync: %w: %s", err, strings.TrimSpace(string(out)))
		}
		return commitDest(tmp, root)
	})
	if err != nil {
		return "", fmt.Errorf("unpack headers for %s: %w", k.Release, err)
	}
	for _, p := range []string{filepath.Join(dir, "Makefile"), filepath.Join(dir, "Module.symvers"), filepath.Join(common, "Makefile"), filepath.Join(dir, "scripts", "Makefile.build")} {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("unpack headers for %s: %w", k.Release, err)
		}
	}
	return dir, nil
}
