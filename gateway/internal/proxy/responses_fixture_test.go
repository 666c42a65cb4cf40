package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// What the fake providers answer: text, then a call of get_weather.
const (
	upstreamText = "The weather in Paris is mild."
	upstreamArgs = `{"city":"Paris"}`
)

var (
	chatCompletion = `{"id":"chatcmpl-rsp1","object":"chat.completion","created":1761500300,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"` + upstreamText + `","refusal":null,` +
		`"tool_calls":[{"id":"call_rsp1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
		`"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}`

	chatChunks = []string{
		chunk(`{"role":"assistant","content":""}`, "null"),
		chunk(`{"content":"The weather "}`, "null"),
		chunk(`{"content":"in Paris is mild."}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"id":"call_rsp1","type":"function","function":{"name":"get_weather","arguments":""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, "null"),
		chunk(`{}`, `"tool_calls"`),
		`data: {"id":"chatcmpl-rsp1","object":"chat.completion.chunk","created":1761500300,"model":"gpt-4o-2024-08-06","choices":[],` +
			`"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}` + "\n\n",
		"data: [DONE]\n\n",
	}

	messagesResponse = `{"id":"msg_01Rsp","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
		`{"type":"text","text":"` + upstreamText + `"},{"type":"tool_use","id":"toolu_01Rsp","name":"get_weather","input":{"city":"Paris"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":12}}`

	messagesStream = []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Rsp\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"The weather \"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"in Paris is mild.\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01Rsp\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
)

func chunk(delta, finish string) string {
	return `data: {"id":"chatcmpl-rsp1","object":"chat.completion.chunk","created":1761500300,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + finish + `}]}` + "\n\n"
}

// responsesUpstream is a fake provider answering chat completions (and,
// on /v1/messages, Anthropic messages), whole or streamed, and keeping
// what it received. status, when set, is answered with an error; chunks,
// when set, replace the chat stream.
type responsesUpstream struct {
	mu     sync.Mutex
	paths  []string
	bodies []string
	status int
	chunks []string
}

func (u *responsesUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.paths, u.bodies = append(u.paths, r.URL.Path), append(u.bodies, string(b))
	status, chunks := u.status, u.chunks
	u.mu.Unlock()
	stream := bytes.Contains(b, []byte(`"stream":true`))
	messages := strings.HasSuffix(r.URL.Path, "/messages")
	switch {
	case status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`)
	case stream:
		if chunks == nil {
			chunks = chatChunks
			if messages {
				chunks = messagesStream
			}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			_, _ = io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	case messages:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, messagesResponse)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatCompletion)
	}
}

// last is the path and body of the last request upstream got.
func (u *responsesUpstream) last(t *testing.T) (string, map[string]any) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.bodies) == 0 {
		t.Fatal("upstream got no request")
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(u.bodies[len(u.bodies)-1]), &body); err != nil {
		t.Fatalf("upstream body: %v", err)
	}
	return u.paths[len(u.paths)-1], body
}

func (u *responsesUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.bodies)
}

// responsesRequest is a client's Responses request for model.
func responsesRequest(model string, stream bool) string {
	return `{"model":"` + model + `","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"Weather in Paris?"}]}],` +
		`"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}},{"type":"web_search_preview"}],` +
		`"max_output_tokens":100,"stream":` + boolText(stream) + `}`
}

// postResponses sends body to /v1/responses with headers (an OpenAI
// client's when nil).
func postResponses(t *testing.T, url, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/responses", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if headers == nil {
		headers = map[string]string{"Authorization": "Bearer sk-test"}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
