package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
)

// parityCase is one behaviour the earlier system's policy tests assert,
// run through the gateway in both client formats, streamed and not.
type parityCase struct {
	name string
	// mirrors names the earlier test: its path in the luthien-proxy
	// repository and the test function, "path::function".
	mirrors string

	class  string
	config map[string]any
	// judge, when set, points the policy's judge at the fake upstream (or
	// at nothing) and scripts its answers.
	judge *judgeScript

	// request holds, per client format, the request's members besides
	// model, stream and max_tokens (JSON text without the braces); a
	// format without an entry sends one user message "hi".
	request map[string]string
	// upstream is what the fake provider answers the client's request.
	upstream fakeupstream.Scenario

	// wantText is the client's text, all blocks concatenated; with
	// wantTextHas it is not compared and each of those must occur in it
	// instead.
	wantText    string
	wantTextHas []string
	wantTools   []string // "name arguments", in order
	wantStop    string   // Anthropic vocabulary
	// wantSent holds, per client format, members (a JSON object's text)
	// the upstream must have received in the request's body, compared as
	// JSON values.
	wantSent map[string]string
}

// Where a judge is.
const (
	judgeOpenAI    = "openai"    // the fake upstream, Chat Completions
	judgeAnthropic = "anthropic" // the fake upstream, Messages
	judgeDown      = "down"      // nothing listens there
)

// judgeScript places and plays a case's judge.
type judgeScript struct {
	at string
	// answer maps a judge request's body to the judge's answer; nil with
	// judgeDown.
	answer func(body string) fakeupstream.Scenario
}

// judgeAnswers answers every judge call with text.
func judgeAnswers(text string) func(string) fakeupstream.Scenario {
	return func(string) fakeupstream.Scenario { return fakeupstream.Scenario{Text: text} }
}

// judgeAnswersIf answers with then when the judged content contains needle,
// else with otherwise.
func judgeAnswersIf(needle, then, otherwise string) func(string) fakeupstream.Scenario {
	return func(body string) fakeupstream.Scenario {
		if strings.Contains(body, needle) {
			return fakeupstream.Scenario{Text: then}
		}
		return fakeupstream.Scenario{Text: otherwise}
	}
}

// bothFormats gives both client formats the same value.
func bothFormats(v string) map[string]string {
	return map[string]string{"anthropic": v, "openai": v}
}

// toolUse is one tool call of a scenario.
func toolUse(name, args string) fakeupstream.ToolCall {
	return fakeupstream.ToolCall{Name: name, Arguments: args}
}

// policyConfig is the case's configuration, with the judge's endpoint and
// key when it has a judge.
func (c parityCase) policyConfig(e *env) map[string]any {
	if c.judge == nil {
		return c.config
	}
	if c.judge.at != judgeDown {
		return judgeConfig(e, c.judge.at, c.config)
	}
	cfg := map[string]any{"model": judgeModel, "api_base": "http://127.0.0.1:1/v1", "api_format": "openai", "api_key": "sk-judge", "max_retries": 1, "retry_delay": "10ms", "timeout": "5s"}
	for k, v := range c.config {
		cfg[k] = v
	}
	return cfg
}

// responder answers judge calls from the script and every other call
// with the case's upstream scenario, so that no queue can fall out of
// step when a call fails.
func (c parityCase) responder() func(fakeupstream.Request) fakeupstream.Scenario {
	return func(r fakeupstream.Request) fakeupstream.Scenario {
		if m := r.JSON(); m != nil && m["model"] == judgeModel {
			if c.judge == nil || c.judge.answer == nil {
				return fakeupstream.Scenario{Status: 500, ErrorBody: `{"error":"no judge scripted"}`}
			}
			return c.judge.answer(string(r.Body))
		}
		return c.upstream
	}
}

// runParity runs every case against e, in both client formats, streamed
// and not.
func runParity(t *testing.T, e *env, cases []parityCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("mirrors %s", c.mirrors)
			e.up.SetResponder(c.responder())
			e.setPolicy(t, c.class, c.policyConfig(e))
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				got := sendParity(t, e, format, stream, c.request[format])
				c.check(t, got)
				if want, ok := c.wantSent[format]; ok {
					checkUpstreamReceived(t, e, format, want)
				}
			})
		})
	}
}

// sendParity sends one request whose members besides model, stream and
// max_tokens are members (one user message "hi" when empty), validates
// the response and reduces it.
func sendParity(t *testing.T, e *env, format string, stream bool, members string) outcome {
	t.Helper()
	if members == "" {
		members = `"messages":[{"role":"user","content":"hi"}]`
	}
	var resp *http.Response
	var body []byte
	if format == "anthropic" {
		resp, body = e.do(t, http.MethodPost, "/v1/messages", fmt.Sprintf(`{"model":"claude-fake","max_tokens":256,"stream":%t,%s}`, stream, members), anthropicHeaders)
	} else {
		resp, body = e.do(t, http.MethodPost, "/v1/chat/completions", fmt.Sprintf(`{"model":"gpt-fake","stream":%t,"stream_options":{"include_usage":true},%s}`, stream, members), openaiHeaders)
	}
	return reduce(t, format, stream, resp, body)
}

// check compares what the client got with the case's expectations.
func (c parityCase) check(t *testing.T, got outcome) {
	t.Helper()
	if got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.raw)
	}
	textOK := got.text == c.wantText
	if len(c.wantTextHas) > 0 {
		textOK = true
		for _, s := range c.wantTextHas {
			textOK = textOK && strings.Contains(got.text, s)
		}
	}
	if !textOK || !slices.Equal(got.tools, c.wantTools) || got.stop != c.wantStop || !got.usage {
		wantText := fmt.Sprintf("%q", c.wantText)
		if len(c.wantTextHas) > 0 {
			wantText = fmt.Sprintf("containing %q", c.wantTextHas)
		}
		t.Errorf("got text %q tools %q stop %q usage %v\nwant text %s tools %q stop %q usage true\nbody: %s",
			got.text, got.tools, got.stop, got.usage, wantText, c.wantTools, c.wantStop, got.raw)
	}
}

// checkUpstreamReceived compares members of the body the upstream received for the
// client's last request with want.
func checkUpstreamReceived(t *testing.T, e *env, format, want string) {
	t.Helper()
	path := "/v1/chat/completions"
	if format == "anthropic" {
		path = "/v1/messages"
	}
	var body []byte
	reqs := e.up.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if m := reqs[i].JSON(); reqs[i].Path == path && m != nil && m["model"] != judgeModel {
			body = reqs[i].Body
			break
		}
	}
	if body == nil {
		t.Fatalf("upstream received no %s request", path)
	}
	var gotMembers, wantMembers map[string]json.RawMessage
	if err := json.Unmarshal(body, &gotMembers); err != nil {
		t.Fatalf("upstream body: %v: %s", err, body)
	}
	if err := json.Unmarshal([]byte(want), &wantMembers); err != nil {
		t.Fatalf("case's wantSent: %v: %s", err, want)
	}
	for k, w := range wantMembers {
		g, ok := gotMembers[k]
		if !ok {
			t.Errorf("upstream body lacks %q: %s", k, body)
			continue
		}
		if !sameJSON(g, w) {
			t.Errorf("upstream received %s:\n got %s\nwant %s", k, compactJSON(g), compactJSON(w))
		}
	}
}

// compactJSON returns a JSON text without insignificant whitespace.
func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
