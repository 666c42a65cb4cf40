package fakeupstream

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// field is one member of an ordered JSON object.
type field struct {
	k string
	v any
}

// object is a JSON object that keeps its member order, so that responses
// match the providers' field order byte for byte.
type object []field

// MarshalJSON encodes the members in order, without HTML escaping.
func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := encode(f.k)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := encode(f.v)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// set replaces the member k in place or appends it.
func (o object) set(k string, v any) object {
	for i := range o {
		if o[i].k == k {
			o[i].v = v
			return o
		}
	}
	return append(o, field{k, v})
}

// merge sets every entry of extra, in sorted key order for new members.
func (o object) merge(extra map[string]any) object {
	if len(extra) == 0 {
		return o
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		o = o.set(k, extra[k])
	}
	return o
}

// encode encodes v as compact JSON without HTML escaping.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// marshal is encode for values known to be encodable; values that cannot be
// encoded (e.g. a channel in Scenario.Extra) are replaced by their error text.
func marshal(v any) []byte {
	b, err := encode(v)
	if err != nil {
		b, _ = encode(err.Error())
	}
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

// anthropicError builds an Anthropic error body.
func anthropicError(typ, msg string) object {
	return object{
		{"type", "error"},
		{"error", object{{"type", typ}, {"message", msg}}},
	}
}

// anthropicErrorFor returns the Anthropic error type and message for status.
func anthropicErrorFor(status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error", "Invalid request"
	case http.StatusUnauthorized:
		return "authentication_error", "invalid x-api-key"
	case http.StatusForbidden:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case http.StatusNotFound:
		return "not_found_error", "The requested resource could not be found."
	case http.StatusRequestEntityTooLarge:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case http.StatusTooManyRequests:
		return "rate_limit_error", "This request would exceed the rate limit for your organization. Please try again later."
	case http.StatusInternalServerError:
		return "api_error", "Internal server error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error", "Overloaded"
	}
	if status < 500 {
		return "invalid_request_error", "Invalid request"
	}
	return "api_error", "Internal server error"
}

// openAIError builds an OpenAI error body; code may be nil.
func openAIError(msg, typ string, code any) object {
	return object{
		{"error", object{
			{"message", msg},
			{"type", typ},
			{"param", nil},
			{"code", code},
		}},
	}
}

// openAIErrorFor returns the OpenAI error message, type and code for status.
func openAIErrorFor(status int, model string) (string, string, any) {
	switch status {
	case http.StatusBadRequest:
		return "Invalid request.", "invalid_request_error", nil
	case http.StatusUnauthorized:
		return "Incorrect API key provided: sk-fake. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		return "You are not allowed to access this resource.", "invalid_request_error", "permission_denied"
	case http.StatusNotFound:
		return "The model `" + model + "` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"
	case http.StatusRequestEntityTooLarge:
		return "Request too large.", "invalid_request_error", nil
	case http.StatusTooManyRequests:
		return "Rate limit reached for " + model + " on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", "requests", "rate_limit_exceeded"
	case http.StatusInternalServerError:
		return "The server had an error while processing your request. Sorry about that!", "server_error", nil
	case http.StatusServiceUnavailable:
		return "The engine is currently overloaded, please try again later.", "server_error", nil
	}
	if status < 500 {
		return "Invalid request.", "invalid_request_error", nil
	}
	return "The server had an error while processing your request. Sorry about that!", "server_error", nil
}
