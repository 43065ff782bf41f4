package api

import (
	"context"
	"encoding/json"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// patchHandlers translate the patch workflow's RPCs.
type patchHandlers struct {
	pb.UnimplementedPatchServiceServer
	svc *service.Service
}

func (h *patchHandlers) CreatePatch(ctx context.Context, r *pb.CreatePatchRequest) (*pb.PatchDetail, error) {
	for _, f := range []struct{ name, v string }{{"cve", r.Cve}, {"kernel", r.Kernel}, {"source", r.Source}, {"fixes_from", r.FixesFrom}} {
		if err := field(f.name, f.v, f.name == "cve" || f.name == "kernel"); err != nil {
			return nil, err
		}
	}
	d, err := h.svc.CreatePatch(ctx, service.CreatePatchOptions{CVE: r.Cve, Kernel: r.Kernel, Diff: r.Diff, Source: r.Source, FixesFrom: r.FixesFrom,
		AllowBuildChanges: r.AllowBuildChanges, Exercise: r.Exercise, By: actor(ctx)})
	if err != nil {
		return nil, grpcError(err)
	}
	return PatchDetailToProto(d), nil
}

func (h *patchHandlers) RevisePatch(ctx context.Context, r *pb.RevisePatchRequest) (*pb.PatchDetail, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	if err := field("source", r.Source, false); err != nil {
		return nil, err
	}
	d, err := h.svc.RevisePatchWith(ctx, service.ReviseOptions{ID: r.Id, Diff: r.Diff, Source: r.Source, AllowBuildChanges: r.AllowBuildChanges, WithPrerequisites: r.WithPrerequisites, Exercise: r.Exercise, By: actor(ctx)})
	if err != nil {
		return nil, grpcError(err)
	}
	return PatchDetailToProto(d), nil
}

func (h *patchHandlers) ListPatches(ctx context.Context, r *pb.ListPatchesRequest) (*pb.ListPatchesResponse, error) {
	for _, f := range []struct{ name, v string }{{"kernel", r.Kernel}, {"cve", r.Cve}, {"state", r.State}} {
		if err := field(f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	ps, err := h.svc.Patches(ctx, service.PatchQuery{Kernel: r.Kernel, CVE: r.Cve, State: r.State})
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListPatchesResponse{}
	for _, p := range ps {
		out.Patches = append(out.Patches, PatchToProto(p))
	}
	return out, nil
}

func (h *patchHandlers) GetPatch(ctx context.Context, r *pb.GetPatchRequest) (*pb.PatchDetail, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	d, err := h.svc.Patch(ctx, r.Id)
	if err != nil {
		return nil, grpcError(err)
	}
	return PatchDetailToProto(d), nil
}

func (h *patchHandlers) ReviewPatch(ctx context.Context, r *pb.ReviewPatchRequest) (*pb.PatchDetail, error) {
	for _, f := range []struct{ name, v string }{{"id", r.Id}, {"verdict", r.Verdict}, {"comment", r.Comment}} {
		if err := field(f.name, f.v, true); err != nil {
			return nil, err
		}
	}
	d, err := h.svc.ReviewPatch(ctx, service.ReviewOptions{ID: r.Id, Rev: int(r.Rev), Verdict: patch.Verdict(r.Verdict), Comment: r.Comment, By: actor(ctx)})
	if err != nil {
		return nil, reviewError(err)
	}
	return PatchDetailToProto(d), nil
}

func (h *patchHandlers) BuildPatchSet(ctx context.Context, r *pb.BuildPatchSetRequest) (*pb.PatchSet, error) {
	if err := field("kernel", r.Kernel, true); err != nil {
		return nil, err
	}
	s, err := h.svc.BuildPatchSet(ctx, r.Kernel, actor(ctx))
	if err != nil {
		return nil, grpcError(err)
	}
	return PatchSetToProto(s), nil
}

func (h *patchHandlers) ListPatchSets(ctx context.Context, r *pb.ListPatchSetsRequest) (*pb.ListPatchSetsResponse, error) {
	if err := field("kernel", r.Kernel, false); err != nil {
		return nil, err
	}
	ss, err := h.svc.PatchSets(ctx, r.Kernel)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListPatchSetsResponse{}
	for _, s := range ss {
		out.Sets = append(out.Sets, PatchSetToProto(s))
	}
	return out, nil
}

// PatchToProto is the wire form of a patch.
func PatchToProto(p patch.Patch) *pb.DeployablePatch {
	return &pb.DeployablePatch{Id: p.ID, Cve: p.CVE, Kernel: p.Kernel, Rev: int32(p.Rev), State: string(p.State), Author: p.Author, Created: ts(p.Created), Updated: ts(p.Updated)}
}

// PatchFromProto is the patch a wire one describes.
func PatchFromProto(p *pb.DeployablePatch) patch.Patch {
	return patch.Patch{ID: p.Id, CVE: p.Cve, Kernel: p.Kernel, Rev: int(p.Rev), State: patch.State(p.State), Author: p.Author, Created: fromTS(p.Created), Updated: fromTS(p.Updated)}
}

// PatchDetailToProto is the wire form of a patch's detail.
func PatchDetailToProto(d service.PatchDetail) *pb.PatchDetail {
	out := &pb.PatchDetail{Patch: PatchToProto(d.Patch), Approvals: d.Approvals, RequiredApprovals: int32(d.Required)}
	for _, r := range d.Revisions {
		out.Revisions = append(out.Revisions, &pb.PatchRevision{Rev: int32(r.Rev), Author: r.Author, Created: ts(r.Created), Source: r.Source, Diff: r.Diff,
			Job: r.Job, Module: r.Module, Vet: r.Vet, Risk: r.Risk, Refusal: r.Refusal, Error: r.Error, RefusalCode: r.RefusalCode, Prerequisites: r.Prerequisites, Exercise: r.Exercise, FixSource: r.FixSource})
	}
	for _, r := range d.Reviews {
		out.Reviews = append(out.Reviews, &pb.PatchReview{Rev: int32(r.Rev), Reviewer: r.Reviewer, Verdict: string(r.Verdict), Comment: r.Comment, At: ts(r.At)})
	}
	return out
}

// PatchDetailFromProto is the detail a wire one describes.
func PatchDetailFromProto(p *pb.PatchDetail) service.PatchDetail {
	d := service.PatchDetail{Patch: PatchFromProto(p.Patch), Approvals: p.Approvals, Required: int(p.RequiredApprovals),
		Revisions: []patch.Revision{}, Reviews: []patch.Review{}}
	if d.Approvals == nil {
		d.Approvals = []string{}
	}
	for _, r := range p.Revisions {
		d.Revisions = append(d.Revisions, patch.Revision{Patch: d.ID, Rev: int(r.Rev), Author: r.Author, Created: fromTS(r.Created), Source: r.Source, Diff: r.Diff,
			Job: r.Job, Module: r.Module, Vet: raw(r.Vet), Risk: raw(r.Risk), Refusal: r.Refusal, Error: r.Error, RefusalCode: r.RefusalCode, Prerequisites: raw(r.Prerequisites), Exercise: r.Exercise, FixSource: r.FixSource})
	}
	for _, r := range p.Reviews {
		d.Reviews = append(d.Reviews, patch.Review{Patch: d.ID, Rev: int(r.Rev), Reviewer: r.Reviewer, Verdict: patch.Verdict(r.Verdict), Comment: r.Comment, At: fromTS(r.At)})
	}
	return d
}

// PatchSetToProto is the wire form of a patch set.
func PatchSetToProto(s patch.Set) *pb.PatchSet {
	return &pb.PatchSet{Kernel: s.Kernel, Version: int32(s.Version), State: string(s.State), ModuleName: s.Module, ModuleSha256: s.SHA256, Job: s.Job,
		Cves: s.CVEs, Patches: s.Patches, Created: ts(s.Created), Error: s.Error}
}

// PatchSetFromProto is the patch set a wire one describes.
func PatchSetFromProto(p *pb.PatchSet) patch.Set {
	s := patch.Set{Kernel: p.Kernel, Version: int(p.Version), State: patch.SetState(p.State), Module: p.ModuleName, SHA256: p.ModuleSha256, Job: p.Job,
		CVEs: p.Cves, Patches: p.Patches, Created: fromTS(p.Created), Error: p.Error}
	if s.CVEs == nil {
		s.CVEs = []string{}
	}
	if s.Patches == nil {
		s.Patches = []string{}
	}
	return s
}

// CreatePatch is service.CreatePatch on the server.
func (r Remote) CreatePatch(ctx context.Context, o service.CreatePatchOptions) (service.PatchDetail, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).CreatePatch(ctx, &pb.CreatePatchRequest{Cve: o.CVE, Kernel: o.Kernel, Diff: o.Diff, Source: o.Source, FixesFrom: o.FixesFrom,
		AllowBuildChanges: o.AllowBuildChanges, Exercise: o.Exercise})
	if err != nil {
		return service.PatchDetail{}, err
	}
	return PatchDetailFromProto(p), nil
}

// RevisePatch is service.RevisePatch on the server.
func (r Remote) RevisePatch(ctx context.Context, id string, diff []byte, source string, by service.Actor) (service.PatchDetail, error) {
	return r.RevisePatchWith(ctx, service.ReviseOptions{ID: id, Diff: diff, Source: source, By: by})
}

// RevisePatchWith is service.RevisePatchWith on the server.
func (r Remote) RevisePatchWith(ctx context.Context, o service.ReviseOptions) (service.PatchDetail, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).RevisePatch(ctx, &pb.RevisePatchRequest{Id: o.ID, Diff: o.Diff, Source: o.Source, AllowBuildChanges: o.AllowBuildChanges, WithPrerequisites: o.WithPrerequisites, Exercise: o.Exercise})
	if err != nil {
		return service.PatchDetail{}, err
	}
	return PatchDetailFromProto(p), nil
}

// Patches is service.Patches on the server.
func (r Remote) Patches(ctx context.Context, q service.PatchQuery) ([]patch.Patch, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).ListPatches(ctx, &pb.ListPatchesRequest{Kernel: q.Kernel, Cve: q.CVE, State: q.State})
	if err != nil {
		return nil, err
	}
	out := []patch.Patch{}
	for _, x := range p.Patches {
		out = append(out, PatchFromProto(x))
	}
	return out, nil
}

