package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// Builder-side bounds.
const (
	maxLeaseSeconds = 3600
	maxWaitSeconds  = 60
	maxLogLines     = 10_000
)

// jobHandlers translate the builder and job RPCs.
type jobHandlers struct {
	pb.UnimplementedBuilderServiceServer
	pb.UnimplementedJobServiceServer
	svc *service.Service
}

// builderHeader names the builder process in every builder call: one
// builder token may run several builder processes, each with its leases.
const builderHeader = "tuxtape-builder"

var builderNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// builderID is the calling builder: its token's ID and the name in its
// header, so that a builder can act only as itself (another token's
// builders are out of its reach).
func builderID(ctx context.Context) (string, error) {
	t, _ := caller(ctx)
	md, _ := metadata.FromIncomingContext(ctx)
	names := md.Get(builderHeader)
	if len(names) != 1 || !builderNameRE.MatchString(names[0]) {
		return "", status.Errorf(codes.InvalidArgument, "a builder call needs one %s header with the builder's name (letters, digits, '.', '_', '-'; at most 64)", builderHeader)
	}
	return t.ID + ":" + names[0], nil
}

func leaseErr(err error) error {
	if errors.Is(err, store.ErrLeaseLost) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return grpcError(err)
}

func seconds(name string, v int32, max int) (time.Duration, error) {
	if v < 0 || int(v) > max {
		return 0, status.Errorf(codes.InvalidArgument, "%s is %d; want 0 (the default) up to %d", name, v, max)
	}
	return time.Duration(v) * time.Second, nil
}

func (h *jobHandlers) RegisterBuilder(ctx context.Context, r *pb.RegisterBuilderRequest) (*pb.Builder, error) {
	for _, f := range []struct{ name, v string }{{"name", r.Name}, {"arch", r.Arch}} {
		if err := field(f.name, f.v, f.name == "name"); err != nil {
			return nil, err
		}
	}
	for _, k := range r.Kernels {
		if err := field("kernels", k, true); err != nil {
			return nil, err
		}
	}
	id, err := builderID(ctx)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(id, ":"+r.Name) {
		return nil, status.Errorf(codes.InvalidArgument, "name %q is not the name in the %s header", r.Name, builderHeader)
	}
	b, err := h.svc.RegisterBuilder(ctx, job.Builder{ID: id, Name: r.Name, Arch: r.Arch, Cores: int(r.Cores), Kernels: r.Kernels})
	if err != nil {
		return nil, grpcError(err)
	}
	return BuilderToProto(b), nil
}

func (h *jobHandlers) ClaimJob(ctx context.Context, r *pb.ClaimJobRequest) (*pb.ClaimJobResponse, error) {
	bid, err := builderID(ctx)
	if err != nil {
		return nil, err
	}
	lease, err := seconds("lease_seconds", r.LeaseSeconds, maxLeaseSeconds)
	if err != nil {
		return nil, err
	}
	wait, err := seconds("wait_seconds", r.WaitSeconds, maxWaitSeconds)
	if err != nil {
		return nil, err
	}
	if len(r.Kinds) > len(job.Kinds) {
		return nil, status.Errorf(codes.InvalidArgument, "kinds has %d entries", len(r.Kinds))
	}
	kinds := make([]job.Kind, len(r.Kinds))
	for i, k := range r.Kinds {
		kinds[i] = job.Kind(k)
	}
	j, ok, err := h.svc.ClaimJob(ctx, bid, kinds, lease, wait)
	if err != nil {
		return nil, grpcError(err)
	}
	if !ok {
		return &pb.ClaimJobResponse{}, nil
	}
	return &pb.ClaimJobResponse{Found: true, Job: JobToProto(j)}, nil
}

func (h *jobHandlers) RenewJob(ctx context.Context, r *pb.RenewJobRequest) (*pb.RenewJobResponse, error) {
	bid, err := builderID(ctx)
	if err != nil {
		return nil, err
	}
	if err := jobID(r.Id); err != nil {
		return nil, err
	}
	lease, err := seconds("lease_seconds", r.LeaseSeconds, maxLeaseSeconds)
	if err != nil {
		return nil, err
	}
	c, err := h.svc.RenewJob(ctx, r.Id, bid, lease)
	if err != nil {
		return nil, leaseErr(err)
	}
	return &pb.RenewJobResponse{Cancelled: c}, nil
}

