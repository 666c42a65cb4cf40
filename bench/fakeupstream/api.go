package fakeupstream

import (
	"encoding/json"
	"net/http"
)

// anthropicStreamError is the in-stream error event sent for
// Scenario.ErrorAfter on /v1/messages.
const anthropicStreamError = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"

// openAIStreamError is the in-stream error event sent for
// Scenario.ErrorAfter on /v1/chat/completions.
const openAIStreamError = "data: {\"error\":{\"message\":\"The server had an error while processing your request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"

// systemFingerprint is the OpenAI system_fingerprint of every response.
const systemFingerprint = "fp_fake"

// parseRequest decodes the fields the server needs, answering 400 in the
// API's format when the body is not a JSON object.
func (x *exchange) parseRequest(api apiKind) (requestInfo, bool) {
	var info requestInfo
	err := json.Unmarshal(x.rec.Body, &info)
	if err == nil {
		return info, true
	}
	if api == apiAnthropic {
		x.writeJSON(http.StatusBadRequest, anthropicError("invalid_request_error", "There was an error parsing the body: "+err.Error()))
	} else {
		x.writeJSON(http.StatusBadRequest, openAIError("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error", nil))
	}
	return info, false
}

// serveError answers a Scenario with Status >= 400.
func (x *exchange) serveError(api apiKind, sc Scenario, model string) {
	if !x.sleep(sc.FirstDelay) {
		return
	}
	if sc.ErrorBody != "" {
		x.writeRaw(sc.Status, []byte(sc.ErrorBody))
		return
	}
	if api == apiAnthropic {
		typ, msg := anthropicErrorFor(sc.Status)
		x.writeJSON(sc.Status, anthropicError(typ, msg))
		return
	}
	msg, typ, code := openAIErrorFor(sc.Status, model)
	x.writeJSON(sc.Status, openAIError(msg, typ, code))
}

// stream sends SSE events, honouring FirstDelay, Interval, ErrorAfter,
// CutAfter and Stamp. One element of events is one SSE event.
func (x *exchange) stream(events [][]byte, errEvent string, sc Scenario) {
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	for i, ev := range events {
		last := false
		switch {
		case sc.ErrorAfter > 0 && i == sc.ErrorAfter:
			ev, last = []byte(errEvent), true
		case sc.CutAfter > 0 && i == sc.CutAfter:
			x.cut()
			return
		}
		delay := sc.Interval
		if i == 0 {
			delay = sc.FirstDelay
		}
		if !x.sleep(delay) {
			return
		}
		if sc.Stamp {
			stampEvent(ev)
		}
		if i == 0 {
			x.w.WriteHeader(http.StatusOK)
		}
		if !x.write(ev) || last {
			return
		}
	}
}

// sseEvent formats an Anthropic event.
func sseEvent(name string, data any) []byte {
	b := make([]byte, 0, 64)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, marshal(data)...)
	return append(b, "\n\n"...)
}

// sseData formats an OpenAI event.
func sseData(data any) []byte {
	b := append([]byte("data: "), marshal(data)...)
	return append(b, "\n\n"...)
}

// ---- Anthropic Messages API ----

func (x *exchange) serveAnthropic() {
	seq := x.rec.Seq
	x.w.Header().Set("request-id", "req_fake"+itoa(seq))
	info, ok := x.parseRequest(apiAnthropic)
	if !ok {
		return
	}
	sc := x.s.pick(x.rec)
	if sc.Status >= 400 {
		x.serveError(apiAnthropic, sc, info.Model)
		return
	}
	x.setReceived(sc)
	p := makePlan(sc, apiAnthropic, seq, len(x.rec.Body))
	if !info.Stream {
		if !x.sleep(sc.FirstDelay) {
			return
		}
		x.writeJSON(http.StatusOK, anthropicMessage(p, sc, seq, info.Model))
		return
	}
	x.stream(anthropicEvents(p, sc, seq, info.Model), anthropicStreamError, sc)
}

