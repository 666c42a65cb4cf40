package server

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Tracing is off unless an OTLP endpoint is set, and off again when the
// SDK is disabled or the exporter is none.
func TestNewTracerProviderFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    bool
		wantErr string
	}{
		{name: "nothing set", want: false},
		{name: "endpoint", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318"}, want: true},
		{name: "traces endpoint", env: map[string]string{EnvOTLPTracesEndpoint: "http://127.0.0.1:4318/v1/traces"}, want: true},
		{name: "grpc", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4317", EnvOTLPProtocol: "grpc"}, want: true},
		{name: "disabled", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318", EnvOTelSDKDisabled: "true"}, want: false},
		{name: "exporter none", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318", EnvOTelTracesExporter: "none"}, want: false},
		{name: "unknown exporter", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318", EnvOTelTracesExporter: "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "unknown protocol", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318", EnvOTLPProtocol: "http/json"}, wantErr: "http/protobuf or grpc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := NewTracerProvider(context.Background(), func(k string) string { return tt.env[k] }, "test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tp != nil; got != tt.want {
				t.Fatalf("tracing on = %v, want %v", got, tt.want)
			}
			if tp != nil {
				_ = tp.Shutdown(context.Background())
			}
		})
	}
}

// A control plane with a tracer provider makes a server span per call,
// joining the caller's trace, and notes the policy class and outcome on
// it.
func TestServerSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ts := startWith(t, Config{PolicyConfigPath: allCapsConfig, TracerProvider: tp})
	ctx, parent := tp.Tracer("test").Start(testContext(t), "caller")
	ctx = injectTraceContext(ctx)
	if _, err := ts.policy.ApplyRequestPolicies(ctx, requestFor(t)); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var found bool
	for _, s := range rec.Ended() {
		if s.Name() != "luthien.controlplane.v1.PolicyService/ApplyRequestPolicies" {
			continue
		}
		found = true
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("server span's parent = %v, want the caller's span", s.Parent().SpanID())
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs["luthien.policy.class"] != "all_caps" || attrs["luthien.policy.outcome"] != "continue" {
			t.Errorf("server span attributes = %v", attrs)
		}
	}
	if !found {
		t.Fatalf("no server span among %d", len(rec.Ended()))
	}
}
