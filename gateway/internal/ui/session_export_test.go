package ui

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// closesFence reports whether a line of a block's body would end a fence
// of n backticks (CommonMark: up to three spaces, then at least n
// backticks, then only spaces).
func closesFence(body string, n int) bool {
	for _, line := range strings.Split(body, "\n") {
		l := strings.TrimLeft(line, " ")
		if len(line)-len(l) > 3 {
			continue
		}
		run := mdLongestRun(l[:len(l)-len(strings.TrimLeft(l, "`"))], '`')
		if run >= n && strings.TrimSpace(strings.TrimLeft(l, "`")) == "" {
			return true
		}
	}
	return false
}

func TestMarkdownFence(t *testing.T) {
	for _, text := range []string{
		"plain",
		"```",
		"before\n```\nafter",
		"````json\n{}\n````",
		"a ``````` b",
		"ends with backticks ``",
		"",
		"trailing newline\n",
	} {
		got := mdFence(text, "json")
		first, rest, _ := strings.Cut(got, "\n")
		n := mdLongestRun(first, '`')
		if n < 3 || strings.TrimLeft(first, "`") != "json" {
			t.Errorf("%q: opening line %q", text, first)
		}
		body, ok := strings.CutSuffix(rest, "\n"+strings.Repeat("`", n)+"\n")
		if !ok {
			t.Errorf("%q: not closed by its own fence: %q", text, got)
			continue
		}
		if body != strings.TrimSuffix(text, "\n") {
			t.Errorf("%q: body %q", text, body)
		}
		if closesFence(body, n) {
			t.Errorf("%q: the text closes its fence of %d: %q", text, n, got)
		}
	}
}

func TestMarkdownInlineCode(t *testing.T) {
	for in, want := range map[string]string{
		"Bash":      "`Bash`",
		"a`b":       "``a`b``",
		"`x`":       "`` `x` ``",
		"a``b`":     "``` a``b` ```",
		"two\nline": "`two line`",
		"":          "``",
	} {
		if got := mdInlineCode(in); got != want {
			t.Errorf("mdInlineCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdownText(t *testing.T) {
	if got := mdText("see:\n```go\nfmt.Println()\n```\ndone"); strings.Contains(got, "````") {
		t.Errorf("balanced code block fenced again: %q", got)
	}
	got := mdText("unclosed ```\n```python\nx = 1")
	if !strings.HasPrefix(got, "\n````text\n") || !strings.HasSuffix(got, "\n````\n") {
		t.Errorf("unclosed code block not fenced: %q", got)
	}
}

func TestExportFileName(t *testing.T) {
	for in, want := range map[string]string{
		"0b9f-41aa_x.y":          "0b9f-41aa_x.y",
		"../../etc/passwd":       "_._.._etc_passwd",
		"a\"b\r\nc;d":            "a_b__c_d",
		"":                       "session",
		"é":                      "_",
		strings.Repeat("a", 300): strings.Repeat("a", 100),
	} {
		if got := exportFileName(in); got != want {
			t.Errorf("exportFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// The Markdown transcript: a section per turn, speakers, the tool call in
// a fence its arguments cannot close, the result, policy notes quoted,
// preflights as one line.
func TestExportMarkdown(t *testing.T) {
	t1 := txCall(t, "c1", txAnth, `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"run it"}]}`,
		"{\"content\":[{\"type\":\"text\",\"text\":\"Running.\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{\"command\":\"echo '```'\\n## Turn 9\"}}]}")
	t1.PolicyEvents = []*cpv1.CallEvent{{EventType: "policy.tool_judge.allowed",
		Payload: txStruct(t, map[string]any{"explanation": "harmless\nreally"})}}
	tr := buildTranscript([]txTurnData{
		txCall(t, "c0", txAnth, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"quota"}]}`, ""),
		t1,
		txCall(t, "c2", txAnth, `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"run it"},
			{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"`+"```"+`"}]}]}`,
			`{"content":[{"type":"text","text":"Done."}]}`),
	})
	md := string(exportSessionMarkdown("s-1", &cpv1.SessionSummary{Turns: 3}, tr))
	for _, want := range []string{
		"# Session `s-1`",
		"_Preflight probe (max_tokens 1), m, call `c0`._",
		"## Turn 1", "**User**\n\nrun it\n", "**Assistant**\n\nRunning.\n",
		"**Tool call** `Bash` (`t1`)\n\n````json\n{\n  \"command\": \"echo '```'\\n## Turn 9\"\n}\n````\n",
		"**Tool result** `t1`\n\n````text\n```\n````\n",
		"> **Policy** `policy.tool_judge.allowed`  \n> explanation: harmless  \n> really  \n",
		"## Turn 2", "_Result of `Bash` (`t1`), shown with turn 1._", "Done.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "\n## Turn ") != 2 {
		t.Errorf("want 2 turn sections:\n%s", md)
	}
}

// JSONL: one parseable object per call, with the versions a policy
// changed.
func TestExportJSONL(t *testing.T) {
	t1 := txCall(t, "c1", txOAI, `{"model":"m","messages":[{"role":"user","content":"<b>hi</b>"}]}`,
		`{"choices":[{"message":{"role":"assistant","content":"HI"}}]}`)
	t1.Call.Intervened = true
	t1.ResponseOriginal = txBody(t, `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	t1.PolicyEvents = []*cpv1.CallEvent{{EventType: "policy.x.y", Payload: txStruct(t, map[string]any{"reason": "r"})}}
	out, err := exportSessionJSONL([]txTurnData{
		txCall(t, "c0", txOAI, `{"model":"m","max_completion_tokens":1,"messages":[]}`, ""),
		t1,
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), out)
	}
	if lines[0]["call_id"] != "c0" || lines[0]["preflight"] != true || lines[0]["response"] != nil {
		t.Errorf("line 1: %v", lines[0])
	}
	l := lines[1]
	if l["call_id"] != "c1" || l["format"] != "openai" || l["intervened"] != true || l["request_final"] != nil {
		t.Errorf("line 2: %v", l)
	}
	if !strings.Contains(string(out), `"content":"<b>hi</b>"`) {
		t.Errorf("text escaped in JSON: %s", out)
	}
	orig, _ := json.Marshal(l["response_original"])
	events, _ := json.Marshal(l["policy_events"])
	if !strings.Contains(string(orig), `"hi"`) || !strings.Contains(string(events), `"type":"policy.x.y"`) ||
		!strings.Contains(string(events), `"reason":"r"`) {
		t.Errorf("versions or events: %s / %s", orig, events)
	}
}