func anthropicUsage(u Usage, outputTokens int) object {
	return object{
		{"input_tokens", u.InputTokens},
		{"cache_creation_input_tokens", u.CacheCreation},
		{"cache_read_input_tokens", u.CacheRead},
		{"output_tokens", outputTokens},
	}
}

// anthropicMessage builds the non-stream response.
func anthropicMessage(p plan, sc Scenario, seq int, model string) object {
	content := []any{}
	if p.thinking != "" {
		content = append(content, object{{"type", "thinking"}, {"thinking", p.thinking}, {"signature", p.signature}})
	}
	if p.text != "" {
		content = append(content, object{{"type", "text"}, {"text", p.text}})
	}
	for _, tc := range p.tools {
		content = append(content, object{{"type", "tool_use"}, {"id", tc.ID}, {"name", tc.Name}, {"input", toolInput(tc.Arguments)}})
	}
	return object{
		{"id", "msg_fake" + itoa(seq)},
		{"type", "message"},
		{"role", "assistant"},
		{"model", model},
		{"content", content},
		{"stop_reason", p.stopReason},
		{"stop_sequence", nil},
		{"usage", anthropicUsage(p.usage, p.usage.OutputTokens)},
	}.merge(sc.Extra)
}

// anthropicEvents builds the SSE events of a stream.
func anthropicEvents(p plan, sc Scenario, seq int, model string) [][]byte {
	var evs [][]byte
	msg := object{
		{"id", "msg_fake" + itoa(seq)},
		{"type", "message"},
		{"role", "assistant"},
		{"model", model},
		{"content", []any{}},
		{"stop_reason", nil},
		{"stop_sequence", nil},
		{"usage", anthropicUsage(p.usage, 1)},
	}.merge(sc.Extra)
	evs = append(evs, sseEvent("message_start", object{{"type", "message_start"}, {"message", msg}}))

	index := 0
	start := func(block object) {
		evs = append(evs, sseEvent("content_block_start", object{{"type", "content_block_start"}, {"index", index}, {"content_block", block}}))
		if index == 0 && sc.Pings {
			evs = append(evs, sseEvent("ping", object{{"type", "ping"}}))
		}
	}
	delta := func(d object) {
		evs = append(evs, sseEvent("content_block_delta", object{{"type", "content_block_delta"}, {"index", index}, {"delta", d}}))
	}
	stop := func() {
		evs = append(evs, sseEvent("content_block_stop", object{{"type", "content_block_stop"}, {"index", index}}))
		index++
	}

	if p.thinking != "" {
		start(object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}})
		for _, piece := range p.thinkingPieces {
			delta(object{{"type", "thinking_delta"}, {"thinking", piece}})
		}
		delta(object{{"type", "signature_delta"}, {"signature", p.signature}})
		stop()
	}
	if p.text != "" {
		start(object{{"type", "text"}, {"text", ""}})
		for _, piece := range p.textPieces {
			delta(object{{"type", "text_delta"}, {"text", piece}})
		}
		stop()
	}
	for i, tc := range p.tools {
		start(object{{"type", "tool_use"}, {"id", tc.ID}, {"name", tc.Name}, {"input", object{}}})
		for _, piece := range p.argPieces[i] {
			delta(object{{"type", "input_json_delta"}, {"partial_json", piece}})
		}
		stop()
	}

	evs = append(evs, sseEvent("message_delta", object{
		{"type", "message_delta"},
		{"delta", object{{"stop_reason", p.stopReason}, {"stop_sequence", nil}}},
		{"usage", object{{"output_tokens", p.usage.OutputTokens}}},
	}))
	evs = append(evs, sseEvent("message_stop", object{{"type", "message_stop"}}))
	return evs
}

// ---- OpenAI Chat Completions API ----

