package translate

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
)

// chatChunk is an OpenAI upstream chunk of choice 0 with the given delta
// and finish_reason ("null" for none).
func chatChunk(delta, finish string) string {
	return `data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1761500200,"model":"gpt-4o","choices":[{"index":0,"delta":` +
		delta + `,"logprobs":null,"finish_reason":` + finish + `}]}` + "\n\n"
}

const (
	chatFirst      = `data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1761500200,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	chatUsageChunk = `data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1761500200,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":12,"total_tokens":1212,"prompt_tokens_details":{"cached_tokens":1024}}}` + "\n\n"
	chatDone       = "data: [DONE]\n\n"
)

// clientEvent is one event of a client stream: its name and data.
type clientEvent struct {
	Name string
	Data string
}

func clientEvents(t *testing.T, stream []byte) []clientEvent {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(stream))
	var out []clientEvent
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, clientEvent{string(ev.Name), string(ev.Data)})
	}
}

// jsonAt reads a JSON value at a dotted path of data ("usage.output_tokens").
func jsonAt(t *testing.T, data, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// messageDeltaOf returns the one message_delta's data, and checks that
// message_stop follows it and ends the stream.
func messageDeltaOf(t *testing.T, out []byte) string {
	t.Helper()
	evs := clientEvents(t, out)
	for i, ev := range evs {
		if ev.Name == "message_delta" {
			if i != len(evs)-2 || evs[i+1].Name != "message_stop" {
				t.Errorf("message_stop does not follow message_delta at the end:\n%s", out)
			}
			return ev.Data
		}
	}
	t.Fatalf("no message_delta:\n%s", out)
	return ""
}

// TestChatToAnthropicUsage: the message_delta carries the usage of the
// chunk that follows the finish_reason (input tokens without the cached
// ones), and always carries a usage object, as Anthropic's does.
func TestChatToAnthropicUsage(t *testing.T) {
	text := chatFirst + chatChunk(`{"content":"Hi"}`, "null")
	finish := chatChunk(`{}`, `"stop"`)
	full := map[string]any{"input_tokens": 176.0, "cache_creation_input_tokens": 0.0, "cache_read_input_tokens": 1024.0, "output_tokens": 12.0}
	for _, tt := range []struct {
		name, in string
		want     map[string]any
	}{
		{"usage chunk after the finish", text + finish + chatUsageChunk + chatDone, full},
		{"usage chunk, then upstream ends without [DONE]", text + finish + chatUsageChunk, full},
		{"usage in the finish chunk", text + strings.Replace(finish, `}]}`, `}],"usage":{"prompt_tokens":1200,"completion_tokens":12,"total_tokens":1212,"prompt_tokens_details":{"cached_tokens":1024}}}`, 1) + chatDone, full},
		{"usage in a chunk after the finish", text + finish + strings.Replace(chatUsageChunk, `"choices":[]`, `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":null}]`, 1) + chatDone, full},
		{"no usage chunk", text + finish + chatDone, map[string]any{"output_tokens": 0.0}},
		{"no usage chunk, no [DONE]", text + finish, map[string]any{"output_tokens": 0.0}},
		{"usage without details", text + finish + strings.Replace(chatUsageChunk, `,"prompt_tokens_details":{"cached_tokens":1024}`, "", 1) + chatDone,
			map[string]any{"input_tokens": 1200.0, "cache_creation_input_tokens": 0.0, "cache_read_input_tokens": 0.0, "output_tokens": 12.0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := translateStream(t, NewChatToAnthropicStream(), strings.NewReader(tt.in))
			validateAnthropicStream(t, out)
			md := messageDeltaOf(t, out)
			if got, _ := jsonAt(t, md, "usage").(map[string]any); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("message_delta usage = %v, want %v\n%s", got, tt.want, out)
			}
		})
	}
}

// anthropicStream is an Anthropic upstream stream: a text block, then a
// message_delta with the given delta and usage, then message_stop unless
// stop is false.
func anthropicStream(startUsage, delta, usage string, stop bool) string {
	s := "event: message_start\n" + `data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":` + startUsage + "}}\n\n" +
		"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
		"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}` + "\n\n" +
		"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" + `data: {"type":"message_delta","delta":` + delta + `,"usage":` + usage + "}\n\n"
	if stop {
		s += "event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"
	}
	return s
}

// usageChunkOf returns the usage of the chunk with empty choices, and
// checks that [DONE] follows it and ends the stream.
func usageChunkOf(t *testing.T, out []byte) map[string]any {
	t.Helper()
	evs := clientEvents(t, out)
	for i, ev := range evs {
		if strings.Contains(ev.Data, `"choices":[]`) {
			if i != len(evs)-2 || evs[i+1].Data != "[DONE]" {
				t.Errorf("[DONE] does not follow the usage chunk at the end:\n%s", out)
			}
			u, _ := jsonAt(t, ev.Data, "usage").(map[string]any)
			return u
		}
	}
	t.Fatalf("no usage chunk:\n%s", out)
	return nil
}

