package server

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The standard OpenTelemetry variables that turn tracing on and choose
// where spans go (the exporters read the other OTEL_EXPORTER_OTLP_*
// variables themselves: headers, certificates, timeout, compression; the
// SDK reads OTEL_TRACES_SAMPLER and OTEL_BSP_*).
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvOTelTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvOTelSDKDisabled    = "OTEL_SDK_DISABLED"
)

// TracingSettings are the variables above, with the service name's, that
// a binary lists in -list-settings: the SDK reads them itself.
var TracingSettings = []string{EnvOTLPEndpoint, EnvOTLPTracesEndpoint, EnvOTLPProtocol, EnvOTLPTracesProtocol,
	EnvOTelTracesExporter, EnvOTelSDKDisabled, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}

// The OTLP protocols supported, and the path of traces over HTTP.
const (
	protocolHTTPProtobuf = "http/protobuf"
	protocolGRPC         = "grpc"
	otlpHTTPTracesPath   = "/v1/traces"
)

// NewTracerProvider returns the tracer provider of a binary named service
// (its service.name unless OTEL_SERVICE_NAME says otherwise), exporting
// its spans over OTLP in batches, or nil when tracing is off: it is on
// when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as it is) or
// OTEL_EXPORTER_OTLP_ENDPOINT (to which /v1/traces is added over HTTP) is
// set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The
// protocol is http/protobuf unless OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL says grpc. opts are added to the provider's
// options (tests add a span processor of their own). Shut the provider
// down to flush the last spans.
func NewTracerProvider(ctx context.Context, getenv func(string) string, service string, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, error) {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvOTelSDKDisabled)), "true") {
		return nil, nil
	}
	switch exp := strings.TrimSpace(getenv(EnvOTelTracesExporter)); exp {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("%s=%q: only otlp and none are supported", EnvOTelTracesExporter, exp)
	}
	protocol := firstSet(getenv, EnvOTLPTracesProtocol, EnvOTLPProtocol)
	if protocol == "" {
		protocol = protocolHTTPProtobuf
	}
	endpoint := strings.TrimSpace(getenv(EnvOTLPTracesEndpoint))
	if endpoint == "" {
		endpoint = strings.TrimSpace(getenv(EnvOTLPEndpoint))
		if endpoint == "" {
			return nil, nil
		}
		if protocol == protocolHTTPProtobuf {
			endpoint = strings.TrimRight(endpoint, "/") + otlpHTTPTracesPath
		}
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case protocolHTTPProtobuf:
		exporter, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	case protocolGRPC:
		exporter, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	default:
		return nil, fmt.Errorf("%s=%q: want %s or %s", EnvOTLPTracesProtocol, protocol, protocolHTTPProtobuf, protocolGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter for %s: %w", endpoint, err)
	}
	// The service name given here is the default: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES (detected after it) win.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)}, opts...)...), nil
}

// Propagator is how trace context crosses the process boundaries: W3C
// traceparent and tracestate only (no baggage, which could carry
// anything a client put in it).
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// firstSet returns the first of the variables that is set, trimmed and
// lower-cased.
func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return strings.ToLower(v)
		}
	}
	return ""
}
