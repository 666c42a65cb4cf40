package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// The round-trip tests generate conversations, responses and streams from
// a fixed seed, translate them there and back, and check that text, tool
// names, arguments and stop reasons survive.

const rounds = 200

var words = []string{"hello", "wörld", "émoji 🎉", "<b>&</b>", "line\nbreak", `"quoted"`, "tab\t", "日本語", "42"}

func genText(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.IntN(len(words))]
	}
	return strings.Join(parts, " ")
}

func genArgs(r *rand.Rand) string {
	m := map[string]any{}
	for i := range r.IntN(3) {
		switch r.IntN(3) {
		case 0:
			m[fmt.Sprintf("k%d", i)] = genText(r)
		case 1:
			m[fmt.Sprintf("k%d", i)] = r.IntN(1000)
		default:
			m[fmt.Sprintf("k%d", i)] = []any{genText(r), true, nil}
		}
	}
	b, _ := jsonx.Marshal(m)
	return string(b)
}

// item is one element of a conversation, the same in both formats.
type item struct {
	Role, Kind, Text, ID, Name, Args string
}

// genConversation makes a conversation: a system prompt, then user turns,
// assistant turns with text and/or tool calls, and the tool results.
func genConversation(r *rand.Rand) (system string, items []item) {
	if r.IntN(2) == 0 {
		system = genText(r)
	}
	for turn := range 1 + r.IntN(4) {
		items = append(items, item{Role: "user", Kind: "text", Text: genText(r)})
		if r.IntN(2) == 0 {
			items = append(items, item{Role: "assistant", Kind: "text", Text: genText(r)})
		}
		var calls []item
		for c := range r.IntN(3) {
			calls = append(calls, item{Role: "assistant", Kind: "tool_call", ID: fmt.Sprintf("call_%d_%d", turn, c),
				Name: fmt.Sprintf("tool_%d", r.IntN(5)), Args: genArgs(r)})
		}
		if len(calls) == 0 && (len(items) == 0 || items[len(items)-1].Role != "assistant") {
			items = append(items, item{Role: "assistant", Kind: "text", Text: genText(r)})
		}
		items = append(items, calls...)
		for _, c := range calls {
			items = append(items, item{Role: "user", Kind: "tool_result", ID: c.ID, Text: genText(r)})
		}
	}
	return system, items
}

// chatBody renders a conversation as a Chat Completions request.
func chatBody(system string, items []item) []byte {
	var msgs []any
	if system != "" {
		msgs = append(msgs, map[string]any{"role": "system", "content": system})
	}
	for i := 0; i < len(items); i++ {
		it := items[i]
		switch {
		case it.Kind == "tool_result":
			msgs = append(msgs, map[string]any{"role": "tool", "tool_call_id": it.ID, "content": it.Text})
		case it.Role == "user":
			msgs = append(msgs, map[string]any{"role": "user", "content": it.Text})
		default:
			m := map[string]any{"role": "assistant", "content": nil}
			var calls []any
			for ; i < len(items) && items[i].Role == "assistant"; i++ {
				if items[i].Kind == "text" {
					m["content"] = items[i].Text
				} else {
					calls = append(calls, map[string]any{"id": items[i].ID, "type": "function",
						"function": map[string]any{"name": items[i].Name, "arguments": items[i].Args}})
				}
			}
			i--
			if calls != nil {
				m["tool_calls"] = calls
			}
			msgs = append(msgs, m)
		}
	}
	b, _ := jsonx.Marshal(map[string]any{"model": "m", "max_tokens": 100, "messages": msgs})
	return b
}

