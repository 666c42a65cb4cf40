package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Failure settings every policy accepts (the judges read their own, with
// judge-specific meaning): `on_error` (block, the default, fails the call
// closed through the gateway; pass lets the request, response or rest of
// the stream through unchanged and records policy.<class>.bypassed) and
// `timeout` (a deadline for each hook call; none by default, the gateway's
// own policy deadline still applies).
var guardKeys = []string{"on_error", "timeout"}

const guardSchemaProperties = `{"on_error":{"type":"string","enum":["block","pass"],"default":"block","description":"on a policy error or timeout: block (fail closed) or pass (fail open, recorded as policy.<class>.bypassed)"},` +
	`"timeout":{"type":["string","number"],"description":"deadline of each hook call: a duration (\"2s\") or seconds; none by default"}}`

// withGuardSchema adds the failure settings to a config schema.
func withGuardSchema(schema string) (string, error) {
	if schema == "" {
		schema = emptySchema
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		return "", fmt.Errorf("config schema: %w", err)
	}
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	var extra map[string]any
	_ = json.Unmarshal([]byte(guardSchemaProperties), &extra)
	maps.Copy(props, extra)
	s["properties"] = props
	out, err := json.Marshal(s)
	return string(out), err
}

// splitGuard takes the failure settings out of a configuration.
func splitGuard(cfg map[string]any) (onError string, timeout time.Duration, rest map[string]any, err error) {
	rest = maps.Clone(cfg)
	own := map[string]any{}
	for _, k := range guardKeys {
		if v, ok := rest[k]; ok {
			own[k] = v
			delete(rest, k)
		}
	}
	s := newSettings(own)
	onError = s.enum("on_error", onErrorBlock, onErrorBlock, onErrorPass)
	timeout = s.duration("timeout", 0)
	return onError, timeout, rest, s.done()
}

// guarded applies a policy's failure settings around its hooks.
type guarded struct {
	Policy
	class   string
	onError string
	timeout time.Duration
}

// ForCall implements PerCall: the guard around the policy's object for
// the call.
func (g *guarded) ForCall(call *Call) Policy {
	inner := ForCall(g.Policy, call)
	if inner == g.Policy {
		return g
	}
	c := *g
	c.Policy = inner
	return &c
}

// InspectsRequest reports whether the guarded policy inspects requests.
func (g *guarded) InspectsRequest() bool { return InspectsRequest(g.Policy) }

// Warnings implements Warner for the guarded policy.
func (g *guarded) Warnings() []string { return Warnings(g.Policy) }

// within runs f under the guard's deadline. A hook that overruns is
// abandoned (its result discarded), so the deadline holds even for code
// that does not watch its context. A hook that panics fails with a
// *panicError, so the failure settings apply to it too.
func within[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	if d <= 0 {
		return catch(func() (T, error) { return f(ctx) })
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := catch(func() (T, error) { return f(ctx) })
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("policy deadline of %s exceeded", d)
	}
}

// failed applies on_error: nil when the failure is to be passed over
// (after recording the bypass), the error otherwise.
func (g *guarded) failed(ctx context.Context, call *Call, phase string, err error) error {
	if g.onError != onErrorPass {
		return err
	}
	call.Record(ctx, "policy."+g.class+".bypassed", map[string]any{"phase": phase, "error": err.Error()})
	return nil
}

func (g *guarded) OnRequest(ctx context.Context, call *Call) (RequestResult, error) {
	res, err := within(ctx, g.timeout, func(ctx context.Context) (RequestResult, error) { return g.Policy.OnRequest(ctx, call) })
	if err != nil {
		return RequestResult{}, g.failed(ctx, call, "request", err)
	}
	return res, nil
}

func (g *guarded) OnResponse(ctx context.Context, call *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	out, err := within(ctx, g.timeout, func(ctx context.Context) (*cpv1.Message, error) { return g.Policy.OnResponse(ctx, call, msg) })
	if err != nil {
		return msg, g.failed(ctx, call, "response", err)
	}
	return out, nil
}

func (g *guarded) NewStream(ctx context.Context, call *Call) Stream {
	return &guardedStream{g: g, call: call, inner: g.Policy.NewStream(ctx, call)}
}

// guardedStream applies the failure settings to one stream. After a
// failure passed over, the rest of the stream goes through unchanged (the
// policy's state is no longer trusted).
type guardedStream struct {
	g      *guarded
	call   *Call
	inner  Stream
	bypass bool
}

func (s *guardedStream) OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	if s.bypass {
		return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
	}
	out, err := within(ctx, s.g.timeout, func(ctx context.Context) (Emit, error) { return s.inner.OnEvent(ctx, ev) })
	if err != nil {
		if ferr := s.g.failed(ctx, s.call, "stream", err); ferr != nil {
			return Emit{}, ferr
		}
		s.bypass = true
		return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
	}
	return out, nil
}

func (s *guardedStream) OnEnd(ctx context.Context, upstreamErr string) (Emit, error) {
	if s.bypass {
		return Emit{}, nil
	}
	out, err := within(ctx, s.g.timeout, func(ctx context.Context) (Emit, error) { return s.inner.OnEnd(ctx, upstreamErr) })
	if err != nil {
		return Emit{}, s.g.failed(ctx, s.call, "stream end", err)
	}
	return out, nil
}
