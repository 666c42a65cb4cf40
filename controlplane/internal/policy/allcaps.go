package policy

import (
	"context"
	"slices"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// allCapsType describes the all_caps policy.
func allCapsType() Type {
	return Type{
		Class:       "all_caps",
		Description: "Uppercases response text, whole and streamed; tool calls, thinking and other blocks are untouched.",
		Aliases: []string{
			earlier + "all_caps_policy:AllCapsPolicy", earlier + "all_caps:AllCapsPolicy",
			earlier + "anthropic.allcaps:AnthropicAllCapsPolicy", earlierV2 + "all_caps_policy:AllCapsPolicy",
			earlierV2 + "simple_uppercase_example:SimpleUppercasePolicy",
		},
		ConfigSchema: emptySchema,
		New: func(cfg map[string]any) (Policy, error) {
			if err := requireEmptyConfig(cfg); err != nil {
				return nil, err
			}
			return allCaps{}, nil
		},
	}
}

// allCaps uppercases the text of responses with Unicode case mapping
// ("straße" becomes "STRASSE"). Tool calls, tool arguments, thinking,
// signatures and opaque blocks pass through untouched.
type allCaps struct{}

// newUpper returns an uppercasing Caser. A Caser keeps state and is not
// safe for concurrent use, so each call or stream makes its own.
func newUpper() cases.Caser { return cases.Upper(language.Und) }

// Name implements Policy.
func (allCaps) Name() string { return "all_caps" }

// OnRequest forwards the request unchanged.
func (allCaps) OnRequest(context.Context, *Call) (RequestResult, error) {
	return RequestResult{}, nil
}

// OnResponse uppercases every text block of the message. It returns msg
// itself when no text changes.
func (allCaps) OnResponse(_ context.Context, _ *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	upper := newUpper()
	var content []*cpv1.ContentBlock // a copy, made on the first change
	for i, block := range msg.GetContent() {
		text, ok := block.GetBlock().(*cpv1.ContentBlock_Text)
		if !ok || text.Text == nil {
			continue
		}
		up := upper.String(text.Text.GetText())
		if up == text.Text.GetText() {
			continue
		}
		if content == nil {
			content = slices.Clone(msg.GetContent())
		}
		changed := proto.CloneOf(block)
		changed.GetText().Text = up
		content[i] = changed
	}
	if content == nil {
		return msg, nil
	}
	return stream.WithContent(msg, content), nil
}

// NewStream returns a stream that uppercases every text delta.
func (allCaps) NewStream(context.Context, *Call) Stream {
	return &allCapsStream{upper: newUpper()}
}

// InspectsRequest is false: all_caps changes responses only.
func (allCaps) InspectsRequest() bool { return false }

// InspectsResponse is true.
func (allCaps) InspectsResponse() bool { return true }

// allCapsStream uppercases the text deltas of one streamed response.
type allCapsStream struct {
	upper cases.Caser
}

// OnEvent emits a text delta (or a text block start carrying text)
// uppercased, in a clone with the input's Seq, and every other event
// unchanged.
func (s *allCapsStream) OnEvent(_ context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	switch e := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_ContentBlockDelta:
		if text, ok := e.ContentBlockDelta.GetDelta().(*cpv1.ContentBlockDelta_Text); ok && text.Text != nil {
			if up := s.upper.String(text.Text.GetText()); up != text.Text.GetText() {
				out := proto.CloneOf(ev)
				out.GetContentBlockDelta().GetText().Text = up
				return Emit{Events: []*cpv1.StreamEvent{out}}, nil
			}
		}
	case *cpv1.StreamEvent_ContentBlockStart:
		if text := e.ContentBlockStart.GetBlock().GetText(); text != nil {
			if up := s.upper.String(text.GetText()); up != text.GetText() {
				out := proto.CloneOf(ev)
				out.GetContentBlockStart().GetBlock().GetText().Text = up
				return Emit{Events: []*cpv1.StreamEvent{out}}, nil
			}
		}
	}
	return Emit{Events: []*cpv1.StreamEvent{ev}}, nil
}

// OnEnd emits nothing: all_caps holds nothing back.
func (s *allCapsStream) OnEnd(context.Context, string) (Emit, error) {
	return Emit{}, nil
}
