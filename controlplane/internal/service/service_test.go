package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const anthropic = cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES

// fakePolicy is a scripted policy.
type fakePolicy struct {
	name       string
	request    policy.RequestResult
	requestErr error
	// onEvent answers the i-th input event (from 0).
	onEvent func(i int, ev *cpv1.StreamEvent) (policy.Emit, error)
	// onEnd answers the end of the stream.
	onEnd func(upstreamErr string) (policy.Emit, error)
	// onResponse answers a complete response; nil returns it unchanged.
	onResponse func(msg *cpv1.Message) (*cpv1.Message, error)
	// event, when set, is recorded with details on every request.
	event   string
	details map[string]any
	// ignoresResponses makes InspectsResponse false.
	ignoresResponses bool
}

func (p *fakePolicy) Name() string { return p.name }

func (p *fakePolicy) OnRequest(ctx context.Context, call *policy.Call) (policy.RequestResult, error) {
	if p.event != "" {
		call.Record(ctx, p.event, p.details)
	}
	return p.request, p.requestErr
}

func (p *fakePolicy) OnResponse(_ context.Context, _ *policy.Call, msg *cpv1.Message) (*cpv1.Message, error) {
	if p.onResponse != nil {
		return p.onResponse(msg)
	}
	return msg, nil
}

func (p *fakePolicy) NewStream(context.Context, *policy.Call) policy.Stream {
	return &fakeStream{p: p}
}

func (p *fakePolicy) InspectsResponse() bool { return !p.ignoresResponses }

type fakeStream struct {
	p *fakePolicy
	n int
}

func (s *fakeStream) OnEvent(_ context.Context, ev *cpv1.StreamEvent) (policy.Emit, error) {
	s.n++
	if s.p.onEvent == nil {
		return policy.Emit{Events: []*cpv1.StreamEvent{ev}}, nil
	}
	return s.p.onEvent(s.n-1, ev)
}

func (s *fakeStream) OnEnd(_ context.Context, upstreamErr string) (policy.Emit, error) {
	if s.p.onEnd == nil {
		return policy.Emit{}, nil
	}
	return s.p.onEnd(upstreamErr)
}

// fakeBuilder builds its one policy for any class but "invalid".
type fakeBuilder struct{ p policy.Policy }

func (b fakeBuilder) Resolve(class string, cfg map[string]any) (string, map[string]any, error) {
	return class, cfg, nil
}

func (b fakeBuilder) Build(class string, _ map[string]any) (policy.Policy, error) {
	if class == "invalid" {
		return nil, errors.New("invalid class")
	}
	return b.p, nil
}

// serve serves a PolicyService running p on bufconn and returns a client.
func serve(t *testing.T, p policy.Policy) cpv1.PolicyServiceClient {
	t.Helper()
	return cpv1.NewPolicyServiceClient(serveConn(t, p))
}

// serveConn serves the policy and call services running p on bufconn and
// returns a connection to them.
func serveConn(t *testing.T, p policy.Policy) *grpc.ClientConn {
	t.Helper()
	return serveCached(t, p, nil)
}

// serveCached is serveConn with a response cache (nil: none).
func serveCached(t *testing.T, p policy.Policy, rc *ResponseCache) *grpc.ClientConn {
	t.Helper()
	return serveRecorded(t, p, rc, nil, nil)
}

