package fakeupstream

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// ToolCall is a tool call the fake assistant makes.
type ToolCall struct {
	// ID is the tool call id. When empty it is "toolu_fake<seq>_<i>"
	// (Anthropic) or "call_fake<seq>_<i>" (OpenAI), i being the 0-based
	// index of the call.
	ID string
	// Name is the tool (function) name.
	Name string
	// Arguments is the JSON object text of the arguments, e.g.
	// {"command":"ls"}. Empty means "{}". In streams the concatenated
	// argument deltas equal Arguments exactly.
	Arguments string
}

// Usage is the token usage reported in a response.
type Usage struct {
	// InputTokens is Anthropic input_tokens / OpenAI prompt_tokens.
	InputTokens int
	// OutputTokens is Anthropic output_tokens / OpenAI completion_tokens.
	OutputTokens int
	// CacheCreation is Anthropic cache_creation_input_tokens.
	CacheCreation int
	// CacheRead is Anthropic cache_read_input_tokens and, when non-zero,
	// OpenAI usage.prompt_tokens_details.cached_tokens.
	CacheRead int
}

// Scenario describes one response of the fake upstream. The zero value
// answers DefaultText, split into one delta per word.
type Scenario struct {
	// Text is the assistant text. When Text is empty and there are no
	// ToolCalls, DefaultText is used.
	Text string
	// Thinking, for Anthropic only, adds a thinking block (with a
	// signature) before the text. It is split into deltas like Text.
	Thinking string
	// ToolCalls are tool calls after the text. With tool calls the stop
	// reason is tool_use (Anthropic) / finish_reason tool_calls (OpenAI).
	ToolCalls []ToolCall
	// Chunks is the number of deltas the text is split into, by runes, as
	// evenly as possible. 0 means one delta per word, whitespace attached to
	// the start of the following word ("Hello", " from", " the", ...). When
	// Chunks is at least the rune count, there is one rune per delta.
	Chunks int
	// ArgChunks is the number of pieces tool arguments are split into, by
	// runes, as evenly as possible (0 means 3; at most one rune per piece).
	ArgChunks int
	// FirstDelay is a wait before the first stream event (nothing, not even
	// the response headers, is sent before it) or before the non-stream
	// response.
	FirstDelay time.Duration
	// Interval is a wait before every stream event after the first.
	Interval time.Duration
	// Status, when >= 400, makes the server answer with this status and
	// ErrorBody, or with a realistic error JSON in the API format of the
	// request when ErrorBody is empty. No stream is sent. Values below 400
	// are ignored (successful responses always use 200).
	Status int
	// ErrorBody is the error response body used with Status.
	ErrorBody string
	// ErrorAfter, when > 0 and streaming, sends an in-stream error event
	// after this many events and ends the stream (cleanly, without the
	// remaining events and without OpenAI's [DONE]).
	ErrorAfter int
	// CutAfter, when > 0 and streaming, closes the connection abruptly
	// after this many events, without terminating the HTTP response.
	CutAfter int
	// StopReason overrides the Anthropic stop_reason (default end_turn, or
	// tool_use with tool calls). The OpenAI finish_reason is mapped from it:
	// end_turn and stop_sequence -> stop, max_tokens -> length, tool_use ->
	// tool_calls, refusal -> content_filter; other values are used as they
	// are.
	StopReason string
	// Usage overrides the reported usage. By default input tokens are
	// len(request body)/4 and output tokens the number of content deltas
	// (text, thinking and tool argument deltas that the API carries).
	Usage *Usage
	// Pings makes Anthropic streams emit a ping event right after the first
	// content_block_start, as the real API does.
	Pings bool
	// Stamp makes the response carry stamps for the benchmark harness
	// (see StampSep): in streams, every text delta ends with the time it
	// was written; every response carries ReceivedHeader. Only text
	// deltas are stamped; non-stream bodies are unchanged.
	Stamp bool
	// Extra holds extra top-level fields merged into message_start.message
	// (Anthropic streams), every chunk (OpenAI streams) and the non-stream
	// response, to test that unknown fields survive. Existing fields with
	// the same name are replaced in place; new ones are appended.
	Extra map[string]any
}

type apiKind int

const (
	apiAnthropic apiKind = iota
	apiOpenAI
)

