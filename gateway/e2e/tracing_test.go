package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/app"
	"luthien.dev/gateway/internal/config"
)

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces,
// protobuf): it keeps every span it is sent, with its service.name.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []receivedSpan
}

// receivedSpan is one exported span and the resource it came from.
type receivedSpan struct {
	service  string
	resource []*commonpb.KeyValue
	*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range in.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{service: service, resource: rs.GetResource().GetAttributes(), Span: s})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans of the trace whose call span has callID, once
// it holds at least want spans (or after a deadline, what there is).
func (r *otlpReceiver) trace(t *testing.T, callID string, want int, flush func()) []receivedSpan {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		flush()
		r.mu.Lock()
		var traceID []byte
		for _, s := range r.spans {
			if s.GetName() == "chat" && attr(s.GetAttributes(), "luthien.call_id") == callID {
				traceID = s.GetTraceId()
			}
		}
		var out []receivedSpan
		for _, s := range r.spans {
			if traceID != nil && bytes.Equal(s.GetTraceId(), traceID) {
				out = append(out, s)
			}
		}
		r.mu.Unlock()
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// attr returns an attribute's value as text.
func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return anyValueText(kv.GetValue())
		}
	}
	return ""
}

// anyValueText renders an attribute value, arrays and maps included.
func anyValueText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyValueText(e))
		}
		return strings.Join(parts, ",")
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, kv := range x.KvlistValue.GetValues() {
			parts = append(parts, kv.GetKey()+"="+anyValueText(kv.GetValue()))
		}
		return strings.Join(parts, ",")
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	}
	return v.String()
}

// startTraced starts a gateway in mode whose spans (and, split, the
// control plane's) go to recv, and returns it with a function that makes
// the in-process exporter send what it holds.
func startTraced(t *testing.T, mode string, recv *otlpReceiver) (*env, func()) {
	t.Helper()
	otel := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.srv.URL, "OTEL_BSP_SCHEDULE_DELAY": "50"}
	if mode == "split" {
		// The harness gives the gateway none of the control plane's
		// variables: the control plane gets the traces endpoint instead
		// (used as it is), and exports each span at once.
		cp := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": recv.srv.URL + "/v1/traces", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1"}
		return start(t, "split", options{env: cp, gatewayEnv: otel}), func() {}
	}
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	vars := map[string]string{"OPENAI_BASE_URL": up.OpenAIBaseURL(), "ANTHROPIC_BASE_URL": up.AnthropicBaseURL(),
		"LUTHIEN_HTTP_ADDR": "127.0.0.1:0"}
	for k, v := range otel {
		vars[k] = v
	}
	getenv := func(k string) string { return vars[k] }
	cfg, err := config.Load(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tp, err := app.NewTracerProvider(ctx, getenv)
	if err != nil || tp == nil {
		t.Fatalf("NewTracerProvider = %v, %v; want a provider", tp, err)
	}
	a, err := app.NewWithOptions(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); a.Close(); _ = tp.Shutdown(ctx) })
	return &env{mode: mode, URL: srv.URL, up: up, killControlPlane: func() {}}, func() { _ = tp.ForceFlush(ctx) }
}

