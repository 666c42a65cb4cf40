package translate

import (
	"encoding/json"
	"fmt"
	"strings"

	"luthien.dev/canon/jsonx"
)

// This file: Chat Completion → Response object, and what a Response
// repeats of its request.

// ResponsesEcho is what a Response repeats of its request: instructions,
// tools, sampling settings and the like, as the client sent them. Make it
// with NewResponsesEcho.
type ResponsesEcho struct {
	// ID is the id a Response is named after when the chat answer names
	// none (a stream that fails before its first chunk): the gateway gives
	// its call id.
	ID string

	instructions      json.RawMessage
	maxOutputTokens   json.RawMessage
	metadata          json.RawMessage
	temperature       json.RawMessage
	topP              json.RawMessage
	text              json.RawMessage
	toolChoice        json.RawMessage
	tools             json.RawMessage
	user              json.RawMessage
	parallelToolCalls bool
	truncation        string
}

// NewResponsesEcho reads what a Response repeats from a Responses request
// body (one ResponsesToChat accepted). The tools repeated are the
// function tools, the ones the call had.
func NewResponsesEcho(body []byte) ResponsesEcho {
	var req struct {
		Instructions      json.RawMessage   `json:"instructions"`
		MaxOutputTokens   json.RawMessage   `json:"max_output_tokens"`
		Metadata          json.RawMessage   `json:"metadata"`
		Temperature       json.RawMessage   `json:"temperature"`
		TopP              json.RawMessage   `json:"top_p"`
		Text              json.RawMessage   `json:"text"`
		ToolChoice        json.RawMessage   `json:"tool_choice"`
		Tools             []json.RawMessage `json:"tools"`
		User              json.RawMessage   `json:"user"`
		ParallelToolCalls *bool             `json:"parallel_tool_calls"`
		Truncation        string            `json:"truncation"`
	}
	_ = json.Unmarshal(body, &req)
	e := ResponsesEcho{instructions: req.Instructions, maxOutputTokens: req.MaxOutputTokens, metadata: req.Metadata,
		temperature: req.Temperature, topP: req.TopP, text: req.Text, toolChoice: req.ToolChoice, user: req.User,
		parallelToolCalls: req.ParallelToolCalls == nil || *req.ParallelToolCalls, truncation: req.Truncation}
	tools := []json.RawMessage{}
	for _, t := range req.Tools {
		var typ struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(t, &typ) == nil && typ.Type == "function" {
			tools = append(tools, compact(t))
		}
	}
	e.tools = marshal(tools)
	if isNull(e.metadata) {
		e.metadata = json.RawMessage(`{}`)
	}
	if isNull(e.text) {
		e.text = json.RawMessage(`{"format":{"type":"text"}}`)
	}
	if isNull(e.toolChoice) {
		e.toolChoice = json.RawMessage(`"auto"`)
	}
	if e.truncation == "" {
		e.truncation = "disabled"
	}
	return e
}

// rsResponse is a Response object; its field order is the order of the
// output, the API's own.
type rsResponse struct {
	ID                 string          `json:"id"`
	Object             string          `json:"object"`
	CreatedAt          int64           `json:"created_at"`
	Status             string          `json:"status"`
	Background         bool            `json:"background"`
	Error              *rsError        `json:"error"`
	IncompleteDetails  *rsIncomplete   `json:"incomplete_details"`
	Instructions       json.RawMessage `json:"instructions"`
	MaxOutputTokens    json.RawMessage `json:"max_output_tokens"`
	Model              string          `json:"model"`
	Output             []any           `json:"output"`
	ParallelToolCalls  bool            `json:"parallel_tool_calls"`
	PreviousResponseID json.RawMessage `json:"previous_response_id"`
	Reasoning          json.RawMessage `json:"reasoning"`
	Store              bool            `json:"store"`
	Temperature        json.RawMessage `json:"temperature"`
	Text               json.RawMessage `json:"text"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	Tools              json.RawMessage `json:"tools"`
	TopP               json.RawMessage `json:"top_p"`
	Truncation         string          `json:"truncation"`
	Usage              *rsUsage        `json:"usage"`
	User               json.RawMessage `json:"user"`
	Metadata           json.RawMessage `json:"metadata"`
}

type rsError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type rsIncomplete struct {
	Reason string `json:"reason"`
}

// rsMessage is a message output item.
type rsMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Content []any  `json:"content"`
	Role    string `json:"role"`
}

// rsOutputText is an output_text content part.
type rsOutputText struct {
	Type        string     `json:"type"`
	Annotations []struct{} `json:"annotations"`
	Logprobs    []struct{} `json:"logprobs"`
	Text        string     `json:"text"`
}

func newOutputText(text string) *rsOutputText {
	return &rsOutputText{Type: "output_text", Annotations: []struct{}{}, Logprobs: []struct{}{}, Text: text}
}

// rsRefusal is a refusal content part.
type rsRefusal struct {
	Type    string `json:"type"`
	Refusal string `json:"refusal"`
}

// rsFunctionCall is a function_call output item.
type rsFunctionCall struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Arguments string `json:"arguments"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
}

type rsUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// rsChatUsage is a chat completion's usage.
type rsChatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// responses converts chat usage: input and output tokens are prompt and
// completion tokens, with the cache and reasoning details.
func (u *rsChatUsage) responses() *rsUsage {
	if u == nil {
		return nil
	}
	out := &rsUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if out.TotalTokens == 0 {
		out.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if d := u.PromptTokensDetails; d != nil {
		out.InputTokensDetails.CachedTokens = d.CachedTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		out.OutputTokensDetails.ReasoningTokens = d.ReasoningTokens
	}
	return out
}

// response is a Response with the echoes of the request and no output.
func (e ResponsesEcho) response(id string, created int64, model, status string) *rsResponse {
	return &rsResponse{ID: "resp_" + id, Object: "response", CreatedAt: created, Status: status,
		Instructions: e.instructions, MaxOutputTokens: e.maxOutputTokens, Model: model, Output: []any{},
		ParallelToolCalls: e.parallelToolCalls, Temperature: e.temperature, Text: e.text,
		ToolChoice: e.toolChoice, Tools: e.tools, TopP: e.topP, Truncation: e.truncation, User: e.user,
		Metadata: e.metadata}
}

// idBase is what the ids of a Response and its items are made from: the
// chat completion's id without its prefix, else the echo's.
func (e ResponsesEcho) idBase(chatID string) string {
	id := chatID
	if id == "" {
		id = e.ID
	}
	id = strings.TrimPrefix(id, "chatcmpl-")
	if id == "" {
		id = "0"
	}
	return id
}

// messageID is the id of the n-th message item (from 0) of a Response.
func messageID(base string, n int) string {
	if n == 0 {
		return "msg_" + base
	}
	return fmt.Sprintf("msg_%s_%d", base, n)
}

// functionCallID is the item id of a function call: its call id with
// fc_ for call_, or made from the response's when it has none.
func functionCallID(base, callID string, n int) string {
	if callID == "" {
		return fmt.Sprintf("fc_%s_%d", base, n)
	}
	return "fc_" + strings.TrimPrefix(callID, "call_")
}

// responsesStatus is the status of a Response that ended for an OpenAI
// finish_reason, and why it is incomplete when it is.
func responsesStatus(finish string, r *report) (string, *rsIncomplete) {
	switch finish {
	case "", "stop", "tool_calls", "function_call":
		return "completed", nil
	case "length":
		return "incomplete", &rsIncomplete{Reason: "max_output_tokens"}
	case "content_filter":
		return "incomplete", &rsIncomplete{Reason: "content_filter"}
	}
	r.addf("finish_reason", "%q has no Responses equivalent; the response is completed", finish)
	return "completed", nil
}

// itemStatus is the status of the output items of a Response of status.
func itemStatus(status string) string {
	if status == "incomplete" {
		return "incomplete"
	}
	return "completed"
}

// rsChatCompletion is the part of a chat.completion that maps.
type rsChatCompletion struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   *string      `json:"content"`
			Refusal   *string      `json:"refusal"`
			ToolCalls []rcToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *rsChatUsage `json:"usage"`
}

// ChatResponseToResponses translates a complete chat.completion to a
// Response object: the first choice's text (and refusal) as a message
// item, each tool call as a function_call item, usage, and the echoes of
// the request. A finish_reason of length or content_filter makes the
// response incomplete.
func ChatResponseToResponses(chat []byte, echo ResponsesEcho) ([]byte, []Dropped, error) {
	var c rsChatCompletion
	if err := json.Unmarshal(chat, &c); err != nil {
		return nil, nil, fmt.Errorf("translate: chat completion: %w", err)
	}
	if len(c.Choices) == 0 {
		return nil, nil, fmt.Errorf("translate: chat completion has no choice")
	}
	var r report
	if len(c.Choices) > 1 {
		r.addf("choices", "%d choices; only the first is carried", len(c.Choices))
	}
	ch := c.Choices[0]
	finish := ""
	if ch.FinishReason != nil {
		finish = *ch.FinishReason
	}
	status, incomplete := responsesStatus(finish, &r)
	created := c.Created
	if created == 0 {
		created = now().Unix()
	}
	base := echo.idBase(c.ID)
	resp := echo.response(base, created, c.Model, status)
	resp.IncompleteDetails = incomplete
	resp.Usage = c.Usage.responses()

	var content []any
	if t := ch.Message.Content; t != nil && *t != "" {
		content = append(content, newOutputText(*t))
	}
	if t := ch.Message.Refusal; t != nil && *t != "" {
		content = append(content, &rsRefusal{Type: "refusal", Refusal: *t})
	}
	if len(content) > 0 || len(ch.Message.ToolCalls) == 0 {
		if content == nil {
			content = []any{newOutputText("")}
		}
		resp.Output = append(resp.Output, &rsMessage{ID: messageID(base, 0), Type: "message",
			Status: itemStatus(status), Content: content, Role: "assistant"})
	}
	for i, tc := range ch.Message.ToolCalls {
		resp.Output = append(resp.Output, &rsFunctionCall{ID: functionCallID(base, tc.ID, i), Type: "function_call",
			Status: itemStatus(status), Arguments: tc.Function.Arguments, CallID: tc.ID, Name: tc.Function.Name})
	}
	b, err := jsonx.Marshal(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: response: %w", err)
	}
	return b, r, nil
}
