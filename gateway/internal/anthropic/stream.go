package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// wireEvent is any Anthropic stream event; the fields used depend on Type.
type wireEvent struct {
	Type         string          `json:"type"`
	Index        uint32          `json:"index"`
	Message      *wireMessage    `json:"message"`
	ContentBlock json.RawMessage `json:"content_block"`
	Delta        *wireDelta      `json:"delta"`
	Usage        *wireUsage      `json:"usage"`
	Error        *errorDetail    `json:"error"`
}

// wireDelta is a content_block_delta's or message_delta's delta.
type wireDelta struct {
	Type         string  `json:"type"`
	Text         string  `json:"text"`
	PartialJSON  string  `json:"partial_json"`
	Thinking     string  `json:"thinking"`
	Signature    string  `json:"signature"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

type decoder struct{}

// NewDecoder implements dialect.Dialect. Anthropic events map one to one
// onto canonical events, so the decoder keeps no state.
func (Dialect) NewDecoder() dialect.Decoder { return decoder{} }

func (decoder) Decode(ev sse.Event) ([]*cpv1.StreamEvent, error) {
	if len(ev.Data) == 0 {
		// A comment or an event without data: forwarded as is.
		return []*cpv1.StreamEvent{opaque("sse.comment", ev.Raw)}, nil
	}
	var w wireEvent
	if err := json.Unmarshal(ev.Data, &w); err != nil {
		return nil, fmt.Errorf("anthropic: stream event %q: %w", ev.Name, err)
	}
	e, err := decodeEvent(&w, ev.Data)
	if err != nil {
		return nil, err
	}
	return []*cpv1.StreamEvent{e}, nil
}

func decodeEvent(w *wireEvent, data []byte) (*cpv1.StreamEvent, error) {
	switch w.Type {
	case "message_start":
		ms := &cpv1.MessageStart{}
		if w.Message != nil {
			ms.Id, ms.Model, ms.Usage = w.Message.ID, w.Message.Model, w.Message.Usage.canon()
		}
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: ms}}, nil
	case "content_block_start":
		b, err := blockFromWire(w.ContentBlock)
		if err != nil {
			return nil, fmt.Errorf("anthropic: content_block_start: %w", err)
		}
		if tu := b.GetToolUse(); tu != nil && isEmptyObject(tu.GetInputJson()) {
			// A streamed tool_use starts with "input":{}; in the canonical
			// model its input is empty there and the arguments follow as
			// deltas, so that start and deltas concatenate to the arguments.
			tu.InputJson = nil
		}
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{
			ContentBlockStart: &cpv1.ContentBlockStart{Index: w.Index, Block: b}}}, nil
	case "content_block_delta":
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{
			ContentBlockDelta: decodeDelta(w, data)}}, nil
	case "content_block_stop":
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{
			ContentBlockStop: &cpv1.ContentBlockStop{Index: w.Index}}}, nil
	case "message_delta":
		md := &cpv1.MessageDelta{Usage: w.Usage.canon()}
		if w.Delta != nil {
			md.StopReason, md.StopSequence = deref(w.Delta.StopReason), deref(w.Delta.StopSequence)
		}
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: md}}, nil
	case "message_stop":
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}, nil
	case "ping":
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Ping{Ping: &cpv1.Ping{}}}, nil
	case "error":
		se := &cpv1.StreamError{}
		if w.Error != nil {
			se.Type, se.Message = w.Error.Type, w.Error.Message
		}
		return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: se}}, nil
	}
	return opaque(w.Type, data), nil
}

func decodeDelta(w *wireEvent, data []byte) *cpv1.ContentBlockDelta {
	d := &cpv1.ContentBlockDelta{Index: w.Index}
	if w.Delta == nil {
		// No delta object: nothing to carry (data is the whole event, and
		// the reader reuses its buffer).
		d.Delta = &cpv1.ContentBlockDelta_Opaque{Opaque: &cpv1.OpaqueDelta{}}
		return d
	}
	switch w.Delta.Type {
	case "text_delta":
		d.Delta = &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: w.Delta.Text}}
	case "input_json_delta":
		d.Delta = &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: w.Delta.PartialJSON}}
	case "thinking_delta":
		d.Delta = &cpv1.ContentBlockDelta_Thinking{Thinking: &cpv1.ThinkingDelta{Thinking: w.Delta.Thinking}}
	case "signature_delta":
		d.Delta = &cpv1.ContentBlockDelta_Signature{Signature: &cpv1.SignatureDelta{Signature: w.Delta.Signature}}
	default:
		// Keep the whole delta object so it can be written back.
		var raw struct {
			Delta json.RawMessage `json:"delta"`
		}
		_ = json.Unmarshal(data, &raw)
		d.Delta = &cpv1.ContentBlockDelta_Opaque{Opaque: &cpv1.OpaqueDelta{Type: w.Delta.Type, Json: raw.Delta}}
	}
	return d
}

func opaque(typ string, data []byte) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{
		Type: typ, Json: append([]byte(nil), data...)}}}
}

// isEmptyObject reports whether b is the JSON object {}.
func isEmptyObject(b []byte) bool {
	return bytes.Equal(bytes.Join(bytes.Fields(b), nil), []byte("{}"))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type encoder struct{}

// NewEncoder implements dialect.Dialect. Anthropic events need no stream
// state to encode.
func (Dialect) NewEncoder(dialect.Request) dialect.Encoder { return encoder{} }

func (encoder) Raw(w io.Writer, raw []byte, _ []*cpv1.StreamEvent) error {
	_, err := w.Write(raw)
	return err
}

func (encoder) Event(w io.Writer, ev *cpv1.StreamEvent, template []byte) error {
	if data := appendHotEvent(nil, ev); data != nil {
		_, err := w.Write(data)
		return err
	}
	var tdata []byte
	if template != nil {
		tdata = sse.DataOf(template)
	}
	name, data, err := encodeEvent(ev, tdata)
	if err != nil || name == "" {
		return err
	}
	if len(tdata) > 0 && (name == "message_start" || name == "message_delta") {
		// Keep fields of upstream's event that the model does not carry.
		if merged, err := dialect.Overlay(tdata, data); err == nil {
			data = merged
		}
	}
	return writeEvent(w, name, data)
}

// appendHotEvent writes the events policies rewrite most (deltas and
// block stops) without reflection, in the providers' key order, as a whole
// SSE event; other events give nil.
func appendHotEvent(buf []byte, ev *cpv1.StreamEvent) []byte {
	var kind, field, value string
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_ContentBlockStop:
		buf = append(buf, `event: content_block_stop`+"\n"+`data: {"type":"content_block_stop","index":`...)
		buf = strconv.AppendUint(buf, uint64(x.ContentBlockStop.GetIndex()), 10)
		return append(buf, "}\n\n"...)
	case *cpv1.StreamEvent_ContentBlockDelta:
		switch d := x.ContentBlockDelta.GetDelta().(type) {
		case *cpv1.ContentBlockDelta_Text:
			kind, field, value = "text_delta", "text", d.Text.GetText()
		case *cpv1.ContentBlockDelta_InputJson:
			kind, field, value = "input_json_delta", "partial_json", d.InputJson.GetPartialJson()
		case *cpv1.ContentBlockDelta_Thinking:
			kind, field, value = "thinking_delta", "thinking", d.Thinking.GetThinking()
		case *cpv1.ContentBlockDelta_Signature:
			kind, field, value = "signature_delta", "signature", d.Signature.GetSignature()
		default:
			return nil
		}
		buf = append(buf, `event: content_block_delta`+"\n"+`data: {"type":"content_block_delta","index":`...)
		buf = strconv.AppendUint(buf, uint64(x.ContentBlockDelta.GetIndex()), 10)
		buf = append(buf, `,"delta":{"type":"`...)
		buf = append(buf, kind...)
		buf = append(buf, `","`...)
		buf = append(buf, field...)
		buf = append(buf, `":`...)
		buf = dialect.AppendString(buf, value)
		return append(buf, "}}\n\n"...)
	}
	return nil
}

// writeEvent writes one SSE event. Data of several lines (an opaque event
// upstream sent so) is written as several data lines.
func writeEvent(w io.Writer, name string, data []byte) error {
	buf := make([]byte, 0, len(name)+len(data)+16)
	buf = append(buf, "event: "...)
	buf = append(buf, name...)
	buf = append(buf, "\ndata: "...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		buf = append(buf, data[:i]...)
		buf = append(buf, "\ndata: "...)
		data = data[i+1:]
	}
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	_, err := w.Write(buf)
	return err
}

// encodeEvent renders one canonical event as an Anthropic event name and
// JSON. Events with no Anthropic form (OpenAI opaque chunks) give "".
// template is the data of upstream's event, or nil.
func encodeEvent(ev *cpv1.StreamEvent, template []byte) (string, []byte, error) {
	var v any
	var name string
	switch x := ev.GetEvent().(type) {
	case *cpv1.StreamEvent_MessageStart:
		name = "message_start"
		u := x.MessageStart.GetUsage()
		v = map[string]any{"type": name, "message": map[string]any{
			"id": x.MessageStart.GetId(), "type": "message", "role": "assistant",
			"model": x.MessageStart.GetModel(), "content": []any{},
			"stop_reason": nil, "stop_sequence": nil,
			"usage": wireUsage{InputTokens: u.GetInputTokens(), OutputTokens: u.GetOutputTokens(),
				CacheCreationInputTokens: u.GetCacheCreationInputTokens(), CacheReadInputTokens: u.GetCacheReadInputTokens()},
		}}
	case *cpv1.StreamEvent_ContentBlockStart:
		name = "content_block_start"
		v = map[string]any{"type": name, "index": x.ContentBlockStart.GetIndex(),
			"content_block": blockToWire(x.ContentBlockStart.GetBlock())}
	case *cpv1.StreamEvent_ContentBlockDelta:
		name = "content_block_delta"
		v = map[string]any{"type": name, "index": x.ContentBlockDelta.GetIndex(), "delta": deltaToWire(x.ContentBlockDelta)}
	case *cpv1.StreamEvent_ContentBlockStop:
		name = "content_block_stop"
		v = map[string]any{"type": name, "index": x.ContentBlockStop.GetIndex()}
	case *cpv1.StreamEvent_MessageDelta:
		name = "message_delta"
		md := x.MessageDelta
		delta := map[string]any{"stop_reason": nilIfEmpty(md.GetStopReason()), "stop_sequence": nilIfEmpty(md.GetStopSequence())}
		v = map[string]any{"type": name, "delta": delta, "usage": deltaUsageOf(md.GetUsage(), template)}
	case *cpv1.StreamEvent_MessageStop:
		name = "message_stop"
		v = map[string]any{"type": name}
	case *cpv1.StreamEvent_Ping:
		name = "ping"
		v = map[string]any{"type": name}
	case *cpv1.StreamEvent_Error:
		name = "error"
		v = errorBody{Type: "error", Error: errorDetail{Type: x.Error.GetType(), Message: x.Error.GetMessage()}}
	case *cpv1.StreamEvent_Opaque:
		t := x.Opaque.GetType()
		if strings.HasPrefix(t, "sse.") || strings.HasPrefix(t, "openai.") {
			// Comments, unparsed upstream bytes and OpenAI chunks have no
			// Anthropic event form.
			return "", nil, nil
		}
		return t, x.Opaque.GetJson(), nil
	default:
		return "", nil, fmt.Errorf("anthropic: encode: empty stream event")
	}
	data, err := jsonx.Marshal(v)
	if err != nil {
		return "", nil, fmt.Errorf("anthropic: encode %s: %w", name, err)
	}
	return name, data, nil
}

// deltaUsage is a message_delta's usage. Anthropic always sends the
// output tokens; its current streams also send the cumulative input and
// cache tokens, which are written when known (not all zero), so that a
// client does not take zeros for the input tokens of message_start.
type deltaUsage struct {
	InputTokens              *int64 `json:"input_tokens,omitempty"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens             int64  `json:"output_tokens"`
}

// deltaUsageOf gives u's message_delta usage. With upstream's event as
// template, a zero count upstream did not send stays unsent, so that an
// event written from the model keeps upstream's shape.
func deltaUsageOf(u *cpv1.Usage, template []byte) deltaUsage {
	out := deltaUsage{OutputTokens: u.GetOutputTokens()}
	in, cw, cr := u.GetInputTokens(), u.GetCacheCreationInputTokens(), u.GetCacheReadInputTokens()
	if in == 0 && cw == 0 && cr == 0 {
		return out
	}
	out.InputTokens, out.CacheCreationInputTokens, out.CacheReadInputTokens = &in, &cw, &cr
	if template == nil {
		return out
	}
	var t struct {
		Usage map[string]json.RawMessage `json:"usage"`
	}
	_ = json.Unmarshal(template, &t)
	for key, p := range map[string]**int64{"input_tokens": &out.InputTokens,
		"cache_creation_input_tokens": &out.CacheCreationInputTokens, "cache_read_input_tokens": &out.CacheReadInputTokens} {
		if _, sent := t.Usage[key]; !sent && **p == 0 {
			*p = nil
		}
	}
	return out
}

func deltaToWire(d *cpv1.ContentBlockDelta) any {
	switch x := d.GetDelta().(type) {
	case *cpv1.ContentBlockDelta_Text:
		return map[string]any{"type": "text_delta", "text": x.Text.GetText()}
	case *cpv1.ContentBlockDelta_InputJson:
		return map[string]any{"type": "input_json_delta", "partial_json": x.InputJson.GetPartialJson()}
	case *cpv1.ContentBlockDelta_Thinking:
		return map[string]any{"type": "thinking_delta", "thinking": x.Thinking.GetThinking()}
	case *cpv1.ContentBlockDelta_Signature:
		return map[string]any{"type": "signature_delta", "signature": x.Signature.GetSignature()}
	case *cpv1.ContentBlockDelta_Opaque:
		if len(x.Opaque.GetJson()) > 0 {
			return json.RawMessage(x.Opaque.GetJson())
		}
		return map[string]any{"type": x.Opaque.GetType()}
	}
	return map[string]any{"type": "text_delta", "text": ""}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
