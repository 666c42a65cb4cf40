package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/routes"
	"luthien.dev/gateway/internal/sse"
	"luthien.dev/gateway/internal/translate"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// clientResponse is a Response as a client reads it.
type clientResponse struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Status string `json:"status"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Instructions string `json:"instructions"`
	Output       []struct {
		Type    string `json:"type"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"output"`
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// checkAnswer checks that a Response carries the providers' answer: the
// text, then the call (with callID), and the usage.
func checkAnswer(t *testing.T, r clientResponse, callID string) {
	t.Helper()
	if r.Object != "response" || r.Status != "completed" || r.Instructions != "Be brief." {
		t.Errorf("response %+v", r)
	}
	if len(r.Output) != 2 || r.Output[0].Type != "message" || len(r.Output[0].Content) != 1 ||
		r.Output[0].Content[0].Type != "output_text" || r.Output[0].Content[0].Text != upstreamText {
		t.Fatalf("output %+v, want the text then a function call", r.Output)
	}
	if c := r.Output[1]; c.Type != "function_call" || c.CallID != callID || c.Name != "get_weather" || c.Arguments != upstreamArgs {
		t.Errorf("function call %+v", c)
	}
	if u := r.Usage; u == nil || u.InputTokens != 30 || u.OutputTokens != 12 || u.TotalTokens != 42 {
		t.Errorf("usage %+v", r.Usage)
	}
}

// readEvents checks a Responses event stream's framing (event names,
// sequence numbers, the first and the terminal events) and returns its
// event types and its final Response.
func readEvents(t *testing.T, body string) ([]string, clientResponse) {
	t.Helper()
	rd := sse.NewReader(strings.NewReader(body))
	var types []string
	var final clientResponse
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Type           string          `json:"type"`
			SequenceNumber *int            `json:"sequence_number"`
			Response       json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatalf("event %q: %v", ev.Raw, err)
		}
		if string(ev.Name) != e.Type || e.SequenceNumber == nil || *e.SequenceNumber != len(types) {
			t.Errorf("event %q: type %q, sequence_number %v, want %d", ev.Name, e.Type, e.SequenceNumber, len(types))
		}
		types = append(types, e.Type)
		if e.Response != nil {
			final = clientResponse{}
			if err := json.Unmarshal(e.Response, &final); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(types) < 3 || types[0] != "response.created" || types[1] != "response.in_progress" {
		t.Fatalf("events %v: response.created and response.in_progress come first", types)
	}
	return types, final
}

var wantEvents = []string{
	"response.created", "response.in_progress",
	"response.output_item.added", "response.content_part.added",
	"response.output_text.delta", "response.output_text.delta", "response.output_text.done",
	"response.content_part.done", "response.output_item.done",
	"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
	"response.function_call_arguments.done", "response.output_item.done",
	"response.completed",
}

// checkChatRequest checks that upstream got the client's request as a
// chat completion request.
func checkChatRequest(t *testing.T, path string, body map[string]any, stream bool) {
	t.Helper()
	if path != "/v1/chat/completions" {
		t.Errorf("upstream got %s, want /v1/chat/completions", path)
	}
	if _, ok := body["input"]; ok {
		t.Errorf("upstream got the Responses body: %v", body)
	}
	want := map[string]any{"model": "gpt-4o", "max_completion_tokens": 100.0,
		"messages": []any{map[string]any{"role": "system", "content": "Be brief."},
			map[string]any{"role": "user", "content": "Weather in Paris?"}},
		"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "get_weather",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}}
	if stream {
		want["stream"] = true
		want["stream_options"] = map[string]any{"include_usage": true}
	}
	got, _ := json.Marshal(body)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(got, wantJSON) {
		t.Errorf("upstream got\n%s\nwant\n%s", got, wantJSON)
	}
}

// Through a policed chat call, with or without the response policies: a
// Response object with the provider's text and call, the call recorded
// in the chat form its policies saw.
func TestResponsesNonStreamed(t *testing.T) {
	for _, inspect := range []bool{false, true} {
		up := &responsesUpstream{}
		g := startGateway(t, Config{}, &passPolicy{inspect: inspect}, up)
		resp, body := postResponses(t, g.URL, responsesRequest("gpt-4o", false), nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("inspect=%v: %d %s %s", inspect, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if n, _ := strconv.Atoi(resp.Header.Get("Content-Length")); n != len(body) {
			t.Errorf("Content-Length %q for %d bytes", resp.Header.Get("Content-Length"), len(body))
		}
		var r clientResponse
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, r, "call_rsp1")
		if r.ID != "resp_rsp1" {
			t.Errorf("id %q, want one made from the chat id", r.ID)
		}
		path, sent := up.last(t)
		checkChatRequest(t, path, sent, false)
		rec := g.recs.next(t)
		if rec.ID == "" || rec.ID != resp.Header.Get("X-Call-ID") {
			t.Errorf("record %q, X-Call-ID %q", rec.ID, resp.Header.Get("X-Call-ID"))
		}
		if rec.Format != cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT || !bytes.Contains(rec.ResponseFinal, []byte(`"object":"chat.completion"`)) {
			t.Errorf("record: format %v, response %s; want the chat form", rec.Format, rec.ResponseFinal)
		}
		// The client's own request is kept too (request.client), with what
		// the edge translation dropped.
		if !bytes.Contains(rec.RequestClient, []byte(`"input"`)) {
			t.Errorf("record: the client's request %s, want the Responses form", rec.RequestClient)
		}
	}
}

// Streamed: Responses events as the chunks come, ending with the whole
// response; upstream asked for a chat stream with usage.
func TestResponsesStreamed(t *testing.T) {
	for _, inspect := range []bool{false, true} {
		up := &responsesUpstream{}
		g := startGateway(t, Config{}, &passPolicy{inspect: inspect}, up)
		resp, body := postResponses(t, g.URL, responsesRequest("gpt-4o", true), nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Call-ID") == "" {
			t.Fatalf("inspect=%v: %d %v %s", inspect, resp.StatusCode, resp.Header, body)
		}
		types, final := readEvents(t, body)
		if strings.Join(types, " ") != strings.Join(wantEvents, " ") {
			t.Errorf("inspect=%v: events\n%v\nwant\n%v", inspect, types, wantEvents)
		}
		checkAnswer(t, final, "call_rsp1")
		if strings.Contains(body, "[DONE]") || strings.Contains(body, "chat.completion.chunk") {
			t.Errorf("chat chunks reached the client:\n%s", body)
		}
		path, sent := up.last(t)
		checkChatRequest(t, path, sent, true)
		if rec := g.recs.next(t); !rec.Stream || rec.Format != cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
			t.Errorf("record: stream %v format %v", rec.Stream, rec.Format)
		}
	}
}

// A model routed to an Anthropic provider: the chat call goes there as
// a Messages request, and its answer reaches the client as a Response.
func TestResponsesRoutedToAnthropic(t *testing.T) {
	anth := &responsesUpstream{}
	as := httptest.NewServer(anth)
	defer as.Close()
	tab, err := routes.Parse([]byte(`
