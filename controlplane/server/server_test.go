package server

import (
	"context"
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
			wantErrIn: []string{`unknown policy class "shouting"`, "all_caps, debug_logging, external, llm_judge, noop, regex_block"},
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

func TestListPolicyTypes(t *testing.T) {
	ts := start(t, "")
	resp, err := ts.admin.ListPolicyTypes(testContext(t), &cpv1.ListPolicyTypesRequest{})
	if err != nil {
		t.Fatalf("ListPolicyTypes: %v", err)
	}
	var classes []string
	for _, typ := range resp.GetTypes() {
		classes = append(classes, typ.GetClass())
		if typ.GetDescription() == "" || typ.GetConfigSchemaJson() == "" || len(typ.GetAliases()) == 0 && typ.GetClass() != "external" {
			t.Errorf("incomplete policy type %v", typ)
		}
	}
	if want := []string{"all_caps", "debug_logging", "external", "llm_judge", "noop", "regex_block", "serial", "sql_protection", "string_replacement", "tool_call_judge"}; !slices.Equal(classes, want) {
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
		{name: "unknown class", path: write("unknown.yaml", "policy:\n  class: shouting\n"), wantErrIn: []string{"unknown.yaml", `unknown policy class "shouting"`, "all_caps, debug_logging, external, llm_judge, noop, regex_block"}},
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
