package policy

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Where string_replacement applies.
const (
	applyResponse = "response"
	applyRequest  = "request"
	applyBoth     = "both"
)

// stringReplacementType describes the string_replacement policy.
func stringReplacementType() Type {
	return Type{
		Class:       "string_replacement",
		Description: "Replaces literal strings in response text (streamed across chunk boundaries) and/or request message text, optionally keeping the source's capitalization.",
		Aliases: []string{
			earlier + "string_replacement_policy:StringReplacementPolicy",
			earlier + "anthropic.string_replacement:AnthropicStringReplacementPolicy",
		},
		ConfigSchema: `{"type":"object","additionalProperties":false,"properties":{` +
			`"replacements":{"type":"array","items":{"type":"array","items":{"type":"string"},"minItems":2,"maxItems":2},"description":"[from, to] pairs, literal (no regular expressions), applied in turn: each pair to the result of the previous one; an empty list changes nothing"},` +
			`"match_capitalization":{"type":"boolean","default":false,"description":"match any case and give the replacement the source's case pattern"},` +
			`"apply_to":{"type":"string","enum":["response","request","both"],"default":"response"}}}`,
		New: func(cfg map[string]any) (Policy, error) {
			s := newSettings(cfg)
			p := &stringReplacement{r: &replacer{}}
			list := s.list("replacements")
			for i, item := range list {
				pair, ok := item.([]any)
				if !ok || len(pair) != 2 {
					s.fail(fmt.Sprintf("replacements[%d]", i), "want a [from, to] pair of strings")
					break
				}
				from, ok1 := pair[0].(string)
				to, ok2 := pair[1].(string)
				if !ok1 || !ok2 {
					s.fail(fmt.Sprintf("replacements[%d]", i), "want a [from, to] pair of strings")
					break
				}
				if from == "" {
					// The earlier system skips such a pair; so do we, saying so.
					p.warnings = append(p.warnings, fmt.Sprintf("replacements[%d]: from is empty: the pair is skipped", i))
					continue
				}
				p.r.pairs = append(p.r.pairs, replacement{from: from, to: to})
			}
			if s.err == nil && len(p.r.pairs) == 0 {
				p.warnings = append(p.warnings, "replacements: no pair to apply: the policy changes nothing")
			}
			p.r.matchCase = s.boolean("match_capitalization", false)
			applyTo := s.enum("apply_to", applyResponse, applyResponse, applyRequest, applyBoth)
			p.request = applyTo != applyResponse
			p.response = applyTo != applyRequest
			if err := s.done(); err != nil {
				return nil, err
			}
			return p, nil
		},
	}
}

// stringReplacement replaces strings in response text and/or request text.
type stringReplacement struct {
	r                 *replacer
	request, response bool
	warnings          []string
}

// Warnings implements Warner.
func (p *stringReplacement) Warnings() []string { return p.warnings }

// Name implements Policy.
func (p *stringReplacement) Name() string { return "string_replacement" }

// OnRequest replaces in the text of the request's messages when apply_to
// includes request.
func (p *stringReplacement) OnRequest(ctx context.Context, call *Call) (RequestResult, error) {
	if !p.request || len(p.r.pairs) == 0 {
		return RequestResult{}, nil
	}
	body, changed, err := rewriteRequestText(call.Format, call.Request, p.r.replace)
	if err != nil {
		return RequestResult{}, fmt.Errorf("string_replacement: %w", err)
	}
	if !changed {
		return RequestResult{}, nil
	}
	call.Record(ctx, "policy.string_replacement.request_modified", map[string]any{"bytes_before": len(call.Request), "bytes_after": len(body)})
	return RequestResult{Body: body}, nil
}

// OnResponse replaces in every text block; msg itself when nothing
// changes.
func (p *stringReplacement) OnResponse(_ context.Context, _ *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	if !p.response || len(p.r.pairs) == 0 {
		return msg, nil
	}
	var content []*cpv1.ContentBlock
	for i, block := range msg.GetContent() {
		t := block.GetText()
		if t == nil {
			continue
		}
		out := p.r.replace(t.GetText())
		if out == t.GetText() {
			continue
		}
		if content == nil {
			content = slices.Clone(msg.GetContent())
		}
		changed := proto.CloneOf(block)
		changed.GetText().Text = out
		content[i] = changed
	}
	if content == nil {
		return msg, nil
	}
	return stream.WithContent(msg, content), nil
}

// NewStream returns a stream replacing across chunk boundaries, or a
// passthrough when only requests are changed.
func (p *stringReplacement) NewStream(context.Context, *Call) Stream {
	if !p.InspectsResponse() {
		return passthroughStream{}
	}
	return &replaceStream{r: p.r}
}

// InspectsRequest reports whether requests are changed.
func (p *stringReplacement) InspectsRequest() bool { return p.request && len(p.r.pairs) > 0 }

// InspectsResponse reports whether responses are changed.
func (p *stringReplacement) InspectsResponse() bool { return p.response && len(p.r.pairs) > 0 }

// replaceStream replaces in the text blocks of one streamed response. Text
// that could begin a match is held back (at most the longest from, less
// one character) and flushed before the block's stop.
type replaceStream struct {
	r     *replacer
	index uint32
	text  *textStream // the open text block; nil when none
}

// OnEvent implements Stream.
func (s *replaceStream) OnEvent(_ context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	switch e := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_ContentBlockStart:
		out := s.flush(nil)
		t := e.ContentBlockStart.GetBlock().GetText()
		if t == nil {
			return Emit{Events: append(out, ev)}, nil
		}
		s.index, s.text = e.ContentBlockStart.GetIndex(), newTextStream(s.r)
		if emitted := s.text.push(t.GetText()); emitted != t.GetText() {
			c := proto.CloneOf(ev)
			c.GetContentBlockStart().GetBlock().GetText().Text = emitted
			ev = c
		}
		return Emit{Events: append(out, ev)}, nil
	case *cpv1.StreamEvent_ContentBlockDelta:
		td := e.ContentBlockDelta.GetText()
		if s.text == nil || td == nil || e.ContentBlockDelta.GetIndex() != s.index {
			return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
		}
		heldBefore := s.text.holding()
		emitted := s.text.push(td.GetText())
		switch {
		case emitted == td.GetText() && !heldBefore && !s.text.holding():
			return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
		case emitted == "":
			return Emit{}, nil
		}
		c := proto.CloneOf(ev)
		c.GetContentBlockDelta().GetText().Text = emitted
		return Emit{Events: []*cpv1.StreamEvent{c}}, nil
	case *cpv1.StreamEvent_ContentBlockStop, *cpv1.StreamEvent_MessageDelta:
		return Emit{Events: append(s.flush(nil), ev)}, nil
	}
	return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
}

// OnEnd emits nothing: a stream that ends without its block stop ends
// with an error, and its held text is dropped with it.
func (s *replaceStream) OnEnd(context.Context, string) (Emit, error) {
	return Emit{}, nil
}

// flush closes the open text block's buffer, appending a delta with the
// held text to out.
func (s *replaceStream) flush(out []*cpv1.StreamEvent) []*cpv1.StreamEvent {
	if s.text == nil {
		return out
	}
	rest := s.text.flush()
	s.text = nil
	if rest == "" {
		return out
	}
	return append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Index: s.index, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: rest}}}}})
}
