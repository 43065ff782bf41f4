package api

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/openvex/go-vex/pkg/vex"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/fleet"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// Remote runs the service's use cases on a server: the same calls and
// results as *service.Service, over gRPC, so a front end prints the same
// either way.
type Remote struct{ C *Client }

// ListCVEs is service.ListCVEs on the server. The prioritizer's inputs are
// the server's: a query's own are refused rather than ignored.
func (r Remote) ListCVEs(ctx context.Context, q service.CVEQuery) (*service.CVEList, error) {
	if q.Priority != (service.PriorityInputs{}) {
		return nil, errServerInputs
	}
	req := &pb.ListCVEsRequest{File: q.File, MinCvss: q.MinCVSS, Status: string(q.Status), Limit: int32(min(q.Limit, 1<<30)),
		Kernel: q.Kernel, Affected: q.Affected, Profile: string(q.Profile), Sort: q.Sort, Tier: q.Tier, Text: q.Text}
	if !q.Since.IsZero() {
		req.Since = timestamppb.New(q.Since)
	}
	out := &service.CVEList{CVEs: []service.CVE{}}
	for {
		resp, err := r.C.CVEs.ListCVEs(ctx, req)
		if err != nil {
			return nil, err
		}
		out.Summary = SummaryFromProto(resp.Summary)
		for _, c := range resp.Cves {
			out.CVEs = append(out.CVEs, CVEFromProto(c))
		}
		if resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

var errServerInputs = status.Error(codes.InvalidArgument, "--kev and --epss are the server's (tuxtape serve --kev, --epss): leave them out with --server")

// ShowCVE is service.ShowCVE on the server.
func (r Remote) ShowCVE(ctx context.Context, id string, o service.ShowOptions) (*service.CVE, error) {
	if o.Priority != (service.PriorityInputs{}) {
		return nil, errServerInputs
	}
	p, err := r.C.CVEs.GetCVE(ctx, &pb.GetCVERequest{Id: id, Kernel: o.Kernel, Profile: string(o.Profile)})
	if err != nil {
		return nil, err
	}
	c := CVEFromProto(p)
	return &c, nil
}

// Kernels is service.Kernels on the server.
func (r Remote) Kernels(ctx context.Context) ([]service.KernelView, error) {
	resp, err := r.C.Kernel.ListKernels(ctx, &pb.ListKernelsRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]service.KernelView, 0, len(resp.Kernels))
	for _, k := range resp.Kernels {
		out = append(out, KernelFromProto(k))
	}
	return out, nil
}

// Kernel is service.Kernel on the server.
func (r Remote) Kernel(ctx context.Context, name string) (service.KernelView, error) {
	k, err := r.C.Kernel.GetKernel(ctx, &pb.GetKernelRequest{Name: name})
	if err != nil {
		return service.KernelView{}, err
	}
	return KernelFromProto(k), nil
}

// AddKernel is service.AddKernel on the server.
func (r Remote) AddKernel(ctx context.Context, o service.AddKernelOptions) (*kernel.Kernel, error) {
	req := &pb.AddKernelRequest{Name: o.Name, Release: o.Release, Version: o.Version, Arch: o.Arch, Source: o.Source, Ref: o.Ref,
		Config: o.Config, NoChangelog: o.NoChangelog, Exercise: o.Exercise}
	for _, p := range o.Patches {
		req.Patches = append(req.Patches, &pb.Patch{Name: p.Name, Data: p.Data})
	}
	for _, f := range o.Fixed {
		req.Fixed = append(req.Fixed, &pb.Patch{Name: f.Name, Data: f.Data})
	}
	k, err := r.C.Kernel.AddKernel(ctx, req)
	if err != nil {
		return nil, err
	}
	return KernelFromProto(k).Kernel, nil
}

// RemoveKernel is service.RemoveKernel on the server (the server audits
// the caller's token).
func (r Remote) RemoveKernel(ctx context.Context, name string, _ service.Actor) error {
	_, err := r.C.Kernel.RemoveKernel(ctx, &pb.RemoveKernelRequest{Name: name})
	return err
}

// VEX is service.VEX on the server.
func (r Remote) VEX(ctx context.Context, o service.VEXOptions) (*vex.VEX, error) {
	d, err := r.C.VEX.GetVEX(ctx, &pb.GetVEXRequest{Kernel: o.Kernel, Author: o.Author, Profile: string(o.Profile)})
	if err != nil {
		return nil, err
	}
	doc := new(vex.VEX)
	if err := json.Unmarshal(d.OpenvexJson, doc); err != nil {
		return nil, fmt.Errorf("read the server's VEX document: %w", err)
	}
	return doc, nil
}

// CreateToken is service.CreateToken on the server (the actor is the
// caller's token).
func (r Remote) CreateToken(ctx context.Context, o service.CreateTokenOptions) (authz.Token, string, error) {
	resp, err := r.C.Tokens.CreateToken(ctx, &pb.CreateTokenRequest{Role: string(o.Role), Machine: o.Machine, ExpiresSeconds: int64(o.Expires / time.Second)})
	if err != nil {
		return authz.Token{}, "", err
	}
	return TokenFromProto(resp.Token), resp.Secret, nil
}

// Tokens is service.Tokens on the server.
func (r Remote) Tokens(ctx context.Context) ([]authz.Token, error) {
	resp, err := r.C.Tokens.ListTokens(ctx, &pb.ListTokensRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]authz.Token, 0, len(resp.Tokens))
	for _, t := range resp.Tokens {
		out = append(out, TokenFromProto(t))
	}
	return out, nil
}

