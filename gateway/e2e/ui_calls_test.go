package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/htmltest"
)

// The calls pages over real recorded calls: under all_caps each format,
// streamed and not, is listed as intervened and its page shows the
// response's lowercase words deleted in the original column and their
// uppercase replacements inserted in the final one; a streamed call shows
// its timeline.
func TestUICallsDiff(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "all_caps", nil)
		forEachCall(t, func(t *testing.T, format string, stream bool) {
			got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "hello quiet world", Chunks: 5})
			checkOutcome(t, got, "HELLO QUIET WORLD", false, nil, "end_turn")
			types := []string{"request.received", "response.original", "response.final"}
			if stream {
				types = append(types, "stream.timeline")
			}
			e.waitCall(t, got.callID, types...)

			_, list := ucGet(t, e, "/calls", http.StatusOK)
			row := ucCallRow(t, list, got.callID)
			if !htmltest.HasClass(row, "intervened") {
				t.Errorf("row of %s is not marked intervened: class %q", got.callID, htmltest.Attr(row, "class"))
			}
			if link := htmltest.First(row, func(n *html.Node) bool { return htmltest.HasClass(n, "call-link") }); link == nil ||
				htmltest.Attr(link, "href") != "/calls/"+got.callID {
				t.Errorf("row of %s has no link to its page", got.callID)
			}

			_, doc := ucGet(t, e, "/calls/"+got.callID, http.StatusOK)
			resp := ucByID(t, doc, "response-diff")
			deleted := strings.Join(htmltest.Texts(htmltest.First(resp, ucClass("original")), "del"), " ")
			inserted := strings.Join(htmltest.Texts(htmltest.First(resp, ucClass("final")), "ins"), " ")
			if !strings.Contains(deleted, "hello quiet world") || !strings.Contains(inserted, "HELLO QUIET WORLD") {
				t.Errorf("response diff: deleted %q, inserted %q", deleted, inserted)
			}
			ucColumnsHold(t, doc)
			if htmltest.First(ucByID(t, doc, "request-diff"), ucClass("unchanged")) == nil {
				t.Error("the unchanged request is not marked unchanged")
			}
			if fmtText := htmltest.Text(htmltest.First(ucByID(t, doc, "call-summary"), func(n *html.Node) bool { return htmltest.Attr(n, "data-field") == "format" })); fmtText != format {
				t.Errorf("summary format %q, want %q", fmtText, format)
			}
			entries := htmltest.All(doc, ucClass("timeline-entry"))
			if stream && len(entries) == 0 {
				t.Error("a streamed call shows no timeline entries")
			}
			if !stream && len(entries) != 0 {
				t.Errorf("a whole response shows %d timeline entries", len(entries))
			}
		})
	})
}

// Markup in a prompt and in an answer reaches the pages as text.
func TestUICallsEscaping(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.setPolicy(t, "all_caps", nil)
	const xss = `<script>alert(1)</script> and <img src=x onerror=alert(1)>`
	for _, format := range clientFormats {
		t.Run(format, func(t *testing.T) {
			e.up.Enqueue(fakeupstream.Scenario{Text: "echo " + xss})
			msgs := []any{map[string]any{"role": "user", "content": "please say " + xss}}
			var resp *http.Response
			if format == "anthropic" {
				body, _ := json.Marshal(map[string]any{"model": "claude-fake", "max_tokens": 64, "messages": msgs})
				resp, _ = e.do(t, http.MethodPost, "/v1/messages", string(body), anthropicHeaders)
			} else {
				body, _ := json.Marshal(map[string]any{"model": "gpt-fake", "messages": msgs})
				resp, _ = e.do(t, http.MethodPost, "/v1/chat/completions", string(body), openaiHeaders)
			}
			id := resp.Header.Get("X-Call-ID")
			e.waitCall(t, id, "request.received", "response.original", "response.final")
			for _, path := range []string{"/calls", "/calls/" + id} {
				r, b := e.do(t, http.MethodGet, path, "", nil)
				page := string(b)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d", path, r.StatusCode)
				}
				for _, raw := range []string{"<script>alert(1)", "<img src=x", "<SCRIPT>", "<IMG SRC"} {
					if strings.Contains(page, raw) {
						t.Errorf("%s holds the raw markup %q", path, raw)
					}
				}
				if path == "/calls" {
					continue
				}
				for _, escaped := range []string{"please say &lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;",
					"&lt;SCRIPT&gt;ALERT(1)&lt;/SCRIPT&gt;"} {
					if !strings.Contains(page, escaped) {
						t.Errorf("%s lacks the escaped text %q", path, escaped)
					}
				}
			}
		})
	}
}

