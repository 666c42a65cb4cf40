package ui

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// body parses a JSON object for a test.
func txBody(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("test body %s: %v", s, err)
	}
	return m
}

// turn builds one call of a session.
func txCall(t *testing.T, id string, format cpv1.ClientFormat, req, resp string) txTurnData {
	t.Helper()
	return txTurnData{Call: &cpv1.CallSummary{CallId: id, Format: format, Model: "m", Status: 200},
		Request: txBody(t, req), Response: txBody(t, resp)}
}

const (
	txAnth = cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES
	txOAI  = cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT
)

// texts lists a side's messages as "role: text" lines, tools as
// "role: tool name args => result" and references as "role: ref name".
func txTexts(s *txSide) []string {
	var out []string
	add := func(m *txMsg) {
		for _, p := range m.Parts {
			switch p.Kind {
			case "tool":
				line := m.Role + ": tool " + p.Tool.Name + " " + txCompactJSON(p.Tool.Args)
				if p.Tool.Result != nil {
					line += " => " + p.Tool.Result.Text
				}
				out = append(out, line)
			case "tool-result-ref":
				out = append(out, m.Role+": ref "+p.Result.Of.Name)
			case "tool-result":
				out = append(out, m.Role+": orphan "+p.Result.Text)
			default:
				out = append(out, m.Role+": "+p.Kind+" "+p.Text)
			}
		}
	}
	for _, m := range s.Messages {
		add(m)
	}
	if s.Answer != nil {
		add(s.Answer)
	}
	return out
}

