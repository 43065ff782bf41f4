package fleetclient

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/pki"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

type recorder struct {
	pb.UnimplementedFleetServiceServer
	auth  []string
	beat  *pb.HeartbeatRequest
	event *pb.ReportRequest
}

func (r *recorder) Heartbeat(ctx context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.auth = append(r.auth, md.Get("authorization")...)
	r.beat = req
	return &pb.HeartbeatResponse{}, nil
}

func (r *recorder) Report(ctx context.Context, req *pb.ReportRequest) (*pb.ReportResponse, error) {
	r.event = req
	return &pb.ReportResponse{Stored: int32(len(req.Events))}, nil
}

// TestOverTLS: a heartbeat and a report reach a real gRPC server over TLS
// (certificates from internal/pki), with the bearer token.
func TestOverTLS(t *testing.T) {
	files, err := pki.Init(pki.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ServerConfig(files.Server, files.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	rec := &recorder{}
	pb.RegisterFleetServiceServer(srv, rec)
	go srv.Serve(lis)
	defer srv.Stop()

	c, err := Dial(Options{Addr: lis.Addr().String(), Token: "tt1.x.y", CA: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := fleet.Machine{ID: "m1", Hostname: "h", Kernel: "6.1.0-50-cloud-amd64", State: fleet.StateOK,
		Livepatch: fleet.Livepatch{Level: "tt@3", CVEs: []string{"CVE-2026-0001"}, Patches: []fleet.Patch{{Name: "tt", Version: "3", Enabled: true}}}}
	if err := c.Heartbeat(ctx, m); err != nil {
		t.Fatal(err)
	}
	if len(rec.auth) != 1 || rec.auth[0] != "Bearer tt1.x.y" {
		t.Errorf("authorization = %q", rec.auth)
	}
	if rec.beat.GetLivepatch().GetLevel() != "tt@3" || rec.beat.GetLivepatch().GetPatches()[0].GetVersion() != "3" || rec.beat.GetState() != "ok" {
		t.Errorf("heartbeat = %v", rec.beat)
	}
	at := time.Date(2026, 12, 1, 1, 2, 3, 0, time.UTC)
	if err := c.Report(ctx, "m1", []fleet.Event{{Kind: fleet.EventBugDetected, At: at, Patch: "tt", Log: []string{"WARNING: x"}}}); err != nil {
		t.Fatal(err)
	}
	if e := rec.event.GetEvents()[0]; e.GetKind() != "bug_detected" || !e.GetAt().AsTime().Equal(at) || e.GetLog()[0] != "WARNING: x" {
		t.Errorf("event = %v", e)
	}
	// A server certificate the CA did not sign is refused.
	other, _ := pki.Init(pki.Options{Dir: t.TempDir()})
	c2, _ := Dial(Options{Addr: lis.Addr().String(), CA: other.CA})
	defer c2.Close()
	if err := c2.Heartbeat(ctx, m); err == nil {
		t.Error("heartbeat to a server of another CA: no error")
	}
}
