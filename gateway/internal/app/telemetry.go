package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"luthien.dev/controlplane/server"
	"luthien.dev/gateway/internal/config"
	"luthien.dev/gateway/internal/record"
	"luthien.dev/gateway/internal/telemetry"
)

// ServiceName is the gateway's OpenTelemetry service.name, unless
// OTEL_SERVICE_NAME says otherwise.
const ServiceName = "luthien-gateway"

// instrumentationName names the gateway's tracer.
const instrumentationName = "luthien.dev/gateway"

// rpcLatencyBuckets are the buckets of the control plane calls' handling
// time, in seconds; a stream policy call lasts as long as the stream.
var rpcLatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Options are what a gateway gets besides its configuration.
type Options struct {
	// TracerProvider traces every call and the calls to the control
	// plane (an in-process control plane's spans join them); nil: no
	// tracing. NewTracerProvider builds the one the environment asks for.
	TracerProvider trace.TracerProvider
}

// New connects to the control plane and builds the HTTP handler, without
// tracing.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	return NewWithOptions(ctx, cfg, log, Options{})
}

// TracingSettings are the OTEL_* variables the gateway's tracing reads
// (server.TracingSettings), for -list-settings.
var TracingSettings = server.TracingSettings

// NewTracerProvider returns the tracer provider the standard OTEL_*
// variables ask for, nil when tracing is off (see
// server.NewTracerProvider); shut it down to flush the last spans.
func NewTracerProvider(ctx context.Context, getenv func(string) string, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, error) {
	return server.NewTracerProvider(ctx, getenv, ServiceName, opts...)
}

// NewLogHandler returns the gateway's log handler: lines in format (text
// or json) from level on, credentials redacted (LogHandler).
func NewLogHandler(format string, w io.Writer, level slog.Leveler) (slog.Handler, error) {
	return server.NewLogHandler(format, w, level)
}

// appTelemetry is the gateway's metrics registry with its collectors, and
// its tracer provider.
type appTelemetry struct {
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	grpc     *grpcprom.ClientMetrics
	provider trace.TracerProvider // nil: no tracing
}

// newTelemetry builds the registry (with the Go runtime's and the
// process's collectors) and the gateway's collectors.
func newTelemetry(cfg config.Config, opts Options) (*appTelemetry, error) {
	t := &appTelemetry{
		registry: prometheus.NewRegistry(),
		metrics:  telemetry.NewMetrics(cfg.MetricsModels),
		grpc: grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(rpcLatencyBuckets))),
		provider: opts.TracerProvider,
	}
	cs := append([]prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), t.grpc},
		t.metrics.Collectors()...)
	for _, c := range cs {
		if err := t.registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return t, nil
}

// tracer is the proxy's tracer; nil without tracing.
func (t *appTelemetry) tracer() trace.Tracer {
	if t.provider == nil {
		return nil
	}
	return t.provider.Tracer(instrumentationName)
}

// dialOptions instrument the link to the control plane: the gRPC client
// metrics, and with tracing a client span per call (health checks
// excepted) whose context travels in the call's metadata, so that the
// control plane's spans join the call's trace.
func (t *appTelemetry) dialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(t.grpc.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(t.grpc.StreamClientInterceptor()),
	}
	if t.provider != nil {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(server.Propagator()),
			otelgrpc.WithMeterProvider(noop.NewMeterProvider()), otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))))
	}
	return opts
}

// registerRecorder adds the call recorder's counters, read when scraped.
func (t *appTelemetry) registerRecorder(r *record.Recorder) error {
	counter := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	for _, c := range []prometheus.Collector{
		counter("luthien_gateway_records_sent_total", "Call records the control plane accepted.", r.Sent),
		counter("luthien_gateway_records_dropped_total", "Call records dropped (queue full, refused by the control plane, or left at shutdown).", r.Dropped),
		counter("luthien_gateway_records_truncated_total", "Bodies truncated in call records (over the record's body bound).", r.Truncated),
		gauge("luthien_gateway_record_queue_depth", "Call records waiting to be sent to the control plane.", r.Queued),
		gauge("luthien_gateway_record_queue_bytes", "Bytes of the call records waiting to be sent.", r.QueuedBytes),
	} {
		if err := t.registry.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}

// handler serves the registry in the Prometheus text format.
func (t *appTelemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}
