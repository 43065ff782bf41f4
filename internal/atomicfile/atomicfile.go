// Package atomicfile writes files so that a reader sees the old content or
// the new, never half of it, and never writes through a planted link.
//
// The content goes to a temporary file created exclusively under a random
// name in the target's directory, is synced to disk, and is renamed over
// the target; the directory is synced too, so that the rename survives a
// crash. Only a missing path or a regular file is replaced: a directory,
// device, FIFO, socket or symbolic link at the path is refused, because
// replacing it is never what an output flag meant (an -o /dev/full turning
// the device into a file, an -o link replacing the link).
//
// Standard output ("-") is the caller's business.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotRegular is returned (wrapped, with the path and what it is) when
// the path exists and is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// WriteFile writes data to path atomically. The file gets perm less the
// umask, like a file os.WriteFile creates; a file it replaces does not keep
// its own mode or owner (it is a new file).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write is the streaming form of WriteFile: fn writes the content. When fn
// or anything else fails (or fn panics), nothing at path changes and the
// temporary file is removed; fn's own error is returned as it is. Only a
// failure to sync the directory comes after the rename: the new content is
// in place then, but may not survive a crash.
func Write(path string, perm os.FileMode, fn func(io.Writer) error) (err error) {
	if path == "" {
		return errors.New("write file: empty path")
	}
	if err := checkTarget(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := createTemp(dir, filepath.Base(path), perm)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write %s: directory %s does not exist", path, dir)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fn(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The target may have changed since the first look; a rename never
	// writes through whatever is there now, so this only narrows the window
	// in which a refusal is missed.
	if err := checkTarget(path); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

// checkTarget refuses a path that exists and is not a regular file. Lstat,
// so that a symbolic link is refused rather than followed.
func checkTarget(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	mode := st.Mode()
	if mode.IsRegular() {
		return nil
	}
	switch {
	case mode.IsDir():
		return fmt.Errorf("write %s: %w: it is a directory (name a file inside it)", path, ErrNotRegular)
	case mode&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Errorf("write %s: %w: it is a symbolic link to %q (name the file itself, or remove the link)", path, ErrNotRegular, target)
	default:
		return fmt.Errorf("write %s: %w: it is %s (choose a regular file)", path, ErrNotRegular, Kind(mode))
	}
}

// Kind names what a file that is not a regular one is ("a directory",
// "a character device", …), for messages that refuse it.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file (" + m.Type().String() + ")"
}

// maxPrefix keeps the temporary name within NAME_MAX (255) for any target
// name.
const maxPrefix = 200

// createTemp makes a new file in dir with O_EXCL under a random name. It
// is not os.CreateTemp because that one fixes the mode at 0600 and a chmod
// afterwards would ignore the umask; here the kernel applies it to perm.
func createTemp(dir, base string, perm os.FileMode) (*os.File, error) {
	if len(base) > maxPrefix {
		base = base[:maxPrefix]
	}
	for range 100 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		name := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, errors.New("create temporary file: too many name collisions")
}

// syncDir makes a rename in dir durable. Some file systems cannot sync a
// directory (EINVAL); the rename has happened all the same.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
