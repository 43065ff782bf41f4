package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// Page size of ListMachines: a machine may carry 4096 CVE IDs (about
// 150 KB on the wire), so a page of 100 stays under MaxMessage.
const MaxMachinePage = 100

// fleetHandlers translates the fleet RPCs onto the service layer.
type fleetHandlers struct {
	pb.UnimplementedFleetServiceServer
	svc *service.Service
	log *slog.Logger
}

// Fleet is the fleet service's client on c's connection (agents use it).
func (c *Client) Fleet() pb.FleetServiceClient { return pb.NewFleetServiceClient(c.conn) }

// own refuses an agent token reporting for another machine than its own;
// admins may report for any (to fix up records by hand).
func own(ctx context.Context, machine string) error {
	if err := field("machine_id", machine, true); err != nil {
		return err
	}
	t, ok := caller(ctx)
	if !ok {
		return status.Error(codes.PermissionDenied, "no token in the call")
	}
	if t.Role == authz.Agent && t.Machine != machine {
		return status.Errorf(codes.PermissionDenied, "agent token %s is for machine %q: it may not report for machine %q", t.ID, t.Machine, fleet.Clip(machine))
	}
	return nil
}

func (h *fleetHandlers) Heartbeat(ctx context.Context, r *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	if err := own(ctx, r.MachineId); err != nil {
		return nil, err
	}
	at, err := h.svc.Heartbeat(ctx, HeartbeatFromProto(r))
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.HeartbeatResponse{At: timestamppb.New(at)}, nil
}

func (h *fleetHandlers) Report(ctx context.Context, r *pb.ReportRequest) (*pb.ReportResponse, error) {
	if err := own(ctx, r.MachineId); err != nil {
		return nil, err
	}
	if len(r.Events) > fleet.MaxEvents {
		return nil, status.Errorf(codes.InvalidArgument, "events: %d events; at most %d a report", len(r.Events), fleet.MaxEvents)
	}
	es := make([]fleet.Event, len(r.Events))
	for i, e := range r.Events {
		es[i] = EventFromProto(e)
	}
	n, err := h.svc.Report(ctx, r.MachineId, es)
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.ReportResponse{Stored: int32(n)}, nil
}

func (h *fleetHandlers) ListMachines(ctx context.Context, r *pb.ListMachinesRequest) (*pb.ListMachinesResponse, error) {
	for _, f := range []struct{ name, v string }{{"kernel", r.Kernel}, {"state", r.State}} {
		if err := field(f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	size := int(r.PageSize)
	switch {
	case size < 0 || size > MaxMachinePage:
		return nil, status.Errorf(codes.InvalidArgument, "page_size is %d; want 0 (the default, %d) up to %d", size, MaxMachinePage, MaxMachinePage)
	case size == 0:
		size = MaxMachinePage
	}
	key := machinesKey(r)
	after, err := machinesFrom(r.PageToken, key)
	if err != nil {
		return nil, err
	}
	// One more than the page says whether there is a next one.
	ms, err := h.svc.ListMachines(ctx, service.MachineQuery{Kernel: r.Kernel, State: fleet.State(r.State), After: after, Limit: size + 1})
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListMachinesResponse{}
	if len(ms) > size {
		ms = ms[:size]
		out.NextPageToken = machinesToken(ms[size-1].ID, key)
	}
	out.Machines = make([]*pb.Machine, len(ms))
	for i := range ms {
		out.Machines[i] = MachineToProto(&ms[i])
	}
	return out, nil
}

func (h *fleetHandlers) GetMachine(ctx context.Context, r *pb.GetMachineRequest) (*pb.Machine, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	n := int(r.Events)
	switch {
	case n < 0 || n > service.MaxEvents:
		return nil, status.Errorf(codes.InvalidArgument, "events is %d; want 0 (the default, %d) up to %d", n, service.DefaultEvents, service.MaxEvents)
	case n == 0:
		n = service.DefaultEvents
	}
	d, err := h.svc.Machine(ctx, r.Id, n)
	if err != nil {
		return nil, grpcError(err)
	}
	return MachineDetailToProto(&d), nil
}

// machinesKey names a machine query, so that a page token cannot
// continue another one.
func machinesKey(r *pb.ListMachinesRequest) [8]byte {
	h := sha256.Sum256([]byte(r.Kernel + "\x00" + r.State))
	return [8]byte(h[:8])
}

// machinesToken is where the next page starts: after the last ID sent.
func machinesToken(lastID string, key [8]byte) string {
	return base64.RawURLEncoding.EncodeToString(append(key[:], lastID...))
}

func machinesFrom(token string, key [8]byte) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) <= 8 || [8]byte(b[:8]) != key || authz.ValidMachine(string(b[8:])) != nil {
		return "", status.Error(codes.InvalidArgument, "page_token is not one this query's answers gave")
	}
	return string(b[8:]), nil
}

