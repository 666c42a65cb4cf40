package translate

import (
	"encoding/json"
	"fmt"
	"slices"

	"luthien.dev/canon/jsonx"
)

// This file: OpenAI Responses request → OpenAI Chat Completions request.
// The gateway serves POST /v1/responses as a chat call: the request is
// translated here, runs as a chat completion, and the answer is turned
// back into a Response (responses_object.go, responses_stream.go).

// RequestError is a Responses request the gateway refuses (answered 400
// invalid_request_error). Param names the field at fault, when one is.
type RequestError struct {
	Param   string
	Message string
}

func (e *RequestError) Error() string { return e.Message }

// Messages of the refusals of stateful features.
const (
	errPreviousResponse = "previous_response_id is not supported: the gateway is stateless; send the whole conversation in input"
	errBackground       = "background is not supported: the gateway is stateless and answers each request on its own connection"
	errConversation     = "conversation is not supported: the gateway is stateless; send the whole conversation in input"
	errPrompt           = "prompt is not supported: stored prompt templates are not available through the gateway; send instructions and input instead"
	errItemReference    = "item_reference is not supported: the gateway is stateless; send the items themselves"
)

// responsesRequest is the part of a Responses request that maps.
type responsesRequest struct {
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       json.RawMessage   `json:"instructions"`
	Tools              []json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	MaxOutputTokens    *int64            `json:"max_output_tokens"`
	Temperature        json.RawMessage   `json:"temperature"`
	TopP               json.RawMessage   `json:"top_p"`
	Text               json.RawMessage   `json:"text"`
	User               *string           `json:"user"`
	Stream             bool              `json:"stream"`
	Store              *bool             `json:"store"`
	Truncation         *string           `json:"truncation"`
	Include            []string          `json:"include"`
	ServiceTier        json.RawMessage   `json:"service_tier"`
	PromptCacheKey     json.RawMessage   `json:"prompt_cache_key"`
	SafetyIdentifier   json.RawMessage   `json:"safety_identifier"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Background         *bool             `json:"background"`
	Conversation       json.RawMessage   `json:"conversation"`
	Prompt             json.RawMessage   `json:"prompt"`
}

// responsesRequestKeys are the request fields handled above; metadata and
// reasoning are known but dropped (reported with their own reasons).
var responsesRequestKeys = map[string]bool{
	"model": true, "input": true, "instructions": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "max_output_tokens": true, "temperature": true, "top_p": true,
	"text": true, "user": true, "stream": true, "store": true, "truncation": true, "include": true,
	"service_tier": true, "prompt_cache_key": true, "safety_identifier": true,
	"previous_response_id": true, "background": true, "conversation": true, "prompt": true,
	"metadata": true, "reasoning": true,
}

// rcRequest is the Chat Completions request written; its field order is
// the order of the output.
type rcRequest struct {
	Model               string           `json:"model"`
	Messages            []rcMessage      `json:"messages"`
	Tools               []rcTool         `json:"tools,omitempty"`
	ToolChoice          json.RawMessage  `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool            `json:"parallel_tool_calls,omitempty"`
	MaxCompletionTokens *int64           `json:"max_completion_tokens,omitempty"`
	Temperature         json.RawMessage  `json:"temperature,omitempty"`
	TopP                json.RawMessage  `json:"top_p,omitempty"`
	ResponseFormat      json.RawMessage  `json:"response_format,omitempty"`
	Verbosity           json.RawMessage  `json:"verbosity,omitempty"`
	User                string           `json:"user,omitempty"`
	ServiceTier         json.RawMessage  `json:"service_tier,omitempty"`
	PromptCacheKey      json.RawMessage  `json:"prompt_cache_key,omitempty"`
	SafetyIdentifier    json.RawMessage  `json:"safety_identifier,omitempty"`
	Stream              bool             `json:"stream,omitempty"`
	StreamOptions       *rcStreamOptions `json:"stream_options,omitempty"`
}

type rcStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type rcMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	ToolCalls  []rcToolCall    `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type rcToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// rcPart is a chat content part; the fields used depend on Type.
type rcPart struct {
	Type     string      `json:"type"`
	Text     *string     `json:"text,omitempty"`
	Refusal  *string     `json:"refusal,omitempty"`
	ImageURL *rcImageURL `json:"image_url,omitempty"`
	File     *rcFile     `json:"file,omitempty"`
}

type rcImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type rcFile struct {
	FileData string `json:"file_data,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type rcTool struct {
	Type     string         `json:"type"`
	Function rcToolFunction `json:"function"`
}

type rcToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ResponsesToChat translates an OpenAI Responses request body to a Chat
// Completions request body. It reports every field it cannot carry; it
// fails with a *RequestError on a body that is not a Responses request
// or that needs state the gateway does not keep (previous_response_id,
// conversation, background, stored prompts, item references).
func ResponsesToChat(body []byte) ([]byte, []Dropped, error) {
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, &RequestError{Message: "request body is not a valid Responses request: " + err.Error()}
	}
	switch {
	case req.PreviousResponseID != nil && *req.PreviousResponseID != "":
		return nil, nil, &RequestError{Param: "previous_response_id", Message: errPreviousResponse}
	case req.Background != nil && *req.Background:
		return nil, nil, &RequestError{Param: "background", Message: errBackground}
	case !isNull(req.Conversation):
		return nil, nil, &RequestError{Param: "conversation", Message: errConversation}
	case !isNull(req.Prompt):
		return nil, nil, &RequestError{Param: "prompt", Message: errPrompt}
	case isNull(req.Input):
		return nil, nil, &RequestError{Param: "input", Message: "missing required parameter: 'input'"}
	}
	var r report
	r.reportUnknown("", body, responsesRequestKeys, "no Chat Completions equivalent")
	keys, _ := objectKeys(body)
	if slices.Contains(keys, "metadata") {
		r.add("metadata", "not sent upstream (Chat Completions keeps metadata only for stored completions)")
	}
	if slices.Contains(keys, "reasoning") {
		r.add("reasoning", "not carried to the chat call")
	}
	if req.Store != nil && *req.Store {
		r.add("store", "the gateway is stateless: the response is not stored")
	}
	if req.Truncation != nil && *req.Truncation != "" && *req.Truncation != "disabled" {
		r.addf("truncation", "%q has no Chat Completions equivalent; the input is not truncated", *req.Truncation)
	}
	for i, inc := range req.Include {
		r.addf(fmt.Sprintf("include[%d]", i), "%q has no Chat Completions equivalent", inc)
	}

	out := rcRequest{Model: req.Model, MaxCompletionTokens: req.MaxOutputTokens, Stream: req.Stream,
		Temperature: nonNull(req.Temperature), TopP: nonNull(req.TopP), ServiceTier: nonNull(req.ServiceTier),
		PromptCacheKey: nonNull(req.PromptCacheKey), SafetyIdentifier: nonNull(req.SafetyIdentifier)}
	if req.User != nil {
		out.User = *req.User
	}
	if req.Stream {
		// The final response.completed carries usage.
		out.StreamOptions = &rcStreamOptions{IncludeUsage: true}
	}

	if !isNull(req.Instructions) {
		var s string
		if err := json.Unmarshal(req.Instructions, &s); err != nil {
			return nil, nil, &RequestError{Param: "instructions", Message: "instructions must be a string"}
		}
		if s != "" {
			out.Messages = append(out.Messages, rcMessage{Role: "system", Content: marshal(s)})
		}
	}
	msgs, err := responsesInput(req.Input, &r)
	if err != nil {
		return nil, nil, err
	}
	out.Messages = append(out.Messages, msgs...)
	if len(out.Messages) == 0 {
		return nil, nil, &RequestError{Param: "input", Message: "input holds nothing the model can read"}
	}

	for i, raw := range req.Tools {
		if t, ok := responsesTool(raw, fmt.Sprintf("tools[%d]", i), &r); ok {
			out.Tools = append(out.Tools, t)
		}
	}
	if len(out.Tools) > 0 {
		out.ToolChoice = responsesToolChoice(req.ToolChoice, &r)
		out.ParallelToolCalls = req.ParallelToolCalls
	} else {
		if !isNull(req.ToolChoice) {
			r.add("tool_choice", "no function tools to apply it to")
		}
		if req.ParallelToolCalls != nil {
			r.add("parallel_tool_calls", "no function tools to apply it to")
		}
	}
	if out.ResponseFormat, out.Verbosity, err = responsesText(req.Text, &r); err != nil {
		return nil, nil, err
	}

	b, err := jsonx.Marshal(out)
	if err != nil {
		return nil, nil, fmt.Errorf("translate: chat request: %w", err)
	}
	return b, r, nil
}

// nonNull is raw, or nil for an absent or null value.
func nonNull(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	return raw
}