func (h *jobHandlers) AppendJobLog(ctx context.Context, r *pb.AppendJobLogRequest) (*pb.AppendJobLogResponse, error) {
	bid, err := builderID(ctx)
	if err != nil {
		return nil, err
	}
	if err := jobID(r.Id); err != nil {
		return nil, err
	}
	if len(r.Lines) > maxLogLines {
		return nil, status.Errorf(codes.InvalidArgument, "lines has %d entries; at most %d a call", len(r.Lines), maxLogLines)
	}
	if err := h.svc.AppendJobLog(ctx, r.Id, bid, r.Lines); err != nil {
		return nil, leaseErr(err)
	}
	return &pb.AppendJobLogResponse{}, nil
}

func (h *jobHandlers) UploadArtifact(ctx context.Context, r *pb.UploadArtifactRequest) (*pb.UploadArtifactResponse, error) {
	bid, err := builderID(ctx)
	if err != nil {
		return nil, err
	}
	if err := jobID(r.Id); err != nil {
		return nil, err
	}
	if r.Artifact == nil {
		return nil, status.Error(codes.InvalidArgument, "artifact is required")
	}
	if err := h.svc.PutArtifact(ctx, r.Id, bid, ArtifactFromProto(r.Artifact), r.Data); err != nil {
		return nil, leaseErr(err)
	}
	return &pb.UploadArtifactResponse{}, nil
}

func (h *jobHandlers) FinishJob(ctx context.Context, r *pb.FinishJobRequest) (*pb.FinishJobResponse, error) {
	bid, err := builderID(ctx)
	if err != nil {
		return nil, err
	}
	if err := jobID(r.Id); err != nil {
		return nil, err
	}
	o := service.FinishOptions{OK: r.Ok, Error: r.Error, Result: r.Result}
	for _, a := range r.Artifacts {
		o.Artifacts = append(o.Artifacts, ArtifactFromProto(a))
	}
	state, err := h.svc.FinishJob(ctx, r.Id, bid, o)
	if err != nil {
		return nil, leaseErr(err)
	}
	return &pb.FinishJobResponse{State: string(state)}, nil
}

func jobID(id string) error {
	if !job.ValidID(id) {
		return status.Errorf(codes.InvalidArgument, "id %q is not a job ID (16 hex digits)", id)
	}
	return nil
}

func attempts(v int32) (int, error) {
	if v < 0 || v > 20 {
		return 0, status.Errorf(codes.InvalidArgument, "max_attempts is %d; want 0 (the default) up to 20", v)
	}
	return int(v), nil
}

func (h *jobHandlers) SubmitKernelBuild(ctx context.Context, r *pb.SubmitKernelBuildRequest) (*pb.Job, error) {
	if err := field("kernel", r.Kernel, true); err != nil {
		return nil, err
	}
	n, err := attempts(r.MaxAttempts)
	if err != nil {
		return nil, err
	}
	if r.Jobs < 0 || r.Jobs > 4096 {
		return nil, status.Errorf(codes.InvalidArgument, "jobs is %d", r.Jobs)
	}
	j, err := h.svc.SubmitKernelBuild(ctx, r.Kernel, int(r.Jobs), service.SubmitOptions{By: actor(ctx), MaxAttempts: n})
	if err != nil {
		return nil, grpcError(err)
	}
	return JobToProto(j), nil
}

func (h *jobHandlers) SubmitPatchBuild(ctx context.Context, r *pb.SubmitPatchBuildRequest) (*pb.Job, error) {
	if err := field("kernel", r.Kernel, true); err != nil {
		return nil, err
	}
	if err := field("module", r.Module, false); err != nil {
		return nil, err
	}
	n, err := attempts(r.MaxAttempts)
	if err != nil {
		return nil, err
	}
	p := service.PatchJobOptions{Kernel: r.Kernel, Module: r.Module, Replace: r.Replace}
	for _, f := range r.Fixes {
		if err := field("fixes.name", f.Name, true); err != nil {
			return nil, err
		}
		p.Fixes = append(p.Fixes, job.Fix{Name: f.Name, Diff: f.Data})
	}
	j, err := h.svc.SubmitPatchBuild(ctx, p, service.SubmitOptions{By: actor(ctx), MaxAttempts: n})
	if err != nil {
		return nil, grpcError(err)
	}
	return JobToProto(j), nil
}

