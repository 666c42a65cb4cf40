package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"luthien.dev/bench/fakeupstream"
)

// sessionConversation is a two-turn conversation in one client format:
// the first answer is a tool call, the second request carries its result.
type sessionConversation struct {
	format string
	// first and second are the request bodies; header adds headers.
	first, second func(session string) string
	header        func(session string) map[string]string
	tool          fakeupstream.ToolCall
	// argsShown is how the page shows the arguments (indented JSON,
	// escaped).
	argsShown string
	result    string
	answer    string
}

// uiSessionPrompt is the user's first message: hostile markup, to be
// shown as text.
const uiSessionPrompt = `<script>alert("owned")</script> list the files`

var sessionConversations = []sessionConversation{{
	format: "anthropic",
	first: func(s string) string {
		return `{"model":"claude-fake","max_tokens":256,"stream":false,"messages":[{"role":"user","content":` + uiJSONString(uiSessionPrompt) + `}],` +
			`"metadata":{"user_id":"user_abc_account__session_` + s + `"}}`
	},
	second: func(s string) string {
		return `{"model":"claude-fake","max_tokens":256,"stream":true,"messages":[{"role":"user","content":` + uiJSONString(uiSessionPrompt) + `},` +
			`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_sess_1","name":"Bash","input":{"command":"ls -la /srv"}}]},` +
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_sess_1","content":"zebracorn alpha.txt readme.md"}]}],` +
			`"metadata":{"user_id":"user_abc_account__session_` + s + `"}}`
	},
	header:    func(string) map[string]string { return anthropicHeaders },
	tool:      fakeupstream.ToolCall{ID: "toolu_sess_1", Name: "Bash", Arguments: `{"command":"ls -la /srv"}`},
	argsShown: `&#34;command&#34;: &#34;ls -la /srv&#34;`,
	result:    "zebracorn alpha.txt readme.md",
	answer:    "Two files are there.",
}, {
	// OpenAI requests carry no session in their body: the session is
	// Claude Code's x-claude-code-session-id header.
	format: "openai",
	first: func(string) string {
		return `{"model":"gpt-fake","stream":false,"messages":[{"role":"user","content":` + uiJSONString(uiSessionPrompt) + `}]}`
	},
	second: func(string) string {
		return `{"model":"gpt-fake","stream":true,"messages":[{"role":"user","content":` + uiJSONString(uiSessionPrompt) + `},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"call_sess_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
			`{"role":"tool","tool_call_id":"call_sess_1","content":"zebracorn sunny 21C"}]}`
	},
	header: func(s string) map[string]string {
		h := map[string]string{"x-claude-code-session-id": s}
		for k, v := range openaiHeaders {
			h[k] = v
		}
		return h
	},
	tool:      fakeupstream.ToolCall{ID: "call_sess_1", Name: "get_weather", Arguments: `{"city":"Paris"}`},
	argsShown: `&#34;city&#34;: &#34;Paris&#34;`,
	result:    "zebracorn sunny 21C",
	answer:    "It is sunny in Paris.",
}}

func uiJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The sessions pages over the real gateway, with the embedded store and
// with PostgreSQL: a session of two turns in each client format is
// listed with its turns, found by search, shown as a transcript with the
// tool call and its result in the turn that made the call, exported as
// JSONL and Markdown; hostile text stays text; unknown sessions are 404.
func TestUISessions(t *testing.T) {
	for _, store := range []struct {
		name string
		opts options
	}{{"memory", options{}}, {"postgres", options{database: true}}} {
		t.Run(store.name, func(t *testing.T) {
			e := start(t, "inprocess", store.opts)
			for _, c := range sessionConversations {
				t.Run(c.format, func(t *testing.T) { testSessionPages(t, e, c) })
			}
			for path, code := range map[string]int{
				"/sessions/no-such-session":                    http.StatusNotFound,
				"/sessions/no-such-session/turns":              http.StatusNotFound,
				"/sessions/no-such-session/export?format=md":   http.StatusNotFound,
				"/sessions/no-such-session/export?format=html": http.StatusBadRequest,
			} {
				if resp, _ := e.do(t, http.MethodGet, path, "", nil); resp.StatusCode != code {
					t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
				}
			}
		})
	}
}

