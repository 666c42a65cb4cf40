package service

import (
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/internal/activity"
	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// subscriberBuffer is how many events a slow activity subscriber may fall
// behind before it loses events (the hub bounds their bytes too:
// activity.Limits).
const subscriberBuffer = 1024

// ActivityService implements cpv1.ActivityServiceServer: the live feed of
// recorded events.
type ActivityService struct {
	cpv1.UnimplementedActivityServiceServer

	hub  *activity.Hub
	done <-chan struct{}
}

var _ cpv1.ActivityServiceServer = (*ActivityService)(nil)

// NewActivityService returns an ActivityService over hub. Streams end
// (UNAVAILABLE) when done is closed, so that a graceful stop does not wait
// for subscribers that never leave.
func NewActivityService(hub *activity.Hub, done <-chan struct{}) *ActivityService {
	return &ActivityService{hub: hub, done: done}
}

// StreamActivity streams the events matching the request's filters until
// the client goes away. The response headers are sent once the
// subscription is in place: a client that waits for them misses no later
// event. A subscriber that reads too slowly loses events, counted in the
// next message's dropped. When the hub has its most subscribers the call
// fails at once with RESOURCE_EXHAUSTED, before any header.
func (s *ActivityService) StreamActivity(req *cpv1.StreamActivityRequest, stream grpc.ServerStreamingServer[cpv1.StreamActivityResponse]) error {
	sub, err := s.hub.Subscribe(activity.Filter{
		CallID: req.GetCallId(), SessionID: req.GetSessionId(), Prefixes: req.GetEventTypePrefixes(),
	}, subscriberBuffer)
	if errors.Is(err, activity.ErrTooManySubscribers) {
		return status.Error(codes.ResourceExhausted, err.Error()+"; try again later")
	}
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer sub.Close()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := stream.Context()
	readable := store.Readable
	if req.GetPayloadAsJson() {
		readable = store.AsJSON
	}
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return status.Error(codes.Unavailable, "activity feed closed")
			}
			if err := stream.Send(&cpv1.StreamActivityResponse{Event: readable(ev), Dropped: sub.TakeDropped()}); err != nil {
				return err
			}
		case <-s.done:
			return status.Error(codes.Unavailable, "control plane shutting down")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}
