package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// The call's stream is open, its start sent, before upstream answers. A
// stream the upstream does not send (an error) ends the call, with
// upstream's status in its end.
func TestCallOpensBeforeUpstreamAnswers(t *testing.T) {
	pol := &passPolicy{inspect: true, started: make(chan string, 4), ends: make(chan *cpv1.CallEnd, 4)}

	const stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-pol.started: // the policy call is already open
		case <-time.After(5 * time.Second):
			t.Error("upstream answered before the stream policy call was opened")
		}
		if r.Header.Get("X-Fail") != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	}))
	defer upstream.Close()
	g := startGateway(t, Config{AnthropicBaseURL: upstream.URL}, pol, http.NotFoundHandler())

	for _, fail := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages",
			strings.NewReader(`{"model":"x","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("anthropic-version", "2023-06-01")
		if fail {
			req.Header.Set("X-Fail", "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case !fail && (resp.StatusCode != http.StatusOK || string(body) != stream):
			t.Errorf("stream: %d %q, want upstream's bytes", resp.StatusCode, body)
		case fail && (resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "slow down")):
			t.Errorf("upstream error: %d %s, want upstream's 429", resp.StatusCode, body)
		}
		select {
		case end := <-pol.ends:
			if want := int32(resp.StatusCode); end.GetHttpStatus() != want {
				t.Errorf("end says upstream answered %d, want %d", end.GetHttpStatus(), want)
			}
		case <-time.After(5 * time.Second):
			t.Error("the call never ended")
		}
	}
}
