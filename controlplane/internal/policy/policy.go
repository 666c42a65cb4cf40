// Package policy defines the policy engine of the control plane: the
// Policy and Stream interfaces every policy implements, the registry that
// builds policies from a class name and a configuration, the policy
// configuration file, and the built-in policies.
//
// Policies see requests as the client's raw JSON and responses in the
// canonical model of events.proto, so each policy is written once for both
// client formats.
package policy

import (
	"context"
	"log/slog"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Call describes one proxied call as the policies see it.
type Call struct {
	// ID is the gateway's id for the call.
	ID string
	// Format is the API format the client speaks.
	Format cpv1.ClientFormat
	// Request is the request body as sent upstream (in the request phase,
	// the body as the client sent it).
	Request []byte
	// Metadata describes who is calling and how; it may be nil.
	Metadata *cpv1.RequestMetadata
	// Recorder receives the policy events of the call; nil drops them.
	Recorder Recorder
}

// Record records a policy event of the call, e.g.
// "policy.tool_call_judge.blocked" with the probability and explanation.
// It is safe for concurrent use when the Recorder is.
func (c *Call) Record(ctx context.Context, eventType string, details map[string]any) {
	if c == nil || c.Recorder == nil {
		return
	}
	ev := Event{CallID: c.ID, Type: eventType, Details: details, Time: time.Now()}
	if c.Metadata != nil {
		ev.SessionID = c.Metadata.GetSessionId()
	}
	c.Recorder.Record(ctx, ev)
}

// WithRequest returns a copy of the call whose request body is body.
func (c *Call) WithRequest(body []byte) *Call {
	out := *c
	out.Request = body
	return &out
}

// RequestResult is a policy's decision on a request. At most one of Body,
// Respond and Reject is set; none set means "forward the request
// unchanged".
type RequestResult struct {
	// Body is the modified request body; nil means unchanged.
	Body []byte
	// Respond answers the client with this message without calling
	// upstream.
	Respond *cpv1.Message
	// Reject refuses the request with an error in the client's format.
	Reject *cpv1.Reject
}

// Policy is one configured policy. A Policy is immutable after
// construction and safe for concurrent calls; state that belongs to one
// streamed response lives in the Stream that NewStream returns.
//
// Policies never mutate their inputs: to change a message or an event
// they build or clone a new one.
type Policy interface {
	// Name returns the policy's class name (its short name).
	Name() string
	// OnRequest decides what happens to a request.
	OnRequest(ctx context.Context, call *Call) (RequestResult, error)
	// OnResponse runs on a complete, successful, non-streamed response. It
	// returns msg itself (the same pointer) when it changes nothing.
	OnResponse(ctx context.Context, call *Call, msg *cpv1.Message) (*cpv1.Message, error)
	// NewStream opens the per-response state for one streamed response.
	NewStream(ctx context.Context, call *Call) Stream
	// InspectsResponse reports whether the policy looks at responses at
	// all; when false the gateway skips the response phase entirely.
	InspectsResponse() bool
}

// Stream applies a policy to one streamed response. Its methods are called
// from a single goroutine, in order: OnEvent once per upstream event, then
// OnEnd once.
type Stream interface {
	// OnEvent returns the events to emit for one input event. Returning
	// the input pointer itself means "unchanged" (the gateway then writes
	// upstream's exact bytes). A policy never mutates an input event: it
	// clones it (proto.Clone) and keeps its Seq when it derives an event
	// from it; events it creates have Seq 0.
	OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (Emit, error)
	// OnEnd is called once after the last input; upstreamErr is non-empty
	// when upstream broke off. It returns the trailing events.
	OnEnd(ctx context.Context, upstreamErr string) (Emit, error)
}

// Emit is a batch of events a Stream emits.
type Emit struct {
	// Events are emitted in order.
	Events []*cpv1.StreamEvent
	// End ends the response after Events; the events must already close
	// the response (message_delta, message_stop).
	End bool
}

// passthroughStream is the Stream of a policy that never changes a
// streamed response.
type passthroughStream struct{}

// OnEvent emits the input unchanged.
func (passthroughStream) OnEvent(_ context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
}

// OnEnd emits nothing.
func (passthroughStream) OnEnd(context.Context, string) (Emit, error) {
	return Emit{}, nil
}

// Event is one policy event of a call: a decision, a bypass, a judge's
// probability and explanation, a logged event.
type Event struct {
	// CallID is the gateway's id of the call.
	CallID string
	// SessionID is the client session, when known.
	SessionID string
	// Type is the event type, "policy.<class>.<what>", e.g.
	// "policy.tool_call_judge.blocked".
	Type string
	// Details are JSON-like values describing the event.
	Details map[string]any
	// Time is when the event happened.
	Time time.Time
}

// Recorder receives policy events. Implementations are safe for
// concurrent use and never block a call for long: policies record from
// the request path.
type Recorder interface {
	Record(ctx context.Context, ev Event)
}

// LogRecorder records events as debug log lines. It is the default
// Recorder when nothing persists events.
type LogRecorder struct {
	// Logger receives the events; nil discards them.
	Logger *slog.Logger
}

var _ Recorder = LogRecorder{}

// Record logs the event at debug level.
func (r LogRecorder) Record(ctx context.Context, ev Event) {
	if r.Logger == nil {
		return
	}
	r.Logger.DebugContext(ctx, "policy event",
		"call_id", ev.CallID, "session_id", ev.SessionID, "event_type", ev.Type, "details", ev.Details)
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, ev Event)

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, ev Event) { f(ctx, ev) }

// Warner is implemented by policies whose configuration was accepted with
// a warning (an empty replacements list, an empty chain): configurations
// the earlier system took as no-ops load here too, and whoever loads them
// logs what Warnings returns.
type Warner interface {
	Warnings() []string
}

// Warnings returns the configuration warnings of p and of every policy it
// holds.
func Warnings(p Policy) []string {
	if w, ok := p.(Warner); ok {
		return w.Warnings()
	}
	return nil
}

// PerCall is implemented by a policy whose hooks keep state across one
// call (the earlier system's PolicyHandler shape): the control plane's
// call session asks it once per call for the object whose hooks then see
// that call alone, the request first, then the response or the stream.
// A policy without such state need not implement it: it serves every
// call itself.
type PerCall interface {
	ForCall(call *Call) Policy
}

// ForCall returns the policy object of one call: p's own when p keeps
// per-call state, else p itself.
func ForCall(p Policy, call *Call) Policy {
	if pc, ok := p.(PerCall); ok {
		return pc.ForCall(call)
	}
	return p
}

// RequestInspector is implemented by a policy that knows whether it looks
// at requests at all. A policy that does not implement it is taken to
// look at every request.
type RequestInspector interface {
	InspectsRequest() bool
}

// InspectsRequest reports whether p looks at requests: whether a call
// must wait for its request decision before upstream is called.
func InspectsRequest(p Policy) bool {
	if ri, ok := p.(RequestInspector); ok {
		return ri.InspectsRequest()
	}
	return true
}