providers:
  claude: {kind: anthropic, base_url: `+as.URL+`, api_key_env: ROUTE_KEY}
routes:
  - {match: "claude-*", provider: claude}
`), func(string) string { return "sk-route" })
	if err != nil {
		t.Fatal(err)
	}
	home := &responsesUpstream{}
	g := startGateway(t, Config{Routes: tab}, &passPolicy{}, home)
	for _, stream := range []bool{false, true} {
		resp, body := postResponses(t, g.URL, responsesRequest("claude-sonnet-4-5", stream), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream=%v: %d %s", stream, resp.StatusCode, body)
		}
		var r clientResponse
		if stream {
			types, final := readEvents(t, body)
			if types[len(types)-1] != "response.completed" {
				t.Errorf("events %v", types)
			}
			r = final
		} else if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, r, "toolu_01Rsp")
		path, sent := anth.last(t)
		if path != "/v1/messages" || sent["system"] != "Be brief." || sent["max_tokens"] != 100.0 {
			t.Errorf("Anthropic provider got %s %v", path, sent)
		}
	}
	if home.count() != 0 {
		t.Errorf("the OpenAI provider got %d requests", home.count())
	}
}

// Requests that need stored state are refused before anything goes
// upstream, saying why.
func TestResponsesRefusesStatefulRequests(t *testing.T) {
	up := &responsesUpstream{}
	g := startGateway(t, Config{}, &passPolicy{}, up)
	for _, tc := range []struct{ body, param, msg string }{
		{`{"model":"gpt-4o","input":"and then?","previous_response_id":"resp_abc"}`, "previous_response_id",
			"previous_response_id is not supported: the gateway is stateless; send the whole conversation in input"},
		{`{"model":"gpt-4o","input":"hi","background":true}`, "background", "background is not supported"},
		{`{"model":"gpt-4o","input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0]", "item_reference is not supported"},
		{`{"model":`, "", "not a valid Responses request"},
	} {
		resp, body := postResponses(t, g.URL, tc.body, nil)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", tc.body, resp.StatusCode, body)
		}
		param := ""
		if e.Error.Param != nil {
			param = *e.Error.Param
		}
		if e.Error.Type != "invalid_request_error" || param != tc.param || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("%s: %s", tc.body, body)
		}
	}
	if up.count() != 0 {
		t.Errorf("upstream got %d refused requests", up.count())
	}
}

// Upstream's errors reach the client as upstream sent them: status,
// OpenAI error body, headers.
func TestResponsesUpstreamError(t *testing.T) {
	up := &responsesUpstream{status: http.StatusTooManyRequests}
	g := startGateway(t, Config{}, &passPolicy{inspect: true}, up)
	for _, stream := range []bool{false, true} {
		resp, body := postResponses(t, g.URL, responsesRequest("gpt-4o", stream), nil)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(body, `{"error":{"message":"slow down"`) ||
			resp.Header.Get("Retry-After") != "7" || resp.Header.Get("X-Call-ID") == "" {
			t.Errorf("stream=%v: %d %v %s", stream, resp.StatusCode, resp.Header, body)
		}
	}
}

