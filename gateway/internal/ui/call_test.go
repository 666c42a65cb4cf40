package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/htmltest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// fakeHistory answers the calls pages' queries from memory.
type fakeHistory struct {
	cpv1.HistoryServiceClient
	call   *cpv1.GetCallResponse
	diff   *cpv1.GetCallDiffResponse
	list   *cpv1.ListCallsResponse
	listed *cpv1.ListCallsRequest
	hits   *cpv1.SearchCallsResponse
	query  string
}

func (f *fakeHistory) GetCall(_ context.Context, req *cpv1.GetCallRequest, _ ...grpc.CallOption) (*cpv1.GetCallResponse, error) {
	if f.call == nil || req.GetCallId() != f.call.GetCall().GetCallId() {
		return nil, status.Errorf(codes.NotFound, "call %s not found", req.GetCallId())
	}
	return f.call, nil
}

func (f *fakeHistory) GetCallDiff(_ context.Context, req *cpv1.GetCallDiffRequest, _ ...grpc.CallOption) (*cpv1.GetCallDiffResponse, error) {
	if f.diff == nil || req.GetCallId() != f.diff.GetCallId() {
		return nil, status.Errorf(codes.NotFound, "call %s not found", req.GetCallId())
	}
	return f.diff, nil
}

func (f *fakeHistory) ListCalls(_ context.Context, req *cpv1.ListCallsRequest, _ ...grpc.CallOption) (*cpv1.ListCallsResponse, error) {
	f.listed = req
	return f.list, nil
}

func (f *fakeHistory) SearchCalls(_ context.Context, req *cpv1.SearchCallsRequest, _ ...grpc.CallOption) (*cpv1.SearchCallsResponse, error) {
	f.query = req.GetQuery()
	return f.hits, nil
}

