package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"luthien.dev/canon"
	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Stream translates one upstream SSE stream to a client's format, one
// upstream event at a time, through the canonical model: the upstream
// dialect's Decoder makes canonical events, Stream adapts them, and the
// client dialect's Encoder writes them.
//
// The adaptations: tool_use blocks are held until the message ends and
// then written after every other block (Anthropic clients require tool
// blocks last, and OpenAI clients no content after tool calls), so tool
// arguments reach the client in one burst, whole even when OpenAI sent
// them interleaved with other blocks; blocks the client format cannot
// carry (thinking, server tools) are dropped and reported; OpenAI refusal
// deltas become text; stop reasons and usage (with cache tokens) are
// mapped as for complete responses, and a tool stop reason with no tool
// call becomes end_turn. For an Anthropic client the message_delta waits
// for OpenAI's usage chunk (which follows the finish_reason) and carries
// its tokens; without one it carries output_tokens 0. An upstream error
// event becomes the client's error event and ends the stream. A Stream is
// not safe for concurrent use.
type Stream struct {
	dec      dialect.Decoder
	enc      dialect.Encoder
	toChat   bool // the client speaks OpenAI
	r        report
	reported map[string]bool

	skip    map[uint32]bool // upstream blocks dropped
	out     map[uint32]uint32
	held    map[uint32]int // upstream tool block -> position in heldEvs
	heldEvs [][]*cpv1.StreamEvent
	next    uint32

	// OpenAI → Anthropic: the message_delta waits for the usage chunk
	// that follows the finish_reason with include_usage.
	delta *cpv1.MessageDelta
	// Anthropic → OpenAI: the cache read tokens, for cached_tokens.
	cacheRead int64
	started   bool
	finished  bool // the message_delta was written (Anthropic → OpenAI)
	tools     bool // a tool block was written
	done      bool
	model     string // the model the client stream names; "" upstream's
}

// NewAnthropicToChatStream translates an Anthropic upstream stream for an
// OpenAI client; req is the client's request (IncludeUsage decides the
// usage chunk).
func NewAnthropicToChatStream(req dialect.Request) *Stream {
	return newStream(anthropic.Dialect{}.NewDecoder(), openai.Dialect{}.NewEncoder(req), true)
}

// NewChatToAnthropicStream translates an OpenAI upstream stream (best
// requested with stream_options.include_usage, as MessagesToChat does)
// for an Anthropic client.
func NewChatToAnthropicStream() *Stream {
	return newStream(openai.Dialect{}.NewDecoder(), anthropic.Dialect{}.NewEncoder(dialect.Request{}), false)
}

// WithModel makes the client stream name model (the client's own, for a
// call routed under another model name upstream), as the translated
// complete responses do; it returns s.
func (s *Stream) WithModel(model string) *Stream {
	s.model = model
	return s
}

func newStream(dec dialect.Decoder, enc dialect.Encoder, toChat bool) *Stream {
	return &Stream{dec: dec, enc: enc, toChat: toChat, reported: map[string]bool{},
		skip: map[uint32]bool{}, out: map[uint32]uint32{}, held: map[uint32]int{}}
}

// Dropped returns what the stream could not carry so far, each kind once.
func (s *Stream) Dropped() []Dropped { return s.r }

// Done reports whether the client stream is complete (message_stop or
// [DONE] written, or an error event).
func (s *Stream) Done() bool { return s.done }

// Event translates one upstream SSE event and writes what it gives.
func (s *Stream) Event(w io.Writer, ev sse.Event) error {
	if !s.toChat {
		ev = refusalAsContent(ev)
	}
	evs, err := s.dec.Decode(ev)
	if err != nil {
		return fmt.Errorf("translate: stream: %w", err)
	}
	for _, e := range evs {
		if err := s.event(w, e); err != nil {
			return err
		}
	}
	return nil
}

// Finish ends the client stream when upstream ended without finishing it:
// with the held message end when upstream had sent its finish reason,
// with an error event otherwise.
func (s *Stream) Finish(w io.Writer) error {
	if s.done {
		return nil
	}
	if s.delta != nil || s.finished {
		return s.event(w, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}})
	}
	return s.event(w, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{
		Type: "api_error", Message: "upstream stream ended before the message was complete"}}})
}

// once reports a dropped field the first time it is seen.
func (s *Stream) once(field, reason string) {
	if !s.reported[field] {
		s.reported[field] = true
		s.r.add(field, reason)
	}
}

