package policy

import (
	"context"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// emptySchema is the JSON Schema of a policy that takes no configuration.
const emptySchema = `{"type":"object","properties":{},"additionalProperties":false}`

// noopType describes the noop policy.
func noopType() Type {
	return Type{
		Class:       "noop",
		Description: "Passes every request and response through unchanged.",
		Aliases: []string{
			earlier + "noop_policy:NoOpPolicy", earlier + "noop:NoOpPolicy",
			earlier + "simple_noop_policy:SimpleNoOpPolicy", earlier + "anthropic.noop:AnthropicNoOpPolicy",
			earlierV2 + "noop:NoOpPolicy", earlierV2 + "noop_policy:NoOpPolicy",
			earlierV2 + "event_based_noop:EventBasedNoOpPolicy", earlierV2 + "event_driven_noop:EventDrivenNoOpPolicy",
		},
		ConfigSchema: emptySchema,
		New: func(cfg map[string]any) (Policy, error) {
			if err := requireEmptyConfig(cfg); err != nil {
				return nil, err
			}
			return noop{}, nil
		},
	}
}

// noop passes everything through; the gateway skips its response phase.
type noop struct{}

// Name implements Policy.
func (noop) Name() string { return "noop" }

// OnRequest forwards the request unchanged.
func (noop) OnRequest(context.Context, *Call) (RequestResult, error) {
	return RequestResult{}, nil
}

// OnResponse returns the response unchanged.
func (noop) OnResponse(_ context.Context, _ *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	return msg, nil
}

// NewStream returns a stream that passes every event through.
func (noop) NewStream(context.Context, *Call) Stream { return passthroughStream{} }

// InspectsRequest is false: noop never looks at requests.
func (noop) InspectsRequest() bool { return false }

// InspectsResponse is false: noop never looks at responses.
func (noop) InspectsResponse() bool { return false }
