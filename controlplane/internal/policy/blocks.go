package policy

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// blockPolicy is a policy that holds and decides content blocks through
// the stream builder, with the same decisions streamed and whole. Requests
// pass unchanged.
type blockPolicy struct {
	name string
	opts stream.Options
	// decider returns the decider of one call.
	decider func(call *Call) stream.Decider
}

// Name implements Policy.
func (p *blockPolicy) Name() string { return p.name }

// OnRequest forwards the request unchanged.
func (p *blockPolicy) OnRequest(context.Context, *Call) (RequestResult, error) {
	return RequestResult{}, nil
}

// OnResponse applies the decisions to a complete message.
func (p *blockPolicy) OnResponse(ctx context.Context, call *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	return stream.ApplyMessage(ctx, p.decider(call), p.opts, msg)
}

// NewStream returns a stream driven by a stream builder.
func (p *blockPolicy) NewStream(_ context.Context, call *Call) Stream {
	return &builderStream{b: stream.NewBuilder(p.decider(call), p.opts)}
}

// InspectsResponse is true.
func (p *blockPolicy) InspectsResponse() bool { return true }

// InspectsRequest is false: block policies decide on responses only.
func (p *blockPolicy) InspectsRequest() bool { return false }

// builderStream feeds a stream builder.
type builderStream struct {
	b *stream.Builder
}

// OnEvent implements Stream.
func (s *builderStream) OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	evs, err := s.b.Event(ctx, ev)
	return Emit{Events: evs}, err
}

// OnEnd implements Stream.
func (s *builderStream) OnEnd(ctx context.Context, upstreamErr string) (Emit, error) {
	evs, err := s.b.End(ctx, upstreamErr)
	return Emit{Events: evs}, err
}

// toolDecider decides tool calls one by one, in order, with a function;
// other blocks are kept.
type toolDecider func(ctx context.Context, tool *cpv1.ToolUseBlock) stream.Decision

// DecideBlock keeps the block.
func (f toolDecider) DecideBlock(context.Context, *stream.Block) (stream.Decision, error) {
	return stream.KeepBlock(), nil
}

// DecideTools decides each tool call with f.
func (f toolDecider) DecideTools(ctx context.Context, tools []*stream.Block) ([]stream.Decision, error) {
	out := make([]stream.Decision, len(tools))
	for i, t := range tools {
		out[i] = f(ctx, t.Tool())
	}
	return out, nil
}

// placeholderRE matches {name} and {name:.Nf} in message templates.
var placeholderRE = regexp.MustCompile(`\{([a-z_]+)(?::\.(\d)f)?\}`)

// formatTemplate fills a message template's placeholders: {name}, and
// {name:.2f} for numbers. Unknown placeholders stay as written.
func formatTemplate(tmpl string, values map[string]any) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		sub := placeholderRE.FindStringSubmatch(m)
		v, ok := values[sub[1]]
		if !ok {
			return m
		}
		if sub[2] != "" {
			if f, isNum := v.(float64); isNum {
				prec, _ := strconv.Atoi(sub[2])
				return strconv.FormatFloat(f, 'f', prec, 64)
			}
		}
		return fmt.Sprint(v)
	})
}

// truncateRunes shortens s to n runes, marking the cut.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

// nameMatches reports whether a tool name is among names (case-insensitive);
// an empty list matches every name.
func nameMatches(names []string, name string) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