func (s *Stream) event(w io.Writer, ev *cpv1.StreamEvent) error {
	if s.done {
		return nil
	}
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		s.started = true
		return s.messageStart(w, ev, x.MessageStart)
	case *cpv1.StreamEvent_ContentBlockStart:
		idx, b := x.ContentBlockStart.GetIndex(), x.ContentBlockStart.GetBlock()
		switch bx := b.GetBlock().(type) {
		case *cpv1.ContentBlock_Text:
		case *cpv1.ContentBlock_ToolUse:
			s.held[idx] = len(s.heldEvs)
			s.heldEvs = append(s.heldEvs, []*cpv1.StreamEvent{ev})
			return nil
		case *cpv1.ContentBlock_Thinking:
			s.skip[idx] = true
			s.once("thinking", "thinking blocks have no OpenAI equivalent")
			return nil
		default:
			s.skip[idx] = true
			typ := "empty"
			if o, ok := bx.(*cpv1.ContentBlock_Opaque); ok {
				typ = o.Opaque.GetType()
			}
			s.once(typ, typ+" blocks have no equivalent in the client format")
			return nil
		}
		s.out[idx] = s.next
		x.ContentBlockStart.Index = s.next
		s.next++
		return s.enc.Event(w, ev, nil)
	case *cpv1.StreamEvent_ContentBlockDelta:
		return s.blockEvent(w, ev, x.ContentBlockDelta.GetIndex(), func(i uint32) { x.ContentBlockDelta.Index = i })
	case *cpv1.StreamEvent_ContentBlockStop:
		return s.blockEvent(w, ev, x.ContentBlockStop.GetIndex(), func(i uint32) { x.ContentBlockStop.Index = i })
	case *cpv1.StreamEvent_MessageDelta:
		if err := s.flushHeld(w); err != nil {
			return err
		}
		return s.messageDelta(w, ev, x.MessageDelta)
	case *cpv1.StreamEvent_MessageStop:
		if err := s.flushHeld(w); err != nil {
			return err
		}
		if s.delta == nil && !s.toChat {
			s.delta = &cpv1.MessageDelta{StopReason: "end_turn"}
		}
		if s.delta != nil {
			if err := s.writeAnthropicDelta(w); err != nil {
				return err
			}
		}
		s.done = true
		return s.enc.Event(w, ev, nil)
	case *cpv1.StreamEvent_Error:
		// The error ends the stream; what was held is incomplete.
		s.done = true
		return s.enc.Event(w, ev, nil)
	case *cpv1.StreamEvent_Ping:
		return nil
	case *cpv1.StreamEvent_Opaque:
		return s.opaque(x.Opaque)
	}
	return nil
}

// blockEvent writes a delta or stop of a block, or holds it with its
// tool block.
func (s *Stream) blockEvent(w io.Writer, ev *cpv1.StreamEvent, idx uint32, setIndex func(uint32)) error {
	if s.skip[idx] {
		return nil
	}
	if h, ok := s.held[idx]; ok {
		// OpenAI may send more arguments of a tool call after another
		// block started, which closed the tool's block: they go before
		// its stop.
		evs := s.heldEvs[h]
		if n := len(evs); n > 0 && ev.GetContentBlockDelta() != nil && evs[n-1].GetContentBlockStop() != nil {
			s.heldEvs[h] = append(evs[:n-1], ev, evs[n-1])
		} else {
			s.heldEvs[h] = append(evs, ev)
		}
		return nil
	}
	o, ok := s.out[idx]
	if !ok {
		return fmt.Errorf("translate: stream: event for block %d, which never started", idx)
	}
	if d := ev.GetContentBlockDelta(); d != nil && s.toChat && d.GetText() == nil {
		if op := d.GetOpaque(); op != nil {
			s.once(op.GetType(), op.GetType()+" has no OpenAI equivalent")
		}
		return nil
	}
	setIndex(o)
	return s.enc.Event(w, ev, nil)
}

// flushHeld writes the held tool blocks, renumbered after the others.
func (s *Stream) flushHeld(w io.Writer) error {
	for _, evs := range s.heldEvs {
		o := s.next
		s.next++
		for _, e := range evs {
			switch x := e.GetEvent().(type) {
			case *cpv1.StreamEvent_ContentBlockStart:
				x.ContentBlockStart.Index = o
			case *cpv1.StreamEvent_ContentBlockDelta:
				x.ContentBlockDelta.Index = o
			case *cpv1.StreamEvent_ContentBlockStop:
				x.ContentBlockStop.Index = o
			}
			if err := s.enc.Event(w, e, nil); err != nil {
				return err
			}
		}
	}
	s.tools = s.tools || len(s.heldEvs) > 0
	s.heldEvs = nil
	clear(s.held)
	return nil
}

func (s *Stream) messageStart(w io.Writer, ev *cpv1.StreamEvent, ms *cpv1.MessageStart) error {
	if s.model != "" {
		ms.Model = s.model
	}
	if !s.toChat {
		return s.enc.Event(w, ev, nil)
	}
	u := ms.GetUsage()
	s.cacheRead = u.GetCacheReadInputTokens()
	if u != nil {
		u.InputTokens += u.GetCacheReadInputTokens() + u.GetCacheCreationInputTokens()
	}
	// The template gives the chunks their created time.
	tmpl := []byte("data: " + `{"created":` + strconv.FormatInt(now().Unix(), 10) + "}\n\n")
	return s.enc.Event(w, ev, tmpl)
}

