package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/status"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/telemetry"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Metrics and traces of the proxy. A call has one span (kind server, the
// client's trace joined when it sends a traceparent), with a child for
// each policy phase (policy.request, policy.response, policy.stream:
// their gRPC calls, and the control plane's spans, hang below them) and
// one for the exchange with upstream. Span attributes hold ids, formats,
// statuses, sizes and counts, never a key, a prompt or a body: the
// record of the call (by luthien.call_id) has the content.

// Span attribute keys.
const (
	attrCallID       = attribute.Key("luthien.call_id")
	attrSessionID    = attribute.Key("luthien.session_id")
	attrStream       = attribute.Key("luthien.stream")
	attrIntervened   = attribute.Key("luthien.intervened")
	attrRevision     = attribute.Key("luthien.policy.revision")
	attrOutcome      = attribute.Key("luthien.policy.outcome")
	attrOperation    = attribute.Key("gen_ai.operation.name")
	attrProvider     = attribute.Key("gen_ai.provider.name")
	attrInputTokens  = attribute.Key("gen_ai.usage.input_tokens")
	attrOutputTokens = attribute.Key("gen_ai.usage.output_tokens")
	attrRoute        = attribute.Key("http.route")
	attrStatus       = attribute.Key("http.response.status_code")
	attrRequestSize  = attribute.Key("http.request.body.size")
	attrResponseSize = attribute.Key("http.response.body.size")
	attrErrorType    = attribute.Key("error.type")
)

// Span names.
const (
	spanCall           = "chat"
	spanPolicyRequest  = "policy.request"
	spanPolicyResponse = "policy.response"
	spanPolicyStream   = "policy.stream"
	spanUpstream       = "upstream"
)

// propagator reads a client's trace context (W3C traceparent).
var propagator = propagation.TraceContext{}

// noopSpan stands for a span when tracing is off.
var noopSpan trace.Span = noop.Span{}

// formatLabel is the format label of a dialect.
func formatLabel(d dialect.Dialect) string {
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		return telemetry.FormatOpenAI
	}
	return telemetry.FormatAnthropic
}

// routeOf is the http.route of a call.
func routeOf(d dialect.Dialect) string {
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		return "/v1/chat/completions"
	}
	return "/v1/messages"
}

// startCall starts the span of a call and returns the request carrying
// it; without tracing, r itself.
func (p *Proxy) startCall(r *http.Request, c *call) *http.Request {
	c.span = noopSpan
	if p.tracer == nil {
		return r
	}
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, c.span = p.tracer.Start(ctx, spanCall, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attrCallID.String(c.id), attrOperation.String(telemetry.OperationChat), attrProvider.String(formatLabel(c.d)),
		attrRoute.String(routeOf(c.d)), attrStream.Bool(c.req.Stream), attrRequestSize.Int(len(c.body))))
	if id := c.meta.GetSessionId(); id != "" {
		c.span.SetAttributes(attrSessionID.String(id))
	}
	return r.WithContext(ctx)
}

// span starts a child span of ctx's; without tracing, a span that
// records nothing.
func (p *Proxy) span(ctx context.Context, name string) (context.Context, trace.Span) {
	if p.tracer == nil {
		return ctx, noopSpan
	}
	return p.tracer.Start(ctx, name)
}

// endSpan ends a span with the status of err (its gRPC code, never its
// message, which could quote content).
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetAttributes(attrErrorType.String(errorType(err)))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// errorType names a failed policy call by its gRPC code.
func errorType(err error) string {
	if errors.Is(err, errRecovered) {
		return "panic"
	}
	return status.Code(err).String()
}

// decisionOutcome names a request decision for its span.
func decisionOutcome(d *cpv1.CallDecision) string {
	switch o := d.GetOutcome().(type) {
	case *cpv1.CallDecision_Respond:
		if d.GetCached() {
			return "cached"
		}
		return "respond"
	case *cpv1.CallDecision_Reject:
		return "reject"
	case *cpv1.CallDecision_Continue:
		if o.Continue.Body != nil {
			return "modify"
		}
		return "continue"
	}
	return "none"
}

