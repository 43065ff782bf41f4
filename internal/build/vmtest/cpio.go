package vmtest

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// File type bits of a cpio mode, as in stat(2).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// cpioWriter writes the "newc" (SVR4 without checksums) cpio format, the
// one the kernel unpacks into the initial root file system
// (Documentation/driver-api/early-userspace/buffer-format.rst). Writing it
// here rather than running cpio(1) lets device nodes such as /dev/console
// go in without root and keeps the archive reproducible (all times zero).
//
// Parent directories are added on demand, because the kernel's unpacker
// creates a file only in a directory that already exists.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	seen map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, seen: map[string]bool{"": true, ".": true}}
}

// cleanName turns a guest path into the relative form cpio archives use.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (c *cpioWriter) header(name string, mode uint32, size int, nlink, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	// Header (110 bytes) plus the NUL-terminated name is padded to four
	// bytes.
	c.write([]byte(hdr + name + "\x00" + strings.Repeat("\x00", pad4(len(hdr)+len(name)+1))))
}

func pad4(n int) int { return (4 - n%4) % 4 }

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	_, c.err = c.w.Write(b)
}

// mkdirAll adds name's missing parent directories, like mkdir -p.
func (c *cpioWriter) mkdirAll(name string) {
	dir := path.Dir(name)
	if c.seen[dir] {
		return
	}
	c.mkdirAll(dir)
	c.header(dir, modeDir|0o755, 0, 2, 0, 0)
	c.seen[dir] = true
}

func (c *cpioWriter) claim(name string) string {
	name = cleanName(name)
	if c.err == nil && c.seen[name] {
		c.err = fmt.Errorf("write initramfs: %s added twice", name)
	}
	c.mkdirAll(name)
	c.seen[name] = true
	return name
}

// Dir adds a directory.
func (c *cpioWriter) Dir(name string, perm uint32) error {
	name = cleanName(name)
	if c.seen[name] {
		return c.err
	}
	c.mkdirAll(name)
	c.seen[name] = true
	c.header(name, modeDir|perm, 0, 2, 0, 0)
	return c.err
}

// File adds a regular file with the given contents.
func (c *cpioWriter) File(name string, perm uint32, data []byte) error {
	name = c.claim(name)
	c.header(name, modeRegular|perm, len(data), 1, 0, 0)
	c.write(data)
	c.write(make([]byte, pad4(len(data))))
	return c.err
}

// Symlink adds a symbolic link; its data is the target.
func (c *cpioWriter) Symlink(name, target string) error {
	name = c.claim(name)
	c.header(name, modeSymlink|0o777, len(target), 1, 0, 0)
	c.write([]byte(target))
	c.write(make([]byte, pad4(len(target))))
	return c.err
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) error {
	name = c.claim(name)
	c.header(name, modeCharDev|perm, 0, 1, major, minor)
	return c.err
}

// Close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 1, 0, 0)
	return c.err
}
