package cmdout

import (
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"only\n\n\n", 1, "only"},
	}
	for _, tt := range tests {
		if got := Tail(tt.in, tt.n); got != tt.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	if got := TailLine("  x\ny\nz \n", 2); got != "y; z" {
		t.Errorf("TailLine = %q, want %q", got, "y; z")
	}
}

func TestBuffer(t *testing.T) {
	b := &Buffer{Max: 8}
	for range 100 {
		b.Write([]byte("0123456789\n"))
	}
	if got := b.String(); len(got) != 8 || !strings.HasSuffix(got, "6789\n") {
		t.Errorf("Buffer holds %q, want the last 8 bytes", got)
	}
}

func TestBufferWrites(t *testing.T) {
	b := &Buffer{Max: 8}
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "defghijk" {
		t.Errorf("tail = %q, want the last 8 bytes", got)
	}
}