func testSessionPages(t *testing.T, e *env, c sessionConversation) {
	session := uniqueName("ui-" + c.format + "-")
	path := "/v1/messages"
	if c.format == "openai" {
		path = "/v1/chat/completions"
	}
	e.up.Enqueue(fakeupstream.Scenario{ToolCalls: []fakeupstream.ToolCall{c.tool}})
	resp, b := e.do(t, http.MethodPost, path, c.first(session), c.header(session))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first turn: %d %s", resp.StatusCode, b)
	}
	first := resp.Header.Get("X-Call-ID")
	e.up.Enqueue(fakeupstream.Scenario{Text: c.answer})
	resp, b = e.do(t, http.MethodPost, path, c.second(session), c.header(session))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second turn: %d %s", resp.StatusCode, b)
	}
	second := resp.Header.Get("X-Call-ID")
	e.waitCall(t, first, "request.received", "response.final")
	e.waitCall(t, second, "request.received", "response.final")

	// The list: the session with its two turns.
	_, list := e.do(t, http.MethodGet, "/sessions", "", nil)
	row := regexp.MustCompile(`(?s)<tr class="session-row[^"]*" data-session-id="` + regexp.QuoteMeta(session) + `">.*?</tr>`).Find(list)
	if row == nil {
		t.Fatalf("session %s not listed:\n%s", session, list)
	}
	if !strings.Contains(string(row), `<td class="turns">2</td>`) || !strings.Contains(string(row), `href="/sessions/`+session+`"`) {
		t.Errorf("session row: %s", row)
	}

	// Search finds it by the tool result's text.
	_, found := e.do(t, http.MethodGet, "/sessions?q=zebracorn", "", nil)
	if !strings.Contains(string(found), `data-session-id="`+session+`"`) || !strings.Contains(string(found), "<mark>") {
		t.Errorf("search for zebracorn did not find %s:\n%s", session, found)
	}

	// The transcript: the tool call with its arguments and result in the
	// first turn, the answer in the second.
	resp, page := e.do(t, http.MethodGet, "/sessions/"+session, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session page: %d %s", resp.StatusCode, page)
	}
	turns := uiSessionTurns(t, string(page))
	if len(turns) != 2 || turns[first] == "" || turns[second] == "" {
		t.Fatalf("turns %v, want %s and %s:\n%s", uiMapKeys(turns), first, second, page)
	}
	for _, want := range []string{`<span class="tool-name">` + c.tool.Name + `</span>`, c.argsShown,
		`<div class="tool-result" data-tool-id="` + c.tool.ID + `">`, c.result, `<div class="msg user">`} {
		if !strings.Contains(turns[first], want) {
			t.Errorf("turn 1 lacks %q:\n%s", want, turns[first])
		}
	}
	// (Its full request, collapsed, carries the result too.)
	shown, _, _ := strings.Cut(turns[second], `<details class="full-request"`)
	if !strings.Contains(shown, c.answer) || strings.Contains(shown, c.result) || !strings.Contains(shown, `class="tool-result-ref`) {
		t.Errorf("turn 2 should hold the answer and only a reference to the result:\n%s", turns[second])
	}
	if strings.Contains(string(page), `<script>alert`) || !strings.Contains(string(page), `&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;`) {
		t.Errorf("the prompt's markup is not escaped:\n%s", page)
	}

	// The live page's partial: the same turns, no layout.
	resp, partial := e.do(t, http.MethodGet, "/sessions/"+session+"/turns", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(partial), `<div id="transcript">`) || len(uiSessionTurns(t, string(partial))) != 2 {
		t.Errorf("turns partial: %d %s", resp.StatusCode, partial)
	}

	// Exports: JSONL with one line per turn, Markdown with the tool call.
	resp, jsonl := e.do(t, http.MethodGet, "/sessions/"+session+"/export?format=jsonl", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("jsonl export: %d %v", resp.StatusCode, resp.Header)
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(string(jsonl)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			CallID   string         `json:"call_id"`
			Request  map[string]any `json:"request"`
			Response map[string]any `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		if line.Request == nil || line.Response == nil {
			t.Errorf("line without request or response: %s", sc.Text())
		}
		ids = append(ids, line.CallID)
	}
	if strings.Join(ids, ",") != first+","+second {
		t.Errorf("jsonl calls %v, want %s,%s", ids, first, second)
	}
	resp, md := e.do(t, http.MethodGet, "/sessions/"+session+"/export?format=md", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), `filename="session-`+session+`.md"`) {
		t.Fatalf("md export: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{"## Turn 1", "## Turn 2", "**Tool call** `" + c.tool.Name + "`", "```json\n{", c.result, c.answer, uiSessionPrompt} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// uiSessionTurns cuts a transcript into its turns by call id.
func uiSessionTurns(t *testing.T, page string) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`<section class="turn[^"]*" id="turn-\d+" data-call-id="([^"]+)"`)
	locs := re.FindAllStringSubmatchIndex(page, -1)
	out := map[string]string{}
	for i, l := range locs {
		end := len(page)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[page[l[2]:l[3]]] = page[l[0]:end]
	}
	return out
}

func uiMapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// In a browser: a policy's change is shown per turn (final by default,
// the original a click away) with its event inline, a preflight probe is
// one line, a large request loads when opened, and a turn
// recorded while the page is open appears without a reload, keeping what
// the reader toggled.
func TestUISessionLive(t *testing.T) {
	e := start(t, "inprocess", options{})
	session := uniqueName("ui-live-")
	meta := `,"metadata":{"user_id":"user_abc_account__session_` + session + `"}`
	ask := func(maxTokens int, msgs string, extra string) string {
		t.Helper()
		body := fmt.Sprintf(`{"model":"claude-fake","max_tokens":%d,"messages":[%s]%s%s}`, maxTokens, msgs, meta, extra)
		resp, b := e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("turn: %d %s", resp.StatusCode, b)
		}
		id := resp.Header.Get("X-Call-ID")
		e.waitCall(t, id, "request.received", "response.final")
		return id
	}
	ask(1, `{"role":"user","content":"quota"}`, "")
	e.setPolicy(t, "regex_block", map[string]any{
		"patterns": []any{`docker\s+compose\s+down`}, "tool_names": []any{"Bash"}, "message": "BLOCKED {tool_name}: {command}",
	})
	e.up.Enqueue(fakeupstream.Scenario{Text: "Stopping it. ", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"docker compose down"}`}}})
	ask(256, `{"role":"user","content":"stop the stack"}`, "")

	tb := newTab(t)
	tb.navigate(e.URL + "/sessions/" + session)
	tb.waitFor("the live feed", `document.querySelector("#live.live")`, 10*time.Second)
	if n := tb.count("#transcript .preflight"); n != 1 {
		t.Errorf("%d preflight markers, want 1", n)
	}
	if got := strings.Join(tb.texts("#turn-1 .view-final .msg.assistant .text"), " "); got != "Stopping it. BLOCKED Bash: docker compose down" {
		t.Errorf("final answer %q", got)
	}
	if n := tb.count("#turn-1 .view-final .tool"); n != 0 {
		t.Errorf("the blocked tool call shows in the final view")
	}
	if got := tb.text(`#turn-1 .annotation[data-type="policy.regex_block.blocked"] dd[data-field="command"]`); got != "docker compose down" {
		t.Errorf("annotation command %q", got)
	}
	tb.do("showing the original", chromedp.Click(chromedp.CSS("#turn-1 button.turn-toggle")))
	if got := tb.text("#turn-1 .view-original .tool .tool-name"); got != "Bash" {
		t.Errorf("original tool call %q", got)
	}
	if got := tb.text("#turn-1 .view-original .tool .tool-args"); !strings.Contains(got, "docker compose down") {
		t.Errorf("original tool arguments %q", got)
	}
	tb.eval(`window.sameDocument = true`, nil)

	e.setPolicy(t, "noop", nil)
	e.up.Enqueue(fakeupstream.Scenario{Text: "a later answer"})
	// A request too large to inline: its full text loads when opened.
	system := `,"system":"` + strings.Repeat("padding ", 5000) + `end-of-system"`
	ask(256, `{"role":"user","content":"stop the stack"},{"role":"assistant","content":"Stopping it. BLOCKED Bash: docker compose down"},`+
		`{"role":"user","content":"and then?"}`, system)
	tb.waitFor("the new turn", `document.querySelectorAll("#transcript .turn").length === 2`, 15*time.Second)
	var state struct {
		Same     bool   `json:"same"`
		Original bool   `json:"original"`
		Last     string `json:"last"`
	}
	tb.eval(`({same: window.sameDocument === true,
		original: !document.querySelector("#turn-1 .view-original").hidden,
		last: document.querySelector("#turn-2 .msg.assistant .text").innerText})`, &state)
	if !state.Same || !state.Original || state.Last != "a later answer" {
		t.Errorf("after the live update: %+v", state)
	}
	if got := tb.texts("#turn-2 .msg.user .text"); len(got) != 1 || got[0] != "and then?" {
		t.Errorf("turn 2 user messages %q, want only the new one", got)
	}
	tb.do("opening the full request", chromedp.Click(chromedp.CSS("#turn-2 details.full-request summary")))
	tb.waitFor("the full request", `document.querySelector("#turn-2 .full-request-json").textContent.includes("end-of-system")`, 10*time.Second)
	tb.check("session-live")

	// The list and the search lead to it.
	tb.navigate(e.URL + "/sessions")
	if got := tb.text(`table#sessions tr.session-row[data-session-id="` + session + `"] td.turns`); got != "3" {
		t.Errorf("listed with %q calls, want 3", got)
	}
	tb.check("sessions")
	tb.navigate(e.URL + "/sessions?q=" + url.QueryEscape(`"later answer"`))
	if got := tb.text(`table#sessions tr.session-row a.session-link`); got != session {
		t.Errorf("search found %q, want %s", got, session)
	}
	tb.check("sessions-search")
	_, found := e.do(t, http.MethodGet, "/sessions?q="+url.QueryEscape(`"later answer"`), "", nil)
	if !strings.Contains(string(found), "<mark>later answer</mark>") {
		t.Errorf("search page does not mark the match:\n%s", found)
	}
}
