package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestResponsesGoldenStreams(t *testing.T) {
	for name, path := range responsesFiles(t, ".chat.sse") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, path)
			s := NewChatToResponsesStream(testEcho())
			out := translateResponsesStream(t, s, in)
			if !s.Done() {
				t.Error("stream not done after Finish")
			}
			final, _ := validateResponsesEvents(t, out)
			want, errMsg, finished := accumulateChat(t, in)
			switch {
			case errMsg != "":
				if final.Status != "failed" || final.Error == nil || final.Error.Message != errMsg {
					t.Errorf("error chunk: status %q error %+v, want failed with %q", final.Status, final.Error, errMsg)
				}
				if got := outputText(final); got != want.text {
					t.Errorf("failed response holds %q, want the text before the error %q", got, want.text)
				}
			case !finished:
				if final.Status != "failed" || final.Error == nil || !strings.Contains(final.Error.Message, "ended before") {
					t.Errorf("cut stream: status %q error %+v, want failed", final.Status, final.Error)
				}
			default:
				checkResponseCarries(t, final, want)
			}
			golden(t, filepath.Join("responses", name+".events.golden"), streamGolden(out, s.Dropped()))
		})
	}
}

// A streamed answer ends with the Response the same answer, complete,
// translates to: same ids, items, status and usage.
func TestResponsesStreamMatchesComplete(t *testing.T) {
	for name, path := range responsesFiles(t, ".chat.sse") {
		in := readFile(t, path)
		want, errMsg, finished := accumulateChat(t, in)
		if errMsg != "" || !finished {
			continue
		}
		t.Run(name, func(t *testing.T) {
			_, streamed := validateResponsesEvents(t, translateResponsesStream(t, NewChatToResponsesStream(testEcho()), in))
			complete, _, err := ChatResponseToResponses(completionJSON(want), testEcho())
			if err != nil {
				t.Fatal(err)
			}
			a, b := splitOutput(t, streamed), splitOutput(t, complete)
			if a.rest != b.rest {
				t.Errorf("responses differ:\n streamed %s\n complete %s", a.rest, b.rest)
			}
			if len(a.items) != len(b.items) {
				t.Fatalf("streamed %d items, complete %d", len(a.items), len(b.items))
			}
			for id, item := range b.items {
				if a.items[id] != item {
					t.Errorf("item %s:\n streamed %s\n complete %s", id, a.items[id], item)
				}
			}
		})
	}
}

// A chat stream written with CRLF line ends translates as with LF.
func TestResponsesStreamCRLF(t *testing.T) {
	in := readFile(t, "testdata/responses/text_then_tool.chat.sse")
	want := translateResponsesStream(t, NewChatToResponsesStream(testEcho()), in)
	crlf := bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n"))
	if got := translateResponsesStream(t, NewChatToResponsesStream(testEcho()), crlf); !bytes.Equal(got, want) {
		t.Errorf("CRLF stream translated differently:\n%s\nwant\n%s", got, want)
	}
}

