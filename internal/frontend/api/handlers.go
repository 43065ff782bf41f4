package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/analysis/openvex"
	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// handlers translates each RPC onto the service layer.
type handlers struct {
	pb.UnimplementedCVEServiceServer
	pb.UnimplementedKernelServiceServer
	pb.UnimplementedVEXServiceServer
	pb.UnimplementedTokenServiceServer
	pb.UnimplementedAuditServiceServer

	svc      *service.Service
	log      *slog.Logger
	priority service.PriorityInputs
}

func (h *handlers) ListCVEs(ctx context.Context, r *pb.ListCVEsRequest) (*pb.ListCVEsResponse, error) {
	for _, f := range []struct{ name, v string }{{"file", r.File}, {"status", r.Status}, {"kernel", r.Kernel}, {"profile", r.Profile}, {"sort", r.Sort}, {"tier", r.Tier}, {"text", r.Text}} {
		if err := field(f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	if r.Limit < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "limit is %d; want 0 (all) or more", r.Limit)
	}
	size := int(r.PageSize)
	switch {
	case size < 0 || size > MaxPage:
		return nil, status.Errorf(codes.InvalidArgument, "page_size is %d; want 0 (the default, %d) up to %d", size, DefaultPage, MaxPage)
	case size == 0:
		size = DefaultPage
	}
	q := service.CVEQuery{Since: fromTS(r.Since), File: r.File, MinCVSS: r.MinCvss, Status: vulns.Status(r.Status), Limit: int(r.Limit),
		Kernel: r.Kernel, Affected: r.Affected, Profile: service.ProfileChoice(r.Profile), Sort: r.Sort, Priority: h.priority, Tier: r.Tier, Text: r.Text}
	list, err := h.svc.ListCVEs(ctx, q)
	if err != nil {
		return nil, grpcError(err)
	}
	key := pageKey(r)
	from, err := pageFrom(r.PageToken, key)
	if err != nil {
		return nil, err
	}
	from = min(from, len(list.CVEs))
	to := min(from+size, len(list.CVEs))
	out := &pb.ListCVEsResponse{Summary: SummaryToProto(list.Summary), Cves: make([]*pb.CVE, 0, to-from)}
	for i := from; i < to; i++ {
		out.Cves = append(out.Cves, CVEToProto(&list.CVEs[i]))
	}
	if to < len(list.CVEs) {
		out.NextPageToken = pageToken(to, key)
	}
	return out, nil
}

func (h *handlers) GetCVE(ctx context.Context, r *pb.GetCVERequest) (*pb.CVE, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	if err := field("kernel", r.Kernel, false); err != nil {
		return nil, err
	}
	c, err := h.svc.ShowCVE(ctx, r.Id, service.ShowOptions{Kernel: r.Kernel, Profile: service.ProfileChoice(r.Profile), Priority: h.priority})
	if err != nil {
		return nil, grpcError(err)
	}
	return CVEToProto(c), nil
}

func (h *handlers) AddKernel(ctx context.Context, r *pb.AddKernelRequest) (*pb.Kernel, error) {
	for _, f := range []struct {
		name, v  string
		required bool
	}{{"name", r.Name, true}, {"release", r.Release, true}, {"version", r.Version, false}, {"arch", r.Arch, false}, {"source", r.Source, true}, {"ref", r.Ref, false}} {
		if err := field(f.name, f.v, f.required); err != nil {
			return nil, err
		}
	}
	o := service.AddKernelOptions{Name: r.Name, Release: r.Release, Version: r.Version, Arch: r.Arch, Source: r.Source, Ref: r.Ref,
		Config: r.Config, NoChangelog: r.NoChangelog, Exercise: r.Exercise, Remote: true, By: actor(ctx)}
	for _, p := range r.Patches {
		if err := field("patches.name", p.Name, true); err != nil {
			return nil, err
		}
		o.Patches = append(o.Patches, kernel.Patch{Name: p.Name, Data: p.Data})
	}
	for _, f := range r.Fixed {
		if err := field("fixed.name", f.Name, true); err != nil {
			return nil, err
		}
		o.Fixed = append(o.Fixed, service.NamedData{Name: f.Name, Data: f.Data})
	}
	if _, err := h.svc.AddKernel(ctx, o); err != nil {
		return nil, grpcError(err)
	}
	v, err := h.svc.Kernel(ctx, r.Name)
	if err != nil {
		return nil, grpcError(err)
	}
	return KernelToProto(v), nil
}

