package routes

import (
	"fmt"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/provider"
)

// TestCredential runs the credentials rule over every combination of
// provider kind and host, client format, configured key and mode.
func TestCredential(t *testing.T) {
	const key = "sk-route-SECRET-eeee"
	kinds := []provider.Kind{provider.OpenAI, provider.Anthropic}
	for _, up := range kinds {
		for _, client := range kinds {
			for _, sameHost := range []bool{true, false} {
				for _, configured := range []bool{true, false} {
					for _, passthrough := range []bool{true, false} {
						name := fmt.Sprintf("%s provider, %s client, same host %v, key %v, passthrough %v", up, client, sameHost, configured, passthrough)
						t.Run(name, func(t *testing.T) {
							k := ""
							if configured {
								k = key
							}
							home := provider.New(client, "http://home", "")
							host := "http://elsewhere"
							if sameHost {
								host = home.BaseURL
							}
							r := Route{Provider: provider.New(up, host, k), ProviderName: "up", Model: "m", Index: 3, Pattern: "m*"}
							cross := up != client
							if r.CrossProvider(client) != cross {
								t.Errorf("CrossProvider = %v, want %v", !cross, cross)
							}
							got, err := r.Credential(home, passthrough)
							switch {
							case configured:
								// The configured key, always, never the client's.
								if got != (Credential{Key: key}) || err != nil {
									t.Errorf("Credential = %+v, %v; want the configured key", got, err)
								}
							case passthrough && !cross && sameHost:
								// The provider the client's key was meant for.
								if got != (Credential{PassClient: true}) || err != nil {
									t.Errorf("Credential = %+v, %v; want the client's", got, err)
								}
							case passthrough && cross:
								// The client's key must not go to another provider.
								if err == nil || got != (Credential{}) {
									t.Fatalf("Credential = %+v, %v; want an error", got, err)
								}
								for _, w := range []string{"route 3", `"m*"`, `provider "up"`, "api_key_env", "not sent to another provider", string(client)} {
									if !strings.Contains(err.Error(), w) {
										t.Errorf("error %q does not hold %q", err, w)
									}
								}
							default:
								// Another host of the same kind, or a gateway with a
								// client key of its own: no key at all.
								if got != (Credential{}) || err != nil {
									t.Errorf("Credential = %+v, %v; want none", got, err)
								}
							}
						})
					}
				}
			}
		}
	}
}

// TestCredentialFromTable checks the rule on routes of a parsed table.
func TestCredentialFromTable(t *testing.T) {
	tab := mustParse(t, matchFile)
	openaiHome := provider.New(provider.OpenAI, "https://api.openai.com/v1", "")
	anthropicHome := provider.New(provider.Anthropic, "https://api.anthropic.com", "")
	r, _ := tab.Route("gpt-oss") // openai provider "local" without a key
	if _, err := r.Credential(anthropicHome, true); err == nil || !strings.Contains(err.Error(), `route 2 ("gpt-oss*") to provider "local"`) {
		t.Errorf("cross-provider route without a key: %v", err)
	}
	if c, err := r.Credential(openaiHome, true); c != (Credential{}) || err != nil {
		t.Errorf("same-kind route to another host without a key: %+v, %v; want no key", c, err)
	}
	r, _ = tab.Route("claude-x") // anthropic provider with a key
	if c, err := r.Credential(openaiHome, true); c.Key != secretAnthropic || c.PassClient || err != nil {
		t.Errorf("cross-provider route with a key: %+v, %v", c, err)
	}
}

// A routes file never names one of the gateway's own secrets as a
// provider's key, whoever writes it.
func TestReservedKeyVariables(t *testing.T) {
	for _, name := range []string{"LUTHIEN_ADMIN_API_KEY", "LUTHIEN_CLIENT_API_KEY", "LUTHIEN_SESSION_SECRET", "LUTHIEN_CONTROL_PLANE_TOKEN", "DATABASE_URL", "REDIS_URL"} {
		file := "providers:\n  p: {kind: openai, base_url: \"https://p.example/v1\", api_key_env: " + name + "}\n"
		_, err := Parse([]byte(file), func(string) string { return "sk-own-SECRET" })
		if err == nil || !strings.Contains(err.Error(), "gateway's own secrets") || strings.Contains(err.Error(), "sk-own-SECRET") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
