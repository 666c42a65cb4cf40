package policy

import (
	"context"
	"fmt"
	"strings"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// serialType describes the serial policy; r builds its members.
func serialType(r *Registry) Type {
	return Type{
		Class:       "serial",
		Description: "Chains policies: requests go through them in order, and every event one emits goes through the next; order matters.",
		Aliases:     []string{"luthien_proxy.policies.multi_serial_policy:MultiSerialPolicy"},
		ConfigSchema: `{"type":"object","additionalProperties":false,"properties":{` +
			`"policies":{"type":"array","items":{"type":"object","x-policy":true,"required":["class"],"additionalProperties":false,"properties":{` +
			`"class":{"type":"string","description":"a policy class or alias"},"config":{"type":"object"}}},"description":"the chain, first applied first; an empty chain changes nothing"}}}`,
		New: func(cfg map[string]any) (Policy, error) {
			s := newSettings(cfg)
			list := s.list("policies")
			if err := s.done(); err != nil {
				return nil, err
			}
			p := &serial{}
			if len(list) == 0 {
				// The earlier system runs an empty chain as a no-op.
				p.warnings = []string{"policies: the chain is empty: the policy changes nothing"}
			}
			for i, item := range list {
				key := fmt.Sprintf("policies[%d]", i)
				m, ok := item.(map[string]any)
				if !ok {
					return nil, &configError{Key: key, Problem: "want a mapping {class, config}"}
				}
				for k := range m {
					if k != "class" && k != "config" {
						return nil, &configError{Key: key + "." + k, Problem: "unknown key (want class, config)"}
					}
				}
				class, ok := m["class"].(string)
				if !ok || strings.TrimSpace(class) == "" {
					return nil, &configError{Key: key + ".class", Problem: "want a policy class name"}
				}
				var memberCfg map[string]any
				switch c := m["config"].(type) {
				case nil:
				case map[string]any:
					memberCfg = c
				default:
					return nil, &configError{Key: key + ".config", Problem: "want a mapping"}
				}
				member, err := r.Build(class, memberCfg)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
				p.members = append(p.members, member)
				for _, w := range Warnings(member) {
					p.warnings = append(p.warnings, key+": "+w)
				}
			}
			return p, nil
		},
	}
}

// serial runs its members in order.
type serial struct {
	members  []Policy
	warnings []string
}

// ForCall implements PerCall: the chain of its members' objects for the
// call, or the chain itself when no member keeps per-call state.
func (p *serial) ForCall(call *Call) Policy {
	var members []Policy
	for i, m := range p.members {
		if mc := ForCall(m, call); mc != m || members != nil {
			if members == nil {
				members = append(make([]Policy, 0, len(p.members)), p.members[:i]...)
			}
			members = append(members, mc)
		}
	}
	if members == nil {
		return p
	}
	return &serial{members: members, warnings: p.warnings}
}

// Warnings implements Warner: the chain's own and its members'.
func (p *serial) Warnings() []string { return p.warnings }

// Name implements Policy.
func (p *serial) Name() string { return "serial" }

// OnRequest runs each member on the request as the previous one left it;
// the first that responds or rejects decides.
func (p *serial) OnRequest(ctx context.Context, call *Call) (RequestResult, error) {
	cur := call
	var body []byte
	for _, m := range p.members {
		res, err := m.OnRequest(ctx, cur)
		if err != nil {
			return RequestResult{}, fmt.Errorf("serial: %s: %w", m.Name(), err)
		}
		if res.Respond != nil || res.Reject != nil {
			return res, nil
		}
		if res.Body != nil {
			body = res.Body
			cur = cur.WithRequest(body)
		}
	}
	return RequestResult{Body: body}, nil
}

// OnResponse runs each member on the message the previous one returned.
func (p *serial) OnResponse(ctx context.Context, call *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	cur := msg
	for _, m := range p.members {
		if !m.InspectsResponse() {
			continue
		}
		next, err := m.OnResponse(ctx, call, cur)
		if err != nil {
			return nil, fmt.Errorf("serial: %s: %w", m.Name(), err)
		}
		if next == nil {
			return nil, fmt.Errorf("serial: %s: returned no message", m.Name())
		}
		cur = next
	}
	return cur, nil
}

// NewStream chains the members' streams.
func (p *serial) NewStream(ctx context.Context, call *Call) Stream {
	s := &serialStream{}
	for _, m := range p.members {
		if m.InspectsResponse() {
			s.stages = append(s.stages, m.NewStream(ctx, call))
			s.names = append(s.names, m.Name())
		}
	}
	return s
}

// InspectsRequest reports whether any member inspects requests.
func (p *serial) InspectsRequest() bool {
	for _, m := range p.members {
		if InspectsRequest(m) {
			return true
		}
	}
	return false
}

// InspectsResponse reports whether any member inspects responses.
func (p *serial) InspectsResponse() bool {
	for _, m := range p.members {
		if m.InspectsResponse() {
			return true
		}
	}
	return false
}

// serialStream passes every event a stage emits through the next stage.
type serialStream struct {
	stages []Stream
	names  []string
}

// OnEvent implements Stream.
func (s *serialStream) OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	return s.run(ctx, 0, []*cpv1.StreamEvent{ev}, "", false)
}

// OnEnd ends each stage in order, feeding its trailing events through the
// stages after it.
func (s *serialStream) OnEnd(ctx context.Context, upstreamErr string) (Emit, error) {
	return s.run(ctx, 0, nil, upstreamErr, true)
}

// run feeds evs through the stages from i on; with end set, stage i is
// ended after its events and its trailing events continue down the chain.
func (s *serialStream) run(ctx context.Context, i int, evs []*cpv1.StreamEvent, upstreamErr string, end bool) (Emit, error) {
	if i == len(s.stages) {
		return Emit{Events: evs}, nil
	}
	var out []*cpv1.StreamEvent
	// feed takes one hook's output; an End stops this stage and finishes
	// the chain with what it has.
	feed := func(emit Emit, err error) (Emit, bool, error) {
		if err != nil {
			return Emit{}, true, fmt.Errorf("serial: %s: %w", s.names[i], err)
		}
		out = append(out, emit.Events...)
		if !emit.End {
			return Emit{}, false, nil
		}
		rest, err := s.run(ctx, i+1, out, "", true)
		rest.End = true
		return rest, true, err
	}
	for _, ev := range evs {
		if res, done, err := feed(s.stages[i].OnEvent(ctx, ev)); done {
			return res, err
		}
	}
	if end {
		if res, done, err := feed(s.stages[i].OnEnd(ctx, upstreamErr)); done {
			return res, err
		}
	}
	return s.run(ctx, i+1, out, upstreamErr, end)
}