// responseOutcome names a response decision for its span.
func responseOutcome(out *cpv1.ApplyResponsePolicyResponse) string {
	if out.GetResponse() != nil {
		return "modify"
	}
	return "pass"
}

// finishCall records a finished call's metrics and ends its span.
func (p *Proxy) finishCall(c *call) {
	if c.span == nil {
		c.span = noopSpan
	}
	t := c.trace
	usage := t.FinalMessage.GetUsage()
	p.metrics.ObserveCall(telemetry.Call{Format: formatLabel(c.d), Model: c.req.Model, Status: t.Status, Stream: c.req.Stream,
		Started: t.Started, FirstByte: t.FirstByte, Finished: t.Finished,
		InputTokens: usage.GetInputTokens(), OutputTokens: usage.GetOutputTokens()})
	if !c.span.IsRecording() {
		c.span.End()
		return
	}
	c.span.SetAttributes(attrStatus.Int(t.Status), attrIntervened.Bool(t.Intervened), attrRevision.String(t.Revision),
		attrResponseSize.Int(len(t.ResponseFinal)))
	if usage != nil {
		c.span.SetAttributes(attrInputTokens.Int64(usage.GetInputTokens()), attrOutputTokens.Int64(usage.GetOutputTokens()))
	}
	if t.Status >= 400 {
		c.span.SetAttributes(attrErrorType.String(strconv.Itoa(t.Status)))
		c.span.SetStatus(codes.Error, "")
	}
	c.span.End()
}

// upstreamExchange is one exchange with upstream in flight: its span and
// when it began.
type upstreamExchange struct {
	ctx   context.Context
	span  trace.Span
	start time.Time
}

// startUpstream starts the exchange of c with upstream.
func (p *Proxy) startUpstream(ctx context.Context, c *call) upstreamExchange {
	u := upstreamExchange{start: time.Now()}
	u.ctx, u.span = p.span(ctx, spanUpstream)
	u.span.SetAttributes(attrProvider.String(formatLabel(c.d)), attrRequestSize.Int(len(c.body)))
	return u
}

// end records the exchange once its response is consumed (status 0: none
// came): its duration by how it failed, if it did.
func (p *Proxy) endUpstream(u upstreamExchange, c *call, status int) {
	kind := c.upstreamKind
	if kind == "" && u.ctx.Err() != nil {
		kind = "cancelled" // by the client, or by the policy stream's failure
	}
	p.metrics.ObserveUpstream(formatLabel(c.d), c.req.Model, kind, time.Since(u.start))
	if status != 0 {
		u.span.SetAttributes(attrStatus.Int(status))
	}
	if kind != "" {
		u.span.SetAttributes(attrErrorType.String(kind))
		u.span.SetStatus(codes.Error, "")
	}
	u.span.End()
}

// countUpstreamError counts a failed exchange with upstream, and notes
// its kind on c (nil outside policed calls) for the exchange's record.
func (p *Proxy) countUpstreamError(d dialect.Dialect, c *call, kind string) {
	if kind == "" {
		return
	}
	p.metrics.UpstreamError(formatLabel(d), kind)
	if c != nil && c.upstreamKind == "" {
		c.upstreamKind = kind
	}
}

// upstreamErrorKind classifies a failed exchange: what failed
// (errUnreachable, errBrokeOff) unless upstream timed out.
func upstreamErrorKind(what string, err error) string {
	var te *timeoutError
	switch {
	case errors.As(err, &te) && te.headers:
		return telemetry.UpstreamHeaderTimeout
	case errors.As(err, &te):
		return telemetry.UpstreamIdleTimeout
	case what == errUnreachable:
		return telemetry.UpstreamUnreachable
	}
	return telemetry.UpstreamBrokeOff
}