// messagesBody renders a conversation as a Messages request.
func messagesBody(system string, items []item) []byte {
	var msgs []any
	for i := 0; i < len(items); {
		role := items[i].Role
		var blocks []any
		for ; i < len(items) && items[i].Role == role; i++ {
			it := items[i]
			switch it.Kind {
			case "text":
				blocks = append(blocks, map[string]any{"type": "text", "text": it.Text})
			case "tool_call":
				blocks = append(blocks, map[string]any{"type": "tool_use", "id": it.ID, "name": it.Name, "input": json.RawMessage(it.Args)})
			case "tool_result":
				blocks = append(blocks, map[string]any{"type": "tool_result", "tool_use_id": it.ID, "content": it.Text})
			}
		}
		msgs = append(msgs, map[string]any{"role": role, "content": blocks})
	}
	req := map[string]any{"model": "m", "max_tokens": 100, "messages": msgs}
	if system != "" {
		req["system"] = []any{map[string]any{"type": "text", "text": system}}
	}
	b, _ := jsonx.Marshal(req)
	return b
}

// normJSON re-encodes a JSON value so that equal values compare equal.
func normJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("arguments %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// textOf reads a string or an array of text parts/blocks.
func textOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct{ Text string }
	if err := json.Unmarshal(raw, &parts); err != nil {
		t.Fatalf("content %s: %v", raw, err)
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// chatItems reads a Chat Completions request back into items.
func chatItems(t *testing.T, body []byte) (system string, items []item) {
	t.Helper()
	var req struct {
		Messages []struct {
			Role       string
			Content    json.RawMessage
			ToolCallID string `json:"tool_call_id"`
			ToolCalls  []struct {
				ID       string
				Function struct{ Name, Arguments string }
			} `json:"tool_calls"`
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	for _, m := range req.Messages {
		text := ""
		if !isNull(m.Content) {
			text = textOf(t, m.Content)
		}
		switch m.Role {
		case "system":
			system += text
		case "tool":
			items = append(items, item{Role: "user", Kind: "tool_result", ID: m.ToolCallID, Text: text})
		default:
			if text != "" {
				items = append(items, item{Role: m.Role, Kind: "text", Text: text})
			}
			for _, c := range m.ToolCalls {
				items = append(items, item{Role: m.Role, Kind: "tool_call", ID: c.ID, Name: c.Function.Name, Args: normJSON(t, c.Function.Arguments)})
			}
		}
	}
	return system, items
}

// messagesItems reads a Messages request back into items.
func messagesItems(t *testing.T, body []byte) (system string, items []item) {
	t.Helper()
	var req struct {
		System   json.RawMessage
		Messages []struct {
			Role    string
			Content json.RawMessage
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	if !isNull(req.System) {
		system = textOf(t, req.System)
	}
	for _, m := range req.Messages {
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			items = append(items, item{Role: m.Role, Kind: "text", Text: s})
			continue
		}
		var blocks []struct {
			Type, Text, ID, Name string
			ToolUseID            string `json:"tool_use_id"`
			Input                json.RawMessage
			Content              json.RawMessage
		}
		if err := json.Unmarshal(m.Content, &blocks); err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			switch b.Type {
			case "text":
				items = append(items, item{Role: m.Role, Kind: "text", Text: b.Text})
			case "tool_use":
				items = append(items, item{Role: m.Role, Kind: "tool_call", ID: b.ID, Name: b.Name, Args: normJSON(t, string(b.Input))})
			case "tool_result":
				items = append(items, item{Role: m.Role, Kind: "tool_result", ID: b.ToolUseID, Text: textOf(t, b.Content)})
			}
		}
	}
	return system, items
}

func normItems(t *testing.T, items []item) []item {
	out := make([]item, len(items))
	for i, it := range items {
		if it.Args != "" {
			it.Args = normJSON(t, it.Args)
		}
		out[i] = it
	}
	return out
}

func TestRoundTripRequests(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rounds {
		system, items := genConversation(r)
		want := normItems(t, items)

		in := chatBody(system, items)
		mid, _, err := ChatToMessages(in)
		if err != nil {
			t.Fatal(err)
		}
		if s, got := messagesItems(t, mid); s != system || !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: chat → messages lost content:\n in %s\nout %s", i, in, mid)
		}
		back, dropped, err := MessagesToChat(mid)
		if err != nil {
			t.Fatal(err)
		}
		if s, got := chatItems(t, back); s != system || !reflect.DeepEqual(got, want) || len(dropped) != 0 {
			t.Fatalf("round %d: chat → messages → chat lost content (dropped %v):\n in %s\nout %s", i, dropped, in, back)
		}

		in = messagesBody(system, items)
		mid, _, err = MessagesToChat(in)
		if err != nil {
			t.Fatal(err)
		}
		back, dropped, err = ChatToMessages(mid)
		if err != nil {
			t.Fatal(err)
		}
		if s, got := messagesItems(t, back); s != system || !reflect.DeepEqual(got, want) || len(dropped) != 0 {
			t.Fatalf("round %d: messages → chat → messages lost content (dropped %v):\n in %s\nout %s", i, dropped, in, back)
		}
	}
}

// genMessage makes a response: optional text, tool calls, a stop reason
// that fits them, and usage.
func genMessage(r *rand.Rand) *cpv1.Message {
	m := &cpv1.Message{Id: fmt.Sprintf("msg_%d", r.IntN(1e6)), Model: "model-x",
		Usage: &cpv1.Usage{InputTokens: int64(r.IntN(500)), OutputTokens: int64(r.IntN(500)), CacheReadInputTokens: int64(r.IntN(3) * 100)}}
	if r.IntN(3) > 0 {
		m.Content = append(m.Content, textContent(genText(r)))
	}
	tools := r.IntN(3)
	for c := range tools {
		m.Content = append(m.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{
			Id: fmt.Sprintf("toolu_%d", c), Name: fmt.Sprintf("tool_%d", r.IntN(5)), InputJson: []byte(genArgs(r))}}})
	}
	switch n := r.IntN(4); {
	case tools > 0:
		m.StopReason = "tool_use"
	case n == 0:
		m.StopReason = "max_tokens"
	case n == 1:
		m.StopReason = "refusal"
	default:
		m.StopReason = "end_turn"
	}
	return m
}

// summary is what a round trip must keep of a message.
type summary struct {
	Text, Stop string
	Tools      []string // name and normalised arguments
	In, Cached int64
	Out        int64
}

func summarise(t *testing.T, m *cpv1.Message) summary {
	t.Helper()
	s := summary{Stop: m.GetStopReason(), In: m.GetUsage().GetInputTokens(), Cached: m.GetUsage().GetCacheReadInputTokens(),
		Out: m.GetUsage().GetOutputTokens()}
	for _, b := range m.GetContent() {
		if tx := b.GetText(); tx != nil {
			s.Text += tx.GetText()
		}
		if tu := b.GetToolUse(); tu != nil {
			s.Tools = append(s.Tools, tu.GetName()+" "+normJSON(t, string(tu.GetInputJson())))
		}
	}
	return s
}

func TestRoundTripResponses(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range rounds {
		msg := genMessage(r)
		want := summarise(t, msg)

		in, err := anthropic.Dialect{}.RenderMessage(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		chat, _, err := AnthropicResponseToChat(in, "")
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := ChatResponseToAnthropic(chat, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := anthropic.Dialect{}.ParseMessage(back)
		if err != nil {
			t.Fatal(err)
		}
		if s := summarise(t, got); !reflect.DeepEqual(s, want) {
			t.Fatalf("round %d: anthropic → chat → anthropic:\n got %+v\nwant %+v\n%s", i, s, want, chat)
		}

		// And from OpenAI: prompt_tokens include the cached ones.
		msg.Usage.InputTokens += msg.Usage.GetCacheReadInputTokens()
		in, err = openai.Dialect{}.RenderMessage(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if in, err = dialect.Overlay(in, marshal(map[string]any{"usage": chatUsageOf(want.usage())})); err != nil {
			t.Fatal(err)
		}
		anth, _, err := ChatResponseToAnthropic(in, "")
		if err != nil {
			t.Fatal(err)
		}
		chat, _, err = AnthropicResponseToChat(anth, "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(chat, []byte(`"cached_tokens":`+fmt.Sprint(want.Cached))) {
			t.Fatalf("round %d: cached tokens lost: %s", i, chat)
		}
		got, err = openai.Dialect{}.ParseMessage(chat)
		if err != nil {
			t.Fatal(err)
		}
		got.Usage = anthropicUsageOf(got.GetUsage().GetInputTokens(), want.Cached, got.GetUsage().GetOutputTokens())
		got.StopReason = canonicalStop(got.GetStopReason())
		if s := summarise(t, got); !reflect.DeepEqual(s, want) {
			t.Fatalf("round %d: chat → anthropic → chat:\n got %+v\nwant %+v\n%s", i, s, want, chat)
		}
	}
}

func (s summary) usage() *cpv1.Usage {
	return &cpv1.Usage{InputTokens: s.In, CacheReadInputTokens: s.Cached, OutputTokens: s.Out}
}

// shuffleText moves the text block of a message after its tool calls
// half of the time: upstream may send text after a tool call, and the
// translation must keep it.
func shuffleText(r *rand.Rand, content []*cpv1.ContentBlock) []*cpv1.ContentBlock {
	if len(content) < 2 || content[0].GetText() == nil || r.IntN(2) == 0 {
		return content
	}
	return append(append([]*cpv1.ContentBlock(nil), content[1:]...), content[0])
}

// anthropicStreamOf renders a message as an Anthropic stream, text and
// arguments cut into random pieces, the text block sometimes after the
// tool blocks, and the usage in the message_delta sometimes cumulative
// (input and cache tokens too), as current streams send it.
func anthropicStreamOf(t *testing.T, r *rand.Rand, m *cpv1.Message) []byte {
	t.Helper()
	var evs []*cpv1.StreamEvent
	add := func(e *cpv1.StreamEvent) { evs = append(evs, e) }
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: m.GetId(), Model: m.GetModel(),
		Usage: &cpv1.Usage{InputTokens: m.GetUsage().GetInputTokens(), CacheReadInputTokens: m.GetUsage().GetCacheReadInputTokens()}}}})
	for i, b := range shuffleText(r, m.GetContent()) {
		idx := uint32(i)
		var whole string
		start := &cpv1.ContentBlock{}
		mk := func(piece string) *cpv1.ContentBlockDelta {
			return &cpv1.ContentBlockDelta{Index: idx, Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: piece}}}
		}
		if tx := b.GetText(); tx != nil {
			whole = tx.GetText()
			start.Block = &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{}}
		} else {
			tu := b.GetToolUse()
			whole = string(tu.GetInputJson())
			start.Block = &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: tu.GetId(), Name: tu.GetName()}}
			mk = func(piece string) *cpv1.ContentBlockDelta {
				return &cpv1.ContentBlockDelta{Index: idx, Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: piece}}}
			}
		}
		add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: idx, Block: start}}})
		for rest := []rune(whole); len(rest) > 0; {
			n := min(1+r.IntN(6), len(rest))
			add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: mk(string(rest[:n]))}})
			rest = rest[n:]
		}
		add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: idx}}})
	}
	du := &cpv1.Usage{OutputTokens: m.GetUsage().GetOutputTokens()}
	if r.IntN(2) == 0 {
		du.InputTokens, du.CacheReadInputTokens = m.GetUsage().GetInputTokens(), m.GetUsage().GetCacheReadInputTokens()
	}
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: m.GetStopReason(), Usage: du}}})
	add(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}})
	var out bytes.Buffer
	enc := anthropic.Dialect{}.NewEncoder(dialect.Request{})
	for _, e := range evs {
		if err := enc.Event(&out, e, nil); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// messageOf rebuilds a message from a valid canonical event stream.
func messageOf(evs []*cpv1.StreamEvent) *cpv1.Message {
	m := &cpv1.Message{Usage: &cpv1.Usage{}}
	var args []byte
	for _, e := range evs {
		switch x := e.GetEvent().(type) {
		case *cpv1.StreamEvent_MessageStart:
			m.Usage.InputTokens, m.Usage.CacheReadInputTokens = x.MessageStart.GetUsage().GetInputTokens(), x.MessageStart.GetUsage().GetCacheReadInputTokens()
		case *cpv1.StreamEvent_ContentBlockStart:
			m.Content = append(m.Content, x.ContentBlockStart.GetBlock())
			args = nil
		case *cpv1.StreamEvent_ContentBlockDelta:
			b := m.Content[len(m.Content)-1]
			if d := x.ContentBlockDelta.GetText(); d != nil {
				b.GetText().Text += d.GetText()
			}
			if d := x.ContentBlockDelta.GetInputJson(); d != nil {
				args = append(args, d.GetPartialJson()...)
				b.GetToolUse().InputJson = args
			}
		case *cpv1.StreamEvent_MessageDelta:
			m.StopReason = x.MessageDelta.GetStopReason()
			if u := x.MessageDelta.GetUsage(); u != nil {
				m.Usage.OutputTokens = u.GetOutputTokens()
				if u.GetInputTokens() != 0 || u.GetCacheReadInputTokens() != 0 {
					m.Usage.InputTokens, m.Usage.CacheReadInputTokens = u.GetInputTokens(), u.GetCacheReadInputTokens()
				}
			}
		}
	}
	for _, b := range m.Content {
		if tu := b.GetToolUse(); tu != nil && len(tu.GetInputJson()) == 0 {
			tu.InputJson = []byte("{}")
		}
	}
	return m
}

func TestRoundTripStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range rounds {
		msg := genMessage(r)
		want := summarise(t, msg)
		upstream := anthropicStreamOf(t, r, msg)

		chat := translateStream(t, NewAnthropicToChatStream(dialect.Request{IncludeUsage: true}), bytes.NewReader(upstream))
		validateChatStream(t, chat)
		back := translateStream(t, NewChatToAnthropicStream(), bytes.NewReader(chat))
		validateAnthropicStream(t, back)
		if t.Failed() {
			t.Fatalf("round %d:\n%s\n%s", i, chat, back)
		}
		if s := summarise(t, messageOf(decodeAll(t, anthropic.Dialect{}, back))); !reflect.DeepEqual(s, want) {
			t.Fatalf("round %d: anthropic → chat → anthropic stream:\n got %+v\nwant %+v\n%s\n%s", i, s, want, chat, back)
		}
	}
}

