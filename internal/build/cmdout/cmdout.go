// Package cmdout keeps what the build side reports of a command's output
// (make, apt-get, dpkg-deb, QEMU's console): its last lines, in bounded
// memory however long the command talks.
package cmdout

import "strings"

// Tail is the last n lines of s, without its final newline.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailLine is Tail joined into one line with "; ", for an error message.
func TailLine(s string, n int) string {
	return strings.ReplaceAll(Tail(strings.TrimSpace(s), n), "\n", "; ")
}

// Buffer is an io.Writer that keeps the last Max bytes written to it.
type Buffer struct {
	Max int
	b   []byte
}

func (t *Buffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.Max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String is what the buffer holds.
func (t *Buffer) String() string { return string(t.b) }
