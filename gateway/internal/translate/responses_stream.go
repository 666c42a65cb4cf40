package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ResponsesStream translates a Chat Completions stream (chunks, as a chat
// call answers) to Responses streaming events, one chunk at a time: the
// OpenAI dialect's Decoder makes canonical events of the chunks, and each
// canonical block becomes an output item — a text block a message item
// with one output_text part, a tool block a function_call item.
//
// The events: response.created and response.in_progress first; for each
// item response.output_item.added, its content part or arguments events,
// response.output_item.done; then response.completed, or
// response.incomplete when the chat stream finished for length or
// content_filter, with the whole response and its usage (the chat stream
// is best asked with stream_options.include_usage, as ResponsesToChat
// does). An error chunk, or a stream that ends before its finish, ends
// the events with an error event and response.failed. Every event has
// its type and sequence number, and is written as
// "event: <type>\ndata: <json>\n\n". A ResponsesStream is not safe for
// concurrent use.
type ResponsesStream struct {
	dec      dialect.Decoder
	echo     ResponsesEcho
	r        report
	reported map[string]bool

	seq     int64
	resp    *rsResponse
	base    string
	created int64
	started bool
	done    bool
	open    map[uint32]*rsItem // canonical block index -> its item
	msgs    int                // message items so far
	calls   int                // function_call items so far
	finish  string             // the chat finish_reason, once seen
	ended   bool               // the finish_reason was seen
	usage   *rsUsage
}

// rsItem is an output item being streamed.
type rsItem struct {
	index int
	msg   *rsMessage
	text  *rsOutputText
	call  *rsFunctionCall
}

// NewChatToResponsesStream starts translating one chat stream for a
// client of the Responses API; echo is from the client's request.
func NewChatToResponsesStream(echo ResponsesEcho) *ResponsesStream {
	return &ResponsesStream{dec: openai.Dialect{}.NewDecoder(), echo: echo, reported: map[string]bool{},
		open: map[uint32]*rsItem{}}
}

// Dropped returns what the stream could not carry so far, each kind once.
func (s *ResponsesStream) Dropped() []Dropped { return s.r }

// Done reports whether the client stream is complete (a terminal event
// written: response.completed, response.incomplete or response.failed).
func (s *ResponsesStream) Done() bool { return s.done }

func (s *ResponsesStream) once(field, reason string) {
	if !s.reported[field] {
		s.reported[field] = true
		s.r.add(field, reason)
	}
}

// Event translates one chat SSE event and writes the events it gives.
func (s *ResponsesStream) Event(w io.Writer, ev sse.Event) error {
	if s.done {
		return nil
	}
	s.peek(ev.Data)
	evs, err := s.dec.Decode(ev)
	if err != nil {
		return fmt.Errorf("translate: responses stream: %w", err)
	}
	// A chunk that finishes closes its blocks before it says why: the
	// items closed are complete or incomplete by that reason.
	for _, e := range evs {
		if md := e.GetMessageDelta(); md != nil {
			s.ended, s.finish = true, openai.FinishReason(md.GetStopReason())
		}
	}
	for _, e := range evs {
		if err := s.event(w, e); err != nil {
			return err
		}
	}
	return nil
}

// Finish ends the client stream when the chat stream ended without its
// [DONE]: completed when its finish_reason came, failed otherwise.
func (s *ResponsesStream) Finish(w io.Writer) error {
	switch {
	case s.done:
		return nil
	case s.ended:
		return s.complete(w)
	}
	return s.Fail(w, "server_error", "upstream stream ended before the response was complete")
}

// Fail ends the client stream with an error event and response.failed;
// code is a Responses error code (server_error, rate_limit_exceeded).
func (s *ResponsesStream) Fail(w io.Writer, code, message string) error {
	if s.done {
		return nil
	}
	if err := s.start(w, "", ""); err != nil {
		return err
	}
	s.done = true
	if err := s.emit(w, "error", rsField{"code", code}, rsField{"message", message}, rsField{"param", nil}); err != nil {
		return err
	}
	s.resp.Status, s.resp.Error, s.resp.Usage = "failed", &rsError{Code: code, Message: message}, s.usage
	return s.emit(w, "response.failed", rsField{"response", s.resp})
}

// peek reads what the canonical events do not carry: the chunks' created
// time and usage, and the dropped parts of a chunk.
func (s *ResponsesStream) peek(data []byte) {
	if len(data) == 0 || data[0] != '{' {
		return
	}
	if s.created == 0 {
		var c struct {
			Created int64 `json:"created"`
		}
		if json.Unmarshal(data, &c) == nil {
			s.created = c.Created
		}
	}
	if bytes.Contains(data, []byte(`"usage":{`)) {
		var c struct {
			Usage *rsChatUsage `json:"usage"`
		}
		if json.Unmarshal(data, &c) == nil && c.Usage != nil {
			s.usage = c.Usage.responses()
		}
	}
	if bytes.Contains(data, []byte(`"refusal":"`)) || bytes.Contains(data, []byte(`"index":1`)) {
		var c struct {
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Refusal *string `json:"refusal"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal(data, &c) == nil {
			for _, ch := range c.Choices {
				if ch.Index > 0 {
					s.once("choices", "only the first choice is carried")
				}
				if ch.Delta.Refusal != nil && *ch.Delta.Refusal != "" {
					s.once("refusal", "streamed refusals are not carried")
				}
			}
		}
	}
}

func (s *ResponsesStream) event(w io.Writer, ev *cpv1.StreamEvent) error {
	if s.done {
		return nil
	}
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		return s.start(w, x.MessageStart.GetId(), x.MessageStart.GetModel())
	case *cpv1.StreamEvent_ContentBlockStart:
		if err := s.start(w, "", ""); err != nil {
			return err
		}
		return s.blockStart(w, x.ContentBlockStart)
	case *cpv1.StreamEvent_ContentBlockDelta:
		return s.blockDelta(w, x.ContentBlockDelta)
	case *cpv1.StreamEvent_ContentBlockStop:
		return s.blockStop(w, x.ContentBlockStop.GetIndex())
	case *cpv1.StreamEvent_MessageStop:
		return s.complete(w)
	case *cpv1.StreamEvent_Error:
		code := "server_error"
		if x.Error.GetType() == "rate_limit_error" {
			code = "rate_limit_exceeded"
		}
		return s.Fail(w, code, x.Error.GetMessage())
	case *cpv1.StreamEvent_Opaque:
		if x.Opaque.GetType() == "sse.comment" {
			// Keep-alive comments keep the client's connection alive too.
			_, err := w.Write(x.Opaque.GetJson())
			return err
		}
	}
	// The message delta was read in Event; pings say nothing.
	return nil
}

// start writes response.created and response.in_progress, once.
func (s *ResponsesStream) start(w io.Writer, id, model string) error {
	if s.started {
		return nil
	}
	s.started = true
	if s.created == 0 {
		s.created = now().Unix()
	}
	s.base = s.echo.idBase(id)
	s.resp = s.echo.response(s.base, s.created, model, "in_progress")
	if err := s.emit(w, "response.created", rsField{"response", s.resp}); err != nil {
		return err
	}
	return s.emit(w, "response.in_progress", rsField{"response", s.resp})
}

func (s *ResponsesStream) blockStart(w io.Writer, b *cpv1.ContentBlockStart) error {
	it := &rsItem{index: len(s.resp.Output)}
	switch x := b.GetBlock().GetBlock().(type) {
	case *cpv1.ContentBlock_Text:
		it.msg = &rsMessage{ID: messageID(s.base, s.msgs), Type: "message", Status: "in_progress", Content: []any{}, Role: "assistant"}
		s.msgs++
		it.text = newOutputText("")
		s.open[b.GetIndex()] = it
		s.resp.Output = append(s.resp.Output, it.msg)
		if err := s.emit(w, "response.output_item.added", rsField{"output_index", it.index}, rsField{"item", it.msg}); err != nil {
			return err
		}
		it.msg.Content = append(it.msg.Content, it.text)
		if err := s.emit(w, "response.content_part.added", rsField{"item_id", it.msg.ID}, rsField{"output_index", it.index},
			rsField{"content_index", 0}, rsField{"part", it.text}); err != nil {
			return err
		}
		// Text the block starts with goes out as its first delta.
		if t := x.Text.GetText(); t != "" {
			return s.blockDelta(w, &cpv1.ContentBlockDelta{Index: b.GetIndex(), Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: t}}})
		}
		return nil
	case *cpv1.ContentBlock_ToolUse:
		tu := x.ToolUse
		it.call = &rsFunctionCall{ID: functionCallID(s.base, tu.GetId(), s.calls), Type: "function_call", Status: "in_progress",
			CallID: tu.GetId(), Name: tu.GetName()}
		s.calls++
		s.open[b.GetIndex()] = it
		s.resp.Output = append(s.resp.Output, it.call)
		if err := s.emit(w, "response.output_item.added", rsField{"output_index", it.index}, rsField{"item", it.call}); err != nil {
			return err
		}
		if args := string(tu.GetInputJson()); args != "" {
			return s.blockDelta(w, &cpv1.ContentBlockDelta{Index: b.GetIndex(), Delta: &cpv1.ContentBlockDelta_InputJson{
				InputJson: &cpv1.InputJSONDelta{PartialJson: args}}})
		}
		return nil
	}
	s.once("content", "blocks other than text and tool calls are not carried")
	return nil
}

func (s *ResponsesStream) blockDelta(w io.Writer, d *cpv1.ContentBlockDelta) error {
	it := s.open[d.GetIndex()]
	if it == nil {
		return nil
	}
	switch x := d.GetDelta().(type) {
	case *cpv1.ContentBlockDelta_Text:
		if it.text == nil {
			return nil
		}
		it.text.Text += x.Text.GetText()
		return s.emit(w, "response.output_text.delta", rsField{"item_id", it.msg.ID}, rsField{"output_index", it.index},
			rsField{"content_index", 0}, rsField{"delta", x.Text.GetText()}, rsField{"logprobs", []struct{}{}})
	case *cpv1.ContentBlockDelta_InputJson:
		if it.call == nil {
			return nil
		}
		it.call.Arguments += x.InputJson.GetPartialJson()
		return s.emit(w, "response.function_call_arguments.delta", rsField{"item_id", it.call.ID},
			rsField{"output_index", it.index}, rsField{"delta", x.InputJson.GetPartialJson()})
	}
	return nil
}

func (s *ResponsesStream) blockStop(w io.Writer, idx uint32) error {
	it := s.open[idx]
	if it == nil {
		return nil
	}
	delete(s.open, idx)
	status := "completed"
	if s.ended {
		st, _ := responsesStatus(s.finish, &report{})
		status = itemStatus(st)
	}
	if it.msg != nil {
		it.msg.Status = status
		if err := s.emit(w, "response.output_text.done", rsField{"item_id", it.msg.ID}, rsField{"output_index", it.index},
			rsField{"content_index", 0}, rsField{"text", it.text.Text}, rsField{"logprobs", []struct{}{}}); err != nil {
			return err
		}
		if err := s.emit(w, "response.content_part.done", rsField{"item_id", it.msg.ID}, rsField{"output_index", it.index},
			rsField{"content_index", 0}, rsField{"part", it.text}); err != nil {
			return err
		}
		return s.emit(w, "response.output_item.done", rsField{"output_index", it.index}, rsField{"item", it.msg})
	}
	it.call.Status = status
	if err := s.emit(w, "response.function_call_arguments.done", rsField{"item_id", it.call.ID},
		rsField{"output_index", it.index}, rsField{"arguments", it.call.Arguments}); err != nil {
		return err
	}
	return s.emit(w, "response.output_item.done", rsField{"output_index", it.index}, rsField{"item", it.call})
}

// complete writes response.completed (or response.incomplete) with the
// whole response.
func (s *ResponsesStream) complete(w io.Writer) error {
	if err := s.start(w, "", ""); err != nil {
		return err
	}
	for len(s.open) > 0 {
		// Blocks still open (a stream that never finished them) close in order.
		first := ^uint32(0)
		for idx := range s.open {
			first = min(first, idx)
		}
		if err := s.blockStop(w, first); err != nil {
			return err
		}
	}
	s.done = true
	status, incomplete := responsesStatus(s.finish, &s.r)
	s.resp.Status, s.resp.IncompleteDetails, s.resp.Usage = status, incomplete, s.usage
	typ := "response.completed"
	if status == "incomplete" {
		typ = "response.incomplete"
	}
	return s.emit(w, typ, rsField{"response", s.resp})
}

// rsField is one field of an event after its type and sequence number.
type rsField struct {
	name  string
	value any
}

// emit writes one event: type and sequence_number first, then fields.
func (s *ResponsesStream) emit(w io.Writer, typ string, fields ...rsField) error {
	b := make([]byte, 0, 256)
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":"...)
	b = append(b, jsonx.String(typ)...)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, s.seq, 10)
	s.seq++
	for _, f := range fields {
		b = append(b, ',')
		b = append(b, jsonx.String(f.name)...)
		b = append(b, ':')
		v, err := jsonx.Marshal(f.value)
		if err != nil {
			return fmt.Errorf("translate: responses stream: %s: %w", typ, err)
		}
		b = append(b, v...)
	}
	b = append(b, "}\n\n"...)
	_, err := w.Write(b)
	return err
}
