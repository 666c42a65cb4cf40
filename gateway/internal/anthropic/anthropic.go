// Package anthropic is the Anthropic Messages dialect: request validation,
// errors, and conversion of messages and SSE streams to and from the
// canonical model.
package anthropic

import (
	"encoding/json"
	"strings"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Dialect implements dialect.Dialect for POST /v1/messages.
type Dialect struct{}

var _ dialect.Dialect = Dialect{}

// Format implements dialect.Dialect.
func (Dialect) Format() cpv1.ClientFormat { return cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES }

// request holds the fields the gateway checks; everything else is
// forwarded untouched.
type request struct {
	Model     *string         `json:"model"`
	Messages  json.RawMessage `json:"messages"`
	MaxTokens json.RawMessage `json:"max_tokens"`
	Stream    bool            `json:"stream"`
	Metadata  struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
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
		return dialect.Request{}, dialect.BadRequest("model: field required")
	case len(r.Messages) == 0 || string(r.Messages) == "null":
		return dialect.Request{}, dialect.BadRequest("messages: field required")
	case r.Messages[0] != '[':
		return dialect.Request{}, dialect.BadRequest("messages: must be an array")
	case len(r.MaxTokens) == 0 || string(r.MaxTokens) == "null":
		return dialect.Request{}, dialect.BadRequest("max_tokens: field required")
	}
	out := dialect.Request{Model: *r.Model, Stream: r.Stream}
	out.SessionID, out.UserID = SessionFromUserID(r.Metadata.UserID)
	return out, nil
}

// SessionFromUserID reads Claude Code's metadata.user_id, either
// `user_<hash>_account_<id>_session_<uuid>` or a JSON string with
// device_id/account_uuid/session_id. It returns the session id and the
// user part.
func SessionFromUserID(userID string) (session, user string) {
	if userID == "" {
		return "", ""
	}
	if strings.HasPrefix(userID, "{") {
		var v struct {
			SessionID   string `json:"session_id"`
			DeviceID    string `json:"device_id"`
			AccountUUID string `json:"account_uuid"`
		}
		if json.Unmarshal([]byte(userID), &v) == nil {
			user = v.AccountUUID
			if user == "" {
				user = v.DeviceID
			}
			return v.SessionID, user
		}
	}
	if i := strings.LastIndex(userID, "_session_"); i >= 0 {
		return userID[i+len("_session_"):], userID[:i]
	}
	return "", userID
}

// ErrorBody implements dialect.Dialect.
func (Dialect) ErrorBody(status int, errType, message string) []byte {
	if errType == "" {
		errType = dialect.TypeForStatus(status)
	}
	b, _ := jsonx.Marshal(errorBody{Type: "error", Error: errorDetail{Type: errType, Message: message}})
	return b
}

type errorBody struct {
	Type  string      `json:"type"`
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
