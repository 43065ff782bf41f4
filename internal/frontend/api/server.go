// Package api is TuxTape's gRPC API: the server, a thin translation of
// each RPC onto the service layer (no business rules here), the role
// check every RPC passes, and the conversions the CLI uses to turn
// answers back into the service's results.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// MaxMessage bounds a request or answer (a kernel with its config and
// patches is the largest).
const MaxMessage = 16 << 20

// MaxField bounds a string field of a request: IDs, names, paths.
const MaxField = 4096

// Options shape a server.
type Options struct {
	Service *service.Service
	Log     *slog.Logger
	// TLS is the server's credentials; nil serves plain TCP (the caller
	// allows that only on loopback).
	TLS credentials.TransportCredentials
	// Priority are the prioritizer's inputs every client's ranking uses.
	Priority service.PriorityInputs
	// Metrics, when set, count and time every RPC.
	Metrics *Metrics
	// EventPoll is how often a Watch looks for other replicas' events
	// (default: the service's).
	EventPoll time.Duration
}

// New returns the gRPC server with every service and the health service
// registered, and the role check in front of every call.
func New(o Options) *grpc.Server {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &auth{svc: o.Service, log: log}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxSendMsgSize(MaxMessage),
		grpc.ChainUnaryInterceptor(unary(o.Metrics, a)...),
		grpc.ChainStreamInterceptor(stream(o.Metrics, a)...),
		grpc.ConnectionTimeout(10 * time.Second),
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(o.TLS))
	}
	s := grpc.NewServer(opts...)
	h := &handlers{svc: o.Service, log: log, priority: o.Priority}
	pb.RegisterCVEServiceServer(s, h)
	pb.RegisterKernelServiceServer(s, h)
	pb.RegisterVEXServiceServer(s, h)
	pb.RegisterTokenServiceServer(s, h)
	pb.RegisterAuditServiceServer(s, h)
	pb.RegisterFleetServiceServer(s, &fleetHandlers{svc: o.Service, log: log})
	pb.RegisterSyncServiceServer(s, &syncHandlers{svc: o.Service})
	pb.RegisterEventServiceServer(s, &eventHandlers{svc: o.Service, poll: o.EventPoll})
	jh := &jobHandlers{svc: o.Service}
	pb.RegisterBuilderServiceServer(s, jh)
	pb.RegisterJobServiceServer(s, jh)
	pb.RegisterPatchServiceServer(s, &patchHandlers{svc: o.Service})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	return s
}

// unary and stream put the metrics (when there are any) before the role
// check, so refused calls are counted too.
func unary(m *Metrics, a *auth) []grpc.UnaryServerInterceptor {
	if m == nil {
		return []grpc.UnaryServerInterceptor{a.unary}
	}
	return []grpc.UnaryServerInterceptor{m.unary, a.unary}
}

func stream(m *Metrics, a *auth) []grpc.StreamServerInterceptor {
	if m == nil {
		return []grpc.StreamServerInterceptor{a.stream}
	}
	return []grpc.StreamServerInterceptor{m.stream, a.stream}
}

// Serve serves on l until ctx is done, then drains in-flight calls for up
// to drain before it stops them.
func Serve(ctx context.Context, s *grpc.Server, l net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		s.Stop()
	}
	<-errc
	return nil
}

