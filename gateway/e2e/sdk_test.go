package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
)

// The official SDKs (sdk/) through routes that cross APIs: the OpenAI SDK
// asking for gpt-4o is served by the Anthropic provider, the Anthropic
// SDK asking for claude-sonnet-4-5 by the OpenAI provider. The gateway
// passes clients' credentials through (no LUTHIEN_CLIENT_API_KEY); the
// routes are the gateway's own setting in both modes.

// sdkRoutesFile routes each API's models to the provider of the other,
// with the gateway's keys for both.
const sdkRoutesFile = `providers:
  claude: {kind: anthropic, base_url: "ANTHROPIC_URL", api_key_env: ROUTE_ANTHROPIC_KEY}
  gpt: {kind: openai, base_url: "OPENAI_URL", api_key_env: ROUTE_OPENAI_KEY}
routes:
  - {match: "gpt-*", provider: claude, model: claude-fake}
  - {match: "claude-*", provider: gpt, model: gpt-fake}
`

// routedOptions is a gateway on up with routes (a routes file's text) and
// the route providers' keys in its environment.
func routedOptions(t *testing.T, up *fakeupstream.Server, routes string) options {
	return options{up: up, gatewayEnv: map[string]string{
		"LUTHIEN_ROUTES":      writeRoutes(t, up, routes),
		"ROUTE_ANTHROPIC_KEY": routeAnthropicKey,
		"ROUTE_OPENAI_KEY":    routeOpenAIKey,
	}}
}

// forEachSDK runs f for each routed SDK, streamed and not.
func forEachSDK(t *testing.T, f func(t *testing.T, r sdkRoute, stream bool)) {
	t.Helper()
	for _, r := range sdkRoutes {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%t", r.sdk, stream), func(t *testing.T) { f(t, r, stream) })
		}
	}
}