// serveRecorded is serveCached recording the calls into queue and feed
// (nil: nowhere).
func serveRecorded(t *testing.T, p policy.Policy, rc *ResponseCache, queue EventQueue, feed ActivityFeed) *grpc.ClientConn {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := NewRevisions(fakeBuilder{p}, logger, "fake", nil, "test")
	if err != nil {
		t.Fatalf("NewRevisions: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	ps := NewPolicyService(store, logger, nil)
	cpv1.RegisterPolicyServiceServer(gs, ps)
	cpv1.RegisterCallServiceServer(gs, NewCallService(ps, rc, queue, feed, nil))
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestApplyRequestOutcomes(t *testing.T) {
	body := []byte(`{"model":"m"}`)
	respond := &cpv1.Message{Id: "msg_local", Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "no"}}}}}
	reject := &cpv1.Reject{HttpStatus: 403, ErrorType: "permission_error", Message: "blocked"}
	tests := []struct {
		name      string
		result    policy.RequestResult
		err       error
		wantCode  codes.Code
		wantErrIn string
		check     func(t *testing.T, resp *cpv1.ApplyRequestPoliciesResponse)
	}{
		{
			name:   "changed body",
			result: policy.RequestResult{Body: []byte(`{"model":"other"}`)},
			check: func(t *testing.T, resp *cpv1.ApplyRequestPoliciesResponse) {
				if got := string(resp.GetContinue().GetBody()); got != `{"model":"other"}` {
					t.Errorf("continue body = %q", got)
				}
			},
		},
		{
			name:   "body equal to the request",
			result: policy.RequestResult{Body: []byte(`{"model":"m"}`)},
			check: func(t *testing.T, resp *cpv1.ApplyRequestPoliciesResponse) {
				if resp.GetContinue() == nil || resp.GetContinue().Body != nil {
					t.Errorf("outcome = %v, want continue without a body", resp.GetOutcome())
				}
			},
		},
		{
			name:   "respond",
			result: policy.RequestResult{Respond: respond},
			check: func(t *testing.T, resp *cpv1.ApplyRequestPoliciesResponse) {
				if !proto.Equal(resp.GetRespond().GetMessage(), respond) {
					t.Errorf("outcome = %v, want respond %v", resp.GetOutcome(), respond)
				}
			},
		},
		{
			name:   "reject",
			result: policy.RequestResult{Reject: reject},
			check: func(t *testing.T, resp *cpv1.ApplyRequestPoliciesResponse) {
				if !proto.Equal(resp.GetReject(), reject) {
					t.Errorf("outcome = %v, want reject %v", resp.GetOutcome(), reject)
				}
			},
		},
		{
			name:      "two outcomes",
			result:    policy.RequestResult{Body: []byte(`{}`), Reject: reject},
			wantCode:  codes.Internal,
			wantErrIn: "more than one outcome",
		},
		{name: "policy error", err: errors.New("boom"), wantCode: codes.Internal, wantErrIn: "policy fake: on request: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := serve(t, &fakePolicy{name: "fake", request: tt.result, requestErr: tt.err})
			resp, err := client.ApplyRequestPolicies(testContext(t), &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: anthropic, Body: body})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				if !strings.Contains(status.Convert(err).Message(), tt.wantErrIn) {
					t.Errorf("error %q does not contain %q", status.Convert(err).Message(), tt.wantErrIn)
				}
				return
			}
			if !resp.GetInspectResponse() || resp.GetPolicyRevision() == "" {
				t.Errorf("inspect_response %v, revision %q", resp.GetInspectResponse(), resp.GetPolicyRevision())
			}
			tt.check(t, resp)
		})
	}
}

func textEvent(seq uint64, text string) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Seq: seq, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: text}},
	}}}
}

// describe renders a batch as a compact string: "p3" is a passthrough of
// seq 3, "e3:text" an event of seq 3, "|end" marks end_stream.
func describe(resp *cpv1.StreamChunkPolicyResponse) string {
	var parts []string
	for _, out := range resp.GetOutputs() {
		switch o := out.GetOutput().(type) {
		case *cpv1.StreamOutput_PassthroughSeq:
			parts = append(parts, fmt.Sprintf("p%d", o.PassthroughSeq))
		case *cpv1.StreamOutput_Event:
			parts = append(parts, fmt.Sprintf("e%d:%s", o.Event.GetSeq(), o.Event.GetContentBlockDelta().GetText().GetText()))
		}
	}
	s := strings.Join(parts, ",")
	if resp.GetEndStream() {
		s += "|end"
	}
	return s
}

