// Package dialect defines what the gateway needs from a client API format
// (OpenAI Chat Completions, Anthropic Messages): request validation, error
// rendering, and conversion between the wire format and the canonical
// model of the control-plane contract.
package dialect

import (
	"io"

	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Dialect is one client API format.
type Dialect interface {
	// Format is the contract's name for this format.
	Format() cpv1.ClientFormat
	// ParseRequest validates a request body and extracts what the gateway
	// needs. A bad request is an *Error with status 400.
	ParseRequest(body []byte) (Request, error)
	// ErrorBody renders an error in this format. errType uses the
	// Anthropic vocabulary (TypeForStatus); "" derives it from status.
	ErrorBody(status int, errType, message string) []byte
	// NewDecoder starts decoding one upstream stream.
	NewDecoder() Decoder
	// NewEncoder starts encoding one client stream.
	NewEncoder(req Request) Encoder
	// ParseMessage converts a complete upstream response to canonical form.
	ParseMessage(body []byte) (*cpv1.Message, error)
	// RenderMessage renders a canonical message. With original (upstream's
	// response) it changes only what the message covers and keeps every
	// other field; without, it builds a whole response.
	RenderMessage(original []byte, msg *cpv1.Message) ([]byte, error)
}

// Request is what the gateway reads from a request body.
type Request struct {
	Model  string
	Stream bool
	// IncludeUsage is OpenAI's stream_options.include_usage.
	IncludeUsage bool
	// SessionID and UserID come from the body's metadata (Anthropic
	// metadata.user_id, OpenAI user), when present.
	SessionID string
	UserID    string
}

// Decoder turns upstream SSE events into canonical events, in order. It
// returns at least one event for every SSE event (an opaque one for
// anything it does not model) so that every upstream byte has an owner.
type Decoder interface {
	Decode(ev sse.Event) ([]*cpv1.StreamEvent, error)
}

// Encoder writes canonical events to a client in its format.
type Encoder interface {
	// Raw writes upstream's bytes for evs (the events decoded from them),
	// unchanged, and notes what they did to the stream.
	Raw(w io.Writer, raw []byte, evs []*cpv1.StreamEvent) error
	// Event encodes one event. template, when not nil, is the upstream
	// SSE event the event was derived from.
	Event(w io.Writer, ev *cpv1.StreamEvent, template []byte) error
}

// Error is an error answered to the client in its format.
type Error struct {
	Status int
	// Type in the Anthropic vocabulary; "" derives it from Status.
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// BadRequest is a 400 invalid_request_error.
func BadRequest(msg string) *Error {
	return &Error{Status: 400, Type: "invalid_request_error", Message: msg}
}

// TypeForStatus maps an HTTP status to the Anthropic error type.
func TypeForStatus(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 503, 529:
		return "overloaded_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}
