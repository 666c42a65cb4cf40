package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/openai"
)

// responsesEchoRequest is the request the golden responses and streams
// answer: its echoes show in every Response.
const responsesEchoRequest = `{"model":"gpt-4o","input":"hi","instructions":"Be brief.","temperature":0.2,` +
	`"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}},` +
	`{"type":"web_search_preview"}],"metadata":{"trace":"t-1"}}`

func testEcho() ResponsesEcho {
	e := NewResponsesEcho([]byte(responsesEchoRequest))
	e.ID = "call-0001"
	return e
}

// responsesFiles lists testdata/responses files ending in suffix, by case
// name.
func responsesFiles(t *testing.T, suffix string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "responses", "*"+suffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/responses/*%s: %v", suffix, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		out[strings.TrimSuffix(filepath.Base(p), suffix)] = p
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResponsesGoldenRequests(t *testing.T) {
	for name, path := range responsesFiles(t, ".request.json") {
		t.Run(name, func(t *testing.T) {
			out, dropped, err := ResponsesToChat(readFile(t, path))
			if err != nil {
				t.Fatal(err)
			}
			// A valid chat request, which the chat⇄messages translation
			// also takes (an Anthropic provider can serve it).
			if _, err := (openai.Dialect{}).ParseRequest(out); err != nil {
				t.Errorf("not a valid chat request: %v\n%s", err, out)
			}
			if _, _, err := ChatToMessages(out); err != nil {
				t.Errorf("chat request does not translate to Messages: %v", err)
			}
			golden(t, filepath.Join("responses", name+".request.golden"), render(t, out, dropped))
		})
	}
}

func TestResponsesToChatRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, param, msg string
	}{
		{"previous response", `{"model":"m","input":"hi","previous_response_id":"resp_123"}`, "previous_response_id",
			"previous_response_id is not supported: the gateway is stateless; send the whole conversation in input"},
		{"background", `{"model":"m","input":"hi","background":true}`, "background", errBackground},
		{"conversation", `{"model":"m","input":"hi","conversation":"conv_1"}`, "conversation", errConversation},
		{"stored prompt", `{"model":"m","prompt":{"id":"pmpt_1"},"input":"hi"}`, "prompt", errPrompt},
		{"item reference", `{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0]", errItemReference},
		{"no input", `{"model":"m"}`, "input", "missing required parameter: 'input'"},
		{"nothing readable", `{"model":"m","input":[{"type":"reasoning","id":"rs_1"}]}`, "input", "input holds nothing the model can read"},
		{"input not a list", `{"model":"m","input":{"role":"user"}}`, "input", "input must be a string or a list of items"},
		{"instructions not a string", `{"model":"m","input":"hi","instructions":["x"]}`, "instructions", "instructions must be a string"},
		{"not JSON", `{"model":`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := ResponsesToChat([]byte(tc.body))
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("got %s, %v; want a *RequestError", out, err)
			}
			if re.Param != tc.param || tc.msg != "" && re.Message != tc.msg {
				t.Errorf("got param %q message %q; want %q %q", re.Param, re.Message, tc.param, tc.msg)
			}
		})
	}
	// The same fields, unset or off, are accepted.
	for _, body := range []string{
		`{"model":"m","input":"hi","previous_response_id":null,"background":false,"conversation":null}`,
		`{"model":"m","input":"hi","previous_response_id":""}`,
	} {
		if _, _, err := ResponsesToChat([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestResponsesToChatStreamAsksForUsage(t *testing.T) {
	for _, stream := range []bool{false, true} {
		out, _, err := ResponsesToChat([]byte(`{"model":"m","input":"hi","stream":` + boolJSON(stream) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		req, err := (openai.Dialect{}).ParseRequest(out)
		if err != nil {
			t.Fatal(err)
		}
		if req.Stream != stream || req.IncludeUsage != stream {
			t.Errorf("stream %v: chat request streams %v with usage %v: %s", stream, req.Stream, req.IncludeUsage, out)
		}
	}
}

func boolJSON(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestResponsesGoldenResponses(t *testing.T) {
	for name, path := range responsesFiles(t, ".chat_response.json") {
		t.Run(name, func(t *testing.T) {
			chat := readFile(t, path)
			out, dropped, err := ChatResponseToResponses(chat, testEcho())
			if err != nil {
				t.Fatal(err)
			}
			checkResponseCarries(t, parseResponse(t, out), completionOf(t, chat))
			golden(t, filepath.Join("responses", name+".response.golden"), render(t, out, dropped))
		})
	}
}

func TestChatResponseToResponsesRejects(t *testing.T) {
	for _, body := range []string{`not json`, `{"id":"x","choices":[]}`} {
		if out, _, err := ChatResponseToResponses([]byte(body), testEcho()); err == nil {
			t.Errorf("%s: translated to %s, want an error", body, out)
		}
	}
}

// wantResponse is what a Response must carry of a chat completion.
type wantResponse struct {
	text     string // the message items' output_text, joined
	refusal  string
	calls    []rcToolCall
	finish   string
	usage    *rsChatUsage
	id       string
	model    string
	created  int64
	hasUsage bool
}

// completionOf reads what a complete chat completion says.
func completionOf(t *testing.T, chat []byte) wantResponse {
	t.Helper()
	var c rsChatCompletion
	if err := json.Unmarshal(chat, &c); err != nil {
		t.Fatal(err)
	}
	w := wantResponse{id: c.ID, model: c.Model, created: c.Created, usage: c.Usage, hasUsage: c.Usage != nil}
	m := c.Choices[0].Message
	if m.Content != nil {
		w.text = *m.Content
	}
	if m.Refusal != nil {
		w.refusal = *m.Refusal
	}
	w.calls = m.ToolCalls
	if f := c.Choices[0].FinishReason; f != nil {
		w.finish = *f
	}
	return w
}

// response is a Response as a client reads it.
type response struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	CreatedAt         int64  `json:"created_at"`
	Status            string `json:"status"`
	Model             string `json:"model"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Output []outputItem `json:"output"`
	Usage  *struct {
		InputTokens        int64 `json:"input_tokens"`
		OutputTokens       int64 `json:"output_tokens"`
		TotalTokens        int64 `json:"total_tokens"`
		InputTokensDetails struct {
			CachedTokens *int64 `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokensDetails struct {
			ReasoningTokens *int64 `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
	} `json:"usage"`
	Instructions      *string         `json:"instructions"`
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
}

type outputItem struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Role    string `json:"role"`
	Content []struct {
		Type        string          `json:"type"`
		Text        string          `json:"text"`
		Refusal     string          `json:"refusal"`
		Annotations json.RawMessage `json:"annotations"`
	} `json:"content"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func parseResponse(t *testing.T, b []byte) response {
	t.Helper()
	var r response
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("not a Response: %v\n%s", err, b)
	}
	return r
}

// checkResponseCarries checks a Response against the chat answer it was
// made from.
func checkResponseCarries(t *testing.T, r response, w wantResponse) {
	t.Helper()
	if r.Object != "response" || !strings.HasPrefix(r.ID, "resp_") || r.Model != w.model {
		t.Errorf("envelope: object %q id %q model %q (want model %q)", r.Object, r.ID, r.Model, w.model)
	}
	if w.id != "" && r.ID != "resp_"+strings.TrimPrefix(w.id, "chatcmpl-") {
		t.Errorf("id %q is not made from the chat id %q", r.ID, w.id)
	}
	if w.created != 0 && r.CreatedAt != w.created {
		t.Errorf("created_at %d, want %d", r.CreatedAt, w.created)
	}
	wantStatus, wantReason := "completed", ""
	switch w.finish {
	case "length":
		wantStatus, wantReason = "incomplete", "max_output_tokens"
	case "content_filter":
		wantStatus, wantReason = "incomplete", "content_filter"
	}
	if r.Status != wantStatus {
		t.Errorf("status %q, want %q for finish_reason %q", r.Status, wantStatus, w.finish)
	}
	gotReason := ""
	if r.IncompleteDetails != nil {
		gotReason = r.IncompleteDetails.Reason
	}
	if gotReason != wantReason {
		t.Errorf("incomplete_details.reason %q, want %q", gotReason, wantReason)
	}
	var text, refusal strings.Builder
	var calls []outputItem
	ids := map[string]bool{}
	for _, it := range r.Output {
		if ids[it.ID] {
			t.Errorf("item id %q twice", it.ID)
		}
		ids[it.ID] = true
		switch it.Type {
		case "message":
			if it.Role != "assistant" || !strings.HasPrefix(it.ID, "msg_") {
				t.Errorf("message item %+v", it)
			}
			for _, p := range it.Content {
				switch p.Type {
				case "output_text":
					text.WriteString(p.Text)
					if string(p.Annotations) != "[]" {
						t.Errorf("output_text annotations %s, want []", p.Annotations)
					}
				case "refusal":
					refusal.WriteString(p.Refusal)
				default:
					t.Errorf("content part type %q", p.Type)
				}
			}
		case "function_call":
			if !strings.HasPrefix(it.ID, "fc_") || it.Status == "in_progress" {
				t.Errorf("function_call item %+v", it)
			}
			calls = append(calls, it)
		default:
			t.Errorf("output item type %q", it.Type)
		}
	}
	if text.String() != w.text || refusal.String() != w.refusal {
		t.Errorf("text %q refusal %q, want %q %q", text.String(), refusal.String(), w.text, w.refusal)
	}
	if len(calls) != len(w.calls) {
		t.Fatalf("%d function calls, want %d", len(calls), len(w.calls))
	}
	for i, c := range calls {
		tc := w.calls[i]
		if c.CallID != tc.ID || c.Name != tc.Function.Name || c.Arguments != tc.Function.Arguments {
			t.Errorf("function call %d: %s %s %s, want %s %s %s", i, c.CallID, c.Name, c.Arguments,
				tc.ID, tc.Function.Name, tc.Function.Arguments)
		}
	}
	if !w.hasUsage {
		return
	}
	if r.Usage == nil {
		t.Fatal("no usage")
	}
	u := w.usage
	if r.Usage.InputTokens != u.PromptTokens || r.Usage.OutputTokens != u.CompletionTokens ||
		r.Usage.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v, want from %+v", *r.Usage, *u)
	}
	var cached, reasoning int64
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	if u.CompletionTokensDetails != nil {
		reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	if c := r.Usage.InputTokensDetails.CachedTokens; c == nil || *c != cached {
		t.Errorf("cached_tokens %v, want %d", c, cached)
	}
	if rt := r.Usage.OutputTokensDetails.ReasoningTokens; rt == nil || *rt != reasoning {
		t.Errorf("reasoning_tokens %v, want %d", rt, reasoning)
	}
}

func TestResponsesEcho(t *testing.T) {
	out, _, err := ChatResponseToResponses(readFile(t, "testdata/responses/text.chat_response.json"), testEcho())
	if err != nil {
		t.Fatal(err)
	}
	r := parseResponse(t, out)
	if r.Instructions == nil || *r.Instructions != "Be brief." {
		t.Errorf("instructions %v", r.Instructions)
	}
	var tools []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(r.Tools, &tools); err != nil || len(tools) != 1 || tools[0].Name != "get_weather" {
		t.Errorf("tools %s, want the function tool alone", r.Tools)
	}
	if string(r.ToolChoice) != `"auto"` || r.ParallelToolCalls == nil || !*r.ParallelToolCalls {
		t.Errorf("defaults: tool_choice %s parallel_tool_calls %v", r.ToolChoice, r.ParallelToolCalls)
	}
	// Without a request, the echoes are the API's defaults.
	out, _, err = ChatResponseToResponses(readFile(t, "testdata/responses/text.chat_response.json"), NewResponsesEcho(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r := parseResponse(t, out); r.Instructions != nil || string(r.Tools) != "[]" {
		t.Errorf("empty echo: instructions %v tools %s", r.Instructions, r.Tools)
	}
}

// A conversation of messages and function calls keeps its texts in
// order, and every tool result follows the assistant turn that called
// it, whatever the mix of items.
func TestResponsesToChatConversationProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for n := range 300 {
		var items []any
		var texts []string
		calls := 0
		for i := range 1 + rng.IntN(8) {
			switch rng.IntN(4) {
			case 0, 1:
				role := []string{"user", "assistant", "developer"}[rng.IntN(3)]
				text := fmt.Sprintf("text %d.%d", n, i)
				texts = append(texts, text)
				if rng.IntN(2) == 0 {
					items = append(items, map[string]any{"role": role, "content": text})
				} else {
					part := "input_text"
					if role == "assistant" {
						part = "output_text"
					}
					items = append(items, map[string]any{"type": "message", "role": role,
						"content": []any{map[string]any{"type": part, "text": text}}})
				}
			default:
				for range 1 + rng.IntN(2) {
					id := fmt.Sprintf("call_%d_%d", n, calls)
					calls++
					items = append(items, map[string]any{"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"})
					items = append(items, map[string]any{"type": "function_call_output", "call_id": id, "output": "ok"})
				}
			}
		}
		body := marshal(map[string]any{"model": "m", "input": items})
		out, _, err := ResponsesToChat(body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var chat struct {
			Messages []struct {
				Role       string          `json:"role"`
				Content    json.RawMessage `json:"content"`
				ToolCalls  []rcToolCall    `json:"tool_calls"`
				ToolCallID string          `json:"tool_call_id"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(out, &chat); err != nil {
			t.Fatal(err)
		}
		var gotTexts []string
		called := map[string]bool{}
		gotCalls := 0
		for _, m := range chat.Messages {
			var s string
			if m.Role != "tool" && json.Unmarshal(m.Content, &s) == nil {
				gotTexts = append(gotTexts, s)
			}
			for _, tc := range m.ToolCalls {
				if m.Role != "assistant" {
					t.Fatalf("tool calls on a %s message: %s", m.Role, out)
				}
				called[tc.ID] = true
				gotCalls++
			}
			if m.Role == "tool" && !called[m.ToolCallID] {
				t.Fatalf("tool result %s before its call: %s", m.ToolCallID, out)
			}
		}
		if strings.Join(gotTexts, "|") != strings.Join(texts, "|") || gotCalls != calls {
			t.Fatalf("texts %q calls %d, want %q %d\n%s\n%s", gotTexts, gotCalls, texts, calls, body, out)
		}
	}
}
