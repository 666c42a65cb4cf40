package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
)

// judgeModel is the model name policies use for their judge; the fake
// upstream tells judge requests apart by it.
const judgeModel = "judge-model"

// clientFormats are the two client APIs.
var clientFormats = []string{"anthropic", "openai"}

// outcome is a response reduced to what policy tests compare, the same
// for both client formats and for streams and whole responses.
type outcome struct {
	status int
	text   string   // all text, concatenated
	tools  []string // "name args", in order
	stop   string   // Anthropic vocabulary
	usage  bool     // output usage reported
	raw    string
	callID string
}

// ask sends one request in format (streamed or not) with sc queued
// upstream, validates the response and reduces it.
func ask(t *testing.T, e *env, format string, stream bool, sc fakeupstream.Scenario) outcome {
	t.Helper()
	e.up.Enqueue(sc)
	return send(t, e, format, stream)
}

// send sends one request without queuing a scenario.
func send(t *testing.T, e *env, format string, stream bool) outcome {
	t.Helper()
	var resp *http.Response
	var body []byte
	if format == "anthropic" {
		resp, body = e.do(t, http.MethodPost, "/v1/messages", anthropicBody(stream, ""), anthropicHeaders)
	} else {
		resp, body = e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(stream, `,"stream_options":{"include_usage":true}`), openaiHeaders)
	}
	return reduce(t, format, stream, resp, body)
}

// reduce validates a response in format (streamed or not) and reduces it
// to an outcome.
func reduce(t *testing.T, format string, stream bool, resp *http.Response, body []byte) outcome {
	t.Helper()
	o := outcome{status: resp.StatusCode, raw: string(body), callID: resp.Header.Get("X-Call-ID")}
	if resp.StatusCode != http.StatusOK {
		return o
	}
	switch {
	case format == "anthropic" && stream:
		evs := parseSSE(t, body)
		validateAnthropic(t, evs)
		anthropicStreamOutcome(t, evs, &o)
	case format == "anthropic":
		anthropicOutcome(t, body, &o)
	case stream:
		evs := parseSSE(t, body)
		validateOpenAI(t, evs)
		openaiStreamOutcome(t, evs, &o)
	default:
		openaiOutcome(t, body, &o)
	}
	return o
}

