package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"luthien.dev/controlplane/internal/stream"
	"luthien.dev/controlplane/streamcheck"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// testTool is a tool call of a test stream.
type testTool struct{ name, args string }

// streamOf builds an upstream stream with seqs 1, 2, ...: optional text
// split into chunks of at most `chunk` runes (0: one delta), then the tool
// calls (arguments in two deltas).
func streamOf(text string, chunk int, tools []testTool, stop string) []*cpv1.StreamEvent {
	var evs []*cpv1.StreamEvent
	add := func(ev *cpv1.StreamEvent) {
		ev.Seq = uint64(len(evs) + 1)
		evs = append(evs, ev)
	}
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "msg_1", Usage: &cpv1.Usage{InputTokens: 3}}}})
	idx := uint32(0)
	if text != "" {
		add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Block: stream.TextBlock("")}}})
		for _, piece := range chunks(text, chunk) {
			add(textDelta(0, piece))
		}
		add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{}}})
		idx++
	}
	for i, tl := range tools {
		add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: idx,
			Block: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: fmt.Sprintf("toolu_%d", i), Name: tl.name}}}}}})
		h := len(tl.args) / 2
		for _, piece := range []string{tl.args[:h], tl.args[h:]} {
			add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{Index: idx,
				Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: piece}}}}})
		}
		add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: idx}}})
		idx++
	}
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: stop, Usage: &cpv1.Usage{OutputTokens: 5}}}})
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}})
	return evs
}

// chunks splits s into pieces of n runes (n <= 0: one piece).
func chunks(s string, n int) []string {
	r := []rune(s)
	if n <= 0 {
		return []string{s}
	}
	var out []string
	for i := 0; i < len(r); i += n {
		out = append(out, string(r[i:min(i+n, len(r))]))
	}
	return out
}

// messageOf is the complete message equivalent of streamOf.
func messageOf(text string, tools []testTool, stop string) *cpv1.Message {
	msg := &cpv1.Message{Id: "msg_1", StopReason: stop, Usage: &cpv1.Usage{InputTokens: 3, OutputTokens: 5}}
	if text != "" {
		msg.Content = append(msg.Content, stream.TextBlock(text))
	}
	for i, tl := range tools {
		msg.Content = append(msg.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: fmt.Sprintf("toolu_%d", i), Name: tl.name, InputJson: []byte(tl.args)}}})
	}
	return msg
}

// runStream runs a policy's stream over evs, checks the output with the
// stream validator and that no input was mutated, and returns the output.
func runStream(t *testing.T, p Policy, call *Call, evs []*cpv1.StreamEvent) []*cpv1.StreamEvent {
	t.Helper()
	ctx := context.Background()
	before := make([]string, len(evs))
	for i, ev := range evs {
		before[i] = ev.String()
	}
	s := p.NewStream(ctx, call)
	var out []*cpv1.StreamEvent
	for _, ev := range evs {
		emit, err := s.OnEvent(ctx, ev)
		if err != nil {
			t.Fatalf("OnEvent: %v", err)
		}
		out = append(out, emit.Events...)
	}
	emit, err := s.OnEnd(ctx, "")
	if err != nil {
		t.Fatalf("OnEnd: %v", err)
	}
	out = append(out, emit.Events...)
	if err := streamcheck.Check(out); err != nil {
		t.Errorf("invalid output stream: %v\n%s", err, describeStream(out))
	}
	for i, ev := range evs {
		if ev.String() != before[i] {
			t.Errorf("input %d mutated: %s -> %s", i, before[i], ev)
		}
	}
	return out
}

// streamText returns the text and the tool calls of a stream, and its
// stop reason.
type streamResult struct {
	text  string   // all text deltas, blocks separated by "|"
	tools []string // "name args"
	stop  string
}

func resultOf(evs []*cpv1.StreamEvent) streamResult {
	var r streamResult
	var texts []string
	var cur strings.Builder
	var args strings.Builder
	var tool string
	for _, ev := range evs {
		switch x := ev.GetEvent().(type) {
		case *cpv1.StreamEvent_ContentBlockStart:
			cur.Reset()
			args.Reset()
			tool = x.ContentBlockStart.GetBlock().GetToolUse().GetName()
			cur.WriteString(x.ContentBlockStart.GetBlock().GetText().GetText())
		case *cpv1.StreamEvent_ContentBlockDelta:
			cur.WriteString(x.ContentBlockDelta.GetText().GetText())
			args.WriteString(x.ContentBlockDelta.GetInputJson().GetPartialJson())
		case *cpv1.StreamEvent_ContentBlockStop:
			if tool != "" {
				r.tools = append(r.tools, tool+" "+args.String())
			} else {
				texts = append(texts, cur.String())
			}
		case *cpv1.StreamEvent_MessageDelta:
			r.stop = x.MessageDelta.GetStopReason()
		}
	}
	r.text = strings.Join(texts, "|")
	return r
}

// messageResult is resultOf for a complete message.
func messageResult(msg *cpv1.Message) streamResult {
	var r streamResult
	var texts []string
	for _, b := range msg.GetContent() {
		if tu := b.GetToolUse(); tu != nil {
			r.tools = append(r.tools, tu.GetName()+" "+string(tu.GetInputJson()))
		} else {
			texts = append(texts, b.GetText().GetText())
		}
	}
	r.text = strings.Join(texts, "|")
	r.stop = msg.GetStopReason()
	return r
}

// describeStream renders a stream for failure messages.
func describeStream(evs []*cpv1.StreamEvent) string {
	var sb strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&sb, "  %s %v\n", streamcheck.Kind(ev), ev)
	}
	return sb.String()
}

// events collects recorded policy events.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) Record(_ context.Context, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// types lists the recorded event types.
func (e *events) types() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		out = append(out, ev.Type)
	}
	return out
}

// find returns the first event of a type.
func (e *events) find(typ string) (Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if ev.Type == typ {
			return ev, true
		}
	}
	return Event{}, false
}

// testCall returns a call recording into a fresh events.
func testCall(format cpv1.ClientFormat) (*Call, *events) {
	ev := &events{}
	return &Call{ID: "call_1", Format: format, Request: []byte(`{}`), Recorder: ev}, ev
}

const (
	anthropicFormat = cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES
	openaiFormat    = cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT
)

// judgeServer is a fake judge: answer gives the status and text for each
// request's user prompt. It speaks both endpoint formats.
func judgeServer(t *testing.T, answer func(prompt string) (int, string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.Unmarshal(body, &req)
		prompt := ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				prompt = m.Content
			}
		}
		st, text := answer(prompt)
		if st != http.StatusOK {
			w.WriteHeader(st)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/messages") {
			_ = json.NewEncoder(w).Encode(map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": text}}}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// mustBuild builds a policy from a configuration.
func mustBuild(t *testing.T, class string, cfg map[string]any) Policy {
	t.Helper()
	p, err := builtin(t).Build(class, cfg)
	if err != nil {
		t.Fatalf("Build(%s): %v", class, err)
	}
	return p
}