// TestAnthropicToChatUsage: prompt_tokens count the cached and the
// cache-creation tokens; cached_tokens are the cache reads; a
// message_delta with the cumulative usage counts the same.
func TestAnthropicToChatUsage(t *testing.T) {
	const start = `{"input_tokens":5,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":1}`
	const delta = `{"stop_reason":"end_turn","stop_sequence":null}`
	want := map[string]any{"prompt_tokens": 135.0, "completion_tokens": 7.0, "total_tokens": 142.0,
		"prompt_tokens_details": map[string]any{"cached_tokens": 100.0}}
	for _, tt := range []struct {
		name, in string
	}{
		{"output tokens in message_delta", anthropicStream(start, delta, `{"output_tokens":7}`, true)},
		{"cumulative usage in message_delta", anthropicStream(start, delta, `{"input_tokens":5,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":7}`, true)},
		{"upstream ends without message_stop", anthropicStream(start, delta, `{"output_tokens":7}`, false)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := translateStream(t, NewAnthropicToChatStream(dialect.Request{IncludeUsage: true}), strings.NewReader(tt.in))
			validateChatStream(t, out)
			if got := usageChunkOf(t, out); !reflect.DeepEqual(got, want) {
				t.Errorf("usage = %v, want %v\n%s", got, want, out)
			}
		})
	}
}

// TestStreamStopReasons: finish reasons and stop reasons map both ways in
// streams, content_filter ⇄ refusal included.
func TestStreamStopReasons(t *testing.T) {
	for _, tt := range []struct{ finish, stop string }{
		{"stop", "end_turn"}, {"length", "max_tokens"}, {"tool_calls", "tool_use"}, {"content_filter", "refusal"},
	} {
		t.Run(tt.finish, func(t *testing.T) {
			body := chatChunk(`{"content":"Hi"}`, "null")
			if tt.finish == "tool_calls" {
				body = chatChunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}`, "null")
			}
			out := translateStream(t, NewChatToAnthropicStream(), strings.NewReader(chatFirst+body+chatChunk(`{}`, `"`+tt.finish+`"`)+chatUsageChunk+chatDone))
			validateAnthropicStream(t, out)
			if got := jsonAt(t, messageDeltaOf(t, out), "delta.stop_reason"); got != tt.stop {
				t.Errorf("OpenAI %s → Anthropic %v, want %s", tt.finish, got, tt.stop)
			}
			if tt.finish == "tool_calls" {
				return // the Anthropic stream above has no tool block
			}
			in := anthropicStream(`{"input_tokens":5,"output_tokens":1}`, `{"stop_reason":"`+tt.stop+`","stop_sequence":null}`, `{"output_tokens":7}`, true)
			chat := translateStream(t, NewAnthropicToChatStream(dialect.Request{IncludeUsage: true}), strings.NewReader(in))
			validateChatStream(t, chat)
			if !bytes.Contains(chat, []byte(`"finish_reason":"`+tt.finish+`"`)) {
				t.Errorf("Anthropic %s → OpenAI: want finish_reason %s\n%s", tt.stop, tt.finish, chat)
			}
		})
	}
}

// TestStreamErrors: an error mid-stream becomes the client format's
// error event, with the same type and code as a complete error.
func TestStreamErrors(t *testing.T) {
	for _, tt := range []struct{ anthropicType, openAIType, code string }{
		{"overloaded_error", "server_error", "overloaded"},
		{"rate_limit_error", "rate_limit_error", "rate_limit_exceeded"},
		{"api_error", "server_error", ""},
		{"invalid_request_error", "invalid_request_error", ""},
	} {
		t.Run(tt.anthropicType, func(t *testing.T) {
			in := "event: message_start\n" + `data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}` + "\n\n" +
				"event: error\n" + `data: {"type":"error","error":{"type":"` + tt.anthropicType + `","message":"oops"}}` + "\n\n"
			chat := translateStream(t, NewAnthropicToChatStream(dialect.Request{}), strings.NewReader(in))
			validateChatStream(t, chat)
			evs := clientEvents(t, chat)
			last := evs[len(evs)-1].Data
			var code any
			if tt.code != "" {
				code = tt.code
			}
			if jsonAt(t, last, "error.type") != tt.openAIType || jsonAt(t, last, "error.code") != code || jsonAt(t, last, "error.message") != "oops" {
				t.Errorf("error chunk %s, want type %s code %q", last, tt.openAIType, tt.code)
			}

			// And back: the OpenAI error chunk gives the Anthropic type.
			back := translateStream(t, NewChatToAnthropicStream(), strings.NewReader(chatFirst+"data: "+last+"\n\n"))
			validateAnthropicStream(t, back)
			bevs := clientEvents(t, back)
			if e := bevs[len(bevs)-1]; e.Name != "error" || jsonAt(t, e.Data, "error.type") != tt.anthropicType {
				t.Errorf("OpenAI %s → Anthropic %s, want %s", last, e.Data, tt.anthropicType)
			}
		})
	}
}

// toolArgs reads the tool_use blocks of an Anthropic stream: name and
// concatenated arguments, in order.
func toolArgs(t *testing.T, out []byte) []string {
	t.Helper()
	var tools []string
	byIndex := map[float64]int{}
	for _, ev := range clientEvents(t, out) {
		switch ev.Name {
		case "content_block_start":
			if jsonAt(t, ev.Data, "content_block.type") == "tool_use" {
				byIndex[jsonAt(t, ev.Data, "index").(float64)] = len(tools)
				tools = append(tools, jsonAt(t, ev.Data, "content_block.name").(string)+" ")
			}
		case "content_block_delta":
			if i, ok := byIndex[jsonAt(t, ev.Data, "index").(float64)]; ok {
				tools[i] += jsonAt(t, ev.Data, "delta.partial_json").(string)
			}
		}
	}
	return tools
}

// TestChatToAnthropicToolChunks: tool calls whose arguments come in many
// chunks, interleaved with each other or with text, reach the Anthropic
// client whole, each in its own block, after the text.
func TestChatToAnthropicToolChunks(t *testing.T) {
	args := func(i int, s string) string {
		b, _ := json.Marshal(s)
		return chatChunk(`{"tool_calls":[{"index":`+strconv.Itoa(i)+`,"function":{"arguments":`+string(b)+`}}]}`, "null")
	}
	start := func(i int, name string) string {
		return chatChunk(`{"tool_calls":[{"index":`+strconv.Itoa(i)+`,"id":"call_`+name+`","type":"function","function":{"name":"`+name+`","arguments":""}}]}`, "null")
	}
	end := chatChunk(`{}`, `"tool_calls"`) + chatUsageChunk + chatDone
	for _, tt := range []struct {
		name, in string
		want     []string
		text     string
	}{
		{"interleaved parallel calls", chatFirst + start(0, "a") + args(0, `{"x"`) + start(1, "b") + args(1, `{"y":`) + args(0, `:1}`) + args(1, `2}`) + end,
			[]string{`a {"x":1}`, `b {"y":2}`}, ""},
		{"arguments after text", chatFirst + start(0, "a") + args(0, `{"x"`) + chatChunk(`{"content":"Done."}`, "null") + args(0, `:1}`) + end,
			[]string{`a {"x":1}`}, "Done."},
		{"many pieces", chatFirst + start(0, "a") + args(0, `{`) + args(0, `"x`) + args(0, `"`) + args(0, `:`) + args(0, `"é🎉"`) + args(0, `}`) + end,
			[]string{`a {"x":"é🎉"}`}, ""},
		{"name in the chunk with text", chatFirst + chatChunk(`{"content":"Let me see.","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"a","arguments":"{}"}}]}`, "null") + end,
			[]string{`a {}`}, "Let me see."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := translateStream(t, NewChatToAnthropicStream(), strings.NewReader(tt.in))
			validateAnthropicStream(t, out)
			if got := toolArgs(t, out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tools %q, want %q\n%s", got, tt.want, out)
			}
			if tt.text != "" && !bytes.Contains(out, []byte(`"text":"`+tt.text+`"`)) {
				t.Errorf("text %q lost:\n%s", tt.text, out)
			}
		})
	}
}