func (s *Stream) messageDelta(w io.Writer, ev *cpv1.StreamEvent, md *cpv1.MessageDelta) error {
	if !s.toChat {
		// Held until [DONE]: a usage chunk may follow.
		md.StopReason = canon.StopReason(anthropicStop(md.GetStopReason(), &s.r), s.tools)
		if u := md.GetUsage(); u != nil {
			md.Usage = anthropicUsageOf(u.GetInputTokens(), u.GetCacheReadInputTokens(), u.GetOutputTokens())
		}
		s.delta = md
		return nil
	}
	md.StopReason = canonicalStop(finishReason(canon.StopReason(md.GetStopReason(), s.tools), &s.r))
	if u := md.GetUsage(); u != nil {
		if u.GetCacheReadInputTokens() > 0 {
			s.cacheRead = u.GetCacheReadInputTokens()
		}
		if u.GetInputTokens() > 0 {
			u.InputTokens += u.GetCacheReadInputTokens() + u.GetCacheCreationInputTokens()
		}
	}
	var buf bytes.Buffer
	if err := s.enc.Event(&buf, ev, nil); err != nil {
		return err
	}
	s.finished = true
	_, err := w.Write(s.addCachedTokens(buf.Bytes()))
	return err
}

// canonicalStop maps an OpenAI finish_reason back to the canonical stop
// reason the OpenAI encoder maps forward.
func canonicalStop(finish string) string {
	if finish == "content_filter" {
		return "refusal"
	}
	return openai.StopReason(finish)
}

// anthropicStop maps the OpenAI decoder's stop reason (a canonical one, or
// an OpenAI finish_reason it does not know) to an Anthropic stop reason.
func anthropicStop(stop string, r *report) string {
	switch stop {
	case "end_turn", "max_tokens", "tool_use", "stop_sequence":
		return stop
	}
	return stopReason(stop, r)
}

// addCachedTokens writes prompt_tokens_details.cached_tokens into the
// usage chunk among chunks (the encoder's usage has no cache detail).
func (s *Stream) addCachedTokens(chunks []byte) []byte {
	var out []byte
	for _, ev := range bytes.SplitAfter(chunks, []byte("\n\n")) {
		data := sse.DataOf(ev)
		if bytes.Contains(data, []byte(`"choices":[],"usage":`)) {
			patch := []byte(`{"usage":{"prompt_tokens_details":{"cached_tokens":` + strconv.FormatInt(s.cacheRead, 10) + `}}}`)
			if merged, err := dialect.Overlay(data, patch); err == nil {
				ev = append(append([]byte("data: "), merged...), "\n\n"...)
			}
		}
		out = append(out, ev...)
	}
	return out
}

// writeAnthropicDelta writes the held message_delta, with the usage of
// OpenAI's usage chunk when it came (the encoder writes the input and
// cache tokens when known, the output tokens always).
func (s *Stream) writeAnthropicDelta(w io.Writer) error {
	md := s.delta
	s.delta = nil
	return s.enc.Event(w, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: md}}, nil)
}

// refusalAsContent rewrites an OpenAI chunk whose delta carries refusal
// text so that the text is the delta's content: a refusal reaches an
// Anthropic client as text, as in complete responses.
func refusalAsContent(ev sse.Event) sse.Event {
	if !bytes.Contains(ev.Data, []byte(`"refusal"`)) {
		return ev
	}
	var c map[string]any
	if json.Unmarshal(ev.Data, &c) != nil {
		return ev
	}
	choices, _ := c["choices"].([]any)
	if len(choices) == 0 {
		return ev
	}
	ch, _ := choices[0].(map[string]any)
	d, _ := ch["delta"].(map[string]any)
	refusal, _ := d["refusal"].(string)
	if refusal == "" {
		return ev
	}
	content, _ := d["content"].(string)
	d["content"] = content + refusal
	delete(d, "refusal")
	data, err := json.Marshal(c)
	if err != nil {
		return ev
	}
	ev.Data = data
	return ev
}

// opaque handles events the decoder does not model: OpenAI's usage-only
// chunk (or a chunk after the finish_reason that carries the usage) gives
// the held message_delta its usage; other choices are reported.
func (s *Stream) opaque(o *cpv1.OpaqueEvent) error {
	switch o.GetType() {
	case "sse.comment":
		return nil
	case "openai.usage", "openai.chunk":
		var c struct {
			Choices []struct {
				Index int `json:"index"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens        int64 `json:"prompt_tokens"`
				CompletionTokens    int64 `json:"completion_tokens"`
				PromptTokensDetails struct {
					CachedTokens int64 `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(o.GetJson(), &c); err != nil {
			return fmt.Errorf("translate: stream: chunk: %w", err)
		}
		for _, ch := range c.Choices {
			if ch.Index > 0 {
				s.once("choices", "only the first choice is carried")
			}
		}
		if u := c.Usage; u != nil && s.delta != nil {
			s.delta.Usage = anthropicUsageOf(u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.CompletionTokens)
		}
		return nil
	}
	s.once(o.GetType(), "stream event with no equivalent in the client format")
	return nil
}
