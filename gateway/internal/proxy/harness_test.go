package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// passPolicy is a control plane whose policies change nothing. With
// inspect, responses and streams go through it (as under all_caps, every
// event passed through by seq); without, they go straight to the client
// (as under noop). started, when set, gets each call's id as its start
// arrives; ends, when set, each call's end.
type passPolicy struct {
	cpv1.UnimplementedCallServiceServer
	inspect bool
	started chan string
	ends    chan *cpv1.CallEnd
	// mode, when set, is announced by WatchProcessing; hold, when set,
	// holds each decision until it gets a value; decide, when set, makes
	// the decision.
	mode   *cpv1.WatchProcessingResponse
	hold   chan struct{}
	decide func(*cpv1.CallStart) *cpv1.CallDecision
}

func (s *passPolicy) WatchProcessing(_ *cpv1.WatchProcessingRequest, stream cpv1.CallService_WatchProcessingServer) error {
	if s.mode == nil {
		return status.Error(codes.Unimplemented, "no modes")
	}
	if err := stream.Send(s.mode); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (s *passPolicy) Call(stream cpv1.CallService_CallServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if s.started != nil {
		s.started <- first.GetStart().GetCallId()
	}
	dec := &cpv1.CallDecision{Outcome: &cpv1.CallDecision_Continue{Continue: &cpv1.Continue{}}, Inspect: cpv1.Inspect_INSPECT_NONE}
	if s.inspect {
		dec.Inspect = cpv1.Inspect_INSPECT_RESPONSE
		if first.GetStart().GetStream() {
			dec.Inspect = cpv1.Inspect_INSPECT_STREAM
		}
	}
	if s.decide != nil {
		dec = s.decide(first.GetStart())
	}
	if s.hold != nil {
		<-s.hold
	}
	if err := stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Decision{Decision: dec}}); err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		var out *cpv1.CallResponse
		switch m := msg.GetMsg().(type) {
		case *cpv1.CallRequest_Response:
			out = &cpv1.CallResponse{Msg: &cpv1.CallResponse_Response{Response: &cpv1.ApplyResponsePolicyResponse{}}}
		case *cpv1.CallRequest_Events:
			batch := &cpv1.StreamChunkPolicyResponse{}
			for _, ev := range m.Events.GetEvents() {
				batch.Outputs = append(batch.Outputs, &cpv1.StreamOutput{Output: &cpv1.StreamOutput_PassthroughSeq{PassthroughSeq: ev.GetSeq()}})
			}
			out = &cpv1.CallResponse{Msg: &cpv1.CallResponse_Outputs{Outputs: batch}}
		case *cpv1.CallRequest_StreamEnd:
			out = &cpv1.CallResponse{Msg: &cpv1.CallResponse_Outputs{Outputs: &cpv1.StreamChunkPolicyResponse{EndStream: true}}}
		case *cpv1.CallRequest_End:
			if s.ends != nil {
				s.ends <- m.End
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				return err
			}
			return stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Done{Done: &cpv1.CallDone{}}})
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// records keeps the call records a proxy submits.
type records struct {
	mu    sync.Mutex
	calls []*record.Call
	taken int
}

func (r *records) Submit(c *record.Call, end record.Ender) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	_ = end.End(nil)
}

// next returns the record after the one it returned last, waiting a
// little for it: a handler submits it after the client has its answer.
func (r *records) next(t *testing.T) *record.Call {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		var c *record.Call
		if r.taken < len(r.calls) {
			c = r.calls[r.taken]
			r.taken++
		}
		r.mu.Unlock()
		if c != nil {
			return c
		}
	}
	t.Fatal("no call recorded")
	return nil
}

// logBuffer is a log destination safe for concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testGateway is a proxy serving its routes the way the gateway does (a
// catch-all answering through ServeRoot), over a policy service on
// bufconn, in front of one upstream.
type testGateway struct {
	URL  string
	p    *Proxy
	recs *records
	logs *logBuffer
}

// startGateway starts a testGateway; cfg's upstreams default to upstream.
func startGateway(t *testing.T, cfg Config, pol cpv1.CallServiceServer, upstream http.Handler) *testGateway {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	cpv1.RegisterCallServiceServer(gs, pol)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	if cfg.AnthropicBaseURL == "" {
		cfg.AnthropicBaseURL = up.URL
	}
	if cfg.OpenAIBaseURL == "" {
		cfg.OpenAIBaseURL = up.URL + "/v1"
	}
	g := &testGateway{recs: &records{}, logs: &logBuffer{}}
	cfg.Recorder = g.recs
	g.p = New(cfg, cpv1.NewCallServiceClient(conn), slog.New(slog.NewTextHandler(g.logs, nil)))
	mux := http.NewServeMux()
	g.p.Register(mux)
	mux.Handle("/", http.HandlerFunc(g.p.ServeRoot))
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	g.URL = gw.URL
	return g
}

// format is one client API format as a test client speaks it.
type format struct {
	name   string
	path   string
	header map[string]string
	// body is a request; stream says whether it asks for a stream.
	body func(stream bool) string
	// errorShape is in every error body of the format.
	errorShape string
}

var formats = []format{
	{"anthropic", "/v1/messages", map[string]string{"anthropic-version": "2023-06-01", "x-api-key": "sk-test"},
		func(stream bool) string {
			return `{"model":"m","max_tokens":5,"stream":` + boolText(stream) + `,"messages":[{"role":"user","content":"hi"}]}`
		}, `{"type":"error","error":{"type":`},
	{"openai", "/v1/chat/completions", map[string]string{"Authorization": "Bearer sk-test"},
		func(stream bool) string {
			return `{"model":"m","stream":` + boolText(stream) + `,"messages":[{"role":"user","content":"hi"}]}`
		}, `{"error":{"message":`},
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// post sends a request in format f and returns the response with its
// body, and the error that cut the body short, if any.
func (g *testGateway) post(t *testing.T, f format, stream bool) (*http.Response, string, error) {
	t.Helper()
	resp, body, err := g.send(f, stream, nil)
	if resp == nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	return resp, body, err
}

// send is post without the test: resp is nil when no response came, and
// read, when not nil, sees the body first.
func (g *testGateway) send(f format, stream bool, read func(io.Reader)) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodPost, g.URL+f.path, strings.NewReader(f.body(stream)))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range f.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	body := io.TeeReader(resp.Body, &buf)
	if read != nil {
		read(body)
	}
	_, err = io.Copy(io.Discard, body)
	return resp, buf.String(), err
}

// lastEvent is the data of the last SSE event of a body.
func lastEvent(body string) string {
	blocks := strings.Split(strings.TrimSpace(body), "\n\n")
	last := blocks[len(blocks)-1]
	if i := strings.LastIndex(last, "data: "); i >= 0 {
		return last[i+len("data: "):]
	}
	return last
}