// RevokeToken is service.RevokeToken on the server.
func (r Remote) RevokeToken(ctx context.Context, id string, _ service.Actor) error {
	_, err := r.C.Tokens.RevokeToken(ctx, &pb.RevokeTokenRequest{Id: id})
	return err
}

// Audit is service.Audit on the server.
func (r Remote) Audit(ctx context.Context, limit int) ([]authz.AuditEntry, error) {
	resp, err := r.C.Audit.ListAudit(ctx, &pb.ListAuditRequest{Limit: int32(min(limit, 1<<30))})
	if err != nil {
		return nil, err
	}
	out := make([]authz.AuditEntry, 0, len(resp.Entries))
	for _, e := range resp.Entries {
		out = append(out, AuditFromProto(e))
	}
	return out, nil
}

// ListMachines is service.ListMachines on the server, page by page.
func (r Remote) ListMachines(ctx context.Context, q service.MachineQuery) ([]fleet.Machine, error) {
	if q.Limit < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: want 0 (all) or more", q.Limit)
	}
	if q.After != "" {
		// The server pages by its own tokens, not by ID.
		return nil, status.Error(codes.InvalidArgument, "a query from an ID on is for the local service: the server pages by its own tokens")
	}
	req := &pb.ListMachinesRequest{Kernel: q.Kernel, State: string(q.State)}
	out := []fleet.Machine{}
	for {
		resp, err := r.C.Fleet().ListMachines(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, m := range resp.Machines {
			out = append(out, MachineFromProto(m))
			if q.Limit > 0 && len(out) == q.Limit {
				return out, nil
			}
		}
		if resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

// Machine is service.Machine on the server.
func (r Remote) Machine(ctx context.Context, id string, events int) (service.MachineDetail, error) {
	if events < 0 || events > service.MaxEvents {
		return service.MachineDetail{}, status.Errorf(codes.InvalidArgument, "--events %d: want 0 up to %d", events, service.MaxEvents)
	}
	// 0 on the wire is the server's default; no events is asked as one
	// and dropped.
	n := int32(events)
	if events == 0 {
		n = 1
	}
	p, err := r.C.Fleet().GetMachine(ctx, &pb.GetMachineRequest{Id: id, Events: n})
	if err != nil {
		return service.MachineDetail{}, err
	}
	d := MachineDetailFromProto(p)
	if events == 0 {
		d.Events = []fleet.Event{}
	}
	return d, nil
}

// Profile is service.Profile on the server.
func (r Remote) Profile(ctx context.Context, name string, o service.ProfileOptions) (*profile.Profile, error) {
	p, err := r.C.Kernel.GetProfile(ctx, &pb.GetProfileRequest{Name: name, Profile: string(o.Choice), Refresh: o.Refresh})
	if err != nil {
		return nil, err
	}
	var out profile.Profile
	if err := json.Unmarshal(p.ProfileJson, &out); err != nil {
		return nil, fmt.Errorf("the server's profile of %s: %w", name, err)
	}
	return &out, nil
}