// chatStreamOf renders a message as an OpenAI stream answering a request
// with include_usage: text and arguments cut into random pieces, a tool
// call's name sometimes in the chunk with the last text, the text
// sometimes after the tool calls, and the usage in a last chunk.
func chatStreamOf(r *rand.Rand, m *cpv1.Message) []byte {
	var b bytes.Buffer
	chunk := func(delta any, finish any) {
		b.WriteString("data: ")
		b.Write(marshal(map[string]any{"id": m.GetId(), "object": "chat.completion.chunk", "created": 1761500200, "model": m.GetModel(),
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}, "usage": nil}))
		b.WriteString("\n\n")
	}
	pieces := func(s string) []string {
		var out []string
		for rest := []rune(s); len(rest) > 0; {
			n := min(1+r.IntN(6), len(rest))
			out = append(out, string(rest[:n]))
			rest = rest[n:]
		}
		return out
	}
	chunk(map[string]any{"role": "assistant", "content": ""}, nil)
	tool := 0
	var pending map[string]any // the last text piece, sent with the next tool call's start
	flush := func() {
		if pending != nil {
			chunk(pending, nil)
			pending = nil
		}
	}
	for _, blk := range shuffleText(r, m.GetContent()) {
		if tx := blk.GetText(); tx != nil {
			ps := pieces(tx.GetText())
			for _, p := range ps[:len(ps)-1] {
				chunk(map[string]any{"content": p}, nil)
			}
			pending = map[string]any{"content": ps[len(ps)-1]}
			continue
		}
		tu := blk.GetToolUse()
		start := map[string]any{"index": tool, "id": tu.GetId(), "type": "function", "function": map[string]any{"name": tu.GetName(), "arguments": ""}}
		if pending != nil && r.IntN(2) == 0 {
			pending["tool_calls"] = []any{start}
			flush()
		} else {
			flush()
			chunk(map[string]any{"tool_calls": []any{start}}, nil)
		}
		for _, p := range pieces(string(tu.GetInputJson())) {
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": tool, "function": map[string]any{"arguments": p}}}}, nil)
		}
		tool++
	}
	flush()
	chunk(map[string]any{}, openai.FinishReason(m.GetStopReason()))
	u := m.GetUsage()
	b.WriteString("data: ")
	b.Write(marshal(map[string]any{"id": m.GetId(), "object": "chat.completion.chunk", "created": 1761500200, "model": m.GetModel(), "choices": []any{},
		"usage": map[string]any{"prompt_tokens": u.GetInputTokens() + u.GetCacheReadInputTokens(), "completion_tokens": u.GetOutputTokens(),
			"total_tokens":          u.GetInputTokens() + u.GetCacheReadInputTokens() + u.GetOutputTokens(),
			"prompt_tokens_details": map[string]any{"cached_tokens": u.GetCacheReadInputTokens()}}}))
	b.WriteString("\n\ndata: [DONE]\n\n")
	return b.Bytes()
}