// The SDKs parse routed answers, translated both ways, streamed and not:
// text (uppercased under all_caps), tool calls with their arguments, the
// stop reason in their own vocabulary and the usage; tool_call_judge's
// verdict applies to a routed call; an upstream 429 is the SDK's
// RateLimitError. Upstream receives the route's model and key, never the
// client's.
func TestSDKRouted(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	clientKey := uniqueName("sk-client-sdk-")
	forEachMode(t, routedOptions(t, up, sdkRoutesFile), func(t *testing.T, e *env) {
		judge(e, func(body string) fakeupstream.Scenario {
			if strings.Contains(body, "rm -rf") {
				return fakeupstream.Scenario{Text: `{"probability": 0.95, "explanation": "destroys data"}`}
			}
			return fakeupstream.Scenario{Text: `{"probability": 0.05, "explanation": "read-only"}`}
		})
		ls, rm := `{"command":"ls -la"}`, `{"command":"rm -rf /"}`
		lsArgs, _ := decodeArgs(ls)
		usage := &fakeupstream.Usage{InputTokens: 21, OutputTokens: 9}

		t.Run("upstream 429", func(t *testing.T) {
			forEachSDK(t, func(t *testing.T, r sdkRoute, stream bool) {
				n := len(up.Requests())
				up.Enqueue(fakeupstream.Scenario{Status: 429})
				got := runSDK(t, e, r.sdk, r.model, clientKey, stream)
				if got.Error == nil || got.Error.Class != "RateLimitError" || got.Error.Status != 429 ||
					!strings.Contains(strings.ToLower(got.Error.Message), "rate limit") {
					t.Errorf("%s: got %s, want the SDK's RateLimitError with status 429 and upstream's message", r, got.raw)
				}
				r.checkRouted(t, up, n)
				checkNoKey(t, up, n, clientKey)
			})
		})

		t.Run("all_caps", func(t *testing.T) {
			e.setPolicy(t, "all_caps", nil)
			forEachSDK(t, func(t *testing.T, r sdkRoute, stream bool) {
				n := len(up.Requests())
				up.Enqueue(fakeupstream.Scenario{Text: "Sure, listing them.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: ls}}, Usage: usage})
				got := runSDK(t, e, r.sdk, r.model, clientKey, stream)
				r.check(t, got, sdkWant{text: "SURE, LISTING THEM.", tools: []sdkWantTool{{"Bash", lsArgs}}, tool: true, usage: usage})
				r.checkRouted(t, up, n)

				m := len(up.Requests())
				up.Enqueue(fakeupstream.Scenario{Text: "Here they are: a.txt and b.txt.", Chunks: 5, Usage: usage})
				got = runSDK(t, e, r.sdk, r.model, clientKey, stream)
				r.check(t, got, sdkWant{text: "HERE THEY ARE: A.TXT AND B.TXT.", usage: usage})
				r.checkRouted(t, up, m)
				checkNoKey(t, up, n, clientKey)
			})
		})

		t.Run("tool_call_judge", func(t *testing.T) {
			e.setPolicy(t, "tool_call_judge", judgeConfig(e, "openai", nil))
			forEachSDK(t, func(t *testing.T, r sdkRoute, stream bool) {
				n := len(up.Requests())
				up.Enqueue(fakeupstream.Scenario{Text: "Sure.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: ls}}, Usage: usage})
				got := runSDK(t, e, r.sdk, r.model, clientKey, stream)
				r.check(t, got, sdkWant{text: "Sure.", tools: []sdkWantTool{{"Bash", lsArgs}}, tool: true, usage: usage})
				r.checkRouted(t, up, n)

				m := len(up.Requests())
				up.Enqueue(fakeupstream.Scenario{Text: "Sure.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: rm}}, Usage: usage})
				got = runSDK(t, e, r.sdk, r.model, clientKey, stream)
				r.check(t, got, sdkWant{text: "Sure.⛔ BLOCKED: Tool call 'Bash' with arguments " + rm + " rejected (probability 0.95). Explanation: destroys data"})
				r.checkRouted(t, up, m)
				if got.CallID == "" {
					t.Fatalf("%s: the response had no X-Call-ID", r)
				}
				e.waitCall(t, got.CallID, "policy.tool_call_judge.blocked")
				checkNoKey(t, up, n, clientKey)
			})
		})
	})
}

// A client's own API key never reaches a provider it was not meant for.
// In passthrough mode a route to a provider of the other API without
// api_key_env is refused with a 403 naming api_key_env, before anything
// goes upstream; with api_key_env the route's key goes upstream, and
// neither upstream nor the call's record ever sees the client's key.
func TestSDKClientKeyStaysHome(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	routes := `providers:
  claude-keyless: {kind: anthropic, base_url: "ANTHROPIC_URL"}
  gpt-keyless: {kind: openai, base_url: "OPENAI_URL"}
  claude: {kind: anthropic, base_url: "ANTHROPIC_URL", api_key_env: ROUTE_ANTHROPIC_KEY}
  gpt: {kind: openai, base_url: "OPENAI_URL", api_key_env: ROUTE_OPENAI_KEY}
routes:
  - {match: "gpt-keyless-*", provider: claude-keyless, model: claude-fake}
  - {match: "claude-keyless-*", provider: gpt-keyless, model: gpt-fake}
  - {match: "gpt-*", provider: claude, model: claude-fake}
  - {match: "claude-*", provider: gpt, model: gpt-fake}
`
	keyless := map[string]string{"openai": "gpt-keyless-4o", "anthropic": "claude-keyless-sonnet-4-5"}
	forEachMode(t, routedOptions(t, up, routes), func(t *testing.T, e *env) {
		up.SetResponder(nil)
		clientKey := uniqueName("sk-client-own-")
		t.Run("without api_key_env", func(t *testing.T) {
			forEachSDK(t, func(t *testing.T, r sdkRoute, stream bool) {
				n := len(up.Requests())
				got := runSDK(t, e, r.sdk, keyless[r.sdk], clientKey, stream)
				if got.Error == nil || got.Error.Class != "PermissionDeniedError" || got.Error.Status != 403 ||
					!strings.Contains(got.Error.Message, "api_key_env") {
					t.Errorf("%s SDK, model %s: got %s, want the SDK's PermissionDeniedError with status 403 naming api_key_env", r.sdk, keyless[r.sdk], got.raw)
				}
				if strings.Contains(got.raw, clientKey) {
					t.Errorf("%s SDK: the refusal quotes the client's key: %s", r.sdk, got.raw)
				}
				if reqs := up.Requests()[n:]; len(reqs) != 0 {
					t.Errorf("%s SDK: the refused call sent %d requests upstream (first: %s)", r.sdk, len(reqs), reqs[0].Path)
				}
			})
		})
		t.Run("with api_key_env", func(t *testing.T) {
			forEachSDK(t, func(t *testing.T, r sdkRoute, stream bool) {
				n := len(up.Requests())
				usage := &fakeupstream.Usage{InputTokens: 5, OutputTokens: 3}
				up.Enqueue(fakeupstream.Scenario{Text: "Keys stay home.", Usage: usage})
				got := runSDK(t, e, r.sdk, r.model, clientKey, stream)
				r.check(t, got, sdkWant{text: "Keys stay home.", usage: usage})
				r.checkRouted(t, up, n)
				checkNoKey(t, up, n, clientKey)
				if got.CallID == "" {
					t.Fatalf("%s: the response had no X-Call-ID", r)
				}
				call := e.waitCall(t, got.CallID, "request.received", "request.upstream", "response.upstream")
				if record := recordText(t, call); strings.Contains(record, clientKey) {
					t.Errorf("%s: the call's record holds the client's key: %s", r, record)
				}
				if upstreamModel := recordedUpstreamModel(t, call); upstreamModel != r.upModel {
					t.Errorf("%s: the recorded upstream request names model %q, want %q", r, upstreamModel, r.upModel)
				}
			})
		})
	})
}

// decodeArgs decodes a tool call's JSON arguments.
func decodeArgs(s string) (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// recordText is a call's record as the REST API returned it, with the
// events' payloads in JSON also as text (payload_json is base64 in JSON).
func recordText(t *testing.T, call map[string]any) string {
	t.Helper()
	b, err := json.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	events, _ := call["events"].([]any)
	for _, ev := range events {
		m, _ := ev.(map[string]any)
		if enc, ok := m["payload_json"].(string); ok {
			raw, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				t.Fatalf("event %v: payload_json: %v", m["event_type"], err)
			}
			text += "\n" + string(raw)
		}
	}
	return text
}

// recordedUpstreamModel returns the model of a call's recorded
// request.upstream event.
func recordedUpstreamModel(t *testing.T, call map[string]any) string {
	t.Helper()
	events, _ := call["events"].([]any)
	for _, ev := range events {
		m, _ := ev.(map[string]any)
		if m["event_type"] != "request.upstream" {
			continue
		}
		payload, _ := m["payload"].(map[string]any)
		if enc, ok := m["payload_json"].(string); ok && payload == nil {
			raw, _ := base64.StdEncoding.DecodeString(enc)
			_ = json.Unmarshal(raw, &payload)
		}
		model, _ := payload["model"].(string)
		return model
	}
	t.Fatalf("the call has no request.upstream event: %v", call)
	return ""
}
