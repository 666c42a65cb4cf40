package service

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"luthien.dev/controlplane/internal/activity"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// serveActivity serves an ActivityService over hub on bufconn and returns
// a client.
func serveActivity(t *testing.T, hub *activity.Hub) cpv1.ActivityServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	cpv1.RegisterActivityServiceServer(gs, NewActivityService(hub, make(chan struct{})))
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return cpv1.NewActivityServiceClient(conn)
}

// openActivity opens a stream and waits for its headers: the subscription
// is in place.
func openActivity(t *testing.T, client cpv1.ActivityServiceClient) (grpc.ServerStreamingClient[cpv1.StreamActivityResponse], context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	stream, err := client.StreamActivity(ctx, &cpv1.StreamActivityRequest{})
	if err != nil {
		cancel()
		t.Fatalf("StreamActivity: %v", err)
	}
	if md, err := stream.Header(); err != nil || md == nil {
		cancel()
		_, err = stream.Recv()
		t.Fatalf("StreamActivity ended before its headers: %v", err)
	}
	return stream, cancel
}

// The control plane serves at most the hub's most subscribers (64): the
// next stream fails with RESOURCE_EXHAUSTED before any header, and a
// place freed is taken again.
func TestActivitySubscribersCapped(t *testing.T) {
	hub := activity.NewLocal(nil)
	t.Cleanup(hub.Close)
	client := serveActivity(t, hub)
	cancels := make([]context.CancelFunc, 0, activity.DefaultMaxSubscribers)
	for range activity.DefaultMaxSubscribers {
		_, cancel := openActivity(t, client)
		t.Cleanup(cancel)
		cancels = append(cancels, cancel)
	}
	stream, err := client.StreamActivity(testContext(t), &cpv1.StreamActivityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md, _ := stream.Header(); md != nil {
		t.Error("the refused stream sent headers")
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "too many activity subscribers") {
		t.Fatalf("subscriber %d: %v, want RESOURCE_EXHAUSTED", activity.DefaultMaxSubscribers+1, err)
	}

	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for hub.Subscribers() == activity.DefaultMaxSubscribers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	again, cancel := openActivity(t, client)
	defer cancel()
	hub.Publish(&cpv1.CallEvent{CallId: "c1", EventType: "x"})
	if msg, err := again.Recv(); err != nil || msg.GetEvent().GetCallId() != "c1" {
		t.Errorf("the subscriber in the freed place: %v, %v", msg, err)
	}
}