func TestStreamBatches(t *testing.T) {
	var held *cpv1.StreamEvent
	tests := []struct {
		name        string
		policy      *fakePolicy
		events      []*cpv1.StreamEvent
		upstreamErr string
		want        []string // batches, described
		wantCode    codes.Code
		wantErrIn   string
	}{
		{
			name: "hold back and release",
			policy: &fakePolicy{onEvent: func(i int, ev *cpv1.StreamEvent) (policy.Emit, error) {
				if i == 0 {
					held = ev
					return policy.Emit{}, nil
				}
				return policy.Emit{Events: []*cpv1.StreamEvent{held, ev}}, nil
			}},
			events: []*cpv1.StreamEvent{textEvent(1, "a"), textEvent(2, "b")},
			// Released unchanged, the held event still passes through.
			want: []string{"p1,p2"},
		},
		{
			name: "hold back and release changed",
			policy: &fakePolicy{onEvent: func(i int, ev *cpv1.StreamEvent) (policy.Emit, error) {
				if i == 0 {
					held = proto.CloneOf(ev)
					held.GetContentBlockDelta().GetText().Text = "A"
					return policy.Emit{}, nil
				}
				return policy.Emit{Events: []*cpv1.StreamEvent{held, ev}}, nil
			}},
			events: []*cpv1.StreamEvent{textEvent(1, "a"), textEvent(2, "b")},
			want:   []string{"e1:A,p2"},
		},
		{
			name: "an input emitted twice passes through once",
			policy: &fakePolicy{onEvent: func(_ int, ev *cpv1.StreamEvent) (policy.Emit, error) {
				return policy.Emit{Events: []*cpv1.StreamEvent{ev, ev}}, nil
			}},
			events: []*cpv1.StreamEvent{textEvent(1, "a")},
			want:   []string{"p1,e1:a"},
		},
		{
			name: "end the response early",
			policy: &fakePolicy{onEvent: func(i int, ev *cpv1.StreamEvent) (policy.Emit, error) {
				if i == 1 {
					return policy.Emit{Events: []*cpv1.StreamEvent{textEvent(0, "stop")}, End: true}, nil
				}
				return policy.Emit{Events: []*cpv1.StreamEvent{ev}}, nil
			}},
			events: []*cpv1.StreamEvent{textEvent(1, "a"), textEvent(2, "b"), textEvent(3, "c")},
			want:   []string{"p1", "e0:stop|end"},
		},
		{
			name: "trailing events get the upstream error",
			policy: &fakePolicy{onEnd: func(upstreamErr string) (policy.Emit, error) {
				return policy.Emit{Events: []*cpv1.StreamEvent{textEvent(0, upstreamErr)}}, nil
			}},
			events:      []*cpv1.StreamEvent{textEvent(1, "a")},
			upstreamErr: "connection reset",
			want:        []string{"p1", "e0:connection reset"},
		},
		{
			name:   "an input without seq is sent whole",
			policy: &fakePolicy{},
			events: []*cpv1.StreamEvent{textEvent(0, "a")},
			want:   []string{"e0:a"},
		},
		{
			name: "event error",
			policy: &fakePolicy{onEvent: func(int, *cpv1.StreamEvent) (policy.Emit, error) {
				return policy.Emit{}, errors.New("judge down")
			}},
			events:    []*cpv1.StreamEvent{textEvent(1, "a")},
			wantCode:  codes.Internal,
			wantErrIn: "policy fake: on event: judge down",
		},
		{
			name: "end error",
			policy: &fakePolicy{onEnd: func(string) (policy.Emit, error) {
				return policy.Emit{}, errors.New("flush failed")
			}},
			events:    []*cpv1.StreamEvent{textEvent(1, "a")},
			want:      []string{"p1"},
			wantCode:  codes.Internal,
			wantErrIn: "policy fake: on end: flush failed",
		},
		{
			name: "nil output",
			policy: &fakePolicy{onEvent: func(int, *cpv1.StreamEvent) (policy.Emit, error) {
				return policy.Emit{Events: []*cpv1.StreamEvent{nil}}, nil
			}},
			events:    []*cpv1.StreamEvent{textEvent(1, "a")},
			wantCode:  codes.Internal,
			wantErrIn: "output 0 is nil",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.name = "fake"
			client := serve(t, tt.policy)
			stream, err := client.StreamChunkPolicy(testContext(t))
			if err != nil {
				t.Fatalf("StreamChunkPolicy: %v", err)
			}
			msgs := []*cpv1.StreamChunkPolicyRequest{{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{CallId: "c1", Format: anthropic}}}}
			for _, ev := range tt.events {
				msgs = append(msgs, &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Event{Event: ev}})
			}
			msgs = append(msgs, &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_End{End: &cpv1.StreamEnd{UpstreamError: tt.upstreamErr}}})
			for _, msg := range msgs {
				if err := stream.Send(msg); err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("send: %v", err)
				}
			}
			var got []string
			for {
				resp, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					if status.Code(err) != tt.wantCode {
						t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.wantCode)
					}
					if !strings.Contains(status.Convert(err).Message(), tt.wantErrIn) {
						t.Errorf("error %q does not contain %q", status.Convert(err).Message(), tt.wantErrIn)
					}
					break
				}
				got = append(got, describe(resp))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("batches = %q, want %q", got, tt.want)
			}
		})
	}
}

