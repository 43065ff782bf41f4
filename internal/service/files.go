package service

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
)

// Input size limits: far above what real inputs reach, low enough that a
// device or a wrong file named by mistake fails at once instead of filling
// memory.
const (
	MaxKernelConfig = 16 << 20 // a distribution .config is < 1 MiB
	MaxFixList      = 64 << 20 // a --fixed list (a Debian changelog is ~10 MiB)
	MaxFixDiff      = 64 << 20 // one fix file
)

// ReadRegularFile reads the regular file at path, of at most limit bytes.
// what names the file's role in errors ("--kconfig"). A directory, device,
// FIFO or socket is refused without reading from it: the file is opened
// with O_NONBLOCK (so a FIFO with no writer cannot block the open) and
// checked before a byte is read.
func ReadRegularFile(what, path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, invalidf("%s %s: no such file", what, path)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := checkRegular(what, path, st, limit); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	// The path may have been replaced between the Stat and the open.
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := checkRegular(what, path, st, limit); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(what, path, limit)
	}
	return data, nil
}

// CheckRegularFile says whether path is a regular file of at most limit
// bytes, for files that are read later by another part.
func CheckRegularFile(what, path string, limit int64) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return invalidf("%s %s: no such file", what, path)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return checkRegular(what, path, st, limit)
}

func checkRegular(what, path string, st fs.FileInfo, limit int64) error {
	if !st.Mode().IsRegular() {
		return invalidf("%s %s is %s, not a regular file: give the file itself", what, path, atomicfile.Kind(st.Mode()))
	}
	if st.Size() > limit {
		return tooLarge(what, path, limit)
	}
	return nil
}

func tooLarge(what, path string, limit int64) error {
	return invalidf("%s %s is larger than %d MiB, far more than such a file holds: is it the right file?", what, path, limit>>20)
}

// checkDiff refuses a fix file that is not a unified diff: binary data, or
// no "--- a/FILE" line followed by a "+++ b/FILE" line. Without this a
// wrong file reaches the generator and comes back as "no functional
// change".
func checkDiff(name string, d []byte) error {
	if bytes.IndexByte(d, 0) >= 0 {
		return invalidf("fix %s is binary (it holds NUL bytes), not a unified diff: give a patch made by git format-patch or diff -u", name)
	}
	prevMinus := false
	for line := range bytes.Lines(d) {
		if prevMinus && bytes.HasPrefix(line, []byte("+++ ")) {
			return nil
		}
		prevMinus = bytes.HasPrefix(line, []byte("--- "))
	}
	return invalidf("fix %s is not a unified diff: it has no ---/+++ file lines (give a patch made by git format-patch or diff -u)", name)
}
