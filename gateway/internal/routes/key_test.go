package routes

import (
	"fmt"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/provider"
)

// TestKey runs the credentials rule over every combination of provider
// kind, client format, configured key and mode.
func TestKey(t *testing.T) {
	const key = "sk-route-SECRET-eeee"
	kinds := []provider.Kind{provider.OpenAI, provider.Anthropic}
	for _, up := range kinds {
		for _, client := range kinds {
			for _, configured := range []bool{true, false} {
				for _, passthrough := range []bool{true, false} {
					name := fmt.Sprintf("%s provider, %s client, key %v, passthrough %v", up, client, configured, passthrough)
					t.Run(name, func(t *testing.T) {
						k := ""
						if configured {
							k = key
						}
						r := Route{Provider: provider.New(up, "http://h", k), ProviderName: "up", Model: "m", Index: 3, Pattern: "m*"}
						cross := up != client
						if r.CrossProvider(client) != cross {
							t.Errorf("CrossProvider = %v, want %v", !cross, cross)
						}
						got, err := r.Key(client, passthrough)
						switch {
						case configured:
							// The configured key, always.
							if got != key || err != nil {
								t.Errorf("Key = %q, %v; want the configured key", got, err)
							}
						case cross && passthrough:
							// The client's key must not go to another provider.
							if err == nil || got != "" {
								t.Fatalf("Key = %q, %v; want an error", got, err)
							}
							for _, w := range []string{"route 3", `"m*"`, `provider "up"`, "api_key_env", "not sent to another provider", string(client)} {
								if !strings.Contains(err.Error(), w) {
									t.Errorf("error %q does not hold %q", err, w)
								}
							}
						default:
							// Same kind in passthrough: the client's credential;
							// with a client key: none.
							if got != "" || err != nil {
								t.Errorf("Key = %q, %v; want \"\", nil", got, err)
							}
						}
					})
				}
			}
		}
	}
}

// TestKeyFromTable checks the rule on routes of a parsed table.
func TestKeyFromTable(t *testing.T) {
	tab := mustParse(t, matchFile)
	r, _ := tab.Route("gpt-oss") // openai provider "local" without a key
	if _, err := r.Key(provider.Anthropic, true); err == nil || !strings.Contains(err.Error(), `route 2 ("gpt-oss*" -> provider "local")`) {
		t.Errorf("cross-provider route without a key: %v", err)
	}
	if k, err := r.Key(provider.OpenAI, true); k != "" || err != nil {
		t.Errorf("same-kind route without a key: %q, %v", k, err)
	}
	r, _ = tab.Route("claude-x") // anthropic provider with a key
	if k, err := r.Key(provider.OpenAI, true); k != secretAnthropic || err != nil {
		t.Errorf("cross-provider route with a key: %v", err)
	}
}
