package kernelsrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

// Sources materializes kernel sources in a cache directory.
type Sources struct {
	CacheDir string // e.g. $XDG_CACHE_HOME/tuxtape
	Log      *slog.Logger
}

func (s Sources) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Archive returns a path ktree.Prepare takes for k's source: a tarball, or
// a directory (a git checkout with the patches applied).
func (s Sources) Archive(ctx context.Context, k *kernel.Kernel) (string, error) {
	switch k.Source.Kind {
	case kernel.SourceDebian:
		pkg, ver, _ := k.Source.DebianPackage()
		dk, err := debpkg.NewKernel(debpkg.Options{CacheDir: filepath.Join(s.CacheDir, "debs"), Logger: s.Log}, k.Release, ver)
		if err != nil {
			return "", fmt.Errorf("kernel %s: %w", k.Name, err)
		}
		if dk.SourcePackage() != pkg {
			return "", fmt.Errorf("kernel %s: source package %s is not the one of release %s (%s)", k.Name, pkg, k.Release, dk.SourcePackage())
		}
		return dk.SourceTarball(ctx)
	case kernel.SourceTarball:
		if strings.HasPrefix(k.Source.Spec, "http://") || strings.HasPrefix(k.Source.Spec, "https://") {
			return s.download(ctx, k.Source.Spec)
		}
		p := strings.TrimPrefix(k.Source.Spec, "file://")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("kernel %s: source: %w", k.Name, err)
		}
		return p, nil
	case kernel.SourceGit:
		return s.checkout(ctx, k)
	}
	return "", fmt.Errorf("kernel %s: unknown source kind %q", k.Name, k.Source.Kind)
}

// Tree returns a pristine, unpacked copy of k's source (for reading its
// Makefiles), unpacking it into the cache the first time.
func (s Sources) Tree(ctx context.Context, k *kernel.Kernel) (string, error) {
	dir := filepath.Join(s.CacheDir, "sources", k.Name+"-"+sourceKey(k.Source))
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err == nil {
		return dir, nil
	}
	src, err := s.Archive(ctx, k)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		return src, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	s.log().Info("unpacking kernel source", "kernel", k.Name, "from", src)
	if err := run(ctx, tmp, "tar", "--strip-components=1", "-xf", src); err != nil {
		return "", fmt.Errorf("unpack %s: %w", src, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("unpack %s: %w", src, err)
	}
	return dir, nil
}

// key names a source's cached copies: it changes when the source does.
func sourceKey(src kernel.Source) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", src.Kind, src.Spec, src.Ref)
	for _, p := range src.Patches {
		fmt.Fprintf(h, "\x00%s\x00", p.Name)
		h.Write(p.Data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (s Sources) download(ctx context.Context, url string) (string, error) {
	sum := sha256.Sum256([]byte(url))
	dst := filepath.Join(s.CacheDir, "sources", "dl-"+hex.EncodeToString(sum[:8])+"-"+filepath.Base(url))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".dl-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	s.log().Info("downloading kernel source", "url", url)
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(f.Name(), dst)
}

// checkout clones a git source at its ref and applies its patches in order.
func (s Sources) checkout(ctx context.Context, k *kernel.Kernel) (string, error) {
	dir := filepath.Join(s.CacheDir, "sources", k.Name+"-git-"+sourceKey(k.Source))
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".git-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	s.log().Info("cloning kernel source", "repo", k.Source.Spec, "ref", k.Source.Ref)
	if err := run(ctx, "", "git", "clone", "--quiet", "--no-checkout", k.Source.Spec, tmp); err != nil {
		return "", fmt.Errorf("clone %s: %w", k.Source.Spec, err)
	}
	if err := run(ctx, tmp, "git", "checkout", "--quiet", "--detach", k.Source.Ref); err != nil {
		return "", fmt.Errorf("check out %s of %s: %w", k.Source.Ref, k.Source.Spec, err)
	}
	for _, p := range k.Source.Patches {
		cmd := exec.CommandContext(ctx, "patch", "-p1", "--batch", "--forward", "--silent")
		cmd.Dir = tmp
		cmd.Stdin = strings.NewReader(string(p.Data))
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("kernel %s: patch %s does not apply: %w\n%s", k.Name, p.Name, err, out)
		}
	}
	if err := os.RemoveAll(filepath.Join(tmp, ".git")); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
