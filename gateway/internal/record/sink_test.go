package record

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// sink is the record service end of the contract, served over a real gRPC
// stack on bufconn: it keeps the call ids and message sizes of what it
// accepts. Its gRPC message limit is real, so a batch over it fails as it
// does against the control plane.
type sink struct {
	cpv1.UnimplementedRecordServiceServer

	mu      sync.Mutex
	recs    []*cpv1.CallRecord
	batches []int // calls per accepted batch
	sizes   []int // accepted request sizes, in bytes
	// gate, while held, makes RecordCalls wait; arrived gets a token
	// when a RecordCalls arrives, before the gate.
	gate    sync.RWMutex
	arrived chan struct{}
	// discard: keep nothing (benchmarks).
	discard bool
}

func (s *sink) RecordCalls(ctx context.Context, req *cpv1.RecordCallsRequest) (*cpv1.RecordCallsResponse, error) {
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.discard {
		return &cpv1.RecordCallsResponse{Accepted: int32(len(req.GetCalls()))}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, req.GetCalls()...)
	s.batches = append(s.batches, len(req.GetCalls()))
	s.sizes = append(s.sizes, proto.Size(req))
	return &cpv1.RecordCallsResponse{Accepted: int32(len(req.GetCalls()))}, nil
}

// received returns the call ids accepted so far.
func (s *sink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.recs))
	for i, rec := range s.recs {
		ids[i] = rec.GetSummary().GetCallId()
	}
	return ids
}

// record returns the accepted record of a call, or nil.
func (s *sink) record(id string) *cpv1.CallRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.recs {
		if rec.GetSummary().GetCallId() == id {
			return rec
		}
	}
	return nil
}

// batchSizes returns the calls and the bytes of every accepted batch.
func (s *sink) batchSizes() (calls, sizes []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.batches...), append([]int(nil), s.sizes...)
}

// serveSink starts a sink accepting messages of up to maxMsg bytes and
// returns it with a client sending messages of any size (the server's
// limit is the one that applies).
func serveSink(tb testing.TB, maxMsg int) (*sink, cpv1.RecordServiceClient) {
	tb.Helper()
	s := &sink{arrived: make(chan struct{}, 1)}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsg))
	cpv1.RegisterRecordServiceServer(gs, s)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1<<30)),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close(); gs.Stop() })
	return s, cpv1.NewRecordServiceClient(conn)
}
