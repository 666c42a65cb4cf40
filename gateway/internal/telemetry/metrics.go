// Package telemetry holds the gateway's Prometheus metrics: every HTTP
// request by route, format and status, and the LLM calls in the
// OpenTelemetry GenAI semantic conventions' names (operation duration,
// time to first token, token usage), upstream errors by kind. Every label
// takes its values from a fixed set: route patterns, never raw paths;
// models only from an allowlist (ModelLabels); status codes as numbers.
package telemetry

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label names, after the GenAI semantic conventions where they have one
// (dots become underscores in Prometheus).
const (
	labelRoute     = "route"
	labelFormat    = "format"
	labelStatus    = "status"
	labelOperation = "gen_ai_operation_name"
	labelProvider  = "gen_ai_provider_name"
	labelModel     = "gen_ai_request_model"
	labelTokenType = "gen_ai_token_type"
	labelErrorType = "error_type"
	labelKind      = "kind"
)

// Values of the format label (and of gen_ai_provider_name).
const (
	FormatOpenAI    = "openai"
	FormatAnthropic = "anthropic"
	// FormatNone is the format of a request that is not an LLM call
	// (pages, the REST API, health).
	FormatNone = "none"
)

// OperationChat is gen_ai_operation_name of chat completions and
// messages alike.
const OperationChat = "chat"

// Kinds of upstream errors (luthien_gateway_upstream_errors_total).
const (
	// UpstreamUnreachable: no response (connection refused, reset, DNS).
	UpstreamUnreachable = "unreachable"
	// UpstreamHeaderTimeout: no response headers within
	// LUTHIEN_UPSTREAM_HEADER_TIMEOUT.
	UpstreamHeaderTimeout = "header_timeout"
	// UpstreamIdleTimeout: the response went silent for
	// LUTHIEN_UPSTREAM_IDLE_TIMEOUT.
	UpstreamIdleTimeout = "idle_timeout"
	// UpstreamBrokeOff: the response body or stream was cut.
	UpstreamBrokeOff = "broke_off"
	// UpstreamRateLimited: upstream answered 429.
	UpstreamRateLimited = "status_429"
	// UpstreamClientError: upstream answered another 4xx.
	UpstreamClientError = "status_4xx"
	// UpstreamServerError: upstream answered 5xx.
	UpstreamServerError = "status_5xx"
)

// Buckets of the histograms, in seconds or tokens.
var (
	// requestBuckets reach from a health check to a long generation.
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320}
	// genAIDurationBuckets are the GenAI conventions' advice for
	// gen_ai.client.operation.duration.
	genAIDurationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	// ttftBuckets are the conventions' advice for
	// gen_ai.server.time_to_first_token.
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}
	// tokenBuckets are the conventions' advice for gen_ai.client.token.usage.
	tokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
)

// Metrics are the gateway's own collectors. Their methods may be called
// on a nil *Metrics, which records nothing.
type Metrics struct {
	models *ModelLabels

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	callDuration    *prometheus.HistogramVec
	upstreamTime    *prometheus.HistogramVec
	ttft            *prometheus.HistogramVec
	tokens          *prometheus.HistogramVec
	upstreamErrors  *prometheus.CounterVec
}