// roles are who may call each method; a method missing here is refused
// to everyone, so a new RPC cannot be open by accident.
var roles = map[string][]authz.Role{
	pb.CVEService_ListCVEs_FullMethodName:        {authz.Admin, authz.Reviewer, authz.Builder},
	pb.CVEService_GetCVE_FullMethodName:          {authz.Admin, authz.Reviewer, authz.Builder},
	pb.KernelService_ListKernels_FullMethodName:  {authz.Admin, authz.Reviewer, authz.Builder},
	pb.KernelService_GetKernel_FullMethodName:    {authz.Admin, authz.Reviewer, authz.Builder},
	pb.KernelService_RemoveKernel_FullMethodName: {authz.Admin},
	pb.KernelService_AddKernel_FullMethodName:    {authz.Admin},
	pb.KernelService_GetProfile_FullMethodName:   {authz.Admin, authz.Reviewer, authz.Builder},
	pb.EventService_Watch_FullMethodName:         {authz.Admin, authz.Reviewer},
	// A builder acts as its token: the handlers take its ID from there.
	pb.BuilderService_RegisterBuilder_FullMethodName: {authz.Builder},
	pb.BuilderService_ClaimJob_FullMethodName:        {authz.Builder},
	pb.BuilderService_RenewJob_FullMethodName:        {authz.Builder},
	pb.BuilderService_AppendJobLog_FullMethodName:    {authz.Builder},
	pb.BuilderService_UploadArtifact_FullMethodName:  {authz.Builder},
	pb.BuilderService_FinishJob_FullMethodName:       {authz.Builder},
	pb.JobService_SubmitKernelBuild_FullMethodName:   {authz.Admin},
	pb.JobService_SubmitPatchBuild_FullMethodName:    {authz.Admin},
	pb.JobService_CancelJob_FullMethodName:           {authz.Admin},
	pb.JobService_ListJobs_FullMethodName:            {authz.Admin, authz.Reviewer},
	pb.JobService_GetJob_FullMethodName:              {authz.Admin, authz.Reviewer},
	pb.JobService_WatchJobLog_FullMethodName:         {authz.Admin, authz.Reviewer},
	pb.JobService_GetArtifact_FullMethodName:         {authz.Admin, authz.Reviewer},
	pb.JobService_ListBuilders_FullMethodName:        {authz.Admin, authz.Reviewer},
	pb.PatchService_CreatePatch_FullMethodName:       {authz.Admin, authz.Reviewer},
	pb.PatchService_RevisePatch_FullMethodName:       {authz.Admin, authz.Reviewer},
	pb.PatchService_ListPatches_FullMethodName:       {authz.Admin, authz.Reviewer},
	pb.PatchService_GetPatch_FullMethodName:          {authz.Admin, authz.Reviewer},
	pb.PatchService_ReviewPatch_FullMethodName:       {authz.Reviewer},
	pb.PatchService_BuildPatchSet_FullMethodName:     {authz.Admin},
	pb.PatchService_ListPatchSets_FullMethodName:     {authz.Admin, authz.Reviewer, authz.Builder},
	pb.VEXService_GetVEX_FullMethodName:              {authz.Admin, authz.Reviewer, authz.Builder},
	pb.SyncService_StartSync_FullMethodName:          {authz.Admin},
	pb.SyncService_GetSyncStatus_FullMethodName:      {authz.Admin, authz.Reviewer},
	pb.TokenService_CreateToken_FullMethodName:       {authz.Admin},
	pb.TokenService_ListTokens_FullMethodName:        {authz.Admin},
	pb.TokenService_RevokeToken_FullMethodName:       {authz.Admin},
	pb.AuditService_ListAudit_FullMethodName:         {authz.Admin},
	// Agents only for their own machine: the handlers check that.
	pb.FleetService_Heartbeat_FullMethodName:      {authz.Admin, authz.Agent},
	pb.FleetService_Report_FullMethodName:         {authz.Admin, authz.Agent},
	pb.FleetService_ListMachines_FullMethodName:   {authz.Admin, authz.Reviewer},
	pb.FleetService_GetMachine_FullMethodName:     {authz.Admin, authz.Reviewer},
	pb.FleetService_GetPatchHealth_FullMethodName: {authz.Admin, authz.Reviewer},
	healthpb.Health_Check_FullMethodName:          nil, // open: load balancers ask
	healthpb.Health_Watch_FullMethodName:          nil,
	healthpb.Health_List_FullMethodName:           nil,
}

type auth struct {
	svc *service.Service
	log *slog.Logger
}

type tokenKey struct{}

// caller is the token a call was authenticated with.
func caller(ctx context.Context) (authz.Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(authz.Token)
	return t, ok
}

// actor is the caller, for the audit log.
func actor(ctx context.Context) service.Actor {
	var a service.Actor
	if t, ok := caller(ctx); ok {
		a.ID = t.ID
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		a.From = p.Addr.String()
	}
	return a
}

func (a *auth) check(ctx context.Context, method string) (context.Context, error) {
	allowed, known := roles[method]
	if !known {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not open to any role", method)
	}
	if allowed == nil {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return nil, status.Error(codes.Unauthenticated, "no token: send one as \"authorization: Bearer tt1.…\" (tuxtape --token, or TUXTAPE_TOKEN)")
	}
	secret, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok || len(secret) > 256 {
		return nil, status.Error(codes.Unauthenticated, "the authorization header is not \"Bearer <token>\"")
	}
	t, err := a.svc.Authenticate(ctx, secret)
	if err != nil {
		if errors.Is(err, service.ErrUnauthenticated) {
			// The caller learns only that the token does not work; the
			// log says why (revoked, expired, unknown).
			a.log.Info("refused a token", "method", method, "peer", actor(ctx).From, "why", err)
			return nil, status.Error(codes.Unauthenticated, "the token is not valid (unknown, revoked or expired)")
		}
		return nil, grpcError(err)
	}
	for _, r := range allowed {
		if t.Role == r {
			return context.WithValue(ctx, tokenKey{}, t), nil
		}
	}
	return nil, status.Errorf(codes.PermissionDenied, "a %s token may not call %s", t.Role, method)
}

func (a *auth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w wrappedStream) Context() context.Context { return w.ctx }

func (a *auth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.check(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, wrappedStream{ss, ctx})
}

// grpcError maps the service's errors to gRPC codes, keeping the message
// that names the cause.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case service.IsInvalid(err):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, store.ErrLeaseLost), errors.Is(err, store.ErrConflict):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// field checks a request's string field.
func field(name, v string, required bool) error {
	switch {
	case required && v == "":
		return status.Errorf(codes.InvalidArgument, "%s is required", name)
	case len(v) > MaxField:
		return status.Errorf(codes.InvalidArgument, "%s is %d bytes long; at most %d", name, len(v), MaxField)
	case strings.ContainsRune(v, 0):
		return status.Errorf(codes.InvalidArgument, "%s contains a NUL byte", name)
	}
	return nil
}
