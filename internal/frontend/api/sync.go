package api

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/cvesync"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// syncHandlers translate the sync RPCs.
type syncHandlers struct {
	pb.UnimplementedSyncServiceServer
	svc *service.Service
}

func (h *syncHandlers) StartSync(ctx context.Context, r *pb.StartSyncRequest) (*pb.SyncSummary, error) {
	if err := field("rev", r.Rev, false); err != nil {
		return nil, err
	}
	sum, err := h.svc.Sync(ctx, service.SyncOptions{Rev: r.Rev, Full: r.Full, NoFetch: r.NoFetch, By: actor(ctx)})
	if errors.Is(err, cvesync.ErrSyncRunning) {
		return nil, status.Error(codes.Aborted, err.Error())
	}
	if err != nil {
		return nil, grpcError(err)
	}
	return SummaryOfSyncToProto(sum), nil
}

func (h *syncHandlers) GetSyncStatus(ctx context.Context, _ *pb.GetSyncStatusRequest) (*pb.SyncStatus, error) {
	st, err := h.svc.SyncStatus(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.SyncStatus{Source: st.Source, Commit: st.Commit, SyncedAt: ts(st.SyncedAt), Records: map[string]int32{}, Problems: problemsToProto(st.Problems)}
	for k, n := range st.Records {
		out.Records[string(k)] = int32(n)
	}
	if st.LastRun != nil {
		out.LastRun = SummaryOfSyncToProto(*st.LastRun)
	}
	return out, nil
}

func problemsToProto(ps []cvesync.Problem) []*pb.SyncProblem {
	var out []*pb.SyncProblem
	for _, p := range ps {
		out = append(out, &pb.SyncProblem{Id: p.ID, File: p.File, Reason: p.Reason})
	}
	return out
}

func problemsFromProto(ps []*pb.SyncProblem) []cvesync.Problem {
	var out []cvesync.Problem
	for _, p := range ps {
		out = append(out, cvesync.Problem{ID: p.Id, File: p.File, Reason: p.Reason})
	}
	return out
}

// SummaryOfSyncToProto is the wire form of a sync's summary.
func SummaryOfSyncToProto(s cvesync.Summary) *pb.SyncSummary {
	return &pb.SyncSummary{Mode: s.Mode, Source: s.Source, Commit: s.Commit, PreviousCommit: s.PreviousCommit,
		RecordsRead: int32(s.Records), Added: int32(s.Added), Updated: int32(s.Updated), Rejected: int32(s.Rejected),
		Deleted: int32(s.Deleted), Malformed: int32(s.Malformed), Kept: int32(s.Kept), Problems: problemsToProto(s.Problems),
		DurationNs: int64(s.Duration)}
}

// SummaryOfSyncFromProto is the summary a wire one describes.
func SummaryOfSyncFromProto(p *pb.SyncSummary) cvesync.Summary {
	return cvesync.Summary{Mode: p.Mode, Source: p.Source, Commit: p.Commit, PreviousCommit: p.PreviousCommit,
		Records: int(p.RecordsRead), Added: int(p.Added), Updated: int(p.Updated), Rejected: int(p.Rejected),
		Deleted: int(p.Deleted), Malformed: int(p.Malformed), Kept: int(p.Kept), Problems: problemsFromProto(p.Problems),
		Duration: time.Duration(p.DurationNs)}
}

// Sync is service.Sync on the server, with the server's own source.
func (r Remote) Sync(ctx context.Context, o service.SyncOptions) (cvesync.Summary, error) {
	if o.Source != "" {
		return cvesync.Summary{}, status.Error(codes.InvalidArgument, "--source names a repository on the server's machine: the server syncs from its own source; leave --source out with --server")
	}
	p, err := pb.NewSyncServiceClient(r.C.conn).StartSync(ctx, &pb.StartSyncRequest{Rev: o.Rev, Full: o.Full, NoFetch: o.NoFetch})
	if err != nil {
		return cvesync.Summary{}, err
	}
	return SummaryOfSyncFromProto(p), nil
}

// SyncStatus is service.SyncStatus on the server.
func (r Remote) SyncStatus(ctx context.Context) (service.SyncStatus, error) {
	p, err := pb.NewSyncServiceClient(r.C.conn).GetSyncStatus(ctx, &pb.GetSyncStatusRequest{})
	if err != nil {
		return service.SyncStatus{}, err
	}
	st := service.SyncStatus{Source: p.Source, Commit: p.Commit, SyncedAt: fromTS(p.SyncedAt), Records: map[vulns.Status]int{}, Problems: problemsFromProto(p.Problems)}
	if st.Problems == nil {
		st.Problems = []cvesync.Problem{}
	}
	for k, n := range p.Records {
		st.Records[vulns.Status(k)] = int(n)
	}
	if p.LastRun != nil {
		s := SummaryOfSyncFromProto(p.LastRun)
		st.LastRun = &s
	}
	return st, nil
}
