package api_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/frontend/api"
	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/pki"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

type fixture struct {
	addr    string
	certs   pki.Files
	svc     *service.Service
	secrets map[string]string // name → secret
}

// serve starts a real gRPC server with TLS (mutual when clientCA) on a
// loopback port, over a fresh SQLite database with tokens of every role.
func serve(t *testing.T, clientCA bool) *fixture {
	t.Helper()
	dir := t.TempDir()
	certs, err := pki.Init(pki.Options{Dir: filepath.Join(dir, "certs"), Clients: []string{"cli"}})
	if err != nil {
		t.Fatal(err)
	}
	ca := ""
	if clientCA {
		ca = certs.CA
	}
	cfg, err := pki.ServerConfig(certs.Server, certs.ServerKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(service.Config{DB: filepath.Join(dir, "tuxtape.db"), MirrorDir: filepath.Join(dir, "vulns.git")})
	t.Cleanup(func() { svc.Close() })
	f := &fixture{certs: certs, svc: svc, secrets: map[string]string{}}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		role    authz.Role
		machine string
		ttl     time.Duration
	}{
		{"admin", authz.Admin, "", 0}, {"reviewer", authz.Reviewer, "", 0}, {"builder", authz.Builder, "", 0},
		{"agent", authz.Agent, "host-1", 0}, {"revoked", authz.Admin, "", 0}, {"expired", authz.Admin, "", time.Nanosecond},
	} {
		tok, secret, err := svc.CreateToken(ctx, service.CreateTokenOptions{Role: tc.role, Machine: tc.machine, Expires: tc.ttl})
		if err != nil {
			t.Fatal(err)
		}
		f.secrets[tc.name] = secret
		if tc.name == "revoked" {
			if err := svc.RevokeToken(ctx, tok.ID, service.Actor{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	s := api.New(api.Options{Service: svc, TLS: credentials.NewTLS(cfg)})
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(sctx, s, l, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	time.Sleep(time.Second) // the expired token's second passes
	return f
}

func (f *fixture) client(t *testing.T, who string) *api.Client {
	t.Helper()
	o := api.ClientOptions{Token: f.secrets[who], CA: f.certs.CA}
	if who == "" {
		o.Token = ""
	}
	c, err := api.Dial(f.addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) codes.Code { return status.Code(err) }

func TestRoles(t *testing.T) {
	f := serve(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := map[string]func(c *api.Client) error{
		"ListCVEs":    func(c *api.Client) error { _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{}); return err },
		"ListKernels": func(c *api.Client) error { _, err := c.Kernel.ListKernels(ctx, &pb.ListKernelsRequest{}); return err },
		"RemoveKernel": func(c *api.Client) error {
			_, err := c.Kernel.RemoveKernel(ctx, &pb.RemoveKernelRequest{Name: "nope"})
			return err
		},
		"AddKernel": func(c *api.Client) error {
			_, err := c.Kernel.AddKernel(ctx, &pb.AddKernelRequest{Name: "k", Release: "6.1.176-k", Source: "/srv/linux.tar.xz"})
			return err
		},
		"Watch":      func(c *api.Client) error { return watch(ctx, c, &pb.WatchRequest{}) },
		"ListTokens": func(c *api.Client) error { _, err := c.Tokens.ListTokens(ctx, &pb.ListTokensRequest{}); return err },
		"ListAudit":  func(c *api.Client) error { _, err := c.Audit.ListAudit(ctx, &pb.ListAuditRequest{}); return err },
	}
	tests := []struct {
		who, call string
		want      codes.Code
	}{
		{"admin", "ListCVEs", codes.OK},
		{"admin", "ListTokens", codes.OK},
		{"admin", "ListAudit", codes.OK},
		{"admin", "RemoveKernel", codes.NotFound},     // allowed, and says what is missing
		{"admin", "AddKernel", codes.InvalidArgument}, // allowed; a path names the server's file
		{"admin", "Watch", codes.OK},
		{"reviewer", "Watch", codes.OK},
		{"reviewer", "AddKernel", codes.PermissionDenied},
		{"builder", "AddKernel", codes.PermissionDenied},
		{"builder", "Watch", codes.PermissionDenied},
		{"agent", "Watch", codes.PermissionDenied},
		{"", "Watch", codes.Unauthenticated},
		{"reviewer", "ListCVEs", codes.OK},
		{"reviewer", "ListKernels", codes.OK},
		{"reviewer", "RemoveKernel", codes.PermissionDenied},
		{"reviewer", "ListTokens", codes.PermissionDenied},
		{"builder", "ListKernels", codes.OK},
		{"builder", "ListAudit", codes.PermissionDenied},
		{"agent", "ListCVEs", codes.PermissionDenied},
		{"agent", "ListTokens", codes.PermissionDenied},
		{"", "ListCVEs", codes.Unauthenticated},
		{"revoked", "ListCVEs", codes.Unauthenticated},
		{"expired", "ListCVEs", codes.Unauthenticated},
	}
	for _, tt := range tests {
		err := calls[tt.call](f.client(t, tt.who))
		if code(err) != tt.want {
			t.Errorf("%s calls %s: %v, want %s", tt.who, tt.call, err, tt.want)
		}
	}
	// A made-up secret and a header that is not a bearer token.
	for _, secret := range []string{"tt1.0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "garbage", strings.Repeat("x", 1000)} {
		c, err := api.Dial(f.addr, api.ClientOptions{Token: secret, CA: f.certs.CA})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{}); code(err) != codes.Unauthenticated {
			t.Errorf("token %.20q: %v, want Unauthenticated", secret, err)
		}
		c.Close()
	}
	// Health needs no token.
	hc := healthpb.NewHealthClient(mustConn(t, f))
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v, %v", r, err)
	}
}

func mustConn(t *testing.T, f *fixture) *grpc.ClientConn {
	t.Helper()
	cfg, err := pki.ClientConfig(f.certs.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestMalformed(t *testing.T) {
	f := serve(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := f.client(t, "admin")
	huge := strings.Repeat("a", 10<<20)
	tests := []struct {
		name string
		call func() error
		want codes.Code
		msg  string
	}{
		{"empty CVE ID", func() error { _, err := c.CVEs.GetCVE(ctx, &pb.GetCVERequest{}); return err }, codes.InvalidArgument, "id is required"},
		{"bad CVE ID", func() error { _, err := c.CVEs.GetCVE(ctx, &pb.GetCVERequest{Id: "CVE-x"}); return err }, codes.InvalidArgument, "not a CVE ID"},
		{"unknown CVE", func() error { _, err := c.CVEs.GetCVE(ctx, &pb.GetCVERequest{Id: "CVE-1999-0001"}); return err }, codes.NotFound, "not found"},
		{"10 MB field", func() error { _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{File: huge}); return err }, codes.InvalidArgument, "file is"},
		{"negative limit", func() error { _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{Limit: -1}); return err }, codes.InvalidArgument, "limit"},
		{"bad status", func() error { _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{Status: "fixed"}); return err }, codes.InvalidArgument, "status"},
		{"unknown kernel", func() error { _, err := c.Kernel.GetKernel(ctx, &pb.GetKernelRequest{Name: "nope"}); return err }, codes.NotFound, "nope"},
		{"empty kernel name", func() error { _, err := c.Kernel.GetKernel(ctx, &pb.GetKernelRequest{}); return err }, codes.InvalidArgument, "name is required"},
		{"NUL in a name", func() error { _, err := c.Kernel.GetKernel(ctx, &pb.GetKernelRequest{Name: "a\x00b"}); return err }, codes.InvalidArgument, "NUL"},
		{"bad role", func() error { _, err := c.Tokens.CreateToken(ctx, &pb.CreateTokenRequest{Role: "root"}); return err }, codes.InvalidArgument, "role"},
		{"agent token without machine", func() error { _, err := c.Tokens.CreateToken(ctx, &pb.CreateTokenRequest{Role: "agent"}); return err }, codes.InvalidArgument, "machine"},
		{"negative expiry", func() error {
			_, err := c.Tokens.CreateToken(ctx, &pb.CreateTokenRequest{Role: "admin", ExpiresSeconds: -1})
			return err
		}, codes.InvalidArgument, "expires_seconds"},
		{"VEX without kernel", func() error { _, err := c.VEX.GetVEX(ctx, &pb.GetVEXRequest{}); return err }, codes.InvalidArgument, "kernel is required"},
		{"bad tier", func() error { _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{Tier: "urgent"}); return err }, codes.InvalidArgument, "tier"},
		{"10 MB text", func() error { _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{Text: huge}); return err }, codes.InvalidArgument, "text is"},
		{"long text", func() error {
			_, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{Text: strings.Repeat("x", 300)})
			return err
		}, codes.InvalidArgument, "at most 256"},
		{"kernel without source", func() error {
			_, err := c.Kernel.AddKernel(ctx, &pb.AddKernelRequest{Name: "k", Release: "6.1.176-k"})
			return err
		}, codes.InvalidArgument, "source is required"},
		{"kernel from a server path", func() error {
			_, err := c.Kernel.AddKernel(ctx, &pb.AddKernelRequest{Name: "k", Release: "6.1.176-k", Version: "6.1.176", Source: "/etc", Config: []byte("CONFIG_X86_64=y\n")})
			return err
		}, codes.InvalidArgument, "server's machine"},
		{"kernel from a local git repository", func() error {
			_, err := c.Kernel.AddKernel(ctx, &pb.AddKernelRequest{Name: "k", Release: "6.1.176-k", Version: "6.1.176", Source: "/srv/linux.git", Ref: "v6.1.176", Config: []byte("CONFIG_X86_64=y\n")})
			return err
		}, codes.InvalidArgument, "server's machine"},
		{"watch before the start", func() error { return watch(ctx, c, &pb.WatchRequest{AfterSeq: -5}) }, codes.InvalidArgument, "after_seq"},
		{"watch too many kinds", func() error { return watch(ctx, c, &pb.WatchRequest{Kinds: make([]string, 100)}) }, codes.InvalidArgument, "kinds"},
		{"watch an empty kind", func() error { return watch(ctx, c, &pb.WatchRequest{Kinds: []string{""}}) }, codes.InvalidArgument, "kinds"},
		{"revoke unknown token", func() error {
			_, err := c.Tokens.RevokeToken(ctx, &pb.RevokeTokenRequest{Id: "0000000000000000"})
			return err
		}, codes.NotFound, "not found"},
	}
	for _, tt := range tests {
		err := tt.call()
		if code(err) != tt.want || !strings.Contains(status.Convert(err).Message(), tt.msg) {
			t.Errorf("%s: %v, want %s saying %q", tt.name, err, tt.want, tt.msg)
		}
	}
}

// watch reads a Watch stream to its end (without follow: what the stream
// holds) and returns its status.
func watch(ctx context.Context, c *api.Client, r *pb.WatchRequest) error {
	return api.Remote{C: c}.Watch(ctx, service.WatchOptions{After: r.AfterSeq, Kinds: r.Kinds, Follow: r.Follow}, func(event.Event) error { return nil })
}

func TestTokensOverTheWire(t *testing.T) {
	f := serve(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := f.client(t, "admin")
	r, err := admin.Tokens.CreateToken(ctx, &pb.CreateTokenRequest{Role: "agent", Machine: "host-2", ExpiresSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if r.Secret == "" || r.Token.Machine != "host-2" || r.Token.Expires == nil {
		t.Fatalf("CreateToken = %v", r)
	}
	if _, err := admin.Tokens.RevokeToken(ctx, &pb.RevokeTokenRequest{Id: r.Token.Id}); err != nil {
		t.Fatal(err)
	}
	log, err := admin.Audit.ListAudit(ctx, &pb.ListAuditRequest{Limit: 2})
	if err != nil || len(log.Entries) != 2 {
		t.Fatalf("ListAudit = %v, %v", log, err)
	}
	for _, e := range log.Entries {
		if e.Target != r.Token.Id || !strings.HasPrefix(e.From, "127.0.0.1:") || e.Actor == service.LocalActor {
			t.Errorf("audit entry %v: want the admin's token as actor, from 127.0.0.1", e)
		}
	}
	ts, err := admin.Tokens.ListTokens(ctx, &pb.ListTokensRequest{})
	if err != nil || len(ts.Tokens) != 7 {
		t.Errorf("ListTokens: %d tokens, %v; want 7", len(ts.GetTokens()), err)
	}
}

func TestTransportRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := serve(t, true) // mutual TLS
	// A client without a certificate: refused in the handshake.
	c := f.client(t, "admin")
	if _, err := c.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{}); code(err) != codes.Unavailable {
		t.Errorf("no client certificate: %v, want Unavailable", err)
	}
	// With the CA's client certificate: through.
	withCert, err := api.Dial(f.addr, api.ClientOptions{Token: f.secrets["admin"], CA: f.certs.CA, Cert: f.certs.Clients["cli"][0], Key: f.certs.Clients["cli"][1]})
	if err != nil {
		t.Fatal(err)
	}
	defer withCert.Close()
	if _, err := withCert.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{}); err != nil {
		t.Errorf("mutual TLS with the CA's client certificate: %v", err)
	}
	// Plain text against the TLS server.
	plain, err := api.Dial(f.addr, api.ClientOptions{Token: f.secrets["admin"], Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.CVEs.ListCVEs(ctx, &pb.ListCVEsRequest{}); code(err) != codes.Unavailable {
		t.Errorf("plain text to a TLS server: %v, want Unavailable", err)
	}
	if _, err := api.Dial("192.0.2.1:443", api.ClientOptions{Insecure: true}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("--insecure to a non-loopback address: %v", err)
	}
}
