package service

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// inlineKey is the judge key the tests give inline; no answer may show it.
const inlineKey = "sk-inline-0123456789-SECRET"

// keyJudge is a judge endpoint that allows every tool call and records
// the Authorization header of each request.
func keyJudge(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"{\"probability\":0}"}}]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveBuiltinAdmin serves an AdminService over the built-in registry,
// starting with noop, and returns a client, the store and the log.
func serveBuiltinAdmin(t *testing.T) (cpv1.PolicyAdminServiceClient, *Revisions, *syncBuffer) {
	t.Helper()
	for _, name := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LUTHIEN_JUDGE_API_KEY", "LUTHIEN_JUDGE_HOSTS", "LUTHIEN_JUDGE_KEY_ENVS"} {
		t.Setenv(name, "")
	}
	reg, err := policy.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	store, err := NewRevisions(reg, slog.New(slog.NewTextHandler(logs, nil)), "noop", nil, "startup")
	if err != nil {
		t.Fatal(err)
	}
	return serveAdminService(t, NewAdminService(store, reg, nil, nil)), store, logs
}

// judgeActive runs the active policy's response phase on a message with
// one tool call, which makes its judge call the judge endpoint.
func judgeActive(t *testing.T, store *Revisions) {
	t.Helper()
	msg := &cpv1.Message{Id: "msg_1", StopReason: "tool_use", Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_ToolUse{
		ToolUse: &cpv1.ToolUseBlock{Id: "toolu_1", Name: "Bash", InputJson: []byte(`{"command":"ls"}`)}}}}}
	if _, err := store.Active().Policy.OnResponse(testContext(t), &policy.Call{ID: "call_1", Format: anthropic}, msg); err != nil {
		t.Fatal(err)
	}
}

// policyConfig builds a PolicyConfig.
func policyConfig(t *testing.T, class string, cfg map[string]any) *cpv1.PolicyConfig {
	t.Helper()
	st, err := structpb.NewStruct(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cpv1.PolicyConfig{Class: class, Config: st}
}

// mustNotShow fails when an answer contains the inline key.
func mustNotShow(t *testing.T, what string, m proto.Message) {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), inlineKey) {
		t.Errorf("%s shows the inline key: %s", what, b)
	}
	if !strings.Contains(string(b), `"***"`) {
		t.Errorf("%s does not show the placeholder: %s", what, b)
	}
}

// No admin answer shows a judge's inline key, at the top level or in a
// serial chain; sending the placeholder back keeps the key, so the judge
// still gets it.
func TestSecretsNeverShown(t *testing.T) {
	judge, seen := keyJudge(t)
	judgeCfg := func(key string) map[string]any {
		return map[string]any{"model": "judge-model", "api_base": judge.URL + "/v1", "api_key": key, "max_retries": 0}
	}
	chain := func(key string) map[string]any {
		return map[string]any{"policies": []any{
			map[string]any{"class": "all_caps"},
			map[string]any{"class": "serial", "config": map[string]any{"policies": []any{
				map[string]any{"class": "tool_call_judge", "config": judgeCfg(key)},
			}}},
		}}
	}
	tests := []struct {
		name  string
		class string
		cfg   func(key string) map[string]any
		// moved is a configuration with a placeholder where the active
		// one has no key, or with another endpoint.
		moved map[string]any
	}{
		{name: "judge", class: "tool_call_judge", cfg: judgeCfg,
			moved: map[string]any{"model": "judge-model", "api_base": "http://elsewhere.example/v1", "api_key": "***"}},
		{name: "serial chain", class: "serial", cfg: chain,
			moved: map[string]any{"policies": []any{
				map[string]any{"class": "tool_call_judge", "config": judgeCfg("***")},
				map[string]any{"class": "all_caps"},
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, store, logs := serveBuiltinAdmin(t)
			ctx := testContext(t)
			set, err := client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: policyConfig(t, tt.class, tt.cfg(inlineKey))})
			if err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			mustNotShow(t, "SetPolicy", set)
			got, err := client.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil {
				t.Fatal(err)
			}
			mustNotShow(t, "GetPolicy", got)
			hist, err := client.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{})
			if err != nil {
				t.Fatal(err)
			}
			mustNotShow(t, "ListPolicyHistory", hist)
			dry, err := client.DryRunPolicy(ctx, &cpv1.DryRunPolicyRequest{Proposed: policyConfig(t, tt.class, tt.cfg(inlineKey)),
				Format: anthropic, RequestJson: sampleRequest})
			if err != nil {
				t.Fatal(err)
			}
			mustNotShow(t, "DryRunPolicy", dry)

			judgeActive(t, store)
			// Send back what GetPolicy showed: the key stays.
			again, err := client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: got.GetActive().GetPolicy()})
			if err != nil {
				t.Fatalf("SetPolicy with the placeholder: %v", err)
			}
			mustNotShow(t, "SetPolicy with the placeholder", again)
			if again.GetActive().GetRevision() == set.GetActive().GetRevision() {
				t.Fatal("no new revision")
			}
			judgeActive(t, store)
			if s := seen(); len(s) < 2 || s[len(s)-2] != "Bearer "+inlineKey || s[len(s)-1] != "Bearer "+inlineKey {
				t.Errorf("the judge got %q, want the inline key twice", s)
			}

			before := store.Active().Revision
			_, err = client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: policyConfig(t, tt.class, tt.moved)})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "api_key") {
				t.Errorf("placeholder without a stored key: %v, want INVALID_ARGUMENT naming api_key", err)
			}
			if store.Active().Revision != before {
				t.Error("a refused policy was activated")
			}
			if l := logs.String(); strings.Contains(l, inlineKey) || !strings.Contains(l, "api_key_env") {
				t.Errorf("log shows the key or lacks the inline-key warning:\n%s", l)
			}
		})
	}
}

// A policy naming its key with api_key_env shows the name, and an
// api_key_env outside the allowed list is INVALID_ARGUMENT naming it.
func TestSetPolicyKeyEnv(t *testing.T) {
	client, _, _ := serveBuiltinAdmin(t)
	ctx := testContext(t)
	t.Setenv("LUTHIEN_JUDGE_TEST_KEY", "sk-from-env")
	set, err := client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: policyConfig(t, "tool_call_judge",
		map[string]any{"api_base": "http://judge.example/v1", "api_key_env": "LUTHIEN_JUDGE_TEST_KEY"})})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := protojson.Marshal(set); strings.Contains(string(b), "sk-from-env") || !strings.Contains(string(b), "LUTHIEN_JUDGE_TEST_KEY") {
		t.Errorf("answer %s", b)
	}
	_, err = client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: policyConfig(t, "tool_call_judge",
		map[string]any{"api_base": "http://judge.example/v1", "api_key_env": "DATABASE_URL"})})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("api_key_env DATABASE_URL: %v", err)
	}
	t.Setenv("LUTHIEN_JUDGE_HOSTS", "judge.example")
	reg, err := policy.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewRevisions(reg, slog.New(slog.DiscardHandler), "noop", nil, "startup")
	if err != nil {
		t.Fatal(err)
	}
	limited := serveAdminService(t, NewAdminService(store, reg, nil, nil))
	_, err = limited.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: policyConfig(t, "llm_judge",
		map[string]any{"instructions": "x", "api_base": "http://169.254.169.254/v1", "api_key": "k"})})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "LUTHIEN_JUDGE_HOSTS") {
		t.Errorf("judge host outside LUTHIEN_JUDGE_HOSTS: %v", err)
	}
}
