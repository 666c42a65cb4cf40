package service

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Phases of a live policy call, as an Observer is told them.
const (
	PhaseRequest     = "request"
	PhaseResponse    = "response"
	PhaseStream      = "stream"
	PhaseStreamEvent = "stream_event"
	PhaseStreamEnd   = "stream_end"
)

// Outcomes of a live policy decision, as an Observer is told them.
const (
	// OutcomeContinue: the request goes upstream unchanged.
	OutcomeContinue = "continue"
	// OutcomeModify: the policy changed the request, the response or the
	// stream (rewrote, held back, dropped or added anything).
	OutcomeModify = "modify"
	// OutcomeRespond: the policy answered the request itself.
	OutcomeRespond = "respond"
	// OutcomeReject: the policy refused the request.
	OutcomeReject = "reject"
	// OutcomePass: the response or stream went to the client unchanged.
	OutcomePass = "pass"
	// OutcomeError: the policy failed; the gateway fails closed.
	OutcomeError = "error"
	// OutcomeCancelled: the caller went away or its deadline passed.
	OutcomeCancelled = "cancelled"
)

// Observer is told about every live policy call (dry runs are not): its
// decision once per call and phase (request, response, stream), and the
// time the policy itself took per phase (request, response, and per hook
// of a stream: stream_event, stream_end). class is the policy's class
// name. It must be safe for concurrent use and cheap: it runs on the
// request path.
type Observer interface {
	Decided(class, phase, outcome string)
	Took(class, phase string, elapsed time.Duration)
}

// SetObserver makes the service report its decisions to o; call it before
// the service serves.
func (s *PolicyService) SetObserver(o Observer) { s.observer = o }

// outcomeOf classifies a failed policy call.
func outcomeOf(ctx context.Context) string {
	if ctx.Err() != nil {
		return OutcomeCancelled
	}
	return OutcomeError
}

// observeRequest reports a request decision.
func (s *PolicyService) observeRequest(ctx context.Context, active *Active, out *cpv1.ApplyRequestPoliciesResponse, err error, start time.Time) {
	span := trace.SpanFromContext(ctx)
	if s.observer == nil && !span.IsRecording() {
		return
	}
	elapsed := time.Since(start)
	outcome := OutcomeContinue
	if err != nil {
		outcome = outcomeOf(ctx)
	}
	switch o := out.GetOutcome().(type) {
	case *cpv1.ApplyRequestPoliciesResponse_Respond:
		outcome = OutcomeRespond
	case *cpv1.ApplyRequestPoliciesResponse_Reject:
		outcome = OutcomeReject
	case *cpv1.ApplyRequestPoliciesResponse_Continue:
		if o.Continue.GetBody() != nil {
			outcome = OutcomeModify
		}
	}
	s.report(span, active, PhaseRequest, outcome, elapsed)
}

// observeResponse reports a response decision.
func (s *PolicyService) observeResponse(ctx context.Context, active *Active, changed bool, err error, start time.Time) {
	span := trace.SpanFromContext(ctx)
	if s.observer == nil && !span.IsRecording() {
		return
	}
	elapsed := time.Since(start)
	outcome := OutcomePass
	switch {
	case err != nil:
		outcome = outcomeOf(ctx)
	case changed:
		outcome = OutcomeModify
	}
	s.report(span, active, PhaseResponse, outcome, elapsed)
}

// report tells the observer about a decision and the time the policy
// took, and notes the policy on the call's span: its class, revision and
// outcome, nothing of the content.
func (s *PolicyService) report(span trace.Span, active *Active, phase, outcome string, elapsed time.Duration) {
	class := active.Policy.Name()
	if s.observer != nil {
		s.observer.Took(class, phase, elapsed)
		s.observer.Decided(class, phase, outcome)
	}
	span.SetAttributes(attribute.String("luthien.policy.class", class),
		attribute.String("luthien.policy.revision", active.Revision),
		attribute.String("luthien.policy.outcome", outcome))
}

