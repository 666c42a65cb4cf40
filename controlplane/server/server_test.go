package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const (
	noopConfig    = "../../config/policies/noop.yaml"
	allCapsConfig = "../../config/policies/all_caps.yaml"
	anthropic     = cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES
)

// testServer is a Server served on an in-memory connection.
type testServer struct {
	srv    *Server
	policy cpv1.PolicyServiceClient
	admin  cpv1.PolicyAdminServiceClient
	conn   *grpc.ClientConn
}

// start serves a Server configured with the policy file at path (empty:
// noop) through the real gRPC stack on bufconn.
func start(t *testing.T, path string) *testServer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{PolicyConfigPath: path, Logger: logger})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := srv.NewGRPCServer()
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testServer{
		srv:    srv,
		policy: cpv1.NewPolicyServiceClient(conn),
		admin:  cpv1.NewPolicyAdminServiceClient(conn),
		conn:   conn,
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func textBlock(s string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: s}}}
}

func toolUseBlock(id, name, input string) *cpv1.ContentBlock {
	return &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: id, Name: name, InputJson: []byte(input)}}}
}

// streamEvents is a streamed response with a text block and a tool call.
func streamEvents() []*cpv1.StreamEvent {
	delta := func(index uint32, d *cpv1.ContentBlockDelta) *cpv1.StreamEvent_ContentBlockDelta {
		d.Index = index
		return &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}
	}
	text := func(s string) *cpv1.ContentBlockDelta {
		return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: s}}}
	}
	inputJSON := func(s string) *cpv1.ContentBlockDelta {
		return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: s}}}
	}
	events := []*cpv1.StreamEvent{
		{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "msg_1", Model: "claude"}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 0, Block: textBlock("")}}},
		{Event: delta(0, text("Hello, "))},
		{Event: delta(0, text("straße é 🎉"))},
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 0}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 1, Block: toolUseBlock("toolu_1", "bash", "")}}},
		{Event: delta(1, inputJSON(`{"command":`))},
		{Event: delta(1, inputJSON(`"ls -la"}`))},
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 1}}},
		{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "tool_use", Usage: &cpv1.Usage{OutputTokens: 9}}}},
		{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}},
	}
	for i, ev := range events {
		ev.Seq = uint64(i + 1)
	}
	return events
}

func eventMsg(ev *cpv1.StreamEvent) *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Event{Event: ev}}
}

func startMsg(revision string) *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{
		CallId: "call-1", Format: anthropic, Request: []byte(`{"stream":true}`), PolicyRevision: revision,
	}}}
}

func endMsg() *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_End{End: &cpv1.StreamEnd{}}}
}

// wantOutput is the expected output for one input: a passthrough of the
// input's seq, or an event with the input's seq and this text.
type wantOutput struct {
	passthrough bool
	text        string
}

// uppercased maps input seq to expected text for the all_caps stream.
var uppercased = map[uint64]string{3: "HELLO, ", 4: "STRASSE É 🎉"}

// checkBatch checks that resp is one output for input under all_caps (or
// a passthrough when caps is false).
func checkBatch(t *testing.T, input *cpv1.StreamEvent, resp *cpv1.StreamChunkPolicyResponse, caps bool) {
	t.Helper()
	if len(resp.GetOutputs()) != 1 || resp.GetEndStream() {
		t.Fatalf("seq %d: got %v, want one output", input.GetSeq(), resp)
	}
	out := resp.GetOutputs()[0]
	want, changed := uppercased[input.GetSeq()]
	if !caps || !changed {
		if got, ok := out.GetOutput().(*cpv1.StreamOutput_PassthroughSeq); !ok || got.PassthroughSeq != input.GetSeq() {
			t.Errorf("seq %d: got %v, want passthrough_seq %d", input.GetSeq(), out, input.GetSeq())
		}
		return
	}
	ev := out.GetEvent()
	if ev == nil {
		t.Fatalf("seq %d: got %v, want an event", input.GetSeq(), out)
	}
	if ev.GetSeq() != input.GetSeq() {
		t.Errorf("seq %d: output seq %d", input.GetSeq(), ev.GetSeq())
	}
	if got := ev.GetContentBlockDelta().GetText().GetText(); got != want {
		t.Errorf("seq %d: text %q, want %q", input.GetSeq(), got, want)
	}
}