func (x *exchange) serveOpenAI() {
	seq := x.rec.Seq
	x.w.Header().Set("x-request-id", "req_fake"+itoa(seq))
	info, ok := x.parseRequest(apiOpenAI)
	if !ok {
		return
	}
	sc := x.s.pick(x.rec)
	if sc.Status >= 400 {
		x.serveError(apiOpenAI, sc, info.Model)
		return
	}
	x.setReceived(sc)
	p := makePlan(sc, apiOpenAI, seq, len(x.rec.Body))
	if !info.Stream {
		if !x.sleep(sc.FirstDelay) {
			return
		}
		x.writeJSON(http.StatusOK, openAICompletion(p, sc, seq, info.Model))
		return
	}
	includeUsage := info.StreamOptions != nil && info.StreamOptions.IncludeUsage
	x.stream(openAIEvents(p, sc, seq, info.Model, includeUsage), openAIStreamError, sc)
}

func openAIUsage(u Usage) object {
	o := object{
		{"prompt_tokens", u.InputTokens},
		{"completion_tokens", u.OutputTokens},
		{"total_tokens", u.InputTokens + u.OutputTokens},
	}
	if u.CacheRead > 0 {
		o = append(o, field{"prompt_tokens_details", object{{"cached_tokens", u.CacheRead}}})
	}
	return o
}

// openAICompletion builds the non-stream response.
func openAICompletion(p plan, sc Scenario, seq int, model string) object {
	var content any
	if p.text != "" {
		content = p.text
	}
	msg := object{{"role", "assistant"}, {"content", content}}
	if len(p.tools) > 0 {
		calls := make([]any, 0, len(p.tools))
		for _, tc := range p.tools {
			calls = append(calls, object{
				{"id", tc.ID},
				{"type", "function"},
				{"function", object{{"name", tc.Name}, {"arguments", tc.Arguments}}},
			})
		}
		msg = append(msg, field{"tool_calls", calls})
	}
	msg = append(msg, field{"refusal", nil})
	return object{
		{"id", "chatcmpl-fake" + itoa(seq)},
		{"object", "chat.completion"},
		{"created", 1700000000 + seq},
		{"model", model},
		{"choices", []any{object{
			{"index", 0},
			{"message", msg},
			{"logprobs", nil},
			{"finish_reason", finishReason(p.stopReason)},
		}}},
		{"usage", openAIUsage(p.usage)},
		{"system_fingerprint", systemFingerprint},
	}.merge(sc.Extra)
}

// openAIEvents builds the SSE events of a stream.
func openAIEvents(p plan, sc Scenario, seq int, model string, includeUsage bool) [][]byte {
	id := "chatcmpl-fake" + itoa(seq)
	created := 1700000000 + seq
	head := func(choices []any) object {
		return object{
			{"id", id},
			{"object", "chat.completion.chunk"},
			{"created", created},
			{"model", model},
			{"system_fingerprint", systemFingerprint},
			{"choices", choices},
		}
	}
	var evs [][]byte
	chunk := func(delta object, finish any) {
		c := head([]any{object{{"index", 0}, {"delta", delta}, {"logprobs", nil}, {"finish_reason", finish}}})
		if includeUsage {
			c = append(c, field{"usage", nil})
		}
		evs = append(evs, sseData(c.merge(sc.Extra)))
	}

	chunk(object{{"role", "assistant"}, {"content", ""}, {"refusal", nil}}, nil)
	for _, piece := range p.textPieces {
		chunk(object{{"content", piece}}, nil)
	}
	for i, tc := range p.tools {
		chunk(object{{"tool_calls", []any{object{
			{"index", i},
			{"id", tc.ID},
			{"type", "function"},
			{"function", object{{"name", tc.Name}, {"arguments", ""}}},
		}}}}, nil)
		for _, piece := range p.argPieces[i] {
			chunk(object{{"tool_calls", []any{object{
				{"index", i},
				{"function", object{{"arguments", piece}}},
			}}}}, nil)
		}
	}
	chunk(object{}, finishReason(p.stopReason))
	if includeUsage {
		c := head([]any{})
		c = append(c, field{"usage", openAIUsage(p.usage)})
		evs = append(evs, sseData(c.merge(sc.Extra)))
	}
	evs = append(evs, []byte("data: [DONE]\n\n"))
	return evs
}
