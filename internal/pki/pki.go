// Package pki makes and loads the certificates of a TuxTape installation:
// a local CA, the server's certificate (with the DNS names and IP
// addresses hosts reach it by) and client certificates for mutual TLS. It
// replaces a page of openssl steps with one call, and gives the server,
// the CLI, builders and agents their tls.Config.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
)

// ErrExists: Init would overwrite a CA that is already there.
var ErrExists = errors.New("certificates already exist")

// Options shape Init.
type Options struct {
	Dir string
	// Hosts are the DNS names and IP addresses of the server (its
	// certificate's SANs); default localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Clients are the names of client certificates to make (their CN).
	Clients []string
	// Validity of the leaf certificates (default a year); the CA's is
	// ten times as long.
	Validity time.Duration
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// Files are the paths Init wrote, all in Options.Dir.
type Files struct {
	CA, CAKey         string
	Server, ServerKey string
	Clients           map[string][2]string // name → cert, key
}

var (
	clientName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	dnsName    = regexp.MustCompile(`^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// Paths are the file names Init uses in dir.
func Paths(dir string, clients ...string) Files {
	f := Files{
		CA: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "ca-key.pem"),
		Server: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		Clients: map[string][2]string{},
	}
	for _, c := range clients {
		f.Clients[c] = [2]string{filepath.Join(dir, "client-"+c+".pem"), filepath.Join(dir, "client-"+c+"-key.pem")}
	}
	return f
}

// Init makes a CA, a server certificate and the client certificates in
// o.Dir. It refuses to replace an existing CA (ErrExists): its key signs
// what hosts already trust. Keys are written 0600.
func Init(o Options) (Files, error) {
	if o.Dir == "" {
		return Files{}, errors.New("certs init: no output directory")
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if o.Validity <= 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, c := range o.Clients {
		if !clientName.MatchString(c) {
			return Files{}, fmt.Errorf("certs init: client name %q: use letters, digits, '.', '_' and '-' (at most 64)", c)
		}
	}
	for _, h := range o.Hosts {
		if h == "" || (net.ParseIP(h) == nil && !validDNSName(h)) {
			return Files{}, fmt.Errorf("certs init: host %q is neither an IP address nor a DNS name", h)
		}
	}
	files := Paths(o.Dir, o.Clients...)
	if _, err := os.Lstat(files.CA); err == nil {
		return Files{}, fmt.Errorf("certs init: %w in %s: keep them, or remove the directory to start a new CA (every host must then trust the new one)", ErrExists, o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certs init: %w", err)
	}
	now := o.Now().Add(-5 * time.Minute) // some clock skew between hosts
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "TuxTape CA", Organization: []string{"TuxTape"}},
		NotBefore: now, NotAfter: now.Add(10 * o.Validity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("certs init: CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Files{}, err
	}
	srv := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: o.Hosts[0], Organization: []string{"TuxTape"}},
		NotBefore: now, NotAfter: now.Add(o.Validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	// The key files go first: a certificate without its key is useless,
	// and ca.pem is what says the directory is complete.
	if err := issue(srv, ca, caKey, files.Server, files.ServerKey); err != nil {
		return Files{}, err
	}
	for _, c := range o.Clients {
		cl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: c, Organization: []string{"TuxTape"}},
			NotBefore: now, NotAfter: now.Add(o.Validity),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if err := issue(cl, ca, caKey, files.Clients[c][0], files.Clients[c][1]); err != nil {
			return Files{}, err
		}
	}
	if err := writeKey(files.CAKey, caKey); err != nil {
		return Files{}, err
	}
	if err := atomicfile.WriteFile(files.CA, pemBlock("CERTIFICATE", caDER), 0o644); err != nil {
		return Files{}, fmt.Errorf("certs init: %w", err)
	}
	return files, nil
}

// validDNSName accepts host names made of letter-digit-hyphen labels.
func validDNSName(h string) bool {
	return len(h) <= 253 && dnsName.MatchString(h)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("certs init: %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(certPath, pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return fmt.Errorf("certs init: %w", err)
	}
	return nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, pemBlock("PRIVATE KEY", der), 0o600); err != nil {
		return fmt.Errorf("certs init: %w", err)
	}
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// CertPool reads the PEM certificates in path.
func CertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("read CA %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// ServerConfig is the server's TLS: its certificate, TLS 1.2 at least,
// and with clientCA set, mutual TLS: a client without a certificate from
// that CA fails the handshake.
func ServerConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pool, err := CertPool(clientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig is a client's TLS: the CA it trusts (the system's when
// caFile is empty) and, for mutual TLS, its certificate.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := CertPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("client certificate: give both the certificate and its key")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
