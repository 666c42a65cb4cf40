package ui

import (
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// txTurnData is one call of a session with the bodies its transcript shows.
type txTurnData struct {
	Call *cpv1.CallSummary
	// Request is the request as received, Response the response as sent
	// to the client.
	Request, Response map[string]any
	// RequestFinal (as sent upstream) and ResponseOriginal (as upstream
	// answered) are set only when a policy changed them.
	RequestFinal, ResponseOriginal map[string]any
	PolicyEvents                   []*cpv1.CallEvent
}

// transcript is a session as a conversation: its turns in order.
type transcript struct {
	Turns []*txTurn
}

// txTurn is one call of the transcript: a conversation turn, or a
// preflight probe shown as one line.
type txTurn struct {
	// N numbers the conversation turns from 1; 0 for a preflight probe.
	N                int
	CallID, CallHref string
	Started          *timestamppb.Timestamp
	Model, Format    string
	Status           int32
	Stream           bool
	Intervened       bool
	Error            string
	Preflight        bool
	// PreflightText is the start of a probe's prompt.
	PreflightText string
	// Final is the turn as the client saw it: request as sent upstream and
	// response as sent to the client. Original, set only when a policy
	// changed either, is the request as received and upstream's response.
	Final    *txSide
	Original *txSide
	// Annotations are the call's policy events.
	Annotations []txAnnotation
	// FullRequest is the request as received as indented JSON, when small
	// enough to inline; otherwise the page loads it on demand.
	FullRequest  string
	MessageCount int
}

// txSide is one version (original or final) of a turn: what is new in
// its request and the answer.
type txSide struct {
	// System is the system prompt, when it is new or changed.
	System   string
	Messages []*txMsg
	Answer   *txMsg
	Stop     string
	// Base is the earlier turn whose conversation this one continues (0 if
	// none); Kept is how many messages it shares with it, Rewritten how many
	// of that turn's messages the request no longer carries.
	Base, Kept, Rewritten int
}

// txMsg is a message as shown.
type txMsg struct {
	Role  string
	Parts []*txPart
}

// txPart is a part as shown: text ("text"), thinking, a tool call
// ("tool", with its result when one came back), a tool result with no
// call to pair it with ("tool-result"), a reference to a result shown with
// its call ("tool-result-ref"), or another block named by type ("other").
type txPart struct {
	Kind   string
	Text   string
	Tool   *txTool
	Result *txResult
}

// txTool is a tool call and, once a later request carried it, its
// result.
type txTool struct {
	ID, Name, Args string
	// Turn is the turn that made the call.
	Turn   int
	Result *txResult
}

// txResult is a tool's answer, sent back by the client with turn Turn.
type txResult struct {
	ID, Text string
	IsError  bool
	Turn     int
	// Of is the call it answers, for references.
	Of *txTool
}

// txAnnotation is a policy event as shown: its type and fields.
type txAnnotation struct {
	Type   string
	Time   *timestamppb.Timestamp
	Fields []txField
}

// txField is one name and value of an annotation.
type txField struct{ Key, Value string }

// Limits of what the transcript inlines.
const (
	// txMaxInlineRequest is the largest request (indented JSON bytes) shown
	// inline; larger ones load when opened.
	txMaxInlineRequest = 32 << 10
	// txMaxFieldRunes bounds an annotation value.
	txMaxFieldRunes = 2000
	// txBaseWindow is how many earlier turns a turn's history is compared
	// with (Claude Code interleaves side conversations: titles, agents).
	txBaseWindow = 16
)

// txHistory is what later turns compare their requests with.
type txHistory struct {
	n int
	// orig and final are the fingerprints of the request's messages as
	// received and as sent upstream.
	orig, final       []string
	sysOrig, sysFinal string
	answered          bool
}

// txBuilder carries the state of a transcript being built: earlier turns
// and the tool calls waiting for their results.
type txBuilder struct {
	past  []*txHistory
	tools map[string][]*txTool
}

// buildTranscript turns a session's calls into a transcript: for each
// turn the messages new since the turn it continues, the answer, tool
// calls paired with the results the next requests carry, and policy
// events; preflight probes collapse to one line.
func buildTranscript(turns []txTurnData) *transcript {
	b := &txBuilder{tools: map[string][]*txTool{}}
	t := &transcript{}
	n := 0
	for _, td := range turns {
		c := td.Call
		openai := txIsOpenAI(c.GetFormat(), td.Request, td.Response)
		received := txParseRequest(openai, td.Request)
		tv := &txTurn{
			CallID: c.GetCallId(), CallHref: "/calls/" + url.PathEscape(c.GetCallId()), Started: c.GetStartedAt(),
			Model: c.GetModel(), Format: txFormatName(c.GetFormat(), openai), Status: c.GetStatus(), Stream: c.GetStream(),
			Intervened: c.GetIntervened(), Error: c.GetError(), MessageCount: len(received.Messages),
		}
		for _, ev := range td.PolicyEvents {
			tv.Annotations = append(tv.Annotations, txAnnotationOf(ev))
		}
		t.Turns = append(t.Turns, tv)
		if received.Preflight {
			tv.Preflight = true
			tv.PreflightText = txTruncate(txFirstUserText(received.Messages), 80)
			continue
		}
		n++
		tv.N = n
		if full := txJSON(td.Request); len(full) <= txMaxInlineRequest {
			tv.FullRequest = full
		}
		final := received
		if td.RequestFinal != nil {
			final = txParseRequest(openai, td.RequestFinal)
		}
		sent := txParseResponse(openai, td.Response)
		original := sent
		if td.ResponseOriginal != nil {
			original = txParseResponse(openai, td.ResponseOriginal)
		}
		h := &txHistory{n: n, orig: txFingerprints(received.Messages), final: txFingerprints(final.Messages),
			sysOrig: received.System, sysFinal: final.System, answered: sent != nil}
		base, kept := b.base(h.orig)
		// The final request continues the base's final one when a policy
		// rewrote it, else the same history as received.
		finalKept, finalOfBase := kept, false
		if base != nil && td.RequestFinal != nil {
			finalKept, finalOfBase = txCommonPrefix(base.final, h.final), true
		}
		tv.Final = b.side(n, final, sent, base, finalKept, finalOfBase)
		if td.RequestFinal != nil || td.ResponseOriginal != nil {
			tv.Original = b.side(n, received, original, base, kept, false)
		}
		b.past = append(b.past, h)
	}
	return t
}

// base finds the earlier turn this request continues: among the last
// txBaseWindow turns, the one sharing the longest prefix of messages (the
// latest on a tie). It returns nil when none shares any.
func (b *txBuilder) base(fp []string) (*txHistory, int) {
	var best *txHistory
	bestKept := 0
	for i := len(b.past) - 1; i >= 0 && i >= len(b.past)-txBaseWindow; i-- {
		if k := txCommonPrefix(b.past[i].orig, fp); k > bestKept {
			best, bestKept = b.past[i], k
		}
	}
	return best, bestKept
}

// side builds one version of a turn: the request's messages after the
// kept prefix (without the echo of the base turn's answer) and the
// answer, pairing tool results with their calls. finalOfBase compares
// with the base's final request instead of the one it received.
func (b *txBuilder) side(n int, req txRequest, ans *txAnswer, base *txHistory, kept int, finalOfBase bool) *txSide {
	s := &txSide{}
	msgs := req.Messages[min(kept, len(req.Messages)):]
	sys := req.System
	if base != nil {
		s.Base, s.Kept = base.n, kept
		prevLen, prevSys := len(base.orig), base.sysOrig
		if finalOfBase {
			prevLen, prevSys = len(base.final), base.sysFinal
		}
		s.Rewritten = max(prevLen-kept, 0)
		if s.Rewritten == 0 && base.answered {
			// The client resends the answer it got: shown with that turn.
			for len(msgs) > 0 && msgs[0].Role == "assistant" {
				msgs = msgs[1:]
			}
		}
		if sys == prevSys {
			sys = ""
		}
	}
	s.System = sys
	for _, m := range msgs {
		s.Messages = append(s.Messages, b.msg(n, m))
	}
	if ans != nil {
		s.Answer = b.msg(n, ans.Message)
		s.Stop = ans.StopReason
	}
	return s
}

// msg converts a message, registering its tool calls and pairing its tool
// results with calls seen before.
func (b *txBuilder) msg(n int, m txMessage) *txMsg {
	v := &txMsg{Role: txRole(m.Role)}
	for _, p := range m.Parts {
		switch p.Kind {
		case blockToolUse:
			tool := &txTool{ID: p.ToolID, Name: p.ToolName, Args: p.ToolArgs, Turn: n}
			if p.ToolID != "" {
				b.tools[p.ToolID] = append(b.tools[p.ToolID], tool)
			}
			v.Parts = append(v.Parts, &txPart{Kind: "tool", Tool: tool})
		case blockToolResult:
			res := &txResult{ID: p.ToolID, Text: p.Text, IsError: p.IsError, Turn: n}
			calls := b.tools[p.ToolID]
			if len(calls) == 0 {
				v.Parts = append(v.Parts, &txPart{Kind: "tool-result", Result: res})
				continue
			}
			for _, c := range calls {
				if c.Result == nil {
					c.Result = res
				}
			}
			res.Of = calls[0]
			v.Parts = append(v.Parts, &txPart{Kind: "tool-result-ref", Result: res})
		default:
			v.Parts = append(v.Parts, &txPart{Kind: p.Kind, Text: p.Text})
		}
	}
	return v
}

// txRole is a role as the page names it (and styles it): one of a known
// set, whatever the body said.
func txRole(role string) string {
	switch role {
	case "user", "assistant", "system", "tool":
		return role
	}
	return "other"
}

// txFingerprints returns the fingerprints of messages.
func txFingerprints(msgs []txMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.fingerprint()
	}
	return out
}