// chatUsageIn reads the usage chunk of an OpenAI client stream.
func chatUsageIn(t *testing.T, stream []byte) (prompt, cached, completion int64) {
	t.Helper()
	for _, ev := range clientEvents(t, stream) {
		var c struct {
			Choices []json.RawMessage
			Usage   *chatUsage
		}
		if json.Unmarshal([]byte(ev.Data), &c) == nil && c.Usage != nil && len(c.Choices) == 0 {
			return c.Usage.PromptTokens, c.Usage.PromptTokensDetails.CachedTokens, c.Usage.CompletionTokens
		}
	}
	t.Fatalf("no usage chunk:\n%s", stream)
	return 0, 0, 0
}

func TestRoundTripChatStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range rounds {
		msg := genMessage(r)
		want := summarise(t, msg)
		upstream := chatStreamOf(r, msg)

		anth := translateStream(t, NewChatToAnthropicStream(), bytes.NewReader(upstream))
		validateAnthropicStream(t, anth)
		if t.Failed() {
			t.Fatalf("round %d:\n%s\n%s", i, upstream, anth)
		}
		if s := summarise(t, messageOf(decodeAll(t, anthropic.Dialect{}, anth))); !reflect.DeepEqual(s, want) {
			t.Fatalf("round %d: chat → anthropic stream:\n got %+v\nwant %+v\n%s\n%s", i, s, want, upstream, anth)
		}

		back := translateStream(t, NewAnthropicToChatStream(dialect.Request{IncludeUsage: true}), bytes.NewReader(anth))
		validateChatStream(t, back)
		if t.Failed() {
			t.Fatalf("round %d:\n%s\n%s", i, anth, back)
		}
		got := messageOf(decodeAll(t, openai.Dialect{}, back))
		got.StopReason = canonicalStop(got.GetStopReason())
		prompt, cached, completion := chatUsageIn(t, back)
		got.Usage = anthropicUsageOf(prompt, cached, completion)
		if s := summarise(t, got); !reflect.DeepEqual(s, want) {
			t.Fatalf("round %d: chat → anthropic → chat stream:\n got %+v\nwant %+v\n%s\n%s", i, s, want, anth, back)
		}
	}
}
