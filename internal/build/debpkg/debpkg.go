// Package debpkg fetches Debian packages by exact name and version with
// apt, keeps them in a local cache, and unpacks them without ever leaving a
// half-written file or tree behind.
//
// Pinned versions leave the Debian mirror at point releases, so everything
// downloaded is kept: a cached .deb is reused and never fetched again.
package debpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
)

var (
	// ErrUnavailable means apt does not know the requested package version:
	// the package lists are stale or missing, or the version has left the
	// mirror.
	ErrUnavailable = errors.New("package version not available from apt")

	// ErrMismatch means a .deb file does not hold the package and version
	// its name promises.
	ErrMismatch = errors.New("package file does not match its name")
)

// Options says where packages are cached and which tools fetch them. The
// zero value is ready to use.
type Options struct {
	// CacheDir holds downloaded .deb files and the trees extracted from them.
	// Default: $XDG_CACHE_HOME/tuxtape/debs (os.UserCacheDir).
	CacheDir string

	// SeedDirs are searched, in order, for an already-downloaded .deb
	// before apt is asked (for example a directory filled by hand from
	// snapshot.debian.org). A file found there is used in place.
	SeedDirs []string

	// AptGet is the apt-get binary. Default: "apt-get" from $PATH.
	AptGet string

	// Logger receives progress at Info level and tool output at Debug level.
	// Default: discard.
	Logger *slog.Logger
}

func (o Options) cacheDir() (string, error) {
	if o.CacheDir != "" {
		return o.CacheDir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache dir: %w (set XDG_CACHE_HOME or Options.CacheDir)", err)
	}
	return filepath.Join(base, "tuxtape", "debs"), nil
}

func (o Options) aptGet() string {
	if o.AptGet != "" {
		return o.AptGet
	}
	return "apt-get"
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger.With("component", "debpkg")
	}
	return slog.New(slog.DiscardHandler)
}

// fileVersion is how apt and dpkg spell a version in a file name: the epoch
// colon is URL-escaped.
func fileVersion(version string) string {
	return strings.ReplaceAll(version, ":", "%3a")
}

// CachedPath returns the path of name=version's .deb in the cache or a
// seed directory, or "" when there is none. It does not touch the network.
func CachedPath(opts Options, name, version string) (string, error) {
	dir, err := opts.cacheDir()
	if err != nil {
		return "", err
	}
	for _, d := range append([]string{dir}, opts.SeedDirs...) {
		if p := findDeb(d, name, version); p != "" {
			return p, nil
		}
	}
	return "", nil
}

// findDeb looks for name_version_<arch>.deb in dir. When several
// architectures are there (multiarch), the native one or "all" wins over a
// foreign one, and otherwise the first by name.
func findDeb(dir, name, version string) string {
	matches, _ := filepath.Glob(filepath.Join(dir, globEscape(name+"_"+fileVersion(version)+"_")+"*.deb"))
	if len(matches) == 0 {
		return ""
	}
	sort.Strings(matches)
	native := nativeArch()
	for _, m := range matches {
		arch := strings.TrimSuffix(filepath.Base(m)[len(name+"_"+fileVersion(version)+"_"):], ".deb")
		if arch == native || arch == "all" {
			return m
		}
	}
	return matches[0]
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// nativeArch is the host's dpkg architecture, or "amd64" when dpkg cannot
// say (only used to choose among cached files).
func nativeArch() string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "amd64"
	}
	return strings.TrimSpace(string(out))
}

// Fetch returns the path of the .deb of package name at exactly version,
// downloading it with `apt-get download name=version` when it is neither
// cached nor in a seed directory. The download goes to a temporary
// directory in the cache and is renamed into place once complete and
// checked, so the cache never holds a partial file.
func Fetch(ctx context.Context, opts Options, name, version string) (string, error) {
	if name == "" || version == "" {
		return "", fmt.Errorf("fetch %q=%q: package name and version are required", name, version)
	}
	if p, err := CachedPath(opts, name, version); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	} else if p != "" {
		if err := verifyDeb(ctx, p, name, version); err != nil {
			return "", fmt.Errorf("fetch %s=%s: cached file: %w (delete it to download again)", name, version, err)
		}
		return p, nil
	}
	dir, err := opts.cacheDir()
	if err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("fetch %s=%s: create cache dir: %w", name, version, err)
	}
	removeStale(dir, ".download-*")
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	}
	defer os.RemoveAll(tmp)

	log := opts.logger()
	log.Info("downloading package", "package", name, "version", version)
	cmd := exec.CommandContext(ctx, opts.aptGet(), "download", "--", name+"="+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	log.Debug("apt-get download", "package", name, "stdout", string(out), "stderr", stderr.String())
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("fetch %s=%s: %w", name, version, ctx.Err())
		}
		return "", aptError(name, version, dir, err, stderr.String())
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("fetch %s=%s: apt-get download left %d .deb files, want 1", name, version, len(debs))
	}
	if err := verifyDeb(ctx, debs[0], name, version); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	}
	if err := fsyncFile(debs[0]); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	}
	final := filepath.Join(dir, filepath.Base(debs[0]))
	if err := os.Chmod(debs[0], 0o644); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	}
	if err := os.Rename(debs[0], final); err != nil {
		return "", fmt.Errorf("fetch %s=%s: move into cache: %w", name, version, err)
	}
	if err := fsyncDir(dir); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", name, version, err)
	}
	log.Info("cached package", "package", name, "version", version, "path", final)
	return final, nil
}

// aptError turns apt-get's complaint into an error that says what to do.
func aptError(name, version, cacheDir string, err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	switch {
	case strings.Contains(msg, "Unable to locate package"):
		return fmt.Errorf("fetch %s=%s: %w: apt does not know package %s; run `apt-get update` (and check the name and sources.list)",
			name, version, ErrUnavailable, name)
	case strings.Contains(msg, "was not found") || strings.Contains(msg, "Can't find a source"):
		return fmt.Errorf("fetch %s=%s: %w: run `apt-get update`; if it is still missing the version has left the mirror: "+
			"get %s_%s_<arch>.deb from https://snapshot.debian.org and put it in %s",
			name, version, ErrUnavailable, name, fileVersion(version), cacheDir)
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("fetch %s=%s: %w (debpkg needs apt-get: run it on Debian or a derivative)", name, version, err)
	}
	return fmt.Errorf("fetch %s=%s: apt-get download: %w: %s", name, version, err, cmdout.TailLine(msg, 5))
}

// verifyDeb checks that the file's control fields name the package and
// version asked for, which also proves it is a readable .deb.
func verifyDeb(ctx context.Context, path, name, version string) error {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", path, "Package", "Version").Output()
	if err != nil {
		return fmt.Errorf("read control fields of %s: %w%s", path, err, exitStderr(err))
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if got["Package"] != name || got["Version"] != version {
		return fmt.Errorf("%w: %s holds %s=%s, want %s=%s", ErrMismatch, path, got["Package"], got["Version"], name, version)
	}
	return nil
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + cmdout.TailLine(string(ee.Stderr), 5)
	}
	return ""
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems refuse fsync on directories; the rename is still
	// atomic there, only its durability is weaker.
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeStale deletes what interrupted downloads and extractions left in
// dir under temporary names matching pattern. Only leftovers older than a
// day go: younger ones may belong to a run still in progress.
func removeStale(dir, pattern string) {
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(m)
		}
	}
}