// Patch is service.Patch on the server.
func (r Remote) Patch(ctx context.Context, id string) (service.PatchDetail, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).GetPatch(ctx, &pb.GetPatchRequest{Id: id})
	if err != nil {
		return service.PatchDetail{}, err
	}
	return PatchDetailFromProto(p), nil
}

// ReviewPatch is service.ReviewPatch on the server.
func (r Remote) ReviewPatch(ctx context.Context, o service.ReviewOptions) (service.PatchDetail, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).ReviewPatch(ctx, &pb.ReviewPatchRequest{Id: o.ID, Rev: int32(o.Rev), Verdict: string(o.Verdict), Comment: o.Comment})
	if err != nil {
		return service.PatchDetail{}, err
	}
	return PatchDetailFromProto(p), nil
}

// BuildPatchSet is service.BuildPatchSet on the server.
func (r Remote) BuildPatchSet(ctx context.Context, kernel string, _ service.Actor) (patch.Set, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).BuildPatchSet(ctx, &pb.BuildPatchSetRequest{Kernel: kernel})
	if err != nil {
		return patch.Set{}, err
	}
	return PatchSetFromProto(p), nil
}

// PatchSets is service.PatchSets on the server.
func (r Remote) PatchSets(ctx context.Context, kernel string) ([]patch.Set, error) {
	p, err := pb.NewPatchServiceClient(r.C.conn).ListPatchSets(ctx, &pb.ListPatchSetsRequest{Kernel: kernel})
	if err != nil {
		return nil, err
	}
	out := []patch.Set{}
	for _, s := range p.Sets {
		out = append(out, PatchSetFromProto(s))
	}
	return out, nil
}

// reviewError maps the two-person rule's refusals: they are the caller's
// role in this patch, not a malformed request.
func reviewError(err error) error {
	if errors.Is(err, service.ErrOwnRevision) {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	if errors.Is(err, service.ErrNotVetted) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return grpcError(err)
}

func raw(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return b
}
