package server

import (
	"fmt"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/service"
)

// otherClass is the class label of a policy whose name is not a
// registered class, so that the label's values stay the registry's.
const otherClass = "other"

// policyLatencyBuckets are the buckets of the policy latency histogram,
// in seconds: from tens of microseconds (a regex on a chunk) to a minute
// (a judge that calls a model).
var policyLatencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// rpcLatencyBuckets are the buckets of the gRPC handling time, in
// seconds; a stream policy call lasts as long as the streamed response.
var rpcLatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// telemetry is what the server reports about itself: metrics (with a
// Config.Metrics registerer) and traces (with a Config.TracerProvider).
// The zero value reports nothing.
type telemetry struct {
	grpc   *grpcprom.ServerMetrics // nil: no metrics
	tracer trace.TracerProvider    // nil: no traces
}

// policyMetrics counts live policy decisions and times the policies; it
// is the policy service's service.Observer.
type policyMetrics struct {
	classes   map[string]bool
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

var _ service.Observer = (*policyMetrics)(nil)

func newPolicyMetrics(registry *policy.Registry) *policyMetrics {
	m := &policyMetrics{
		classes: map[string]bool{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "luthien_policy_decisions_total",
			Help: "Live policy decisions by policy class, phase (request, response, stream) and outcome (continue, modify, respond, reject, pass, error, cancelled).",
		}, []string{"class", "phase", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "luthien_policy_duration_seconds",
			Help:    "Time the policy itself took, by policy class and phase (request, response, and per hook of a stream: stream_event, stream_end).",
			Buckets: policyLatencyBuckets,
		}, []string{"class", "phase"}),
	}
	for _, t := range registry.Types() {
		m.classes[t.Class] = true
	}
	return m
}

// class bounds a policy name to the registered classes.
func (m *policyMetrics) class(name string) string {
	if m.classes[name] {
		return name
	}
	return otherClass
}

// Decided counts a decision.
func (m *policyMetrics) Decided(class, phase, outcome string) {
	m.decisions.WithLabelValues(m.class(class), phase, outcome).Inc()
}

// Took observes the time a policy took.
func (m *policyMetrics) Took(class, phase string, elapsed time.Duration) {
	m.latency.WithLabelValues(m.class(class), phase).Observe(elapsed.Seconds())
}

// instrument sets up the server's telemetry from cfg: the metrics of the
// policies, the recording pipeline and the gRPC server registered on
// cfg.Metrics, and the tracer provider of the gRPC server.
func (s *Server) instrument(cfg Config, registry *policy.Registry) error {
	s.telemetry.tracer = cfg.TracerProvider
	if cfg.Metrics == nil {
		return nil
	}
	pm := newPolicyMetrics(registry)
	s.telemetry.grpc = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(rpcLatencyBuckets)))
	collectors := append([]prometheus.Collector{pm.decisions, pm.latency, s.telemetry.grpc}, s.recording.collectors()...)
	for _, c := range collectors {
		if err := cfg.Metrics.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	s.policies.SetObserver(pm)
	return nil
}

// collectors are the metrics of the recording pipeline, read from its
// counters when scraped.
func (r *recording) collectors() []prometheus.Collector {
	counter := func(name, help string, labels prometheus.Labels, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	const lookups = "Response cache lookups by result (hit, miss)."
	return []prometheus.Collector{
		gauge("luthien_store_queue_depth", "Events waiting in the store's write queue or being written.", r.queue.Depth),
		gauge("luthien_store_queue_bytes", "Bytes of the records waiting in the store's write queue or being written.", r.queue.Bytes),
		counter("luthien_store_events_written_total", "Events written to the store.", nil, r.queue.Written),
		counter("luthien_store_events_dropped_total", "Events dropped: the write queue was full or the store refused them.", nil, r.queue.Dropped),
		counter("luthien_store_write_errors_total", "Failed write attempts of the store's write queue.", nil, r.queue.WriteErrors),
		counter("luthien_cache_lookups_total", lookups, prometheus.Labels{"result": "hit"}, r.cache.Hits),
		counter("luthien_cache_lookups_total", lookups, prometheus.Labels{"result": "miss"}, r.cache.Misses),
		counter("luthien_activity_events_dropped_total", "Activity feed events lost by subscribers too slow to take them.", nil, r.hub.Dropped),
		counter("luthien_activity_publish_dropped_total", "Activity feed events not published to Redis (publish queue full or Redis failing).", nil, r.hub.PublishDropped),
	}
}

// interceptors puts the metrics interceptors first (outermost), so that
// they see every call with its final status, refused ones included.
func (t *telemetry) interceptors(unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	if t.grpc == nil {
		return unary, stream
	}
	return append([]grpc.UnaryServerInterceptor{t.grpc.UnaryServerInterceptor()}, unary...),
		append([]grpc.StreamServerInterceptor{t.grpc.StreamServerInterceptor()}, stream...)
}

// serverOptions traces every call but health checks, joining the trace
// of the caller's metadata (W3C trace context). Spans carry the method,
// the status and the peer, never a message.
func (t *telemetry) serverOptions() []grpc.ServerOption {
	if t.tracer == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tracer), otelgrpc.WithPropagators(Propagator()),
		otelgrpc.WithMeterProvider(noop.NewMeterProvider()), otelgrpc.WithFilter(filters.Not(filters.HealthCheck()))))}
}