func TestApplyRequestPolicies(t *testing.T) {
	tests := []struct {
		name        string
		config      string
		req         *cpv1.ApplyRequestPoliciesRequest
		wantCode    codes.Code
		wantInspect bool
	}{
		{
			name:   "noop continues unchanged",
			config: noopConfig,
			req:    &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: anthropic, Body: []byte(`{"model":"m"}`)},
		},
		{
			name:   "default policy is noop",
			config: "",
			req:    &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT},
		},
		{
			name:        "all_caps continues and inspects responses",
			config:      allCapsConfig,
			req:         &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: anthropic, Body: []byte(`{"model":"m"}`)},
			wantInspect: true,
		},
		{
			name:     "missing call_id",
			config:   noopConfig,
			req:      &cpv1.ApplyRequestPoliciesRequest{Format: anthropic},
			wantCode: codes.InvalidArgument,
		},
		{
			name:     "unspecified format",
			config:   noopConfig,
			req:      &cpv1.ApplyRequestPoliciesRequest{CallId: "c1"},
			wantCode: codes.InvalidArgument,
		},
		{
			name:     "unknown format",
			config:   noopConfig,
			req:      &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: cpv1.ClientFormat(42)},
			wantCode: codes.InvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, tt.config)
			resp, err := ts.policy.ApplyRequestPolicies(testContext(t), tt.req)
			if status.Code(err) != tt.wantCode {
				t.Fatalf("ApplyRequestPolicies: code %v (%v), want %v", status.Code(err), err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				return
			}
			cont := resp.GetContinue()
			if cont == nil || cont.Body != nil {
				t.Errorf("outcome = %v, want continue without a body", resp.GetOutcome())
			}
			if resp.GetInspectResponse() != tt.wantInspect {
				t.Errorf("inspect_response = %v, want %v", resp.GetInspectResponse(), tt.wantInspect)
			}
			if resp.GetPolicyRevision() == "" {
				t.Error("policy_revision is empty")
			}
		})
	}
}

func TestApplyResponsePolicy(t *testing.T) {
	tool := toolUseBlock("toolu_1", "bash", `{"command":"ls"}`)
	tests := []struct {
		name      string
		config    string
		response  *cpv1.Message
		wantCode  codes.Code
		wantTexts []string // texts of the returned message; nil: response unset
	}{
		{
			name:      "all_caps uppercases text blocks",
			config:    allCapsConfig,
			response:  &cpv1.Message{Id: "msg_1", Content: []*cpv1.ContentBlock{textBlock("straße"), tool, textBlock("ok é")}, StopReason: "tool_use"},
			wantTexts: []string{"STRASSE", "", "OK É"},
		},
		{
			name:     "all_caps leaves uppercase text unchanged",
			config:   allCapsConfig,
			response: &cpv1.Message{Id: "msg_1", Content: []*cpv1.ContentBlock{textBlock("DONE"), tool}},
		},
		{
			name:     "noop leaves the response unchanged",
			config:   noopConfig,
			response: &cpv1.Message{Id: "msg_1", Content: []*cpv1.ContentBlock{textBlock("hello")}},
		},
		{name: "missing response", config: allCapsConfig, wantCode: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, tt.config)
			resp, err := ts.policy.ApplyResponsePolicy(testContext(t), &cpv1.ApplyResponsePolicyRequest{
				CallId: "c1", Format: anthropic, Response: tt.response,
			})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("ApplyResponsePolicy: code %v (%v), want %v", status.Code(err), err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				return
			}
			if tt.wantTexts == nil {
				if resp.Response != nil {
					t.Errorf("response = %v, want unset", resp.Response)
				}
				return
			}
			got := resp.GetResponse()
			if got.GetId() != tt.response.GetId() || got.GetStopReason() != tt.response.GetStopReason() {
				t.Errorf("response lost fields: %v", got)
			}
			if len(got.GetContent()) != len(tt.wantTexts) {
				t.Fatalf("response has %d blocks, want %d", len(got.GetContent()), len(tt.wantTexts))
			}
			for i, block := range got.GetContent() {
				if tt.wantTexts[i] == "" {
					if !proto.Equal(block, tt.response.GetContent()[i]) {
						t.Errorf("block %d = %v, want it unchanged", i, block)
					}
					continue
				}
				if block.GetText().GetText() != tt.wantTexts[i] {
					t.Errorf("block %d text = %q, want %q", i, block.GetText().GetText(), tt.wantTexts[i])
				}
			}
		})
	}
}