// An error chunk in the chat stream ends the events with an error event
// and response.failed holding what came before it.
func TestResponsesStreamErrorMidStream(t *testing.T) {
	up := &responsesUpstream{chunks: []string{
		chatChunks[0], chatChunks[1],
		`data: {"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}` + "\n\n",
	}}
	g := startGateway(t, Config{}, &passPolicy{}, up)
	resp, body := postResponses(t, g.URL, responsesRequest("gpt-4o", true), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	types, final := readEvents(t, body)
	if n := len(types); n < 2 || types[n-2] != "error" || types[n-1] != "response.failed" {
		t.Errorf("events %v, want an error event then response.failed", types)
	}
	if final.Status != "failed" || final.Error == nil || final.Error.Code != "rate_limit_exceeded" || final.Error.Message != "Rate limit reached" {
		t.Errorf("final response %+v", final)
	}
	if len(final.Output) != 1 || len(final.Output[0].Content) != 1 || final.Output[0].Content[0].Text != "The weather " {
		t.Errorf("final output %+v, want the text before the error", final.Output)
	}
}

// The method, the path and the client key are checked as on the chat
// endpoint, in the OpenAI error format, before anything goes upstream.
func TestResponsesMethodPathAuth(t *testing.T) {
	up := &responsesUpstream{}
	g := startGateway(t, Config{ClientAPIKey: "gw-key", OpenAIAPIKey: "sk-provider"}, &passPolicy{}, up)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/responses", nil)
	req.Header.Set("Authorization", "Bearer gw-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(string(b), `{"error":{"message":`) {
		t.Errorf("GET: %d %s", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		key  string
		want int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"gw-key", http.StatusOK}} {
		h := map[string]string{}
		if tc.key != "" {
			h["Authorization"] = "Bearer " + tc.key
		}
		resp, body := postResponses(t, g.URL, responsesRequest("gpt-4o", false), h)
		if resp.StatusCode != tc.want || tc.want != http.StatusOK && !strings.HasPrefix(body, `{"error":{"message":`) {
			t.Errorf("key %q: %d %s", tc.key, resp.StatusCode, body)
		}
	}
	if up.count() != 1 {
		t.Errorf("upstream got %d requests, want the authenticated one", up.count())
	}
	req, _ = http.NewRequest(http.MethodPost, g.URL+"/v1/responses/resp_1", strings.NewReader(responsesRequest("gpt-4o", false)))
	req.Header.Set("Authorization", "Bearer gw-key")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || up.count() != 1 {
		t.Errorf("/v1/responses/resp_1: %d, upstream got %d requests", resp.StatusCode, up.count())
	}
}

// The chat handler's writes may split and join SSE events anyhow: the
// client gets the same events.
func TestResponsesWriterFraming(t *testing.T) {
	stream := []byte(strings.Join(chatChunks, ""))
	run := func(writes [][]byte) string {
		rec := httptest.NewRecorder()
		rw := &responsesWriter{w: rec, header: http.Header{}, r: httptest.NewRequest(http.MethodPost, "/v1/responses", nil),
			echo: translate.NewResponsesEcho([]byte(responsesRequest("gpt-4o", true))),
			p:    &Proxy{log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
		rw.header.Set("Content-Type", "text/event-stream")
		rw.header.Set("X-Call-ID", "c1")
		for _, w := range writes {
			if _, err := rw.Write(w); err != nil {
				t.Fatal(err)
			}
		}
		rw.finish()
		if rec.Header().Get("X-Call-ID") != "c1" {
			t.Errorf("headers %v", rec.Header())
		}
		return rec.Body.String()
	}
	whole := run([][]byte{stream})
	if types, final := readEvents(t, whole); strings.Join(types, " ") != strings.Join(wantEvents, " ") {
		t.Fatalf("events %v", types)
	} else {
		checkAnswer(t, final, "call_rsp1")
	}
	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	crlf := bytes.ReplaceAll(stream, []byte("\n"), []byte("\r\n"))
	for name, writes := range map[string][][]byte{
		"byte by byte":       bytewise,
		"CRLF":               {crlf[:100], crlf[100:]},
		"no last blank line": {bytes.TrimSuffix(stream, []byte("\n\n"))},
	} {
		if got := run(writes); got != whole {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, whole)
		}
	}
}

// What the Responses translation cannot carry is in the call's record.
func TestResponsesDroppedRecorded(t *testing.T) {
	g := startGateway(t, Config{}, &passPolicy{}, &responsesUpstream{})
	body := strings.Replace(responsesRequest("gpt-4o", false), `{`, `{"metadata":{"team":"a"},`, 1)
	if resp, b := postResponses(t, g.URL, body, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	rec := g.recs.next(t)
	if !strings.Contains(strings.Join(rec.Dropped, "|"), "metadata") || !bytes.Contains(rec.RequestClient, []byte(`"metadata"`)) {
		t.Errorf("record: dropped %q, client request %s", rec.Dropped, rec.RequestClient)
	}
}
