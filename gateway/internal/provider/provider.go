// Package provider describes the upstream LLM APIs the gateway calls: where
// each is, how it takes a key, and how a client's path maps onto it. Each
// client format has its provider today; model routing will add more.
package provider

import (
	"net/http"
	"strings"
)

// Kind is the API a provider speaks.
type Kind string

const (
	// OpenAI speaks Chat Completions; its base URL ends in /v1 and takes
	// the client's path without /v1.
	OpenAI Kind = "openai"
	// Anthropic speaks Messages; its base URL is the host and takes the
	// client's path whole.
	Anthropic Kind = "anthropic"
)

// Provider is one upstream. The zero Key passes the client's own
// credential through.
type Provider struct {
	Kind    Kind
	BaseURL string // without a trailing slash
	// Key is the gateway's key for this provider, sent instead of the
	// client's when the gateway has a client key of its own; "" sends
	// none (the client's, when passed through).
	Key string
}

// New returns a provider of kind at base (a trailing slash is dropped)
// with the gateway's key.
func New(kind Kind, base, key string) Provider {
	return Provider{Kind: kind, BaseURL: strings.TrimRight(base, "/"), Key: key}
}

// URL is the upstream URL of a client's request path and raw query.
func (p Provider) URL(path, rawQuery string) string {
	u := p.BaseURL
	if p.Kind == OpenAI {
		u += strings.TrimPrefix(path, "/v1")
	} else {
		u += path
	}
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

// SetKey sets the gateway's key on an upstream request's headers in the
// provider's way (Authorization: Bearer for OpenAI, x-api-key for
// Anthropic); it sets nothing without a key.
func (p Provider) SetKey(h http.Header) {
	if p.Key == "" {
		return
	}
	if p.Kind == OpenAI {
		h.Set("Authorization", "Bearer "+p.Key)
	} else {
		h.Set("X-Api-Key", p.Key)
	}
}
