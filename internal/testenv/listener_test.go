package testenv

import (
	"net"
	"strconv"
	"testing"
)

// TestListenerHeard: every connection made before Heard is counted, and
// Heard's own probes are not.
func TestListenerHeard(t *testing.T) {
	l := Listen(t)
	if n := l.Heard(t); n != 0 {
		t.Fatalf("Heard before any connection = %d", n)
	}
	for range 3 {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(l.Port))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for range 2 {
		if n := l.Heard(t); n != 3 {
			t.Errorf("Heard after 3 connections = %d", n)
		}
	}
}