// A call regex_block blocked shows the decision with its pattern, and the
// blocked tool call, name and arguments, in the original column.
func TestUICallsPolicyEvent(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "regex_block", map[string]any{
			"patterns":   []any{`docker\s+compose\s+down`},
			"tool_names": []any{"Bash"},
		})
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("stream=%t", stream), func(t *testing.T) {
				got := ask(t, e, "anthropic", stream, fakeupstream.Scenario{Text: "Stopping it. ",
					ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"docker compose down"}`}}})
				if got.status != http.StatusOK || len(got.tools) != 0 {
					t.Fatalf("the tool call was not blocked: %d %s", got.status, got.raw)
				}
				e.waitCall(t, got.callID, "response.original", "response.final")
				_, doc := ucGet(t, e, "/calls/"+got.callID, http.StatusOK)
				var blocked *html.Node
				for _, li := range htmltest.All(ucByID(t, doc, "policy-events"), ucClass("policy-event")) {
					if typ := htmltest.Attr(li, "data-type"); strings.HasPrefix(typ, "policy.regex_block") && strings.HasSuffix(typ, ".blocked") {
						blocked = li
					}
				}
				if blocked == nil || !strings.Contains(htmltest.Text(blocked), `docker\s+compose\s+down`) {
					t.Fatalf("no regex_block decision with its pattern in #policy-events: %q", htmltest.Text(ucByID(t, doc, "policy-events")))
				}
				tool := htmltest.First(htmltest.First(ucByID(t, doc, "response-diff"), ucClass("original")), ucClass("tool"))
				if tool == nil || htmltest.Text(htmltest.First(tool, ucClass("tool-name"))) != "Bash" ||
					!strings.Contains(htmltest.Text(htmltest.First(tool, ucClass("tool-args"))), "docker compose down") {
					t.Errorf("the blocked tool call is not shown in the original column")
				}
				if len(htmltest.All(tool, func(n *html.Node) bool { return n.Data == "del" })) == 0 {
					t.Error("the removed tool call is not marked deleted")
				}
				ucColumnsHold(t, doc)
			})
		}
	})
}

// An unknown call is a 404 page.
func TestUICallsNotFound(t *testing.T) {
	e := start(t, "inprocess", options{})
	ucGet(t, e, "/calls/no-such-call", http.StatusNotFound)
}

// ucGet fetches a page, checks its status and parses it.
func ucGet(t *testing.T, e *env, path string, want int) (*http.Response, *html.Node) {
	t.Helper()
	resp, body := e.do(t, http.MethodGet, path, "", nil)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, doc
}

// ucCallRow finds a call's row in table#calls.
func ucCallRow(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	row := htmltest.First(ucByID(t, doc, "calls"), func(n *html.Node) bool {
		return htmltest.HasClass(n, "call-row") && htmltest.Attr(n, "data-call-id") == id
	})
	if row == nil {
		t.Fatalf("call %s not listed in table#calls", id)
	}
	return row
}

// ucColumnsHold checks that deletions appear only in original columns and
// insertions only in final ones.
func ucColumnsHold(t *testing.T, doc *html.Node) {
	t.Helper()
	for _, n := range htmltest.All(doc, func(n *html.Node) bool { return (n.Data == "del" || n.Data == "ins") && htmltest.HasClass(n, "diff") }) {
		inOriginal, inFinal := false, false
		for p := n.Parent; p != nil; p = p.Parent {
			inOriginal = inOriginal || htmltest.HasClass(p, "original")
			inFinal = inFinal || htmltest.HasClass(p, "final")
		}
		if n.Data == "del" && (!inOriginal || inFinal) || n.Data == "ins" && (!inFinal || inOriginal) {
			t.Errorf("<%s class=diff>%s</%s> in the wrong column", n.Data, htmltest.Text(n), n.Data)
		}
	}
}

// ucClass, ucAll, ucFirst, ucByID, ucAttr, ucHasClass, ucText and ucTexts
// read a parsed page: elements by class, by predicate, by id; attributes,
// classes and text.
func ucClass(c string) func(*html.Node) bool {
	return func(n *html.Node) bool { return htmltest.HasClass(n, c) }
}

func ucByID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	n := htmltest.First(doc, func(n *html.Node) bool { return htmltest.Attr(n, "id") == id })
	if n == nil {
		t.Fatalf("no #%s on the page", id)
	}
	return n
}