func txEqual(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// An Anthropic session in the shape Claude Code gives it: a preflight
// probe, then turns that resend the history (with cache markers moved),
// a tool call answered in the next request.
func TestTranscriptAnthropic(t *testing.T) {
	turns := []txTurnData{
		txCall(t, "c0", txAnth, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"quota"}]}`,
			`{"content":[{"type":"text","text":"x"}]}`),
		txCall(t, "c1", txAnth, `{"model":"m","max_tokens":100,"system":[{"type":"text","text":"You are helpful."}],
			"messages":[{"role":"user","content":[{"type":"text","text":"list files","cache_control":{"type":"ephemeral"}}]}]}`,
			`{"content":[{"type":"thinking","thinking":"let me look","signature":"s"},{"type":"text","text":"Looking."},
			{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}}],"stop_reason":"tool_use"}`),
		txCall(t, "c2", txAnth, `{"model":"m","max_tokens":100,"system":[{"type":"text","text":"You are helpful."}],
			"messages":[{"role":"user","content":[{"type":"text","text":"list files"}]},
			{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"a.txt\nb.txt","cache_control":{"type":"ephemeral"}}]}]}`,
			`{"content":[{"type":"text","text":"Two files."}],"stop_reason":"end_turn"}`),
	}
	tr := buildTranscript(turns)
	if len(tr.Turns) != 3 {
		t.Fatalf("%d turns", len(tr.Turns))
	}
	pre := tr.Turns[0]
	if !pre.Preflight || pre.N != 0 || pre.PreflightText != "quota" || pre.Final != nil {
		t.Errorf("preflight: %+v", pre)
	}
	t1, t2 := tr.Turns[1], tr.Turns[2]
	if t1.N != 1 || t2.N != 2 || t1.Original != nil {
		t.Errorf("numbering: %d %d, original %v", t1.N, t2.N, t1.Original)
	}
	if t1.Final.System != "You are helpful." || t2.Final.System != "" {
		t.Errorf("system shown: %q then %q", t1.Final.System, t2.Final.System)
	}
	txEqual(t, "turn 1", txTexts(t1.Final), []string{
		"user: text list files",
		"assistant: thinking let me look",
		"assistant: text Looking.",
		`assistant: tool Bash {"command":"ls"} => a.txt` + "\nb.txt",
	})
	// Turn 2 continues turn 1: the resent history and the echo of the
	// answer are not repeated; the result is shown with its call.
	txEqual(t, "turn 2", txTexts(t2.Final), []string{"user: ref Bash", "assistant: text Two files."})
	if t2.Final.Base != 1 || t2.Final.Kept != 1 || t2.Final.Rewritten != 0 {
		t.Errorf("turn 2 base %d kept %d rewritten %d", t2.Final.Base, t2.Final.Kept, t2.Final.Rewritten)
	}
	if t1.Final.Stop != "tool_use" || t1.Final.Answer.Role != "assistant" {
		t.Errorf("answer: %+v", t1.Final)
	}
}

// An OpenAI session: tool_calls in the answer, the result as a role
// "tool" message of the next request, a system message shown once.
func TestTranscriptOpenAI(t *testing.T) {
	turns := []txTurnData{
		txCall(t, "c1", txOAI, `{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"weather?"}]}`,
			`{"choices":[{"index":0,"message":{"role":"assistant","content":null,
			"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
			"finish_reason":"tool_calls"}]}`),
		txCall(t, "c2", txOAI, `{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"weather?"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
			{"role":"tool","tool_call_id":"call_1","content":"sunny"},{"role":"user","content":[{"type":"text","text":"thanks"}]}]}`,
			`{"choices":[{"index":0,"message":{"role":"assistant","content":"You're welcome."},"finish_reason":"stop"}]}`),
	}
	tr := buildTranscript(turns)
	txEqual(t, "turn 1", txTexts(tr.Turns[0].Final), []string{
		"system: text Be brief.",
		"user: text weather?",
		`assistant: tool get_weather {"city":"Paris"} => sunny`,
	})
	txEqual(t, "turn 2", txTexts(tr.Turns[1].Final), []string{
		"tool: ref get_weather",
		"user: text thanks",
		"assistant: text You're welcome.",
	})
	if got := tr.Turns[0].Final.Answer.Parts[0].Tool.Args; !strings.Contains(got, "\n") {
		t.Errorf("arguments not indented: %q", got)
	}
	if tr.Turns[0].Format != "openai" || tr.Turns[1].Final.Stop != "stop" {
		t.Errorf("format %q stop %q", tr.Turns[0].Format, tr.Turns[1].Final.Stop)
	}
}

// Without a format on the call, the bodies tell it.
func TestTranscriptGuessesFormat(t *testing.T) {
	tr := buildTranscript([]txTurnData{
		txCall(t, "c1", cpv1.ClientFormat_CLIENT_FORMAT_UNSPECIFIED, `{"messages":[{"role":"user","content":"hi"}]}`,
			`{"choices":[{"message":{"role":"assistant","content":"hello"}}]}`),
	})
	txEqual(t, "turn", txTexts(tr.Turns[0].Final), []string{"user: text hi", "assistant: text hello"})
}

// A side conversation (a title request) between two turns does not make
// the next turn show the whole history again; a rewritten history is
// shown from where it differs, with a note.
func TestTranscriptNewMessages(t *testing.T) {
	u := func(s string) string { return `{"role":"user","content":"` + s + `"}` }
	a := func(s string) string { return `{"role":"assistant","content":"` + s + `"}` }
	req := func(msgs ...string) string {
		return `{"model":"m","max_tokens":9,"messages":[` + strings.Join(msgs, ",") + `]}`
	}
	resp := func(s string) string { return `{"content":[{"type":"text","text":"` + s + `"}]}` }
	tr := buildTranscript([]txTurnData{
		txCall(t, "c1", txAnth, req(u("one")), resp("r1")),
		txCall(t, "c2", txAnth, req(u("write a title for: one")), resp("Title")),
		txCall(t, "c3", txAnth, req(u("one"), a("r1"), u("two")), resp("r2")),
		txCall(t, "c4", txAnth, req(u("one"), a("r1"), u("two"), a("r2"), u("three")), resp("r3")),
		// Compacted: the history is replaced by a summary.
		txCall(t, "c5", txAnth, req(u("one"), a("summary"), u("four")), resp("r4")),
		// A retry of the same request.
		txCall(t, "c6", txAnth, req(u("one"), a("summary"), u("four")), resp("r4")),
	})
	got := map[int][]string{}
	for _, tv := range tr.Turns {
		got[tv.N] = txTexts(tv.Final)
	}
	txEqual(t, "title", got[2], []string{"user: text write a title for: one", "assistant: text Title"})
	txEqual(t, "turn 3", got[3], []string{"user: text two", "assistant: text r2"})
	txEqual(t, "turn 4", got[4], []string{"user: text three", "assistant: text r3"})
	txEqual(t, "compacted", got[5], []string{"assistant: text summary", "user: text four", "assistant: text r4"})
	if s := tr.Turns[4].Final; s.Base != 4 || s.Kept != 1 || s.Rewritten != 4 {
		t.Errorf("compacted: base %d kept %d rewritten %d", s.Base, s.Kept, s.Rewritten)
	}
	txEqual(t, "retry", got[6], []string{"assistant: text r4"})
	if s := tr.Turns[5].Final; s.Base != 5 || len(s.Messages) != 0 {
		t.Errorf("retry: base %d, %d messages", s.Base, len(s.Messages))
	}
}

// A turn a policy changed has both versions; tool results pair with the
// calls of both.
func TestTranscriptOriginalAndFinal(t *testing.T) {
	t1 := txCall(t, "c1", txAnth, `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`,
		`{"content":[{"type":"text","text":"HELLO"},{"type":"tool_use","id":"t1","name":"Read","input":{"path":"/x"}}]}`)
	t1.Call.Intervened = true
	t1.ResponseOriginal = txBody(t, `{"content":[{"type":"text","text":"hello"},{"type":"tool_use","id":"t1","name":"Read","input":{"path":"/x"}}]}`)
	t1.RequestFinal = txBody(t, `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi (redacted)"}]}`)
	t1.PolicyEvents = []*cpv1.CallEvent{{EventType: "policy.all_caps.changed", Payload: txStruct(t, map[string]any{
		"tool_name": "Read", "explanation": "shouting", "probability": 0.5})}}
	t2 := txCall(t, "c2", txAnth, `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":[{"type":"text","text":"HELLO"},{"type":"tool_use","id":"t1","name":"Read","input":{"path":"/x"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"denied"}]}]}]}`,
		`{"content":[{"type":"text","text":"ok"}]}`)
	tr := buildTranscript([]txTurnData{t1, t2})
	a := tr.Turns[0]
	if a.Original == nil {
		t.Fatal("no original view")
	}
	txEqual(t, "final", txTexts(a.Final), []string{"user: text hi (redacted)", "assistant: text HELLO", `assistant: tool Read {"path":"/x"} => denied`})
	txEqual(t, "original", txTexts(a.Original), []string{"user: text hi", "assistant: text hello", `assistant: tool Read {"path":"/x"} => denied`})
	if !a.Final.Answer.Parts[1].Tool.Result.IsError {
		t.Error("error result not marked")
	}
	if len(a.Annotations) != 1 || a.Annotations[0].Type != "policy.all_caps.changed" {
		t.Fatalf("annotations: %+v", a.Annotations)
	}
	var keys []string
	for _, f := range a.Annotations[0].Fields {
		keys = append(keys, f.Key+"="+f.Value)
	}
	txEqual(t, "annotation fields", keys, []string{"explanation=shouting", "probability=0.5", "tool_name=Read"})
	// Turn 2 resends the history as the client has it, which continues
	// turn 1 as received.
	txEqual(t, "turn 2", txTexts(tr.Turns[1].Final), []string{"user: ref Read", "assistant: text ok"})
	if tr.Turns[1].Original != nil {
		t.Error("turn 2 has an original view without an intervention")
	}
}

// A result whose call the transcript never saw is shown where it
// arrives; roles outside the known set are named "other".
func TestTranscriptOrphanResult(t *testing.T) {
	tr := buildTranscript([]txTurnData{
		txCall(t, "c1", txOAI, `{"messages":[{"role":"tool","tool_call_id":"gone","content":"late"},{"role":"critic","content":"hmm"}]}`, ""),
	})
	txEqual(t, "turn", txTexts(tr.Turns[0].Final), []string{"tool: orphan late", "other: text hmm"})
	if tr.Turns[0].Final.Answer != nil {
		t.Error("answer without a response")
	}
}

func TestPreflightDetection(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"max_tokens":1}`, true},
		{`{"max_completion_tokens":1}`, true},
		{`{"max_tokens":2}`, false},
		{`{"max_tokens":"1"}`, false},
		{`{}`, false},
	} {
		if got := txIsPreflight(txBody(t, tc.body)); got != tc.want {
			t.Errorf("%s: preflight %v, want %v", tc.body, got, tc.want)
		}
	}
}

func txStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