func anthropicStreamOutcome(t *testing.T, evs []sseEvent, o *outcome) {
	t.Helper()
	var args strings.Builder
	tool := ""
	for _, ev := range evs {
		var m struct {
			ContentBlock struct{ Type, Name string } `json:"content_block"`
			Delta        struct {
				Text        string
				PartialJSON string `json:"partial_json"`
				StopReason  string `json:"stop_reason"`
			}
			Usage *struct {
				OutputTokens *int `json:"output_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatalf("%s: %v", ev.name, err)
		}
		switch ev.name {
		case "content_block_start":
			tool = ""
			args.Reset()
			if m.ContentBlock.Type == "tool_use" {
				tool = m.ContentBlock.Name
			}
		case "content_block_delta":
			o.text += m.Delta.Text
			args.WriteString(m.Delta.PartialJSON)
		case "content_block_stop":
			if tool != "" {
				o.tools = append(o.tools, tool+" "+args.String())
			}
		case "message_delta":
			o.stop = m.Delta.StopReason
			o.usage = m.Usage != nil && m.Usage.OutputTokens != nil
		}
	}
}

func anthropicOutcome(t *testing.T, body []byte, o *outcome) {
	t.Helper()
	var m struct {
		Content []struct {
			Type, Text, Name string
			Input            json.RawMessage
		}
		StopReason string `json:"stop_reason"`
		Usage      *struct {
			OutputTokens *int `json:"output_tokens"`
		}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	seenTool := false
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			if seenTool {
				t.Errorf("text after a tool_use block: %s", body)
			}
			o.text += b.Text
		case "tool_use":
			seenTool = true
			o.tools = append(o.tools, b.Name+" "+string(b.Input))
		}
	}
	o.stop = m.StopReason
	o.usage = m.Usage != nil && m.Usage.OutputTokens != nil
}

// openaiStreamChunk is the part of a chunk the outcome needs.
type openaiStreamChunk struct {
	Choices []struct {
		Delta struct {
			Content   *string
			ToolCalls []struct {
				Index    int
				Function struct{ Name, Arguments string }
			} `json:"tool_calls"`
		}
		FinishReason *string `json:"finish_reason"`
	}
	Usage *struct {
		CompletionTokens *int `json:"completion_tokens"`
	}
}

func openaiStreamOutcome(t *testing.T, evs []sseEvent, o *outcome) {
	t.Helper()
	names := map[int]string{}
	args := map[int]*strings.Builder{}
	order := []int{}
	seenTool := false
	for _, ev := range evs {
		if ev.data == "[DONE]" {
			continue
		}
		var c openaiStreamChunk
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("chunk: %v: %s", err, ev.data)
		}
		if c.Usage != nil && c.Usage.CompletionTokens != nil {
			o.usage = true
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				if seenTool {
					t.Errorf("content after a tool call: %s", ev.data)
				}
				o.text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				seenTool = true
				if _, ok := args[tc.Index]; !ok {
					args[tc.Index] = &strings.Builder{}
					order = append(order, tc.Index)
				}
				if tc.Function.Name != "" {
					names[tc.Index] = tc.Function.Name
				}
				args[tc.Index].WriteString(tc.Function.Arguments)
			}
			if ch.FinishReason != nil {
				o.stop = anthropicStop(*ch.FinishReason)
			}
		}
	}
	for i, idx := range order {
		if idx != i {
			t.Errorf("tool call indices %v, want 0, 1, ...", order)
			break
		}
	}
	for _, idx := range order {
		o.tools = append(o.tools, names[idx]+" "+args[idx].String())
	}
}

func openaiOutcome(t *testing.T, body []byte, o *outcome) {
	t.Helper()
	var c struct {
		Choices []struct {
			Message struct {
				Content   *string
				ToolCalls []struct {
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			}
			FinishReason string `json:"finish_reason"`
		}
		Usage *struct {
			CompletionTokens *int `json:"completion_tokens"`
		}
	}
	if err := json.Unmarshal(body, &c); err != nil || len(c.Choices) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	ch := c.Choices[0]
	if ch.Message.Content != nil {
		o.text = *ch.Message.Content
	}
	for _, tc := range ch.Message.ToolCalls {
		o.tools = append(o.tools, tc.Function.Name+" "+tc.Function.Arguments)
	}
	o.stop = anthropicStop(ch.FinishReason)
	o.usage = c.Usage != nil && c.Usage.CompletionTokens != nil
}

// anthropicStop maps an OpenAI finish_reason to the Anthropic vocabulary.
func anthropicStop(finish string) string {
	switch finish {
	case "stop":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "tool_calls":
		return "tool_use"
	}
	return finish
}

// forEachCall runs f for each client format, streamed and not.
func forEachCall(t *testing.T, f func(t *testing.T, format string, stream bool)) {
	t.Helper()
	for _, format := range clientFormats {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s stream=%t", format, stream), func(t *testing.T) { f(t, format, stream) })
		}
	}
}

// judge plays the judge on e's upstream: answer maps a judge request's
// body to the judge's text (or an error status).
func judge(e *env, answer func(body string) fakeupstream.Scenario) {
	e.up.SetResponder(func(r fakeupstream.Request) fakeupstream.Scenario {
		if m := r.JSON(); m != nil && m["model"] == judgeModel {
			return answer(string(r.Body))
		}
		return fakeupstream.Scenario{Status: 500, ErrorBody: `{"error":"unexpected request: no scenario queued"}`}
	})
}

// judgeConfig configures a judge policy against e's upstream.
func judgeConfig(e *env, format string, extra map[string]any) map[string]any {
	base := e.up.OpenAIBaseURL()
	if format == "anthropic" {
		base = e.up.AnthropicBaseURL()
	}
	cfg := map[string]any{"model": judgeModel, "api_base": base, "api_format": format, "api_key": "sk-judge", "retry_delay": "10ms", "timeout": "5s"}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}
