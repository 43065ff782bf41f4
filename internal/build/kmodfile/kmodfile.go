// Package kmodfile reads kernel module files as kmod finds them in a
// /lib/modules/<release> tree: plain .ko, or compressed .ko.xz (Debian's
// 6.12 line and trixie), .ko.zst and .ko.gz. It decompresses in memory,
// without external tools.
package kmodfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Suffixes are the module file endings kmod knows, the plain one first.
var Suffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// MaxSize bounds a decompressed module (the largest Debian modules, GPU
// drivers, are about 60 MB): a corrupt or hostile file is an error, not
// all of memory.
const MaxSize = 1 << 30

// ErrNotModule means a file name does not end in a module suffix.
var ErrNotModule = errors.New("not a kernel module file (.ko, .ko.xz, .ko.zst, .ko.gz)")

// Suffix is the module suffix file ends in, or "" if none.
func Suffix(file string) string {
	// The compressed ones first: ".ko.xz" does not end in ".ko".
	for i := len(Suffixes) - 1; i >= 0; i-- {
		if strings.HasSuffix(file, Suffixes[i]) {
			return Suffixes[i]
		}
	}
	return ""
}

// IsModule says whether file's name is that of a kernel module.
func IsModule(file string) bool { return Suffix(file) != "" }

// Name is the kernel's name for a module file: the base name without its
// suffix, with dashes as underscores (nf-nat.ko.xz is nf_nat). A name
// that is not a module file's is only normalized.
func Name(file string) string {
	base := filepath.Base(file)
	return Normalize(strings.TrimSuffix(base, Suffix(base)))
}

// Normalize spells a module name as the kernel does: dashes as
// underscores.
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Read returns the ELF contents of the module file at path, decompressed
// as its suffix says.
func Read(path string) ([]byte, error) {
	suffix := Suffix(path)
	if suffix == "" {
		return nil, fmt.Errorf("read module %s: %w", path, ErrNotModule)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	defer f.Close()
	data, err := Decompress(f, suffix)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	return data, nil
}

// Decompress reads a module's contents from r, compressed as suffix (one
// of Suffixes) says.
func Decompress(r io.Reader, suffix string) ([]byte, error) {
	var zr io.Reader
	switch suffix {
	case ".ko":
		zr = r
	case ".ko.gz":
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		zr = gz
	case ".ko.xz":
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		zr = xr
	case ".ko.zst":
		zd, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxSize))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zd.Close()
		zr = zd
	default:
		return nil, ErrNotModule
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(zr, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", suffix, err)
	}
	if n > MaxSize {
		return nil, fmt.Errorf("decompress %s: more than %d bytes", suffix, MaxSize)
	}
	return buf.Bytes(), nil
}