// failingPublisher cannot persist anything.
type failingPublisher struct{}

func (failingPublisher) Persist(context.Context, *cpv1.ActivePolicy) (bool, error) {
	return true, errors.New("database down")
}

func (failingPublisher) Announce(context.Context, *cpv1.ActivePolicy) error {
	return errors.New("not reached")
}

// A policy that cannot be persisted and announced is not activated.
func TestSetPolicyPublishFailure(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	store, err := NewRevisions(fakeBuilder{&fakePolicy{name: "fake"}}, logger, "fake", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	before := store.Active().Revision
	admin := NewAdminService(store, nil, failingPublisher{}, nil)
	_, err = admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "fake"}})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "database down") {
		t.Errorf("SetPolicy error = %v, want UNAVAILABLE", err)
	}
	if store.Active().Revision != before {
		t.Error("the policy was activated although publishing failed")
	}
}

// Restore activates another replica's revision once, under its id.
func TestStoreRestore(t *testing.T) {
	store, err := NewRevisions(fakeBuilder{&fakePolicy{name: "fake"}}, slog.New(slog.DiscardHandler), "fake", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	desc := &cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: "fake"}, Revision: "remote1"}
	for range 2 {
		if err := store.Restore(desc); err != nil {
			t.Fatal(err)
		}
	}
	if store.Active().Revision != "remote1" || store.Lookup("remote1").Revision != "remote1" {
		t.Errorf("active %s", store.Active().Revision)
	}
	if err := store.Restore(&cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: "invalid"}, Revision: "remote2"}); err == nil || store.Active().Revision != "remote1" {
		t.Errorf("invalid restore: %v, active %s", err, store.Active().Revision)
	}
}

// echoPublisher plays the replica subscription: each announcement comes
// back and is restored, as on every other replica.
type echoPublisher struct{ store *Revisions }

func (p echoPublisher) Persist(context.Context, *cpv1.ActivePolicy) (bool, error) {
	return false, nil
}

func (p echoPublisher) Announce(_ context.Context, desc *cpv1.ActivePolicy) error {
	go func() { _ = p.store.Restore(desc) }()
	return nil
}

// With a publisher, SetPolicy activates the policy through its own
// announcement.
func TestSetPolicyThroughAnnouncement(t *testing.T) {
	store, err := NewRevisions(fakeBuilder{&fakePolicy{name: "fake"}}, slog.New(slog.DiscardHandler), "fake", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	admin := NewAdminService(store, nil, echoPublisher{store}, nil)
	resp, err := admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "fake"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := store.Active().Revision; got != resp.GetActive().GetRevision() {
		t.Errorf("active %s, want the announced %s", got, resp.GetActive().GetRevision())
	}
}
