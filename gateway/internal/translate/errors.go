package translate

import (
	"encoding/json"
	"net/http"
	"strings"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
)

// ErrorToChat translates an upstream Anthropic error (status and body)
// to the status and body an OpenAI client expects. Anthropic's 529
// (overloaded) becomes 503; a body that is not an Anthropic error keeps
// its text as the message.
func ErrorToChat(status int, body []byte) (int, []byte) {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	typ, msg := "", ""
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		typ, msg = e.Error.Type, e.Error.Message
	} else {
		msg = fallbackMessage(status, body)
	}
	if status == 529 {
		status = http.StatusServiceUnavailable
	}
	return status, openai.Dialect{}.ErrorBody(status, typ, msg)
}

// ErrorToAnthropic translates an upstream OpenAI error (status and body)
// to the status and body an Anthropic client expects. The type follows
// the status, refined by OpenAI's type and code where they say more.
func ErrorToAnthropic(status int, body []byte) (int, []byte) {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	typ := dialect.TypeForStatus(status)
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
		code, _ := e.Error.Code.(string)
		switch {
		case code == "invalid_api_key" || e.Error.Type == "authentication_error":
			typ = "authentication_error"
		case e.Error.Type == "rate_limit_error" || code == "rate_limit_exceeded":
			typ = "rate_limit_error"
		case code == "overloaded" || e.Error.Type == "server_error" && status == http.StatusServiceUnavailable:
			typ = "overloaded_error"
		}
	} else {
		msg = fallbackMessage(status, body)
	}
	return status, anthropic.Dialect{}.ErrorBody(status, typ, msg)
}

// fallbackMessage is the message of an error whose body is not JSON: the
// body's text, or the status text.
func fallbackMessage(status int, body []byte) string {
	if s := strings.TrimSpace(string(body)); s != "" && len(s) <= 1024 {
		return s
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "upstream error"
}
