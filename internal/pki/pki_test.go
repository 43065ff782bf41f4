package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// handshake runs a real TLS handshake on loopback between a server with
// srv and a client with cli dialling serverName, and returns the client's
// and the server's errors.
func handshake(t *testing.T, srv, cli *tls.Config, serverName string) (clientErr, serverErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	cli = cli.Clone()
	cli.ServerName = serverName
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), cli)
	if err == nil {
		// With TLS 1.3 a refused client certificate shows on the first read.
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(conn, make([]byte, 2))
		conn.Close()
	}
	return err, <-done
}

func TestInitAndHandshakes(t *testing.T) {
	dir := t.TempDir()
	files, err := Init(Options{Dir: dir, Hosts: []string{"tuxtape.example", "127.0.0.1", "10.0.2.2"}, Clients: []string{"admin", "agent-1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{files.CAKey, files.ServerKey, files.Clients["admin"][1]} {
		if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key %s: mode %v, %v; want 0600", k, st.Mode().Perm(), err)
		}
	}
	plain, err := ServerConfig(files.Server, files.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	mutual, err := ServerConfig(files.Server, files.ServerKey, files.CA)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := ClientConfig(files.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := ClientConfig(files.CA, files.Clients["admin"][0], files.Clients["admin"][1])
	if err != nil {
		t.Fatal(err)
	}
	other, err := Init(Options{Dir: t.TempDir(), Clients: []string{"stranger"}})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := ClientConfig(files.CA, other.Clients["stranger"][0], other.Clients["stranger"][1])
	if err != nil {
		t.Fatal(err)
	}
	untrusting, err := ClientConfig(other.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		srv, cli   *tls.Config
		serverName string
		ok         bool
		clientMsg  string
	}{
		{"TLS by DNS name", plain, anon, "tuxtape.example", true, ""},
		{"TLS by IP (the VM reaches the host as 10.0.2.2)", plain, anon, "10.0.2.2", true, ""},
		{"a name the certificate lacks", plain, anon, "other.example", false, "certificate is valid for"},
		{"a client that trusts another CA", plain, untrusting, "127.0.0.1", false, "unknown authority"},
		{"mutual TLS with the CA's client certificate", mutual, admin, "127.0.0.1", true, ""},
		{"mutual TLS without a client certificate", mutual, anon, "127.0.0.1", false, "certificate required"},
		{"mutual TLS with another CA's client certificate", mutual, stranger, "127.0.0.1", false, "unknown certificate authority"},
	}
	for _, tt := range tests {
		cerr, serr := handshake(t, tt.srv, tt.cli, tt.serverName)
		if tt.ok && (cerr != nil || serr != nil) {
			t.Errorf("%s: client %v, server %v; want a handshake", tt.name, cerr, serr)
		}
		if !tt.ok && (cerr == nil || !strings.Contains(cerr.Error(), tt.clientMsg)) {
			t.Errorf("%s: client error %v, want one saying %q", tt.name, cerr, tt.clientMsg)
		}
	}
}

func TestInitRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(Paths(dir).CA)
	if _, err := Init(Options{Dir: dir}); !errors.Is(err, ErrExists) {
		t.Errorf("Init over an existing CA = %v, want ErrExists", err)
	}
	if after, _ := os.ReadFile(Paths(dir).CA); string(after) != string(before) {
		t.Error("the existing CA was replaced")
	}
	for _, o := range []Options{
		{Dir: t.TempDir(), Hosts: []string{"bad host"}},
		{Dir: t.TempDir(), Hosts: []string{""}},
		{Dir: t.TempDir(), Clients: []string{"../escape"}},
		{Dir: ""},
	} {
		if _, err := Init(o); err == nil {
			t.Errorf("Init(%+v) succeeded", o)
		}
	}
	if _, err := ClientConfig("", "cert.pem", ""); err == nil {
		t.Error("ClientConfig with a certificate and no key succeeded")
	}
	if _, err := CertPool(os.DevNull); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("CertPool(/dev/null) = %v", err)
	}
}