func TestStreamChunkPolicy(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		caps      bool
		halfClose bool // close the send side instead of sending end
	}{
		{name: "all_caps, end message", config: allCapsConfig, caps: true},
		{name: "all_caps, half-close", config: allCapsConfig, caps: true, halfClose: true},
		{name: "noop passes everything through", config: noopConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, tt.config)
			stream, err := ts.policy.StreamChunkPolicy(testContext(t))
			if err != nil {
				t.Fatalf("StreamChunkPolicy: %v", err)
			}
			if err := stream.Send(startMsg("")); err != nil {
				t.Fatalf("send start: %v", err)
			}
			events := streamEvents()
			for _, ev := range events {
				if err := stream.Send(eventMsg(ev)); err != nil {
					t.Fatalf("send seq %d: %v", ev.GetSeq(), err)
				}
			}
			if tt.halfClose {
				err = stream.CloseSend()
			} else {
				err = stream.Send(endMsg())
			}
			if err != nil {
				t.Fatalf("end: %v", err)
			}
			for _, ev := range events {
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("recv for seq %d: %v", ev.GetSeq(), err)
				}
				checkBatch(t, ev, resp, tt.caps)
			}
			if resp, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last batch: %v, %v; want io.EOF", resp, err)
			}
		})
	}
}

func TestStreamChunkPolicyInvalid(t *testing.T) {
	ev := streamEvents()[0]
	tests := []struct {
		name string
		msgs []*cpv1.StreamChunkPolicyRequest
	}{
		{name: "event before start", msgs: []*cpv1.StreamChunkPolicyRequest{eventMsg(ev)}},
		{name: "end before start", msgs: []*cpv1.StreamChunkPolicyRequest{endMsg()}},
		{name: "closed before start"},
		{name: "empty message", msgs: []*cpv1.StreamChunkPolicyRequest{{}}},
		{
			name: "start without call_id",
			msgs: []*cpv1.StreamChunkPolicyRequest{{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{Format: anthropic}}}},
		},
		{name: "start twice", msgs: []*cpv1.StreamChunkPolicyRequest{startMsg(""), startMsg("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, allCapsConfig)
			stream, err := ts.policy.StreamChunkPolicy(testContext(t))
			if err != nil {
				t.Fatalf("StreamChunkPolicy: %v", err)
			}
			for _, msg := range tt.msgs {
				if err := stream.Send(msg); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatalf("CloseSend: %v", err)
			}
			_, err = stream.Recv()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Recv: code %v (%v), want InvalidArgument", status.Code(err), err)
			}
		})
	}
}