// TestChatToAnthropicRefusal: a streamed refusal (delta.refusal) reaches
// the Anthropic client as text, as a complete refusal does.
func TestChatToAnthropicRefusal(t *testing.T) {
	in := chatFirst + chatChunk(`{"refusal":"I can't"}`, "null") + chatChunk(`{"refusal":" help."}`, "null") +
		chatChunk(`{}`, `"stop"`) + chatUsageChunk + chatDone
	out := translateStream(t, NewChatToAnthropicStream(), strings.NewReader(in))
	validateAnthropicStream(t, out)
	var text string
	for _, ev := range clientEvents(t, out) {
		if ev.Name == "content_block_delta" {
			s, _ := jsonAt(t, ev.Data, "delta.text").(string)
			text += s
		}
	}
	if text != "I can't help." {
		t.Errorf("text %q, want the refusal\n%s", text, out)
	}
}

// TestStreamToolStopWithoutTools: a tool stop reason with no tool call
// left becomes end_turn (stop), as the gateway requires of every stream.
func TestStreamToolStopWithoutTools(t *testing.T) {
	in := chatFirst + chatChunk(`{"content":"Hi"}`, "null") + chatChunk(`{}`, `"tool_calls"`) + chatUsageChunk + chatDone
	out := translateStream(t, NewChatToAnthropicStream(), strings.NewReader(in))
	validateAnthropicStream(t, out)
	if got := jsonAt(t, messageDeltaOf(t, out), "delta.stop_reason"); got != "end_turn" {
		t.Errorf("stop_reason %v, want end_turn", got)
	}
	anth := anthropicStream(`{"input_tokens":5,"output_tokens":1}`, `{"stop_reason":"tool_use","stop_sequence":null}`, `{"output_tokens":7}`, true)
	chat := translateStream(t, NewAnthropicToChatStream(dialect.Request{}), strings.NewReader(anth))
	validateChatStream(t, chat)
	if !bytes.Contains(chat, []byte(`"finish_reason":"stop"`)) {
		t.Errorf("want finish_reason stop:\n%s", chat)
	}
}