// plan is a Scenario resolved for one request.
type plan struct {
	text           string
	textPieces     []string
	thinking       string
	thinkingPieces []string
	signature      string
	tools          []ToolCall
	argPieces      [][]string
	stopReason     string // Anthropic vocabulary
	usage          Usage
}

func makePlan(sc Scenario, api apiKind, seq int, bodyLen int) plan {
	p := plan{text: sc.Text}
	if p.text == "" && len(sc.ToolCalls) == 0 {
		p.text = DefaultText
	}
	p.textPieces = splitText(p.text, sc.Chunks)
	if sc.Stamp {
		for i := range p.textPieces {
			p.textPieces[i] += string(stampHolder)
		}
	}
	deltas := len(p.textPieces)
	if api == apiAnthropic && sc.Thinking != "" {
		p.thinking = sc.Thinking
		p.thinkingPieces = splitText(sc.Thinking, sc.Chunks)
		p.signature = base64.StdEncoding.EncodeToString([]byte("fake-signature-" + strconv.Itoa(seq) + "-" + strconv.Itoa(utf8.RuneCountInString(sc.Thinking))))
		deltas += len(p.thinkingPieces)
	}
	argChunks := sc.ArgChunks
	if argChunks <= 0 {
		argChunks = 3
	}
	for i, tc := range sc.ToolCalls {
		if tc.ID == "" {
			if api == apiAnthropic {
				tc.ID = "toolu_fake" + strconv.Itoa(seq) + "_" + strconv.Itoa(i)
			} else {
				tc.ID = "call_fake" + strconv.Itoa(seq) + "_" + strconv.Itoa(i)
			}
		}
		if tc.Arguments == "" {
			tc.Arguments = "{}"
		}
		p.tools = append(p.tools, tc)
		pieces := splitRunes(tc.Arguments, argChunks)
		p.argPieces = append(p.argPieces, pieces)
		deltas += len(pieces)
	}
	switch {
	case sc.StopReason != "":
		p.stopReason = sc.StopReason
	case len(p.tools) > 0:
		p.stopReason = "tool_use"
	default:
		p.stopReason = "end_turn"
	}
	if sc.Usage != nil {
		p.usage = *sc.Usage
	} else {
		p.usage = Usage{InputTokens: bodyLen / 4, OutputTokens: deltas}
	}
	return p
}

// finishReason maps an Anthropic stop reason to an OpenAI finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence":
		return "stop"
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default:
		return stop
	}
}

// splitText splits s into deltas: by words when chunks == 0, else into
// chunks pieces by runes.
func splitText(s string, chunks int) []string {
	if s == "" {
		return nil
	}
	if chunks > 0 {
		return splitRunes(s, chunks)
	}
	return splitWords(s)
}

// splitWords splits s before every run of whitespace that follows a
// non-space, so that whitespace stays attached to the start of the next
// word. Trailing whitespace stays with the last word.
func splitWords(s string) []string {
	var out []string
	start := 0
	prevSpace := true
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if sp && !prevSpace && i > start {
			out = append(out, s[start:i])
			start = i
		}
		prevSpace = sp
	}
	tail := s[start:]
	if len(out) > 0 && isAllSpace(tail) {
		out[len(out)-1] += tail
	} else {
		out = append(out, tail)
	}
	return out
}

func isAllSpace(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// splitRunes splits s into n pieces of as equal rune counts as possible
// (earlier pieces get the extra runes); with n >= rune count, one rune per
// piece.
func splitRunes(s string, n int) []string {
	runes := []rune(s)
	if len(runes) == 0 {
		return nil
	}
	if n <= 0 {
		n = 1
	}
	if n > len(runes) {
		n = len(runes)
	}
	out := make([]string, 0, n)
	base, extra := len(runes)/n, len(runes)%n
	pos := 0
	for i := range n {
		size := base
		if i < extra {
			size++
		}
		out = append(out, string(runes[pos:pos+size]))
		pos += size
	}
	return out
}

// toolInput returns the tool arguments as a JSON value for Anthropic's
// "input" field.
func toolInput(args string) any {
	if json.Valid([]byte(args)) {
		return json.RawMessage(args)
	}
	return args
}

// requestInfo is what the server needs from a request body.
type requestInfo struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}
