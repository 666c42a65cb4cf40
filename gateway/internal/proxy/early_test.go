package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// startedPolicy passes every event through and reports each stream start.
type startedPolicy struct {
	cpv1.UnimplementedPolicyServiceServer
	started chan string
}

func (s *startedPolicy) ApplyRequestPolicies(context.Context, *cpv1.ApplyRequestPoliciesRequest) (*cpv1.ApplyRequestPoliciesResponse, error) {
	return &cpv1.ApplyRequestPoliciesResponse{PolicyRevision: "r1", InspectResponse: true,
		Outcome: &cpv1.ApplyRequestPoliciesResponse_Continue{Continue: &cpv1.Continue{}}}, nil
}

func (s *startedPolicy) StreamChunkPolicy(stream cpv1.PolicyService_StreamChunkPolicyServer) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *cpv1.StreamChunkPolicyRequest_Start:
			s.started <- m.Start.GetCallId()
		case *cpv1.StreamChunkPolicyRequest_Event:
			out := &cpv1.StreamOutput{Output: &cpv1.StreamOutput_PassthroughSeq{PassthroughSeq: m.Event.GetSeq()}}
			if err := stream.Send(&cpv1.StreamChunkPolicyResponse{Outputs: []*cpv1.StreamOutput{out}}); err != nil {
				return err
			}
		case *cpv1.StreamChunkPolicyRequest_End:
			return nil
		}
	}
}

// The stream policy call is open, its start sent, before upstream
// answers: its set-up overlaps upstream's time to first byte. A stream the
// upstream does not send (an error) ends the call.
func TestStreamPolicyOpensBeforeUpstreamAnswers(t *testing.T) {
	pol := &startedPolicy{started: make(chan string, 4)}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	cpv1.RegisterPolicyServiceServer(gs, pol)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	const stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-pol.started: // the policy call is already open
		case <-time.After(5 * time.Second):
			t.Error("upstream answered before the stream policy call was opened")
		}
		if r.Header.Get("X-Fail") != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	}))
	defer upstream.Close()
	p := New(Config{AnthropicBaseURL: upstream.URL}, cpv1.NewPolicyServiceClient(conn), slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	p.Register(mux)
	gw := httptest.NewServer(mux)
	defer gw.Close()

	for _, fail := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages",
			strings.NewReader(`{"model":"x","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("anthropic-version", "2023-06-01")
		if fail {
			req.Header.Set("X-Fail", "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case !fail && (resp.StatusCode != http.StatusOK || string(body) != stream):
			t.Errorf("stream: %d %q, want upstream's bytes", resp.StatusCode, body)
		case fail && (resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "slow down")):
			t.Errorf("upstream error: %d %s, want upstream's 429", resp.StatusCode, body)
		}
	}
}
