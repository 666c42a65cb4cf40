package provider

import (
	"net/http"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tt := range []struct {
		p           Provider
		path, query string
		want        string
	}{
		{New(OpenAI, "https://api.openai.com/v1/", ""), "/v1/chat/completions", "", "https://api.openai.com/v1/chat/completions"},
		{New(OpenAI, "http://127.0.0.1:11434/v1", ""), "/v1/models", "limit=2", "http://127.0.0.1:11434/v1/models?limit=2"},
		{New(Anthropic, "https://api.anthropic.com", ""), "/v1/messages", "beta=true", "https://api.anthropic.com/v1/messages?beta=true"},
		{New(Anthropic, "https://proxy.internal/anthropic/", ""), "/v1/messages/count_tokens", "", "https://proxy.internal/anthropic/v1/messages/count_tokens"},
	} {
		if got := tt.p.URL(tt.path, tt.query); got != tt.want {
			t.Errorf("%+v URL(%q, %q) = %q, want %q", tt.p, tt.path, tt.query, got, tt.want)
		}
	}
}

func TestSetKey(t *testing.T) {
	h := http.Header{}
	New(OpenAI, "u", "sk-o").SetKey(h)
	if h.Get("Authorization") != "Bearer sk-o" || h.Get("X-Api-Key") != "" {
		t.Errorf("openai: %v", h)
	}
	h = http.Header{}
	New(Anthropic, "u", "sk-a").SetKey(h)
	if h.Get("X-Api-Key") != "sk-a" || h.Get("Authorization") != "" {
		t.Errorf("anthropic: %v", h)
	}
	h = http.Header{"Authorization": {"Bearer client"}}
	New(OpenAI, "u", "").SetKey(h)
	if h.Get("Authorization") != "Bearer client" {
		t.Errorf("no key changed the headers: %v", h)
	}
}