// A call is one trace: the gateway's call span with a child per policy
// phase and one for upstream; below each policy phase the gRPC client
// span, and below it the control plane's server span, which names the
// policy class. No attribute anywhere holds the client's key, the link's
// token, the prompt or the answer.
func TestTracingSpanTree(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			recv := newOTLPReceiver(t)
			e, flush := startTraced(t, mode, recv)
			e.setPolicy(t, "all_caps", map[string]any{})
			const prompt, answer = "secret-prompt-marker please", "quiet answer marker"
			e.up.SetDefault(fakeupstream.Scenario{Text: answer})
			secrets := []string{"sk-client-key", prompt, answer, strings.ToUpper(answer), linkPKI.token}

			for _, tc := range []struct {
				name, path, body string
				header           map[string]string
				policyPhase      string
			}{
				{"complete", "/v1/chat/completions", strings.Replace(openaiBody(false, ""), `"hi"`, `"`+prompt+`"`, 1), openaiHeaders,
					"policy.response"},
				{"stream", "/v1/messages", strings.Replace(anthropicBody(true, ""), `"hi"`, `"`+prompt+`"`, 1), anthropicHeaders,
					"policy.stream"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, b := e.do(t, http.MethodPost, tc.path, tc.body, tc.header)
					if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToUpper(string(b)), "QUIET") {
						t.Fatalf("call: %d %s", resp.StatusCode, b)
					}
					id := resp.Header.Get("X-Call-ID")
					// call, its 3 children, and the call's stream: a client
					// span below policy.request, the control plane's below it.
					spans := recv.trace(t, id, 6, flush)
					checkSpanTree(t, mode, spans, id, tc.policyPhase)
					for _, s := range spans {
						all := append(append([]*commonpb.KeyValue{}, s.GetAttributes()...), s.resource...)
						for _, ev := range s.GetEvents() {
							all = append(all, ev.GetAttributes()...)
						}
						for _, kv := range all {
							v := anyValueText(kv.GetValue())
							for _, secret := range secrets {
								if secret != "" && strings.Contains(v, secret) {
									t.Errorf("span %q attribute %s=%q holds %q", s.GetName(), kv.GetKey(), v, secret)
								}
							}
						}
						if s.GetStatus().GetMessage() != "" {
							t.Errorf("span %q has a status message %q", s.GetName(), s.GetStatus().GetMessage())
						}
					}
				})
			}
		})
	}
}

// checkSpanTree checks the spans of one call's trace.
func checkSpanTree(t *testing.T, mode string, spans []receivedSpan, callID, policyPhase string) {
	t.Helper()
	byID := map[string]receivedSpan{}
	children := map[string][]receivedSpan{}
	var call *receivedSpan
	for i, s := range spans {
		id := hex.EncodeToString(s.GetSpanId())
		byID[id] = s
		children[hex.EncodeToString(s.GetParentSpanId())] = append(children[hex.EncodeToString(s.GetParentSpanId())], s)
		if s.GetName() == "chat" {
			call = &spans[i]
		}
	}
	if call == nil {
		t.Fatalf("no call span among %d spans", len(spans))
	}
	if call.GetKind() != tracepb.Span_SPAN_KIND_SERVER || call.service != app.ServiceName {
		t.Errorf("call span: kind %v, service %q", call.GetKind(), call.service)
	}
	if got := attr(call.GetAttributes(), "http.response.status_code"); got != "200" {
		t.Errorf("call span http.response.status_code = %q, want 200", got)
	}
	if got := attr(call.GetAttributes(), "luthien.call_id"); got != callID {
		t.Errorf("call span luthien.call_id = %q, want %q", got, callID)
	}
	named := func(parent receivedSpan, name string) *receivedSpan {
		for _, c := range children[hex.EncodeToString(parent.GetSpanId())] {
			if c.GetName() == name {
				return &c
			}
		}
		return nil
	}
	if named(*call, policyPhase) == nil {
		t.Errorf("no %s span below the call span", policyPhase)
	}
	// The call's one stream opens in policy.request and lasts until the
	// call's end.
	const method = "luthien.controlplane.v1.CallService/Call"
	ps := named(*call, "policy.request")
	if ps == nil {
		t.Fatal("no policy.request span below the call span")
	}
	client := named(*ps, method)
	if client == nil || client.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Fatalf("no gRPC client span %s below policy.request", method)
	}
	srv := named(*client, method)
	if srv == nil || srv.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("no control plane span %s below the client span (the trace did not cross the link)", method)
	}
	if got := attr(srv.GetAttributes(), "luthien.policy.class"); got != "all_caps" {
		t.Errorf("control plane span %s: luthien.policy.class = %q, want all_caps", method, got)
	}
	wantService := app.ServiceName
	if mode == "split" {
		wantService = "luthien-controlplane"
	}
	if srv.service != wantService {
		t.Errorf("control plane span service = %q, want %q", srv.service, wantService)
	}
	if up := named(*call, "upstream"); up == nil {
		t.Error("no upstream span below the call span")
	}
}
