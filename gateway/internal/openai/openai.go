// Package openai is the OpenAI Chat Completions dialect: request
// validation, errors, and conversion of completions and chunk streams to
// and from the canonical model.
package openai

import (
	"encoding/json"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Dialect implements dialect.Dialect for POST /v1/chat/completions.
type Dialect struct{}

var _ dialect.Dialect = Dialect{}

// Format implements dialect.Dialect.
func (Dialect) Format() cpv1.ClientFormat { return cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT }

type request struct {
	Model         *string         `json:"model"`
	Messages      json.RawMessage `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	User string `json:"user"`
}

// ParseRequest implements dialect.Dialect.
func (Dialect) ParseRequest(body []byte) (dialect.Request, error) {
	var r request
	if len(body) == 0 {
		return dialect.Request{}, dialect.BadRequest("request body is empty")
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return dialect.Request{}, dialect.BadRequest("request body is not valid JSON: " + err.Error())
	}
	switch {
	case r.Model == nil || *r.Model == "":
		return dialect.Request{}, dialect.BadRequest("you must provide a model parameter")
	case len(r.Messages) == 0 || string(r.Messages) == "null":
		return dialect.Request{}, dialect.BadRequest("missing required parameter: 'messages'")
	case r.Messages[0] != '[':
		return dialect.Request{}, dialect.BadRequest("'messages' must be an array")
	}
	return dialect.Request{Model: *r.Model, Stream: r.Stream, IncludeUsage: r.StreamOptions.IncludeUsage, UserID: r.User}, nil
}

// ErrorBody implements dialect.Dialect.
func (Dialect) ErrorBody(status int, errType, message string) []byte {
	if errType == "" {
		errType = dialect.TypeForStatus(status)
	}
	typ, code := openAIType(status, errType)
	b, _ := jsonx.Marshal(errorBody{Error: errorDetail{Message: message, Type: typ, Code: code}})
	return b
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// openAIType maps an Anthropic error type to OpenAI's type and code.
func openAIType(status int, anthropicType string) (string, *string) {
	code := func(s string) *string { return &s }
	switch anthropicType {
	case "invalid_request_error":
		return "invalid_request_error", nil
	case "authentication_error":
		return "invalid_request_error", code("invalid_api_key")
	case "permission_error":
		return "permission_error", nil
	case "not_found_error":
		return "invalid_request_error", code("not_found")
	case "request_too_large":
		return "invalid_request_error", code("request_too_large")
	case "rate_limit_error":
		return "rate_limit_error", code("rate_limit_exceeded")
	case "overloaded_error":
		return "server_error", code("overloaded")
	case "api_error":
		return "server_error", nil
	}
	if status >= 500 {
		return "server_error", nil
	}
	return "invalid_request_error", nil
}

// StopReason maps an OpenAI finish_reason to the canonical stop reason.
func StopReason(finish string) string {
	switch finish {
	case "stop":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	}
	return finish
}

// FinishReason maps a canonical stop reason to an OpenAI finish_reason.
func FinishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence", "":
		return "stop"
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return stop
}
