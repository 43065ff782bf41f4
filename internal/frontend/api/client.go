package api

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tuxtape/tuxtape/internal/pki"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// ClientOptions say how to reach a server.
type ClientOptions struct {
	Token string // the bearer token's secret
	// CA is the CA file to trust (the system's when empty); Cert and Key
	// are the client's certificate for mutual TLS.
	CA, Cert, Key string
	// Insecure talks plain TCP: only to a loopback address.
	Insecure bool
}

// Client is a connection to a server with one client per service.
type Client struct {
	conn   *grpc.ClientConn
	CVEs   pb.CVEServiceClient
	Kernel pb.KernelServiceClient
	VEX    pb.VEXServiceClient
	Tokens pb.TokenServiceClient
	Audit  pb.AuditServiceClient
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// bearer sends the token with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Loopback reports whether addr (host:port) is a loopback address.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Dial connects to the server at addr (host:port). The connection is made
// on the first call; a TLS or certificate problem shows there.
func Dial(addr string, o ClientOptions) (*Client, error) {
	var creds credentials.TransportCredentials
	if o.Insecure {
		if !Loopback(addr) {
			return nil, fmt.Errorf("--insecure talks plain TCP, which is refused for %s: only a loopback address may go without TLS", addr)
		}
		creds = insecure.NewCredentials()
	} else {
		cfg, err := pki.ClientConfig(o.CA, o.Cert, o.Key)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage))}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: o.Token, secure: !o.Insecure}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return &Client{conn: conn, CVEs: pb.NewCVEServiceClient(conn), Kernel: pb.NewKernelServiceClient(conn),
		VEX: pb.NewVEXServiceClient(conn), Tokens: pb.NewTokenServiceClient(conn), Audit: pb.NewAuditServiceClient(conn)}, nil
}

// ErrNoServer: a command that needs a server was run without one.
var ErrNoServer = errors.New("no server: give --server ADDR (or TUXTAPE_SERVER)")
