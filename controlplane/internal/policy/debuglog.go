package policy

import (
	"context"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// debugLoggingType describes the debug_logging policy.
func debugLoggingType() Type {
	return Type{
		Class:       "debug_logging",
		Description: "Records every request, response and stream event as policy events and passes everything through unchanged.",
		Aliases: []string{
			earlier + "debug_logging_policy:DebugLoggingPolicy", earlier + "anthropic.debug_logging:AnthropicDebugLoggingPolicy",
			earlierV2 + "debug_logging_policy:DebugLoggingPolicy",
		},
		ConfigSchema: emptySchema,
		New: func(cfg map[string]any) (Policy, error) {
			if err := requireEmptyConfig(cfg); err != nil {
				return nil, err
			}
			return debugLogging{}, nil
		},
	}
}

// debugLogging records what it sees.
type debugLogging struct{}

// Name implements Policy.
func (debugLogging) Name() string { return "debug_logging" }

// OnRequest records the request.
func (debugLogging) OnRequest(ctx context.Context, call *Call) (RequestResult, error) {
	call.Record(ctx, "policy.debug_logging.request", map[string]any{
		"format": call.Format.String(), "body": string(call.Request), "model": call.Metadata.GetModel(), "stream": call.Metadata.GetStream(),
	})
	return RequestResult{}, nil
}

// OnResponse records the response and returns it unchanged.
func (debugLogging) OnResponse(ctx context.Context, call *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	call.Record(ctx, "policy.debug_logging.response", map[string]any{"message": protoJSON(msg)})
	return msg, nil
}

// NewStream returns a stream recording each event.
func (debugLogging) NewStream(_ context.Context, call *Call) Stream {
	return &debugStream{call: call}
}

// InspectsResponse is true: it records responses.
func (debugLogging) InspectsResponse() bool { return true }

// debugStream records each event of one stream.
type debugStream struct {
	call *Call
	n    int
}

// OnEvent records the event and passes it.
func (s *debugStream) OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	s.n++
	s.call.Record(ctx, "policy.debug_logging.stream_event", map[string]any{"n": s.n, "event": protoJSON(ev)})
	return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
}

// OnEnd records the end.
func (s *debugStream) OnEnd(ctx context.Context, upstreamErr string) (Emit, error) {
	s.call.Record(ctx, "policy.debug_logging.stream_end", map[string]any{"events": s.n, "upstream_error": upstreamErr})
	return Emit{}, nil
}

// protoJSON renders a message as a JSON-like value for event details.
func protoJSON(m proto.Message) string {
	b, err := protojson.Marshal(m)
	if err != nil {
		return ""
	}
	return string(b)
}