// NewMetrics returns the gateway's collectors; models bounds the model
// label (nil: every model is "other").
func NewMetrics(models *ModelLabels) *Metrics {
	genAI := []string{labelOperation, labelProvider, labelModel}
	return &Metrics{
		models: models,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "luthien_gateway_requests_total",
			Help: "HTTP requests answered, by route (the pattern that matched, never the path), format (openai, anthropic, none) and status code.",
		}, []string{labelRoute, labelFormat, labelStatus}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "luthien_gateway_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route, format and status code.",
			Buckets: requestBuckets,
		}, []string{labelRoute, labelFormat, labelStatus}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_request_duration_seconds",
			Help:    "LLM calls (chat completions, messages) as the gateway serves them, policies included, from arrival to the end of the answer; error_type is the status code of a failed call, empty otherwise.",
			Buckets: genAIDurationBuckets,
		}, append(genAI, labelErrorType)),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_operation_duration_seconds",
			Help:    "The gateway's exchanges with the provider on LLM calls, from sending the request to the end of the response; error_type is the upstream error kind or status code, empty on success.",
			Buckets: genAIDurationBuckets,
		}, append(genAI, labelErrorType)),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Streamed LLM calls: time from the request's arrival to the first byte of the stream sent to the client.",
			Buckets: ttftBuckets,
		}, genAI),
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Tokens per LLM call as the provider reports them in its usage, by gen_ai_token_type (input, output).",
			Buckets: tokenBuckets,
		}, append(genAI, labelTokenType)),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "luthien_gateway_upstream_errors_total",
			Help: "Failed exchanges with a provider by provider and kind (unreachable, header_timeout, idle_timeout, broke_off, status_429, status_4xx, status_5xx).",
		}, []string{labelProvider, labelKind}),
	}
}

// Collectors returns every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.requestDuration, m.callDuration, m.upstreamTime, m.ttft, m.tokens, m.upstreamErrors}
}

// Call is what the metrics need of a finished LLM call.
type Call struct {
	Format string // FormatOpenAI or FormatAnthropic
	Model  string // as the client asked; bounded by ModelLabels
	Status int    // answered to the client
	Stream bool
	// Started is the request's arrival, FirstByte when the answer's first
	// byte went out (zero: none did), Finished the end of the answer.
	Started, FirstByte, Finished time.Time
	// InputTokens and OutputTokens are the usage upstream reported; both
	// zero: none reported.
	InputTokens, OutputTokens int64
}

// ObserveCall records a finished LLM call.
func (m *Metrics) ObserveCall(c Call) {
	if m == nil {
		return
	}
	model := m.models.Label(c.Model)
	errType := ""
	if c.Status >= 400 {
		errType = StatusLabel(c.Status)
	}
	m.callDuration.WithLabelValues(OperationChat, c.Format, model, errType).Observe(c.Finished.Sub(c.Started).Seconds())
	if c.Stream && !c.FirstByte.IsZero() && c.Status < 400 {
		m.ttft.WithLabelValues(OperationChat, c.Format, model).Observe(c.FirstByte.Sub(c.Started).Seconds())
	}
	if c.InputTokens > 0 || c.OutputTokens > 0 {
		m.tokens.WithLabelValues(OperationChat, c.Format, model, "input").Observe(float64(c.InputTokens))
		m.tokens.WithLabelValues(OperationChat, c.Format, model, "output").Observe(float64(c.OutputTokens))
	}
}

// ObserveUpstream records one exchange with the provider of a call: how
// long it took and how it failed (errKind: one of the Upstream* kinds, or
// empty on success).
func (m *Metrics) ObserveUpstream(format, model, errKind string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.upstreamTime.WithLabelValues(OperationChat, format, m.models.Label(model), errKind).Observe(elapsed.Seconds())
}

// UpstreamError counts a failed exchange with a provider.
func (m *Metrics) UpstreamError(format, kind string) {
	if m == nil {
		return
	}
	m.upstreamErrors.WithLabelValues(format, kind).Inc()
}

// UpstreamStatusKind is the error kind of an upstream status code, empty
// for a success.
func UpstreamStatusKind(status int) string {
	switch {
	case status == 429:
		return UpstreamRateLimited
	case status >= 400 && status <= 499:
		return UpstreamClientError
	case status >= 500:
		return UpstreamServerError
	}
	return ""
}

// statusLabels are the labels of the status codes 100 to 599.
var statusLabels = func() []string {
	out := make([]string, 600)
	for i := 100; i < len(out); i++ {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

// StatusLabel is a status code as a label: its number from 100 to 599,
// "other" for anything else.
func StatusLabel(code int) string {
	if code >= 100 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return otherLabel
}
