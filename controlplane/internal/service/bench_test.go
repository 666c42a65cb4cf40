package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// serveBuiltin serves a PolicyService running the built-in policy class
// on bufconn, as the gateway links it in-process, and returns a client.
func serveBuiltin(tb testing.TB, class string) cpv1.PolicyServiceClient {
	tb.Helper()
	registry, err := policy.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	store, err := NewRevisions(registry, logger, class, map[string]any{}, "bench")
	if err != nil {
		tb.Fatalf("NewRevisions: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	cpv1.RegisterPolicyServiceServer(gs, NewPolicyService(store, logger, nil))
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	return cpv1.NewPolicyServiceClient(conn)
}

// openStream starts one StreamChunkPolicy call.
func openStream(b *testing.B, client cpv1.PolicyServiceClient) cpv1.PolicyService_StreamChunkPolicyClient {
	b.Helper()
	stream, err := client.StreamChunkPolicy(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	err = stream.Send(&cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{
		CallId: "bench", Format: anthropic, Request: []byte(`{"model":"m","stream":true}`)}}})
	if err != nil {
		b.Fatal(err)
	}
	return stream
}

// closeStream ends the call and drains it.
func closeStream(b *testing.B, stream cpv1.PolicyService_StreamChunkPolicyClient) {
	b.Helper()
	if err := stream.CloseSend(); err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

func eventRequest(seq uint64) *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Event{Event: textEvent(seq, " w042")}}
}

// BenchmarkStreamChunkPolicy measures one step of the stream policy
// through the whole gRPC stack on bufconn (both ends in this process, so
// allocations count both): a text delta sent, the policy run on it, its
// batch received. "roundtrip" waits for each answer before sending the
// next event; "pipelined" sends without waiting, as the gateway does.
func BenchmarkStreamChunkPolicy(b *testing.B) {
	for _, class := range []string{"noop", "all_caps"} {
		client := serveBuiltin(b, class)
		b.Run(class+"/roundtrip", func(b *testing.B) {
			stream := openStream(b, client)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := stream.Send(eventRequest(uint64(i + 1))); err != nil {
					b.Fatal(err)
				}
				resp, err := stream.Recv()
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.GetOutputs()) != 1 {
					b.Fatalf("%d outputs, want 1", len(resp.GetOutputs()))
				}
			}
			closeStream(b, stream)
		})
		b.Run(class+"/pipelined", func(b *testing.B) {
			stream := openStream(b, client)
			b.ReportAllocs()
			n := b.N
			sent := make(chan error, 1)
			b.ResetTimer()
			go func() {
				for i := range n {
					if err := stream.Send(eventRequest(uint64(i + 1))); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			for range n {
				if _, err := stream.Recv(); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			closeStream(b, stream)
		})
	}
}
