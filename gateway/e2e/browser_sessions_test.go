package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
)

// A session of two Anthropic turns, the first answered with a tool call
// and the second sending its result, reads as a transcript: the user's
// question, the tool call with its name and arguments, the tool's result
// and the final answer.
func TestBrowserSessionTranscript(t *testing.T) {
	e := start(t, "inprocess", options{})
	session := uniqueName("transcript-")
	const (
		question = "What is in the data directory?"
		toolID   = "toolu_browser_1"
		result   = "alpha.txt beta.txt"
		answer   = "There are two files: alpha.txt and beta.txt."
	)
	tools := `,"tools":[{"name":"list_files","description":"Lists a directory.","input_schema":{"type":"object","properties":{"path":{"type":"string"}}}}]`
	user, _ := json.Marshal(question)

	e.up.Enqueue(fakeupstream.Scenario{Text: "Let me look.", ToolCalls: []fakeupstream.ToolCall{{ID: toolID, Name: "list_files", Arguments: `{"path":"/srv/data"}`}}})
	first := `{"model":"claude-fake","max_tokens":256,"stream":true,"messages":[{"role":"user","content":` + string(user) + `}]` + tools + sessionMeta(session) + `}`
	resp, b := e.do(t, http.MethodPost, "/v1/messages", first, anthropicHeaders)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first turn: %d %s", resp.StatusCode, b)
	}
	waitRecorded(t, e, "", resp.Header.Get("X-Call-ID"))

	e.up.Enqueue(fakeupstream.Scenario{Text: answer})
	second := `{"model":"claude-fake","max_tokens":256,"stream":false,"messages":[` +
		`{"role":"user","content":` + string(user) + `},` +
		`{"role":"assistant","content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"` + toolID + `","name":"list_files","input":{"path":"/srv/data"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + toolID + `","content":"` + result + `"}]}]` +
		tools + sessionMeta(session) + `}`
	resp, b = e.do(t, http.MethodPost, "/v1/messages", second, anthropicHeaders)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second turn: %d %s", resp.StatusCode, b)
	}
	waitRecorded(t, e, "", resp.Header.Get("X-Call-ID"))

	tb := newTab(t)
	tb.navigate(e.URL + "/sessions/" + session)
	tb.text("#transcript .turn")
	if n := tb.count("#transcript .turn"); n != 2 {
		t.Errorf("%d turns, want 2", n)
	}
	if got := tb.texts("#transcript .tool .tool-name"); !slices.Contains(got, "list_files") {
		t.Errorf("tool names %q, want list_files", got)
	}
	if got := strings.Join(tb.texts("#transcript .tool .tool-args"), " "); !strings.Contains(got, "/srv/data") {
		t.Errorf("tool arguments %q lack /srv/data", got)
	}
	if got := strings.Join(tb.texts("#transcript .tool-result"), " "); !strings.Contains(got, result) {
		t.Errorf("tool results %q lack %q", got, result)
	}
	if got := strings.Join(tb.texts("#transcript .msg.user .text"), " "); !strings.Contains(got, question) {
		t.Errorf("user messages %q lack the question", got)
	}
	if got := strings.Join(tb.texts("#transcript .msg.assistant .text"), " "); !strings.Contains(got, answer) {
		t.Errorf("assistant messages %q lack the answer", got)
	}
	for _, sel := range []string{"a#export-jsonl", "a#export-md"} {
		if tb.count(sel) != 1 {
			t.Errorf("no %s link", sel)
		}
	}
	tb.check("session")
}
