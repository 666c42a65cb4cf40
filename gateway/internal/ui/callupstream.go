package ui

import (
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// upstreamView is a routed call's exchange as its provider saw it: the
// request as sent and the answer as received (translated calls differ
// from the client's forms above), and what the translation dropped.
type upstreamView struct {
	Provider          string
	Dropped           []string
	Request, Response string
}

// addUpstream takes a routed call's upstream events into p.
func (p *callPage) addUpstream(ev *cpv1.CallEvent) {
	if p.Upstream == nil {
		p.Upstream = &upstreamView{}
	}
	m := ev.GetPayload().AsMap()
	switch ev.GetEventType() {
	case "route":
		p.Upstream.Provider = jsonStr(m, "provider")
		for _, d := range jsonList(m["dropped"]) {
			if s, ok := d.(string); ok {
				p.Upstream.Dropped = append(p.Upstream.Dropped, s)
			}
		}
	case "request.upstream":
		p.Upstream.Request = upstreamBody(m)
	case "response.upstream":
		p.Upstream.Response = upstreamBody(m)
	}
}

// upstreamBody shows a recorded body: JSON indented, other text (a
// stream's events) as it came.
func upstreamBody(m map[string]any) string {
	if raw, ok := m["raw"].(string); ok && len(m) == 1 {
		return raw
	}
	return indentJSONValue(m)
}