// HeartbeatFromProto is the machine a heartbeat describes (no LastSeen:
// the server stamps it).
func HeartbeatFromProto(r *pb.HeartbeatRequest) fleet.Machine {
	return fleet.Machine{ID: r.MachineId, Hostname: r.Hostname, Kernel: r.Kernel, AgentVersion: r.AgentVersion, Ring: r.Ring,
		State: fleet.State(r.State), Livepatch: LivepatchFromProto(r.Livepatch)}
}

// HeartbeatToProto is the wire form of a heartbeat for m.
func HeartbeatToProto(m *fleet.Machine) *pb.HeartbeatRequest {
	return &pb.HeartbeatRequest{MachineId: m.ID, Hostname: m.Hostname, Kernel: m.Kernel, AgentVersion: m.AgentVersion, Ring: m.Ring,
		State: string(m.State), Livepatch: LivepatchToProto(&m.Livepatch)}
}

// LivepatchToProto is the wire form of a livepatch state.
func LivepatchToProto(l *fleet.Livepatch) *pb.Livepatch {
	out := &pb.Livepatch{Level: l.Level, Cves: l.CVEs, Patches: make([]*pb.LoadedPatch, len(l.Patches))}
	for i, p := range l.Patches {
		out.Patches[i] = &pb.LoadedPatch{Name: p.Name, Version: p.Version, Enabled: p.Enabled, Transition: p.Transition}
	}
	return out
}

// LivepatchFromProto is the livepatch state a wire one describes.
func LivepatchFromProto(p *pb.Livepatch) fleet.Livepatch {
	l := fleet.Livepatch{Patches: []fleet.Patch{}, CVEs: nonNil(p.GetCves()), Level: p.GetLevel()}
	for _, lp := range p.GetPatches() {
		l.Patches = append(l.Patches, fleet.Patch{Name: lp.Name, Version: lp.Version, Enabled: lp.Enabled, Transition: lp.Transition})
	}
	return l
}

// MachineToProto is the wire form of a machine.
func MachineToProto(m *fleet.Machine) *pb.Machine {
	return &pb.Machine{Id: m.ID, Hostname: m.Hostname, Kernel: m.Kernel, AgentVersion: m.AgentVersion, Ring: m.Ring,
		State: string(m.State), LastSeen: ts(m.LastSeen), Livepatch: LivepatchToProto(&m.Livepatch)}
}

// MachineFromProto is the machine a wire one describes.
func MachineFromProto(p *pb.Machine) fleet.Machine {
	return fleet.Machine{ID: p.Id, Hostname: p.Hostname, Kernel: p.Kernel, AgentVersion: p.AgentVersion, Ring: p.Ring,
		State: fleet.State(p.State), LastSeen: fromTS(p.LastSeen), Livepatch: LivepatchFromProto(p.Livepatch)}
}

// MachineDetailToProto is the wire form of a machine with its events.
func MachineDetailToProto(d *service.MachineDetail) *pb.Machine {
	out := MachineToProto(&d.Machine)
	for _, e := range d.Events {
		out.Events = append(out.Events, EventToProto(e))
	}
	return out
}

// MachineDetailFromProto is the machine and events a wire machine carries.
func MachineDetailFromProto(p *pb.Machine) service.MachineDetail {
	d := service.MachineDetail{Machine: MachineFromProto(p), Events: []fleet.Event{}}
	for _, e := range p.Events {
		d.Events = append(d.Events, EventFromProto(e))
	}
	return d
}

// EventToProto is the wire form of an event.
func EventToProto(e fleet.Event) *pb.Event {
	return &pb.Event{MachineId: e.Machine, Kind: string(e.Kind), At: ts(e.At), Patch: e.Patch, Detail: e.Detail, Log: e.Log}
}

// EventFromProto is the event a wire one describes.
func EventFromProto(p *pb.Event) fleet.Event {
	return fleet.Event{Machine: p.MachineId, Kind: fleet.EventKind(p.Kind), At: fromTS(p.At), Patch: p.Patch, Detail: p.Detail, Log: p.Log}
}

func (h *fleetHandlers) GetPatchHealth(ctx context.Context, r *pb.GetPatchHealthRequest) (*pb.PatchHealth, error) {
	if err := field("patch", r.Patch, true); err != nil {
		return nil, err
	}
	hs, err := h.svc.FleetHealth(ctx, r.Patch)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.PatchHealth{}
	for _, x := range hs {
		out.Rings = append(out.Rings, &pb.RingHealth{Ring: x.Ring, Applied: int32(x.Applied), Failed: int32(x.Failed), Halted: x.Halted, FirstApplied: ts(x.FirstApplied)})
	}
	return out, nil
}

// FleetHealth is service.FleetHealth on the server.
func (r Remote) FleetHealth(ctx context.Context, patch string) ([]service.RingHealth, error) {
	p, err := r.C.Fleet().GetPatchHealth(ctx, &pb.GetPatchHealthRequest{Patch: patch})
	if err != nil {
		return nil, err
	}
	out := []service.RingHealth{}
	for _, x := range p.Rings {
		out = append(out, service.RingHealth{Ring: x.Ring, Applied: int(x.Applied), Failed: int(x.Failed), Halted: x.Halted, FirstApplied: fromTS(x.FirstApplied)})
	}
	return out, nil
}
