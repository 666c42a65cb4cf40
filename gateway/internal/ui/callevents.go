package ui

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// timelineShown is how many stream timeline entries the page lists; the
// rest are counted.
const timelineShown = 200

// policyEventView is a policy decision: the policy, what it did, and the
// fields of its payload, the reason among them.
type policyEventView struct {
	Type   string
	Policy string
	What   string
	Offset string
	Fields []payloadField
	JSON   string
}

// payloadField is one field of an event's payload, as text.
type payloadField struct {
	Key, Value string
}

// callEventView is one event of a call, placed in time from the call's
// start.
type callEventView struct {
	Type   string
	Offset string
	Note   string
}

// timelineView is a streamed response as written to the client.
type timelineView struct {
	Entries []timelineEntry
	// More counts the entries not listed; Dropped those not even
	// recorded.
	More, Dropped int
	Total         int
	LastMs        string
	UpstreamFirst string
	// Kinds counts the entries by kind and source.
	Kinds []timelineKindCount
}

// timelineEntry is one event written to the client.
type timelineEntry struct {
	Ms, Kind, Source string
}

// timelineKindCount is how many entries of a kind came from a source.
type timelineKindCount struct {
	Kind, Source string
	N            int
}

// callErrorView is a recorded error event.
type callErrorView struct {
	Offset  string
	Message string
	Status  string
	JSON    string
}

// policyReasonFields come first among a policy event's fields: why it
// decided what it did.
var policyReasonFields = []string{"reason", "pattern", "probability", "threshold", "explanation", "tool_name", "command", "tool_use_id", "phase", "error", "message"}

// eventOffset is an event's time from the call's start, in milliseconds.
func eventOffset(start time.Time, ev *cpv1.CallEvent) string {
	if start.IsZero() || ev.GetTime() == nil {
		return ""
	}
	return callMs(float64(ev.GetTime().AsTime().Sub(start)) / float64(time.Millisecond))
}

// callMs writes milliseconds for the page: "0 ms", "3.25 ms", "182 ms".
func callMs(v float64) string {
	switch {
	case v == 0:
		return "0 ms"
	case v < 100 && v > -100:
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
}

// policyEventOf shows a policy.<policy>.<what> event.
func policyEventOf(start time.Time, ev *cpv1.CallEvent) policyEventView {
	v := policyEventView{Type: ev.GetEventType(), Offset: eventOffset(start, ev)}
	rest := strings.TrimPrefix(v.Type, "policy.")
	if i := strings.LastIndex(rest, "."); i >= 0 {
		v.Policy, v.What = rest[:i], rest[i+1:]
	} else {
		v.What = rest
	}
	payload := ev.GetPayload().AsMap()
	keys := make([]string, 0, len(payload))
	for k := range payload {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, pj := slices.Index(policyReasonFields, keys[i]), slices.Index(policyReasonFields, keys[j])
		switch {
		case pi >= 0 && pj >= 0:
			return pi < pj
		case pi >= 0 || pj >= 0:
			return pi >= 0
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		v.Fields = append(v.Fields, payloadField{Key: k, Value: payloadFieldText(payload[k])})
	}
	v.JSON = indentJSONValue(payload)
	return v
}

// payloadFieldText is a payload value as text: strings as they are, numbers
// without exponent, anything else as compact JSON.
func payloadFieldText(v any) string {
	switch x := v.(type) {
	case string:
		return clipText(x, 2000)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return "null"
	}
	return clipText(compactJSONValue(v), 2000)
}

// indentJSONValue renders a JSON value as indented JSON text.
func indentJSONValue(v any) string {
	b, err := jsonx.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// timelineOf reads a stream.timeline event:
// {"entries":[{"ms":12.5,"kind":"text_delta","source":"upstream"},...],"dropped":0,"upstream_first_event_ms":3.2}.
func timelineOf(ev *cpv1.CallEvent) *timelineView {
	p := ev.GetPayload().AsMap()
	entries := jsonList(p["entries"])
	tl := &timelineView{Total: len(entries)}
	if d, ok := p["dropped"].(float64); ok {
		tl.Dropped = int(d)
	}
	if f, ok := p["upstream_first_event_ms"].(float64); ok {
		tl.UpstreamFirst = callMs(f)
	}
	counts := map[timelineKindCount]int{}
	var order []timelineKindCount
	for i, e := range entries {
		eo := jsonObj(e)
		ms, _ := eo["ms"].(float64)
		k := timelineKindCount{Kind: jsonStr(eo, "kind"), Source: jsonStr(eo, "source")}
		if _, seen := counts[k]; !seen {
			order = append(order, k)
		}
		counts[k]++
		if i < timelineShown {
			tl.Entries = append(tl.Entries, timelineEntry{Ms: callMs(ms), Kind: k.Kind, Source: k.Source})
		}
		if i == len(entries)-1 {
			tl.LastMs = callMs(ms)
		}
	}
	tl.More = len(entries) - len(tl.Entries)
	for _, k := range order {
		k.N = counts[k]
		tl.Kinds = append(tl.Kinds, k)
	}
	return tl
}

// errorEventOf shows an error event: {"message": ..., "status": ...}.
func errorEventOf(start time.Time, ev *cpv1.CallEvent) callErrorView {
	p := ev.GetPayload().AsMap()
	v := callErrorView{Offset: eventOffset(start, ev), Message: jsonStr(p, "message"), JSON: indentJSONValue(p)}
	if s, ok := p["status"]; ok {
		v.Status = payloadFieldText(s)
	}
	return v
}

// eventNote says in a few words what an event of the list holds.
func eventNote(ev *cpv1.CallEvent) string {
	p := ev.GetPayload().AsMap()
	switch typ := ev.GetEventType(); {
	case typ == "stream.timeline":
		return fmt.Sprintf("%d stream events written", len(jsonList(p["entries"])))
	case typ == "error":
		return clipText(jsonStr(p, "message"), 200)
	case strings.HasPrefix(typ, "policy."):
		for _, k := range policyReasonFields {
			if v, ok := p[k]; ok {
				return k + ": " + clipText(payloadFieldText(v), 200)
			}
		}
	}
	return ""
}

// truncationView is a body the gateway recorded truncated: the marker
// that stands for it (record.TruncatedField).
type truncationView struct {
	// Which body: "original" or "final".
	Which                    string
	OriginalBytes, KeptBytes int64
}

// OriginalTruncated says whether the original body was recorded
// truncated; nil when it was kept whole.
func (v callBodyView) OriginalTruncated() *truncationView {
	return truncationOf("original", v.OriginalJSON)
}

// FinalTruncated is OriginalTruncated for a final body that differs from
// the original.
func (v callBodyView) FinalTruncated() *truncationView {
	if !v.Changed {
		return nil
	}
	return truncationOf("final", v.FinalJSON)
}

// truncationOf reads the truncation marker from a body's JSON text; nil
// for any other body. The text has its keys sorted: the marker's field
// comes first, or after the store's repair mark.
func truncationOf(which, text string) *truncationView {
	if !strings.Contains(text[:min(len(text), 256)], `"`+record.TruncatedField+`"`) {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil
	}
	var t struct {
		OriginalBytes int64 `json:"original_bytes"`
		KeptBytes     int64 `json:"kept_bytes"`
	}
	if err := json.Unmarshal(m[record.TruncatedField], &t); err != nil || t.OriginalBytes == 0 {
		return nil
	}
	return &truncationView{Which: which, OriginalBytes: t.OriginalBytes, KeptBytes: t.KeptBytes}
}