// txCommonPrefix is the length of the common prefix of a and b.
func txCommonPrefix(a, b []string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// txFirstUserText is the first text of the first user message.
func txFirstUserText(msgs []txMessage) string {
	for _, m := range msgs {
		if m.Role != "user" {
			continue
		}
		for _, p := range m.Parts {
			if p.Kind == blockText && strings.TrimSpace(p.Text) != "" {
				return strings.TrimSpace(p.Text)
			}
		}
	}
	return ""
}

// txFormatName names a call's client format.
func txFormatName(f cpv1.ClientFormat, openai bool) string {
	switch {
	case f == cpv1.ClientFormat_CLIENT_FORMAT_UNSPECIFIED && openai:
		return "openai"
	case f == cpv1.ClientFormat_CLIENT_FORMAT_UNSPECIFIED:
		return "anthropic"
	case f == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
		return "openai"
	case f == cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES:
		return "anthropic"
	}
	return strings.ToLower(strings.TrimPrefix(f.String(), "CLIENT_FORMAT_"))
}

// txAnnotationFirst are the fields an annotation shows first: why, then
// what.
var txAnnotationFirst = []string{"reason", "explanation", "message", "error", "probability", "threshold",
	"tool_name", "tool_use_id", "pattern", "command", "phase"}

// txAnnotationOf shows a policy event: its type and payload fields, the
// reasons first, every value as text.
func txAnnotationOf(ev *cpv1.CallEvent) txAnnotation {
	a := txAnnotation{Type: ev.GetEventType(), Time: ev.GetTime()}
	payload := ev.GetPayload().AsMap()
	seen := map[string]bool{}
	add := func(k string) {
		v, ok := payload[k]
		if !ok || seen[k] {
			return
		}
		seen[k] = true
		a.Fields = append(a.Fields, txField{Key: k, Value: txTruncate(txValueText(v), txMaxFieldRunes)})
	}
	for _, k := range txAnnotationFirst {
		add(k)
	}
	for _, k := range txSortedKeys(payload) {
		add(k)
	}
	return a
}

// txValueText shows a JSON value: strings as they are, anything else as
// compact JSON.
func txValueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	}
	return txCompactJSON(txJSON(v))
}

// txTruncate cuts s to at most n runes, marking the cut.
func txTruncate(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}
