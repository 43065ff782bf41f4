package api

import (
	"context"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tuxtape/tuxtape/internal/model/event"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// eventHandlers stream the event stream.
type eventHandlers struct {
	pb.UnimplementedEventServiceServer
	svc  *service.Service
	poll time.Duration
}

// maxKinds bounds a Watch's kind filter.
const maxKinds = 32

func (h *eventHandlers) Watch(r *pb.WatchRequest, ss pb.EventService_WatchServer) error {
	if r.AfterSeq < -1 {
		return status.Errorf(codes.InvalidArgument, "after_seq is %d; want -1 (from now on), 0 (from the start) or a seq", r.AfterSeq)
	}
	if len(r.Kinds) > maxKinds {
		return status.Errorf(codes.InvalidArgument, "kinds has %d entries; at most %d", len(r.Kinds), maxKinds)
	}
	for _, k := range r.Kinds {
		if err := field("kinds", k, true); err != nil {
			return err
		}
	}
	err := h.svc.Watch(ss.Context(), service.WatchOptions{After: r.AfterSeq, Kinds: r.Kinds, Follow: r.Follow, Poll: h.poll},
		func(e event.Event) error { return ss.Send(StreamEventToProto(e)) })
	return grpcError(err)
}

// StreamEventToProto is the wire form of a stream event.
func StreamEventToProto(e event.Event) *pb.StreamEvent {
	return &pb.StreamEvent{Seq: e.Seq, At: ts(e.At), Kind: string(e.Kind), Subject: e.Subject, Actor: e.Actor, Detail: e.Detail}
}

// StreamEventFromProto is the event a wire one describes.
func StreamEventFromProto(p *pb.StreamEvent) event.Event {
	return event.Event{Seq: p.Seq, At: fromTS(p.At), Kind: event.Kind(p.Kind), Subject: p.Subject, Actor: p.Actor, Detail: p.Detail}
}

// Watch is service.Watch on the server.
func (r Remote) Watch(ctx context.Context, o service.WatchOptions, fn func(event.Event) error) error {
	stream, err := pb.NewEventServiceClient(r.C.conn).Watch(ctx, &pb.WatchRequest{AfterSeq: o.After, Kinds: o.Kinds, Follow: o.Follow})
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
		if err := fn(StreamEventFromProto(p)); err != nil {
			return err
		}
	}
}
