package debpkg

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/cmdout"
)

// Extract unpacks the whole file system tree of the .deb at debPath into
// destDir with `dpkg-deb -x`. It unpacks into a temporary sibling directory
// and renames that to destDir only when dpkg-deb succeeded, so destDir
// either does not exist or holds the complete tree.
//
// destDir must not exist yet; when it does (for example because another
// process extracted the same package first) the error wraps fs.ErrExist
// and the existing tree is left alone.
func Extract(ctx context.Context, debPath, destDir string) error {
	tmp, err := prepareDest(destDir)
	if err != nil {
		return fmt.Errorf("extract %s: %w", debPath, err)
	}
	defer os.RemoveAll(tmp)

	cmd := exec.CommandContext(ctx, "dpkg-deb", "-x", debPath, tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("extract %s: %w", debPath, ctx.Err())
		}
		return fmt.Errorf("extract %s: dpkg-deb -x: %w: %s", debPath, err, cmdout.TailLine(stderr.String(), 5))
	}
	// Flush the unpacked files before the rename makes them visible; one
	// syncfs is far cheaper than an fsync per file for a thousand modules.
	if out, err := exec.CommandContext(ctx, "sync", "--file-system", tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("extract %s: sync: %w: %s", debPath, err, strings.TrimSpace(string(out)))
	}
	return commitDest(tmp, destDir)
}

// ExtractFiles unpacks only the named members of the .deb's file system
// tree into destDir, keeping their paths (relative to the package root,
// with or without a leading "./"). Name each regular file or symlink
// wanted; directories are not expanded. It stops reading the package as
// soon as every member was found, which matters for the -dbg package whose
// 600 MB vmlinux comes first but whose modules follow for gigabytes.
// destDir is written atomically as in Extract.
func ExtractFiles(ctx context.Context, debPath, destDir string, members ...string) error {
	if len(members) == 0 {
		return fmt.Errorf("extract files from %s: no members named", debPath)
	}
	want := map[string]bool{}
	for _, m := range members {
		want[cleanMember(m)] = true
	}
	tmp, err := prepareDest(destDir)
	if err != nil {
		return fmt.Errorf("extract files from %s: %w", debPath, err)
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", debPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("extract files from %s: %w", debPath, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("extract files from %s: start dpkg-deb: %w", debPath, err)
	}
	tr := tar.NewReader(stdout)
	var readErr error
	for len(want) > 0 {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = fmt.Errorf("read tar stream: %w", err)
			break
		}
		name := cleanMember(hdr.Name)
		if !want[name] {
			continue
		}
		if err := writeMember(tmp, name, hdr, tr); err != nil {
			readErr = err
			break
		}
		delete(want, name)
	}
	earlyStop := len(want) == 0 && readErr == nil
	if earlyStop || readErr != nil {
		// Stop dpkg-deb: it would otherwise decompress the rest of the
		// package for nothing. Closing the pipe ends its decompressor
		// child too, which would otherwise keep stderr open and Wait
		// blocked.
		stdout.Close()
		cancel()
	} else {
		_, _ = io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	switch {
	case readErr != nil:
		return fmt.Errorf("extract files from %s: %w", debPath, readErr)
	case !earlyStop && waitErr != nil:
		if ctx.Err() != nil {
			return fmt.Errorf("extract files from %s: %w", debPath, context.Cause(ctx))
		}
		return fmt.Errorf("extract files from %s: dpkg-deb --fsys-tarfile: %w: %s", debPath, waitErr, cmdout.TailLine(stderr.String(), 5))
	case len(want) > 0:
		missing := make([]string, 0, len(want))
		for m := range want {
			missing = append(missing, m)
		}
		sort.Strings(missing)
		return fmt.Errorf("extract files from %s: %w: not in the package: %s", debPath, fs.ErrNotExist, strings.Join(missing, ", "))
	}
	return commitDest(tmp, destDir)
}

// cleanMember normalises a path inside a package: "./usr/x" and "/usr/x"
// both become "usr/x".
func cleanMember(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func writeMember(root, name string, hdr *tar.Header, r io.Reader) error {
	// cleanMember rooted the name, so it cannot climb out of root.
	dst := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(hdr.Mode).Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		return f.Close()
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, dst)
	default:
		return fmt.Errorf("member %s: unsupported tar entry type %q", name, hdr.Typeflag)
	}
}

// prepareDest makes a temporary directory next to destDir, on the same
// file system so that the final rename is atomic.
func prepareDest(destDir string) (string, error) {
	if _, err := os.Lstat(destDir); err == nil {
		return "", fmt.Errorf("%s: %w", destDir, fs.ErrExist)
	}
	parent := filepath.Dir(destDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	removeStale(parent, globEscape("."+filepath.Base(destDir)+".tmp-")+"*")
	return os.MkdirTemp(parent, "."+filepath.Base(destDir)+".tmp-")
}

func commitDest(tmp, destDir string) error {
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, destDir); err != nil {
		if _, statErr := os.Lstat(destDir); statErr == nil {
			// Someone else finished the same extraction first.
			return fmt.Errorf("%s: %w", destDir, fs.ErrExist)
		}
		return fmt.Errorf("move into place: %w", err)
	}
	return fsyncDir(filepath.Dir(destDir))
}

// ensure runs extract into destDir unless a complete tree is already there.
func ensure(destDir string, extract func() error) error {
	if _, err := os.Stat(destDir); err == nil {
		return nil
	}
	if err := extract(); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
