package testenv

import (
	"bufio"
	"net"
	"sync"
	"testing"
)

// Listener is a TCP listener on loopback that counts the connections made
// to it, answering each with a line; what a confined process must not
// reach. It is closed when the test ends.
type Listener struct {
	Port int

	ln       net.Listener
	mu       sync.Mutex
	accepted int
	probes   int
}

// Listen starts a Listener.
func Listen(t testing.TB) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Port: ln.Addr().(*net.TCPAddr).Port, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.accepted++
			l.mu.Unlock()
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	return l
}

// Heard is how many connections others made so far. It connects once
// itself and waits for the answer: connections are accepted in order, so
// every one made before the call has been counted by then.
func (l *Listener) Heard(t testing.TB) int {
	t.Helper()
	c, err := net.Dial("tcp", l.ln.Addr().String())
	if err != nil {
		t.Fatalf("probe the listener: %v", err)
	}
	defer c.Close()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatalf("probe the listener: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.probes++
	return l.accepted - l.probes
}