// streamObservation watches one stream policy call: it times the
// policy's hooks and counts what goes in and out, to tell at the end
// whether the stream passed unchanged.
type streamObservation struct {
	chunkStream
	s      *PolicyService
	active *Active
	span   trace.Span
	streamCounts
}

// streamCounts counts what goes in and out of a policy's stream: inputs
// are the events received, passed those sent back by seq, replaced those
// sent whole.
type streamCounts struct {
	inputs, passed, replaced int
}

// sent counts the outputs of a batch.
func (c *streamCounts) sent(resp *cpv1.StreamChunkPolicyResponse) {
	for _, out := range resp.GetOutputs() {
		if out.GetEvent() != nil {
			c.replaced++
		} else {
			c.passed++
		}
	}
}

// observeStream wraps a stream policy call's stream and the policy's
// stream state; done reports the decision once the call returns. With
// neither an observer nor a span recording, everything is returned as it
// is.
func (s *PolicyService) observeStream(stream chunkStream, active *Active, ps policy.Stream) (chunkStream, policy.Stream, func(ctx context.Context, err error)) {
	span := trace.SpanFromContext(stream.Context())
	if s.observer == nil && !span.IsRecording() {
		return stream, ps, func(context.Context, error) {}
	}
	o := &streamObservation{chunkStream: stream, s: s, active: active, span: span}
	return o, s.timed(active, ps), o.done
}

// timed times the hooks of ps when there is an observer.
func (s *PolicyService) timed(active *Active, ps policy.Stream) policy.Stream {
	if s.observer == nil {
		return ps
	}
	return timedStream{next: ps, observer: s.observer, class: active.Policy.Name()}
}

// Recv counts the events received.
func (o *streamObservation) Recv() (*cpv1.StreamChunkPolicyRequest, error) {
	msg, err := o.chunkStream.Recv()
	if msg.GetEvent() != nil {
		o.inputs++
	}
	return msg, err
}

// Send counts the outputs sent.
func (o *streamObservation) Send(resp *cpv1.StreamChunkPolicyResponse) error {
	o.sent(resp)
	return o.chunkStream.Send(resp)
}

// done reports the stream's decision.
func (o *streamObservation) done(ctx context.Context, err error) {
	o.s.reportStream(ctx, o.span, o.active, o.streamCounts, err)
}

// reportStream reports a stream's decision: pass when every event went
// back unchanged and alone, modify otherwise.
func (s *PolicyService) reportStream(ctx context.Context, span trace.Span, active *Active, c streamCounts, err error) {
	if s.observer == nil && !span.IsRecording() {
		return
	}
	outcome := OutcomePass
	switch {
	case err != nil:
		outcome = outcomeOf(ctx)
	case c.replaced > 0 || c.passed != c.inputs:
		outcome = OutcomeModify
	}
	class := active.Policy.Name()
	if s.observer != nil {
		s.observer.Decided(class, PhaseStream, outcome)
	}
	span.SetAttributes(attribute.String("luthien.policy.class", class),
		attribute.String("luthien.policy.revision", active.Revision),
		attribute.String("luthien.policy.outcome", outcome),
		attribute.Int("luthien.stream.events_in", c.inputs),
		attribute.Int("luthien.stream.events_out", c.passed+c.replaced))
}

// timedStream times the hooks of a policy's stream.
type timedStream struct {
	next     policy.Stream
	observer Observer
	class    string
}

func (t timedStream) OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (policy.Emit, error) {
	start := time.Now()
	emit, err := t.next.OnEvent(ctx, ev)
	t.observer.Took(t.class, PhaseStreamEvent, time.Since(start))
	return emit, err
}

func (t timedStream) OnEnd(ctx context.Context, upstreamErr string) (policy.Emit, error) {
	start := time.Now()
	emit, err := t.next.OnEnd(ctx, upstreamErr)
	t.observer.Took(t.class, PhaseStreamEnd, time.Since(start))
	return emit, err
}
