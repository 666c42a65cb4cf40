// Package wire converts complete (non-streamed) responses between the
// clients' JSON formats (OpenAI Chat Completions, Anthropic Messages) and
// the canonical Message of the contract, the way the gateway does before
// and after the response phase. The control plane needs it only where it
// takes responses as JSON text itself: the dry runs of PolicyAdminService.
package wire

import (
	"fmt"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ParseMessage converts a complete response in the client's format to
// canonical form.
func ParseMessage(format cpv1.ClientFormat, body []byte) (*cpv1.Message, error) {
	switch format {
	case cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
		return parseOpenAI(body)
	case cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES:
		return parseAnthropic(body)
	}
	return nil, fmt.Errorf("parse response: unsupported format %v", format)
}

// RenderMessage renders a canonical message in the client's format. With
// original (the response the message was parsed from) it changes only
// what the message covers and keeps every other field in its place;
// without, it builds a whole response.
func RenderMessage(format cpv1.ClientFormat, original []byte, msg *cpv1.Message) ([]byte, error) {
	switch format {
	case cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
		return renderOpenAI(original, msg)
	case cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES:
		return renderAnthropic(original, msg)
	}
	return nil, fmt.Errorf("render response: unsupported format %v", format)
}
