// Package fleetclient is the agent's connection to the server's
// FleetService: heartbeats and event reports over gRPC with TLS
// (internal/pki) and the agent's bearer token. It translates the fleet
// records to the wire types and holds no rules of its own.
package fleetclient

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/pki"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// Options say how to reach the server.
type Options struct {
	Addr  string // host:port
	Token string // the agent token's secret
	// CA is the CA file to trust (the system's when empty); Cert and Key
	// a client certificate for mutual TLS.
	CA, Cert, Key string
}

// Client talks to one server.
type Client struct {
	conn  *grpc.ClientConn
	fleet pb.FleetServiceClient
}

// bearer sends the token with every call, over TLS only.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// Dial prepares a connection; it is made on the first call.
func Dial(o Options) (*Client, error) {
	cfg, err := pki.ClientConfig(o.CA, o.Cert, o.Key)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.Addr, err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(o.Token)))
	}
	conn, err := grpc.NewClient(o.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.Addr, err)
	}
	return &Client{conn: conn, fleet: pb.NewFleetServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Heartbeat sends the machine's state.
func (c *Client) Heartbeat(ctx context.Context, m fleet.Machine) error {
	lp := &pb.Livepatch{Level: m.Livepatch.Level, Cves: m.Livepatch.CVEs}
	for _, p := range m.Livepatch.Patches {
		lp.Patches = append(lp.Patches, &pb.LoadedPatch{Name: p.Name, Version: p.Version, Enabled: p.Enabled, Transition: p.Transition})
	}
	_, err := c.fleet.Heartbeat(ctx, &pb.HeartbeatRequest{
		MachineId: m.ID, Hostname: m.Hostname, Kernel: m.Kernel, AgentVersion: m.AgentVersion,
		Ring: m.Ring, State: string(m.State), Livepatch: lp,
	})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Report sends events (at most fleet.MaxEvents).
func (c *Client) Report(ctx context.Context, machine string, es []fleet.Event) error {
	req := &pb.ReportRequest{MachineId: machine}
	for _, e := range es {
		ev := &pb.Event{Kind: string(e.Kind), Patch: e.Patch, Detail: e.Detail, Log: e.Log}
		if !e.At.IsZero() {
			ev.At = timestamppb.New(e.At)
		}
		req.Events = append(req.Events, ev)
	}
	if _, err := c.fleet.Report(ctx, req); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