// testUI is the pages over a fake history.
func testUI(t *testing.T, h *fakeHistory) *UI {
	t.Helper()
	u, err := New(Config{Guard: admin.New(admin.Config{}), History: h, Mode: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// get serves one GET with handler h at pattern and parses the page.
func get(t *testing.T, pattern string, h http.HandlerFunc, target string) (int, string, *html.Node) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(pattern, h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body := rec.Body.String()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	return rec.Code, body, doc
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const xss = `<script>alert(1)</script> <img src=x onerror=alert(1)>`

// blockedCall is a streamed Anthropic call whose answer two policies
// changed: its text upper-cased, its tool call blocked.
func blockedCall(t *testing.T) *fakeHistory {
	t.Helper()
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms float64) *timestamppb.Timestamp {
		return timestamppb.New(start.Add(time.Duration(ms * float64(time.Millisecond))))
	}
	request := mustStruct(t, map[string]any{"model": "claude-x", "stream": true, "messages": []any{
		map[string]any{"role": "user", "content": "say " + xss}}})
	original := mustStruct(t, map[string]any{"type": "message", "role": "assistant", "stop_reason": "tool_use", "content": []any{
		map[string]any{"type": "text", "text": "hello quiet world " + xss},
		map[string]any{"type": "tool_use", "id": "tu_1", "name": "Bash", "input": map[string]any{"command": "docker compose down"}}}})
	final := mustStruct(t, map[string]any{"type": "message", "role": "assistant", "stop_reason": "end_turn", "model": "claude-x", "content": []any{
		map[string]any{"type": "text", "text": "HELLO QUIET WORLD " + strings.ToUpper(xss) + " BLOCKED"}}})
	var entries []any
	for i := range 250 {
		src := "upstream"
		if i%2 == 1 {
			src = "policy"
		}
		entries = append(entries, map[string]any{"ms": 10 + float64(i)/4, "kind": "text_delta", "source": src})
	}
	timeline := mustStruct(t, map[string]any{"entries": entries, "dropped": 0, "upstream_first_event_ms": 3.5})
	summary := &cpv1.CallSummary{CallId: "call-1", SessionId: "sess-1", Model: "claude-x", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES,
		Upstream: "http://up", Status: 200, Stream: true, StartedAt: at(0), FinishedAt: at(80), TtftMs: 12.5, DurationMs: 80,
		Usage: &cpv1.Usage{InputTokens: 7, OutputTokens: 9}, Intervened: true, PolicyRevision: "rev-3", Error: "upstream hiccup " + xss}
	return &fakeHistory{
		call: &cpv1.GetCallResponse{Call: summary, Events: []*cpv1.CallEvent{
			{CallId: "call-1", EventType: "response.original", Time: at(80), Payload: original},
			{CallId: "call-1", EventType: "request.received", Time: at(0), Payload: request},
			{CallId: "call-1", EventType: "policy.regex_block.blocked", Time: at(40), Payload: mustStruct(t, map[string]any{
				"pattern": `docker\s+compose\s+down`, "tool_name": "Bash", "command": "docker compose down " + xss})},
			{CallId: "call-1", EventType: "stream.timeline", Time: at(80), Payload: timeline},
			{CallId: "call-1", EventType: "error", Time: at(79), Payload: mustStruct(t, map[string]any{"message": "upstream hiccup", "status": 200})},
		}},
		diff: &cpv1.GetCallDiffResponse{CallId: "call-1",
			Request: &cpv1.JSONDiff{Original: request, Final: request},
			Response: &cpv1.JSONDiff{Original: original, Final: final, Changed: true, Changes: []*cpv1.JSONChange{
				{Path: "/content/0/text", Op: "changed", Before: structpb.NewStringValue("hello"), After: structpb.NewStringValue("HELLO")},
				{Path: "/model", Op: "added", After: structpb.NewStringValue("claude-x")},
				{Path: "/stop_reason", Op: "changed", Before: structpb.NewStringValue("tool_use"), After: structpb.NewStringValue("end_turn")},
			}}},
	}
}

func TestCallPage(t *testing.T) {
	u := testUI(t, blockedCall(t))
	code, body, doc := get(t, "GET /calls/{id}", u.call, "/calls/call-1")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	// Recorded text is text: no markup of it reaches the page.
	for _, raw := range []string{"<script>alert", "<img src=x", "<SCRIPT>", "<IMG SRC"} {
		if strings.Contains(body, raw) {
			t.Errorf("page holds the raw markup %q", raw)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("escaped script text missing")
	}

	resp := pgOne(t, doc, "section", "response-diff")
	orig, fin := pgFirstClass(resp, "original"), pgFirstClass(resp, "final")
	if orig == nil || fin == nil {
		t.Fatal("#response-diff lacks .original or .final")
	}
	if del := htmltest.Texts(orig, "del"); !strings.Contains(strings.Join(del, "|"), "hello quiet world") {
		t.Errorf("deleted words %q", del)
	}
	if ins := htmltest.Texts(fin, "ins"); !strings.Contains(strings.Join(ins, "|"), "HELLO QUIET WORLD") {
		t.Errorf("inserted words %q", ins)
	}
	for _, n := range htmltest.All(doc, func(n *html.Node) bool { return n.Data == "del" || n.Data == "ins" }) {
		want := map[string]string{"del": "original", "ins": "final"}[n.Data]
		if !htmltest.HasClass(n, "diff") || htmltest.AncestorClass(n, want) == nil || htmltest.AncestorClass(n, map[string]string{"del": "final", "ins": "original"}[n.Data]) != nil {
			t.Errorf("<%s> %q outside .%s", n.Data, htmltest.Text(n), want)
		}
	}
	// The removed tool call, with its name and arguments.
	tools := htmltest.All(orig, func(n *html.Node) bool { return htmltest.HasClass(n, "tool") })
	if len(tools) != 1 || htmltest.Text(pgFirstClass(tools[0], "tool-name")) != "Bash" ||
		!strings.Contains(htmltest.Text(pgFirstClass(tools[0], "tool-args")), "docker compose down") {
		t.Errorf("tool call in the original: %d tools", len(tools))
	}
	// The change outside the conversation is listed.
	if !strings.Contains(htmltest.Text(resp), "/model") || strings.Contains(htmltest.Text(resp), "/content/0/text\u00a0") {
		t.Error("other changes not listed")
	}

	req := pgOne(t, doc, "section", "request-diff")
	if pgFirstClass(req, "unchanged") == nil || pgFirstClass(req, "original") != nil {
		t.Error("#request-diff is not shown once as unchanged")
	}
	if n := strings.Count(htmltest.Text(pgFirstClass(req, "conversation")), "say <script>"); n != 1 {
		t.Errorf("the request is shown %d times", n)
	}

	events := htmltest.All(pgOne(t, doc, "ul", "policy-events"), func(n *html.Node) bool { return htmltest.HasClass(n, "policy-event") })
	if len(events) != 1 || htmltest.Attr(events[0], "data-type") != "policy.regex_block.blocked" ||
		!strings.Contains(htmltest.Text(events[0]), `docker\s+compose\s+down`) || !strings.Contains(htmltest.Text(events[0]), "40.00 ms") {
		t.Errorf("policy events: %d", len(events))
	}

	timeline := pgOne(t, doc, "table", "timeline")
	rows := htmltest.All(timeline, func(n *html.Node) bool { return htmltest.HasClass(n, "timeline-entry") })
	if len(rows) != timelineShown || !strings.Contains(htmltest.Text(timeline), "50 more entries") {
		t.Errorf("timeline: %d rows shown; %s", len(rows), htmltest.Text(timeline))
	}
	evs := htmltest.All(pgOne(t, doc, "table", "call-events"), func(n *html.Node) bool { return htmltest.HasClass(n, "call-event") })
	if len(evs) != 5 || htmltest.Attr(evs[0], "data-type") != "request.received" || !strings.Contains(htmltest.Text(evs[0]), "0 ms") {
		t.Errorf("events: %d, first %q", len(evs), htmltest.Text(evs[0]))
	}
	if e := pgOne(t, doc, "section", "call-error"); !strings.Contains(htmltest.Text(e), "upstream hiccup") {
		t.Error("error not shown")
	}
	if s := htmltest.Text(pgOne(t, doc, "dl", "call-summary")); !strings.Contains(s, "rev-3") || !strings.Contains(s, "12.50 ms") || !strings.Contains(s, "7 in · 9 out") {
		t.Errorf("summary: %s", s)
	}
}

func TestCallPageNotFound(t *testing.T) {
	u := testUI(t, blockedCall(t))
	code, body, _ := get(t, "GET /calls/{id}", u.call, "/calls/nope")
	if code != http.StatusNotFound || !strings.Contains(body, "not found") {
		t.Errorf("status %d: %s", code, body)
	}
}

// pg* read a parsed page.

func pgOne(t *testing.T, root *html.Node, tag, id string) *html.Node {
	t.Helper()
	found := htmltest.All(root, func(n *html.Node) bool { return n.Data == tag && htmltest.Attr(n, "id") == id })
	if len(found) != 1 {
		t.Fatalf("%d %s#%s on the page", len(found), tag, id)
	}
	return found[0]
}

func pgFirstClass(root *html.Node, class string) *html.Node {
	found := htmltest.All(root, func(n *html.Node) bool { return htmltest.HasClass(n, class) })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}