func TestSetPolicy(t *testing.T) {
	allCapsStruct, err := structpb.NewStruct(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	badConfig, err := structpb.NewStruct(map[string]any{"shout": true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		policy    *cpv1.PolicyConfig
		wantCode  codes.Code
		wantClass string
		wantErrIn []string
	}{
		{name: "short name", policy: &cpv1.PolicyConfig{Class: "all_caps", Config: allCapsStruct}, wantClass: "all_caps"},
		{name: "alias, no config", policy: &cpv1.PolicyConfig{Class: "luthien_proxy.policies.all_caps_policy:AllCapsPolicy"}, wantClass: "all_caps"},
		{
			name:      "unknown class",
			policy:    &cpv1.PolicyConfig{Class: "shouting"},
			wantCode:  codes.InvalidArgument,
			wantErrIn: []string{`unknown policy class "shouting"`, "all_caps, noop"},
		},
		{
			name:      "invalid config",
			policy:    &cpv1.PolicyConfig{Class: "all_caps", Config: badConfig},
			wantCode:  codes.InvalidArgument,
			wantErrIn: []string{"all_caps", `config key "shout"`},
		},
		{name: "missing class", policy: &cpv1.PolicyConfig{}, wantCode: codes.InvalidArgument, wantErrIn: []string{"policy.class is required"}},
		{name: "missing policy", wantCode: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, noopConfig)
			ctx := testContext(t)
			before, err := ts.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil {
				t.Fatalf("GetPolicy: %v", err)
			}
			set, err := ts.admin.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: tt.policy})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("SetPolicy: code %v (%v), want %v", status.Code(err), err, tt.wantCode)
			}
			for _, want := range tt.wantErrIn {
				if msg := status.Convert(err).Message(); !strings.Contains(msg, want) {
					t.Errorf("SetPolicy error %q does not contain %q", msg, want)
				}
			}
			after, err := ts.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil {
				t.Fatalf("GetPolicy: %v", err)
			}
			if tt.wantCode != codes.OK {
				if !proto.Equal(before, after) {
					t.Errorf("a failed SetPolicy changed the policy from %v to %v", before, after)
				}
				return
			}
			if !proto.Equal(set.GetActive(), after.GetActive()) {
				t.Errorf("GetPolicy = %v, want what SetPolicy returned: %v", after.GetActive(), set.GetActive())
			}
			active := after.GetActive()
			if active.GetPolicy().GetClass() != tt.wantClass {
				t.Errorf("class = %q, want %q", active.GetPolicy().GetClass(), tt.wantClass)
			}
			if active.GetRevision() == "" || active.GetRevision() == before.GetActive().GetRevision() {
				t.Errorf("revision %q did not change from %q", active.GetRevision(), before.GetActive().GetRevision())
			}
			if !active.GetActivatedAt().IsValid() || active.GetActivatedAt().AsTime().Before(before.GetActive().GetActivatedAt().AsTime()) {
				t.Errorf("activated_at %v not after %v", active.GetActivatedAt(), before.GetActive().GetActivatedAt())
			}
			req, err := ts.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: anthropic})
			if err != nil {
				t.Fatalf("ApplyRequestPolicies: %v", err)
			}
			if req.GetPolicyRevision() != active.GetRevision() || !req.GetInspectResponse() {
				t.Errorf("request ran under %q (inspect %v), want the new revision %q", req.GetPolicyRevision(), req.GetInspectResponse(), active.GetRevision())
			}
		})
	}
}