func translateResponsesStream(t *testing.T, s *ResponsesStream, in []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	rd := sse.NewReader(bytes.NewReader(in))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Event(&out, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// accumulateChat reads a chat stream as a client does: the text, the
// tool calls by index, the finish reason and usage; the message of an
// error chunk; whether [DONE] came.
func accumulateChat(t *testing.T, in []byte) (w wantResponse, errMsg string, finished bool) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(in))
	byIndex := map[int]int{}
	var text strings.Builder
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) == "[DONE]" {
			finished = true
			continue
		}
		var c struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
			Model   string `json:"model"`
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Content   *string `json:"content"`
					ToolCalls []struct {
						Index    int    `json:"index"`
						ID       string `json:"id"`
						Function struct {
							Name      string `json:"name"`
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *rsChatUsage `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			t.Fatalf("chat chunk: %v", err)
		}
		if c.Error != nil {
			errMsg = c.Error.Message
			break
		}
		if w.id == "" {
			w.id, w.created, w.model = c.ID, c.Created, c.Model
		}
		if c.Usage != nil {
			w.usage, w.hasUsage = c.Usage, true
		}
		for _, ch := range c.Choices {
			if ch.Index != 0 {
				continue
			}
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				i, ok := byIndex[tc.Index]
				if !ok {
					i = len(w.calls)
					byIndex[tc.Index] = i
					w.calls = append(w.calls, rcToolCall{ID: tc.ID, Type: "function"})
					w.calls[i].Function.Name = tc.Function.Name
				}
				w.calls[i].Function.Arguments += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				w.finish = *ch.FinishReason
			}
		}
	}
	w.text = text.String()
	return w, errMsg, finished
}

// completionJSON is the chat.completion of an accumulated stream.
func completionJSON(w wantResponse) []byte {
	msg := map[string]any{"role": "assistant", "content": nil}
	if w.text != "" {
		msg["content"] = w.text
	}
	if len(w.calls) > 0 {
		msg["tool_calls"] = w.calls
	}
	c := map[string]any{"id": w.id, "object": "chat.completion", "created": w.created, "model": w.model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": w.finish}}}
	if w.usage != nil {
		c["usage"] = w.usage
	}
	return marshal(c)
}

// outputText joins the output_text of a Response's message items.
func outputText(r response) string {
	var b strings.Builder
	for _, it := range r.Output {
		for _, p := range it.Content {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// splitResponse is a Response's items by id, and the rest of it.
type splitResponse struct {
	items map[string]string
	rest  string
}

func splitOutput(t *testing.T, raw []byte) splitResponse {
	t.Helper()
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(o["output"], &items); err != nil {
		t.Fatal(err)
	}
	out := splitResponse{items: map[string]string{}}
	for _, it := range items {
		var id struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(it, &id)
		out.items[id.ID] = string(it)
	}
	delete(o, "output")
	out.rest = string(marshal(o))
	return out
}

// streamedItem is an output item as a client accumulates it from events.
type streamedItem struct {
	id, typ    string
	text, args string
	done       bool
}

// responsesEvent is any Responses streaming event, as a client reads it.
type responsesEvent struct {
	Type           string          `json:"type"`
	SequenceNumber *int            `json:"sequence_number"`
	OutputIndex    *int            `json:"output_index"`
	ContentIndex   *int            `json:"content_index"`
	ItemID         string          `json:"item_id"`
	Delta          *string         `json:"delta"`
	Text           *string         `json:"text"`
	Arguments      *string         `json:"arguments"`
	Item           json.RawMessage `json:"item"`
	Part           json.RawMessage `json:"part"`
	Response       json.RawMessage `json:"response"`
	Message        string          `json:"message"`
	Code           string          `json:"code"`
}

// validateResponsesEvents checks a Responses event stream the way the
// SDKs consume it, and returns its final Response (parsed and raw).
func validateResponsesEvents(t *testing.T, out []byte) (response, json.RawMessage) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(out))
	var items []*streamedItem
	var terminal string
	var final json.RawMessage
	sawError := false
	item := func(e responsesEvent, typ string) *streamedItem {
		if e.OutputIndex == nil || *e.OutputIndex < 0 || *e.OutputIndex >= len(items) {
			t.Fatalf("%s: output_index %v of %d items", e.Type, e.OutputIndex, len(items))
		}
		it := items[*e.OutputIndex]
		if it.typ != typ || (e.ItemID != "" && e.ItemID != it.id) || it.done {
			t.Fatalf("%s: item %+v, event item_id %q", e.Type, *it, e.ItemID)
		}
		return it
	}
	for seq := 0; ; seq++ {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Data) == 0 {
			seq-- // a comment
			continue
		}
		if terminal != "" {
			t.Fatalf("event after %s: %s", terminal, ev.Raw)
		}
		var e responsesEvent
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatalf("event data: %v: %s", err, ev.Data)
		}
		if string(ev.Name) != e.Type {
			t.Errorf("event: %q, data type %q", ev.Name, e.Type)
		}
		if e.SequenceNumber == nil || *e.SequenceNumber != seq {
			t.Errorf("%s: sequence_number %v, want %d", e.Type, e.SequenceNumber, seq)
		}
		if (seq == 0) != (e.Type == "response.created") || (seq == 1) != (e.Type == "response.in_progress") {
			t.Fatalf("event %d is %s: response.created and response.in_progress come first", seq, e.Type)
		}
		if sawError && e.Type != "response.failed" {
			t.Fatalf("%s after an error event, want response.failed", e.Type)
		}
		switch e.Type {
		case "response.created", "response.in_progress":
			var r response
			if err := json.Unmarshal(e.Response, &r); err != nil || r.Status != "in_progress" || len(r.Output) != 0 {
				t.Errorf("%s: %s", e.Type, e.Response)
			}
		case "response.output_item.added":
			var it outputItem
			if err := json.Unmarshal(e.Item, &it); err != nil || it.Status != "in_progress" || it.ID == "" {
				t.Fatalf("added item %s", e.Item)
			}
			if e.OutputIndex == nil || *e.OutputIndex != len(items) {
				t.Fatalf("added item at output_index %v, want %d", e.OutputIndex, len(items))
			}
			if it.Type == "message" && (len(it.Content) != 0 || it.Role != "assistant") ||
				it.Type == "function_call" && (it.Arguments != "" || it.CallID == "" || it.Name == "") {
				t.Errorf("added item %s", e.Item)
			}
			items = append(items, &streamedItem{id: it.ID, typ: it.Type})
		case "response.content_part.added":
			item(e, "message")
			if e.ContentIndex == nil || *e.ContentIndex != 0 || !bytes.Contains(e.Part, []byte(`"type":"output_text"`)) {
				t.Errorf("content part added: %s", ev.Data)
			}
		case "response.output_text.delta":
			it := item(e, "message")
			if e.Delta == nil || e.ContentIndex == nil || *e.ContentIndex != 0 {
				t.Fatalf("text delta: %s", ev.Data)
			}
			it.text += *e.Delta
		case "response.output_text.done":
			if it := item(e, "message"); e.Text == nil || *e.Text != it.text {
				t.Errorf("text done %v, deltas made %q", e.Text, it.text)
			}
		case "response.content_part.done":
			var p struct {
				Text string `json:"text"`
			}
			if it := item(e, "message"); json.Unmarshal(e.Part, &p) != nil || p.Text != it.text {
				t.Errorf("part done %s, deltas made %q", e.Part, it.text)
			}
		case "response.function_call_arguments.delta":
			it := item(e, "function_call")
			if e.Delta == nil {
				t.Fatalf("arguments delta: %s", ev.Data)
			}
			it.args += *e.Delta
		case "response.function_call_arguments.done":
			if it := item(e, "function_call"); e.Arguments == nil || *e.Arguments != it.args {
				t.Errorf("arguments done %v, deltas made %q", e.Arguments, it.args)
			}
		case "response.output_item.done":
			it := item(e, items[*e.OutputIndex].typ)
			var got outputItem
			if err := json.Unmarshal(e.Item, &got); err != nil || got.ID != it.id ||
				got.Status != "completed" && got.Status != "incomplete" {
				t.Errorf("item done %s", e.Item)
			}
			if it.typ == "message" && (len(got.Content) != 1 || got.Content[0].Text != it.text) ||
				it.typ == "function_call" && got.Arguments != it.args {
				t.Errorf("item done %s, deltas made %q %q", e.Item, it.text, it.args)
			}
			it.done = true
		case "error":
			if e.Message == "" || e.Code == "" {
				t.Errorf("error event %s", ev.Data)
			}
			sawError = true
		case "response.completed", "response.incomplete", "response.failed":
			terminal, final = e.Type, e.Response
			if e.Type == "response.failed" && !sawError {
				t.Error("response.failed without an error event before it")
			}
		default:
			t.Errorf("unexpected event %s", e.Type)
		}
	}
	if terminal == "" {
		t.Fatal("no terminal event (response.completed, response.incomplete or response.failed)")
	}
	var r response
	if err := json.Unmarshal(final, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != strings.TrimPrefix(terminal, "response.") {
		t.Errorf("%s holds status %q", terminal, r.Status)
	}
	if len(r.Output) != len(items) {
		t.Fatalf("final response holds %d items, events made %d", len(r.Output), len(items))
	}
	for i, it := range items {
		o := r.Output[i]
		if o.ID != it.id || o.Type != it.typ || it.typ == "function_call" && o.Arguments != it.args ||
			it.typ == "message" && (len(o.Content) != 1 || o.Content[0].Text != it.text) {
			t.Errorf("final item %d %+v, events made %+v", i, o, *it)
		}
		if terminal != "response.failed" && !it.done {
			t.Errorf("item %s never done", it.id)
		}
	}
	return r, final
}

// A block that starts with its text or arguments gives them to the
// client as the first delta, so that clients accumulating deltas miss
// nothing.
func TestResponsesStreamBlockStartContent(t *testing.T) {
	s := NewChatToResponsesStream(testEcho())
	var out bytes.Buffer
	for _, ev := range []*cpv1.StreamEvent{
		{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "chatcmpl-x", Model: "m"}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 0,
			Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "Hi"}}}}}},
		{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: 0,
			Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: " there"}}}}},
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 0}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 1,
			Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "call_1", Name: "f", InputJson: []byte(`{"a":`)}}}}}},
		{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: 1,
			Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: `1}`}}}}},
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 1}}},
		{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "tool_use"}}},
		{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}},
	} {
		if err := s.event(&out, ev); err != nil {
			t.Fatal(err)
		}
	}
	final, _ := validateResponsesEvents(t, out.Bytes())
	if len(final.Output) != 2 || outputText(final) != "Hi there" || final.Output[1].Arguments != `{"a":1}` {
		t.Errorf("final output %+v", final.Output)
	}
}
