package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// wireChunk is a chat.completion.chunk (or an in-stream error).
type wireChunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string         `json:"role"`
			Content   *string        `json:"content"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	} `json:"error"`
}

var doneData = []byte("[DONE]")

// decoder turns chunks into canonical events. OpenAI has no block
// boundaries: the decoder opens a text block at the first content, a tool
// block at each new tool call index, and closes the open block when the
// next one starts or the choice finishes.
type decoder struct {
	started  bool
	finished bool
	stopped  bool
	open     int // canonical index of the open block, -1 when none
	next     uint32
	tools    map[int]uint32 // OpenAI tool call index -> canonical block index
}

// NewDecoder implements dialect.Dialect.
func (Dialect) NewDecoder() dialect.Decoder { return &decoder{open: -1, tools: map[int]uint32{}} }

func (d *decoder) Decode(ev sse.Event) ([]*cpv1.StreamEvent, error) {
	if len(ev.Data) == 0 {
		return []*cpv1.StreamEvent{opaque("sse.comment", ev.Raw)}, nil
	}
	if bytes.Equal(bytes.TrimSpace(ev.Data), doneData) {
		out := d.finish("")
		d.stopped = true
		return append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}), nil
	}
	var c wireChunk
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return nil, fmt.Errorf("openai: stream chunk: %w", err)
	}
	if c.Error != nil {
		code, _ := c.Error.Code.(string)
		return []*cpv1.StreamEvent{{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{
			Type: anthropicErrorType(c.Error.Type, code), Message: c.Error.Message}}}}, nil
	}
	var out []*cpv1.StreamEvent
	if !d.started {
		d.started = true
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{
			Id: c.ID, Model: c.Model}}})
	}
	if len(c.Choices) == 0 || c.Choices[0].Index != 0 || d.finished {
		// A usage-only chunk, another choice, or anything after the finish:
		// carried opaquely.
		typ := "openai.chunk"
		if len(c.Choices) == 0 && c.Usage != nil {
			typ = "openai.usage"
		}
		if len(out) == 0 {
			return []*cpv1.StreamEvent{opaque(typ, ev.Data)}, nil
		}
		return out, nil
	}
	ch := c.Choices[0]
	if t := ch.Delta.Content; t != nil && *t != "" {
		if d.open < 0 || d.tools != nil && d.isTool(d.open) {
			out = d.closeOpen(out)
			out = d.startBlock(out, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}})
		}
		out = append(out, delta(uint32(d.open), &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: *t}}}))
	}
	for _, tc := range ch.Delta.ToolCalls {
		ti := 0
		if tc.Index != nil {
			ti = *tc.Index
		}
		idx, ok := d.tools[ti]
		if !ok {
			out = d.closeOpen(out)
			out = d.startBlock(out, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
				Id: tc.ID, Name: tc.Function.Name}}})
			idx = uint32(d.open)
			d.tools[ti] = idx
		}
		if tc.Function.Arguments != "" {
			out = append(out, delta(idx, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{
				InputJson: &cpv1.InputJSONDelta{PartialJson: tc.Function.Arguments}}}))
		}
	}
	if ch.FinishReason != nil && *ch.FinishReason != "" {
		out = d.closeOpen(out)
		d.finished = true
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{
			StopReason: StopReason(*ch.FinishReason), Usage: c.Usage.canon()}}})
	}
	if len(out) == 0 {
		out = append(out, opaque("openai.chunk", ev.Data))
	}
	return out, nil
}

func (d *decoder) isTool(idx int) bool {
	for _, v := range d.tools {
		if int(v) == idx {
			return true
		}
	}
	return false
}

func (d *decoder) startBlock(out []*cpv1.StreamEvent, b *cpv1.ContentBlock) []*cpv1.StreamEvent {
	idx := d.next
	d.next++
	d.open = int(idx)
	return append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{
		ContentBlockStart: &cpv1.ContentBlockStart{Index: idx, Block: b}}})
}

func (d *decoder) closeOpen(out []*cpv1.StreamEvent) []*cpv1.StreamEvent {
	if d.open < 0 {
		return out
	}
	idx := uint32(d.open)
	d.open = -1
	return append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: idx}}})
}

// finish closes the message when [DONE] arrives without a finish_reason.
func (d *decoder) finish(stop string) []*cpv1.StreamEvent {
	var out []*cpv1.StreamEvent
	if !d.started {
		d.started = true
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{}}})
	}
	out = d.closeOpen(out)
	if !d.finished {
		d.finished = true
		out = append(out, &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: stop}}})
	}
	return out
}

func delta(idx uint32, d *cpv1.ContentBlockDelta) *cpv1.StreamEvent {
	d.Index = idx
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}}
}

func opaque(typ string, data []byte) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{
		Type: typ, Json: append([]byte(nil), data...)}}}
}

// anthropicErrorType maps an OpenAI error's type and code to the
// canonical (Anthropic) error type; the inverse of openAIType.
func anthropicErrorType(openAIType, code string) string {
	switch code {
	case "invalid_api_key":
		return "authentication_error"
	case "not_found":
		return "not_found_error"
	case "request_too_large":
		return "request_too_large"
	case "rate_limit_exceeded":
		return "rate_limit_error"
	case "overloaded":
		return "overloaded_error"
	}
	switch openAIType {
	case "invalid_request_error":
		return "invalid_request_error"
	case "authentication_error":
		return "authentication_error"
	case "permission_error":
		return "permission_error"
	case "rate_limit_error", "rate_limit_exceeded":
		return "rate_limit_error"
	}
	return "api_error"
}

// encoder writes chunks. Every chunk it makes shares the envelope (id,
// created, model, system_fingerprint) of upstream's first chunk, or of the
// message_start when the whole stream is the gateway's own.
type encoder struct {
	includeUsage bool
	prefix       []byte // `{"id":...,"choices":[{"index":0,"delta":`
	tools        map[uint32]int
	nextTool     int
	// startUsage is the message_start's usage: a canonical stream reports
	// input tokens there and output tokens in the message_delta.
	startUsage *cpv1.Usage
}

// NewEncoder implements dialect.Dialect.
func (Dialect) NewEncoder(req dialect.Request) dialect.Encoder {
	return &encoder{includeUsage: req.IncludeUsage, tools: map[uint32]int{}}
}

func (e *encoder) Raw(w io.Writer, raw []byte, evs []*cpv1.StreamEvent) error {
	for _, ev := range evs {
		e.note(ev, raw)
	}
	_, err := w.Write(raw)
	return err
}

// note records what an event written from upstream's bytes did.
func (e *encoder) note(ev *cpv1.StreamEvent, raw []byte) {
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		e.startUsage = x.MessageStart.GetUsage()
		if e.prefix == nil {
			e.setEnvelope(sse.DataOf(raw), x.MessageStart)
		}
	case *cpv1.StreamEvent_ContentBlockStart:
		if x.ContentBlockStart.GetBlock().GetToolUse() != nil {
			e.tools[x.ContentBlockStart.GetIndex()] = e.nextTool
			e.nextTool++
		}
	}
}

func (e *encoder) setEnvelope(firstChunk []byte, ms *cpv1.MessageStart) {
	var env struct {
		ID                string          `json:"id"`
		Created           json.RawMessage `json:"created"`
		Model             string          `json:"model"`
		SystemFingerprint *string         `json:"system_fingerprint"`
	}
	if firstChunk != nil {
		_ = json.Unmarshal(firstChunk, &env)
	}
	if env.ID == "" {
		env.ID = ms.GetId()
	}
	if env.Model == "" {
		env.Model = ms.GetModel()
	}
	if len(env.Created) == 0 {
		env.Created = json.RawMessage(strconv.FormatInt(time.Now().Unix(), 10))
	}
	var b bytes.Buffer
	b.WriteString(`{"id":`)
	b.Write(jsonx.String(env.ID))
	b.WriteString(`,"object":"chat.completion.chunk","created":`)
	b.Write(env.Created)
	b.WriteString(`,"model":`)
	b.Write(jsonx.String(env.Model))
	if env.SystemFingerprint != nil {
		b.WriteString(`,"system_fingerprint":`)
		b.Write(jsonx.String(*env.SystemFingerprint))
	}
	b.WriteString(`,"choices":[{"index":0,"delta":`)
	e.prefix = b.Bytes()
}

func (e *encoder) Event(w io.Writer, ev *cpv1.StreamEvent, template []byte) error {
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		e.startUsage = x.MessageStart.GetUsage()
		if e.prefix == nil {
			e.setEnvelope(sse.DataOf(template), x.MessageStart)
		}
		return e.chunk(w, []byte(`{"role":"assistant","content":""}`), "null")
	case *cpv1.StreamEvent_ContentBlockStart:
		// A block's start may hold the beginning of its text or arguments;
		// its deltas carry the rest.
		b := x.ContentBlockStart.GetBlock()
		if t := b.GetText().GetText(); t != "" {
			return e.delta(w, &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: t}}})
		}
		tu := b.GetToolUse()
		if tu == nil {
			return nil
		}
		ti := e.nextTool
		e.tools[x.ContentBlockStart.GetIndex()] = ti
		e.nextTool++
		d, _ := jsonx.Marshal(map[string]any{"tool_calls": []any{map[string]any{"index": ti, "id": tu.GetId(), "type": "function",
			"function": map[string]any{"name": tu.GetName(), "arguments": string(tu.GetInputJson())}}}})
		return e.chunk(w, d, "null")
	case *cpv1.StreamEvent_ContentBlockDelta:
		return e.delta(w, x.ContentBlockDelta)
	case *cpv1.StreamEvent_MessageDelta:
		fr := jsonx.String(FinishReason(x.MessageDelta.GetStopReason()))
		if err := e.chunk(w, []byte(`{}`), string(fr)); err != nil {
			return err
		}
		if e.includeUsage && ev.GetSeq() == 0 && x.MessageDelta.GetUsage() != nil {
			return e.usage(w, x.MessageDelta.GetUsage())
		}
		return nil
	case *cpv1.StreamEvent_MessageStop:
		_, err := io.WriteString(w, "data: [DONE]\n\n")
		return err
	case *cpv1.StreamEvent_Error:
		typ, code := openAIType(500, x.Error.GetType())
		b, _ := jsonx.Marshal(errorBody{Error: errorDetail{Message: x.Error.GetMessage(), Type: typ, Code: code}})
		return writeData(w, b)
	case *cpv1.StreamEvent_Opaque:
		t := x.Opaque.GetType()
		if len(t) > 7 && t[:7] == "openai." {
			return writeData(w, x.Opaque.GetJson())
		}
	}
	// Block stops, pings and other formats' opaque events have no OpenAI form.
	return nil
}

func (e *encoder) delta(w io.Writer, d *cpv1.ContentBlockDelta) error {
	switch x := d.GetDelta().(type) {
	case *cpv1.ContentBlockDelta_Text:
		buf := make([]byte, 0, len(x.Text.GetText())+16)
		buf = append(buf, `{"content":`...)
		buf = append(buf, jsonx.String(x.Text.GetText())...)
		buf = append(buf, '}')
		return e.chunk(w, buf, "null")
	case *cpv1.ContentBlockDelta_InputJson:
		ti, ok := e.tools[d.GetIndex()]
		if !ok {
			return nil
		}
		b, _ := jsonx.Marshal(map[string]any{"tool_calls": []any{map[string]any{"index": ti,
			"function": map[string]any{"arguments": x.InputJson.GetPartialJson()}}}})
		return e.chunk(w, b, "null")
	}
	return nil
}

func (e *encoder) usage(w io.Writer, u *cpv1.Usage) error {
	if e.prefix == nil {
		e.setEnvelope(nil, nil)
	}
	if u.GetInputTokens() == 0 && e.startUsage.GetInputTokens() != 0 {
		u = &cpv1.Usage{InputTokens: e.startUsage.GetInputTokens(), OutputTokens: u.GetOutputTokens()}
	}
	ub, _ := jsonx.Marshal(usageToWire(u))
	// The envelope prefix ends inside choices; a usage chunk has none.
	head := e.prefix[:bytes.LastIndex(e.prefix, []byte(`"choices"`))]
	b := make([]byte, 0, len(head)+len(ub)+32)
	b = append(b, head...)
	b = append(b, `"choices":[],"usage":`...)
	b = append(b, ub...)
	b = append(b, '}')
	return writeData(w, b)
}

func (e *encoder) chunk(w io.Writer, delta []byte, finish string) error {
	if e.prefix == nil {
		e.setEnvelope(nil, nil)
	}
	b := make([]byte, 0, len(e.prefix)+len(delta)+64)
	b = append(b, e.prefix...)
	b = append(b, delta...)
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	b = append(b, finish...)
	b = append(b, "}]}"...)
	return writeData(w, b)
}

// writeData writes one SSE event. Data of several lines (an opaque chunk
// upstream sent so) is written as several data lines.
func writeData(w io.Writer, data []byte) error {
	b := make([]byte, 0, len(data)+8)
	b = append(b, "data: "...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		b = append(b, data[:i]...)
		b = append(b, "\ndata: "...)
		data = data[i+1:]
	}
	b = append(b, data...)
	b = append(b, "\n\n"...)
	_, err := w.Write(b)
	return err
}