// TestRevisionPinning checks that a call started under revision A finishes
// under A after SetPolicy switches to B.
func TestRevisionPinning(t *testing.T) {
	ts := start(t, allCapsConfig)
	ctx := testContext(t)
	reqA, err := ts.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: anthropic})
	if err != nil {
		t.Fatalf("ApplyRequestPolicies: %v", err)
	}
	revA := reqA.GetPolicyRevision()

	events := streamEvents()
	stream, err := ts.policy.StreamChunkPolicy(ctx)
	if err != nil {
		t.Fatalf("StreamChunkPolicy: %v", err)
	}
	if err := stream.Send(startMsg(revA)); err != nil {
		t.Fatalf("send start: %v", err)
	}
	// Half the events before the switch, half after.
	half := 3
	for _, ev := range events[:half] {
		if err := stream.Send(eventMsg(ev)); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		checkBatch(t, ev, resp, true)
	}

	set, err := ts.admin.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}})
	if err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	revB := set.GetActive().GetRevision()
	if revB == revA {
		t.Fatalf("revision did not change: %q", revB)
	}

	for _, ev := range events[half:] {
		if err := stream.Send(eventMsg(ev)); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		checkBatch(t, ev, resp, true)
	}
	if err := stream.Send(endMsg()); err != nil {
		t.Fatalf("send end: %v", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after end: %v, want io.EOF", err)
	}

	// Complete responses: each revision runs its own policy; an empty or
	// unknown revision runs the active one (noop).
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("quiet")}}
	for _, tt := range []struct {
		revision string
		changed  bool
	}{{revA, true}, {revB, false}, {"", false}, {"feedface", false}} {
		resp, err := ts.policy.ApplyResponsePolicy(ctx, &cpv1.ApplyResponsePolicyRequest{
			CallId: "c1", Format: anthropic, PolicyRevision: tt.revision, Response: msg,
		})
		if err != nil {
			t.Fatalf("ApplyResponsePolicy(%q): %v", tt.revision, err)
		}
		if changed := resp.Response != nil; changed != tt.changed {
			t.Errorf("ApplyResponsePolicy(%q) changed = %v, want %v", tt.revision, changed, tt.changed)
		}
	}
}

func TestListPolicyTypes(t *testing.T) {
	ts := start(t, "")
	resp, err := ts.admin.ListPolicyTypes(testContext(t), &cpv1.ListPolicyTypesRequest{})
	if err != nil {
		t.Fatalf("ListPolicyTypes: %v", err)
	}
	var classes []string
	for _, typ := range resp.GetTypes() {
		classes = append(classes, typ.GetClass())
		if typ.GetDescription() == "" || typ.GetConfigSchemaJson() == "" || len(typ.GetAliases()) == 0 {
			t.Errorf("incomplete policy type %v", typ)
		}
	}
	if want := []string{"all_caps", "noop"}; !slices.Equal(classes, want) {
		t.Errorf("classes = %v, want %v", classes, want)
	}
}

func TestHealth(t *testing.T) {
	ts := start(t, "")
	ctx := testContext(t)
	client := healthpb.NewHealthClient(ts.conn)
	services := []string{"", "luthien.controlplane.v1.PolicyService", "luthien.controlplane.v1.PolicyAdminService"}
	check := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, name := range services {
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
			if err != nil {
				t.Fatalf("Check(%q): %v", name, err)
			}
			if resp.GetStatus() != want {
				t.Errorf("Check(%q) = %v, want %v", name, resp.GetStatus(), want)
			}
		}
	}
	check(healthpb.HealthCheckResponse_SERVING)
	ts.srv.Shutdown()
	check(healthpb.HealthCheckResponse_NOT_SERVING)
}

func TestReflection(t *testing.T) {
	ts := start(t, "")
	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(testContext(t))
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatalf("send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	for _, want := range []string{"luthien.controlplane.v1.PolicyService", "luthien.controlplane.v1.PolicyAdminService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestNewInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name      string
		path      string
		wantErrIn []string
	}{
		{name: "missing file", path: filepath.Join(dir, "absent.yaml"), wantErrIn: []string{"absent.yaml"}},
		{name: "unknown class", path: write("unknown.yaml", "policy:\n  class: shouting\n"), wantErrIn: []string{"unknown.yaml", `unknown policy class "shouting"`, "all_caps, noop"}},
		{name: "invalid config", path: write("config.yaml", "policy:\n  class: noop\n  config: {loud: true}\n"), wantErrIn: []string{"config.yaml", `config key "loud"`}},
		{name: "missing class", path: write("class.yaml", "policy: {}\n"), wantErrIn: []string{"class.yaml", "missing policy.class"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{PolicyConfigPath: tt.path})
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, want := range tt.wantErrIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New error %q does not contain %q", err, want)
				}
			}
		})
	}
}