func (h *handlers) ListKernels(ctx context.Context, _ *pb.ListKernelsRequest) (*pb.ListKernelsResponse, error) {
	vs, err := h.svc.Kernels(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListKernelsResponse{}
	for _, v := range vs {
		out.Kernels = append(out.Kernels, KernelToProto(v))
	}
	return out, nil
}

func (h *handlers) GetKernel(ctx context.Context, r *pb.GetKernelRequest) (*pb.Kernel, error) {
	if err := field("name", r.Name, true); err != nil {
		return nil, err
	}
	v, err := h.svc.Kernel(ctx, r.Name)
	if err != nil {
		return nil, grpcError(err)
	}
	return KernelToProto(v), nil
}

func (h *handlers) RemoveKernel(ctx context.Context, r *pb.RemoveKernelRequest) (*pb.RemoveKernelResponse, error) {
	if err := field("name", r.Name, true); err != nil {
		return nil, err
	}
	if err := h.svc.RemoveKernel(ctx, r.Name, actor(ctx)); err != nil {
		return nil, grpcError(err)
	}
	return &pb.RemoveKernelResponse{}, nil
}

func (h *handlers) GetVEX(ctx context.Context, r *pb.GetVEXRequest) (*pb.VEXDocument, error) {
	if err := field("kernel", r.Kernel, true); err != nil {
		return nil, err
	}
	if err := field("author", r.Author, false); err != nil {
		return nil, err
	}
	author := r.Author
	if author == "" {
		author = openvex.Author
	}
	doc, err := h.svc.VEX(ctx, service.VEXOptions{Kernel: r.Kernel, Author: author, Profile: service.ProfileChoice(r.Profile)})
	if err != nil {
		return nil, grpcError(err)
	}
	var b bytes.Buffer
	if err := openvex.Write(&b, doc); err != nil {
		return nil, grpcError(err)
	}
	return &pb.VEXDocument{OpenvexJson: b.Bytes(), Statements: int32(len(doc.Statements))}, nil
}

func (h *handlers) CreateToken(ctx context.Context, r *pb.CreateTokenRequest) (*pb.CreateTokenResponse, error) {
	if err := field("role", r.Role, true); err != nil {
		return nil, err
	}
	if err := field("machine", r.Machine, false); err != nil {
		return nil, err
	}
	if r.ExpiresSeconds < 0 || r.ExpiresSeconds > int64((100*365*24*time.Hour)/time.Second) {
		return nil, status.Errorf(codes.InvalidArgument, "expires_seconds is %d; want 0 (never) up to a hundred years", r.ExpiresSeconds)
	}
	t, secret, err := h.svc.CreateToken(ctx, service.CreateTokenOptions{Role: authz.Role(r.Role), Machine: r.Machine,
		Expires: time.Duration(r.ExpiresSeconds) * time.Second, By: actor(ctx)})
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.CreateTokenResponse{Token: TokenToProto(t), Secret: secret}, nil
}

func (h *handlers) ListTokens(ctx context.Context, _ *pb.ListTokensRequest) (*pb.ListTokensResponse, error) {
	ts, err := h.svc.Tokens(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListTokensResponse{}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, TokenToProto(t))
	}
	return out, nil
}

func (h *handlers) RevokeToken(ctx context.Context, r *pb.RevokeTokenRequest) (*pb.RevokeTokenResponse, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	if err := h.svc.RevokeToken(ctx, r.Id, actor(ctx)); err != nil {
		return nil, grpcError(err)
	}
	return &pb.RevokeTokenResponse{}, nil
}

func (h *handlers) ListAudit(ctx context.Context, r *pb.ListAuditRequest) (*pb.ListAuditResponse, error) {
	if r.Limit < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "limit is %d; want 0 (all) or more", r.Limit)
	}
	es, err := h.svc.Audit(ctx, int(r.Limit))
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListAuditResponse{}
	for _, e := range es {
		out.Entries = append(out.Entries, AuditToProto(e))
	}
	return out, nil
}

func (h *handlers) GetProfile(ctx context.Context, r *pb.GetProfileRequest) (*pb.BuildProfile, error) {
	if err := field("name", r.Name, true); err != nil {
		return nil, err
	}
	choice := service.ProfileChoice(r.Profile)
	if choice == service.ProfileNone {
		return nil, status.Error(codes.InvalidArgument, "profile none has no profile to show: want real, static or empty (the best there is)")
	}
	if err := choice.Valid(); err != nil {
		return nil, grpcError(err)
	}
	p, err := h.svc.Profile(ctx, r.Name, service.ProfileOptions{Choice: choice, Refresh: r.Refresh})
	if err != nil {
		return nil, grpcError(err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.BuildProfile{ProfileJson: data}, nil
}