func (h *jobHandlers) ListJobs(ctx context.Context, r *pb.ListJobsRequest) (*pb.ListJobsResponse, error) {
	for _, f := range []struct{ name, v string }{{"state", r.State}, {"kernel", r.Kernel}} {
		if err := field(f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	js, err := h.svc.Jobs(ctx, service.JobQuery{State: r.State, Kernel: r.Kernel, Limit: int(r.Limit)})
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListJobsResponse{}
	for _, j := range js {
		out.Jobs = append(out.Jobs, JobToProto(j))
	}
	return out, nil
}

func (h *jobHandlers) GetJob(ctx context.Context, r *pb.GetJobRequest) (*pb.JobDetail, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	d, err := h.svc.Job(ctx, r.Id)
	if err != nil {
		return nil, grpcError(err)
	}
	return JobDetailToProto(d), nil
}

func (h *jobHandlers) WatchJobLog(r *pb.WatchJobLogRequest, ss pb.JobService_WatchJobLogServer) error {
	if err := field("id", r.Id, true); err != nil {
		return err
	}
	if r.AfterSeq < 0 {
		return status.Errorf(codes.InvalidArgument, "after_seq is %d", r.AfterSeq)
	}
	err := h.svc.JobLog(ss.Context(), r.Id, service.JobLogOptions{After: r.AfterSeq, Follow: r.Follow}, func(l store.JobLogLine) error {
		return ss.Send(&pb.JobLogLine{Seq: l.Seq, At: ts(l.At), Text: l.Text})
	})
	return grpcError(err)
}

func (h *jobHandlers) CancelJob(ctx context.Context, r *pb.CancelJobRequest) (*pb.CancelJobResponse, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	st, err := h.svc.CancelJob(ctx, r.Id, actor(ctx))
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.CancelJobResponse{State: string(st)}, nil
}

func (h *jobHandlers) GetArtifact(ctx context.Context, r *pb.GetArtifactRequest) (*pb.ArtifactData, error) {
	if err := field("id", r.Id, true); err != nil {
		return nil, err
	}
	if err := field("name", r.Name, true); err != nil {
		return nil, err
	}
	f, a, err := h.svc.OpenArtifact(ctx, r.Id, r.Name)
	if err != nil {
		return nil, grpcError(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, service.MaxArtifact+1))
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.ArtifactData{Artifact: ArtifactToProto(a), Data: data}, nil
}

func (h *jobHandlers) ListBuilders(ctx context.Context, _ *pb.ListBuildersRequest) (*pb.ListBuildersResponse, error) {
	bs, err := h.svc.Builders(ctx)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pb.ListBuildersResponse{}
	for _, b := range bs {
		out.Builders = append(out.Builders, BuilderToProto(b))
	}
	return out, nil
}

// JobToProto is the wire form of a job.
func JobToProto(j job.Job) *pb.Job {
	return &pb.Job{Id: j.ID, Kind: string(j.Kind), State: string(j.State), Kernel: j.Kernel, Attempts: int32(j.Attempts), MaxAttempts: int32(j.MaxAttempts),
		Builder: j.Builder, LeaseUntil: ts(j.LeaseUntil), Created: ts(j.Created), Updated: ts(j.Updated), By: j.By, Error: j.Error, Spec: j.Spec, Result: j.Result}
}

// JobFromProto is the job a wire one describes.
func JobFromProto(p *pb.Job) job.Job {
	return job.Job{ID: p.Id, Kind: job.Kind(p.Kind), State: job.State(p.State), Kernel: p.Kernel, Attempts: int(p.Attempts), MaxAttempts: int(p.MaxAttempts),
		Builder: p.Builder, LeaseUntil: fromTS(p.LeaseUntil), Created: fromTS(p.Created), Updated: fromTS(p.Updated), By: p.By, Error: p.Error, Spec: p.Spec, Result: p.Result}
}

// JobDetailToProto is the wire form of a job's detail.
func JobDetailToProto(d service.JobDetail) *pb.JobDetail {
	out := &pb.JobDetail{Job: JobToProto(d.Job)}
	for _, a := range d.Artifacts {
		out.Artifacts = append(out.Artifacts, ArtifactToProto(a))
	}
	return out
}

// ArtifactToProto is the wire form of an artifact's record.
func ArtifactToProto(a job.Artifact) *pb.Artifact {
	return &pb.Artifact{Name: a.Name, Sha256: a.SHA256, Size: a.Size}
}

// ArtifactFromProto is the artifact record a wire one describes.
func ArtifactFromProto(p *pb.Artifact) job.Artifact {
	return job.Artifact{Name: p.Name, SHA256: p.Sha256, Size: p.Size}
}

// BuilderToProto is the wire form of a builder.
func BuilderToProto(b job.Builder) *pb.Builder {
	return &pb.Builder{Id: b.ID, Name: b.Name, Arch: b.Arch, Cores: int32(b.Cores), Kernels: b.Kernels, Registered: ts(b.Register), Seen: ts(b.Seen)}
}

// BuilderFromProto is the builder a wire one describes.
func BuilderFromProto(p *pb.Builder) job.Builder {
	return job.Builder{ID: p.Id, Name: p.Name, Arch: p.Arch, Cores: int(p.Cores), Kernels: p.Kernels, Register: fromTS(p.Registered), Seen: fromTS(p.Seen)}
}

// BuilderClient is service.JobServer over the API: what a builder worker
// calls, as the token it dialled with and its Name.
type BuilderClient struct {
	C    *Client
	Name string
}

func (b BuilderClient) svc() pb.BuilderServiceClient { return pb.NewBuilderServiceClient(b.C.conn) }

func (b BuilderClient) as(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, builderHeader, b.Name)
}

// Register registers the builder.
func (b BuilderClient) Register(ctx context.Context, bl job.Builder) (job.Builder, error) {
	p, err := b.svc().RegisterBuilder(b.as(ctx), &pb.RegisterBuilderRequest{Name: bl.Name, Arch: bl.Arch, Cores: int32(bl.Cores), Kernels: bl.Kernels})
	if err != nil {
		return job.Builder{}, err
	}
	return BuilderFromProto(p), nil
}

// Claim leases a job.
func (b BuilderClient) Claim(ctx context.Context, kinds []job.Kind, lease, wait time.Duration) (job.Job, bool, error) {
	r := &pb.ClaimJobRequest{LeaseSeconds: int32(lease / time.Second), WaitSeconds: int32(min(wait, maxWaitSeconds*time.Second) / time.Second)}
	for _, k := range kinds {
		r.Kinds = append(r.Kinds, string(k))
	}
	p, err := b.svc().ClaimJob(b.as(ctx), r)
	if err != nil || !p.Found {
		return job.Job{}, false, err
	}
	return JobFromProto(p.Job), true, nil
}

// Renew renews a lease.
func (b BuilderClient) Renew(ctx context.Context, id string, lease time.Duration) (bool, error) {
	p, err := b.svc().RenewJob(b.as(ctx), &pb.RenewJobRequest{Id: id, LeaseSeconds: int32(lease / time.Second)})
	if err != nil {
		return false, err
	}
	return p.Cancelled, nil
}

// Log sends log lines.
func (b BuilderClient) Log(ctx context.Context, id string, lines []string) error {
	_, err := b.svc().AppendJobLog(b.as(ctx), &pb.AppendJobLogRequest{Id: id, Lines: lines})
	return err
}

// Upload sends an artifact.
func (b BuilderClient) Upload(ctx context.Context, id string, a job.Artifact, data []byte) error {
	_, err := b.svc().UploadArtifact(b.as(ctx), &pb.UploadArtifactRequest{Id: id, Artifact: ArtifactToProto(a), Data: data})
	return err
}

// Finish reports a job's end.
func (b BuilderClient) Finish(ctx context.Context, id string, o service.FinishOptions) (job.State, error) {
	r := &pb.FinishJobRequest{Id: id, Ok: o.OK, Error: o.Error, Result: o.Result}
	for _, a := range o.Artifacts {
		r.Artifacts = append(r.Artifacts, ArtifactToProto(a))
	}
	p, err := b.svc().FinishJob(b.as(ctx), r)
	if err != nil {
		return "", err
	}
	return job.State(p.State), nil
}

// SubmitKernelBuild is service.SubmitKernelBuild on the server.
func (r Remote) SubmitKernelBuild(ctx context.Context, name string, jobs int, o service.SubmitOptions) (job.Job, error) {
	p, err := pb.NewJobServiceClient(r.C.conn).SubmitKernelBuild(ctx, &pb.SubmitKernelBuildRequest{Kernel: name, Jobs: int32(jobs), MaxAttempts: int32(o.MaxAttempts)})
	if err != nil {
		return job.Job{}, err
	}
	return JobFromProto(p), nil
}

// SubmitPatchBuild is service.SubmitPatchBuild on the server.
func (r Remote) SubmitPatchBuild(ctx context.Context, po service.PatchJobOptions, o service.SubmitOptions) (job.Job, error) {
	req := &pb.SubmitPatchBuildRequest{Kernel: po.Kernel, Module: po.Module, Replace: po.Replace, MaxAttempts: int32(o.MaxAttempts)}
	for _, f := range po.Fixes {
		req.Fixes = append(req.Fixes, &pb.Patch{Name: f.Name, Data: f.Diff})
	}
	p, err := pb.NewJobServiceClient(r.C.conn).SubmitPatchBuild(ctx, req)
	if err != nil {
		return job.Job{}, err
	}
	return JobFromProto(p), nil
}

// Jobs is service.Jobs on the server.
func (r Remote) Jobs(ctx context.Context, q service.JobQuery) ([]job.Job, error) {
	p, err := pb.NewJobServiceClient(r.C.conn).ListJobs(ctx, &pb.ListJobsRequest{State: q.State, Kernel: q.Kernel, Limit: int32(min(q.Limit, 1<<30))})
	if err != nil {
		return nil, err
	}
	out := []job.Job{}
	for _, j := range p.Jobs {
		out = append(out, JobFromProto(j))
	}
	return out, nil
}

// Job is service.Job on the server.
func (r Remote) Job(ctx context.Context, id string) (service.JobDetail, error) {
	p, err := pb.NewJobServiceClient(r.C.conn).GetJob(ctx, &pb.GetJobRequest{Id: id})
	if err != nil {
		return service.JobDetail{}, err
	}
	d := service.JobDetail{Job: JobFromProto(p.Job), Artifacts: []job.Artifact{}}
	for _, a := range p.Artifacts {
		d.Artifacts = append(d.Artifacts, ArtifactFromProto(a))
	}
	if len(d.Job.Result) > 0 {
		d.Result = d.Job.Result
	}
	return d, nil
}

// JobLog is service.JobLog on the server.
func (r Remote) JobLog(ctx context.Context, id string, o service.JobLogOptions, fn func(store.JobLogLine) error) error {
	stream, err := pb.NewJobServiceClient(r.C.conn).WatchJobLog(ctx, &pb.WatchJobLogRequest{Id: id, AfterSeq: o.After, Follow: o.Follow})
	if err != nil {
		return err
	}
	for {
		p, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := fn(store.JobLogLine{Seq: p.Seq, At: fromTS(p.At), Text: p.Text}); err != nil {
			return err
		}
	}
}

// CancelJob is service.CancelJob on the server.
func (r Remote) CancelJob(ctx context.Context, id string, _ service.Actor) (job.State, error) {
	p, err := pb.NewJobServiceClient(r.C.conn).CancelJob(ctx, &pb.CancelJobRequest{Id: id})
	if err != nil {
		return "", err
	}
	return job.State(p.State), nil
}

// OpenArtifact is service.OpenArtifact on the server.
func (r Remote) OpenArtifact(ctx context.Context, id, name string) (io.ReadCloser, job.Artifact, error) {
	p, err := pb.NewJobServiceClient(r.C.conn).GetArtifact(ctx, &pb.GetArtifactRequest{Id: id, Name: name})
	if err != nil {
		return nil, job.Artifact{}, err
	}
	return io.NopCloser(bytes.NewReader(p.Data)), ArtifactFromProto(p.Artifact), nil
}

// Builders is service.Builders on the server.
func (r Remote) Builders(ctx context.Context) ([]job.Builder, error) {
	p, err := pb.NewJobServiceClient(r.C.conn).ListBuilders(ctx, &pb.ListBuildersRequest{})
	if err != nil {
		return nil, err
	}
	out := []job.Builder{}
	for _, b := range p.Builders {
		out = append(out, BuilderFromProto(b))
	}
	return out, nil
}
