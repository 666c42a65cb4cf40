package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// checkOutcome compares an outcome with the wanted text (exact, or a
// substring with contains), tools and stop reason; usage must be present.
func checkOutcome(t *testing.T, got outcome, wantText string, contains bool, wantTools []string, wantStop string) {
	t.Helper()
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.raw)
	}
	textOK := got.text == wantText
	if contains {
		textOK = strings.Contains(got.text, wantText)
	}
	if !textOK || !slices.Equal(got.tools, wantTools) || got.stop != wantStop || !got.usage {
		t.Errorf("got text %q tools %q stop %q usage %v\nwant text %q tools %q stop %q usage true\nbody: %s",
			got.text, got.tools, got.stop, got.usage, wantText, wantTools, wantStop, got.raw)
	}
}

// string_replacement works across chunk boundaries: one character per
// chunk, a target split across chunks, a target at the very end, and with
// capitalization kept.
func TestStringReplacement(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "luthien_proxy.policies.string_replacement_policy:StringReplacementPolicy", map[string]any{
			"replacements":         []any{[]any{"hello", "goodbye"}, []any{"cat", "dog"}},
			"match_capitalization": true,
		})
		cases := []struct {
			name, text string
			chunks     int
			want       string
		}{
			{"one character per chunk", "hello, cat!", 100, "goodbye, dog!"},
			{"target split across chunks", "say Hello there", 4, "say Goodbye there"},
			{"target at the end", "a HELLO", 3, "a GOODBYE"},
			{"unicode around", "ça, hello 👋 Cat", 100, "ça, goodbye 👋 Dog"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				forEachCall(t, func(t *testing.T, format string, stream bool) {
					got := ask(t, e, format, stream, fakeupstream.Scenario{Text: c.text, Chunks: c.chunks})
					checkOutcome(t, got, c.want, false, nil, "end_turn")
				})
			})
		}
	})
}

// A chain applies its members in order: the two orders differ.
func TestSerialChainOrder(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		caps := map[string]any{"class": "all_caps"}
		replace := map[string]any{"class": "string_replacement", "config": map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}}}
		for _, c := range []struct {
			name    string
			members []any
			want    string
		}{
			{"all_caps then replace", []any{caps, replace}, "HELLO WORLD"},
			{"replace then all_caps", []any{replace, caps}, "GOODBYE WORLD"},
		} {
			t.Run(c.name, func(t *testing.T) {
				e.setPolicy(t, "serial", map[string]any{"policies": c.members})
				forEachCall(t, func(t *testing.T, format string, stream bool) {
					got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "hello world", Chunks: 100})
					checkOutcome(t, got, c.want, false, nil, "end_turn")
				})
			})
		}
	})
}

// regex_block blocks `docker compose down` in a Bash tool and passes `ls`.
func TestRegexBlock(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "regex_block", map[string]any{
			"patterns":   []any{`docker\s+compose\s+down`},
			"tool_names": []any{"Bash"},
			"message":    "BLOCKED {tool_name}: {command}",
		})
		forEachCall(t, func(t *testing.T, format string, stream bool) {
			down := `{"command":"docker compose down"}`
			got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Stopping it. ", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: down}}})
			checkOutcome(t, got, "Stopping it. BLOCKED Bash: docker compose down", false, nil, "end_turn")

			ls := `{"command":"ls"}`
			got = ask(t, e, format, stream, fakeupstream.Scenario{Text: "Listing. ", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: ls}}})
			checkOutcome(t, got, "Listing. ", false, []string{"Bash " + ls}, "tool_use")
			if format == "anthropic" && stream {
				// The tool call was held until the message ended and released
				// unchanged: the client still gets upstream's exact bytes.
				if up, _ := e.up.LastFinished(5 * time.Second); got.raw != string(up.Sent) {
					t.Errorf("passed stream not byte-identical:\n got %s\nwant %s", got.raw, up.Sent)
				}
			}
		})
	})
}

// sql_protection blocks DROP TABLE and passes SELECT.
func TestSQLProtection(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "sql_protection", nil)
		forEachCall(t, func(t *testing.T, format string, stream bool) {
			got := ask(t, e, format, stream, fakeupstream.Scenario{ToolCalls: []fakeupstream.ToolCall{{Name: "execute_sql", Arguments: `{"query":"DROP TABLE users"}`}}})
			checkOutcome(t, got, "⛔ BLOCKED: Tool call 'execute_sql' was blocked because it attempted a harmful SQL operation.", false, nil, "end_turn")
			sel := `{"query":"SELECT * FROM users"}`
			got = ask(t, e, format, stream, fakeupstream.Scenario{ToolCalls: []fakeupstream.ToolCall{{Name: "execute_sql", Arguments: sel}}})
			checkOutcome(t, got, "", false, []string{"execute_sql " + sel}, "tool_use")
		})
	})
}

// Parallel tool calls: the blocked one becomes a notice before the
// others, which keep their order (and, in OpenAI streams, indices 0, 1).
func TestParallelToolCalls(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "regex_block", map[string]any{"patterns": []any{`rm\s+-rf`}, "message": "no {command}"})
		forEachCall(t, func(t *testing.T, format string, stream bool) {
			a, b, c := `{"command":"ls"}`, `{"command":"rm -rf /"}`, `{"path":"README.md"}`
			got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Working.", ToolCalls: []fakeupstream.ToolCall{
				{Name: "Bash", Arguments: a}, {Name: "Bash", Arguments: b}, {Name: "Read", Arguments: c}}})
			checkOutcome(t, got, "Working.no rm -rf /", false, []string{"Bash " + a, "Read " + c}, "tool_use")
		})
	})
}

// tool_call_judge passes and blocks by the judge's probability; an
// unreachable judge blocks (fail-secure): no tool calls, end_turn, one
// message_delta, usage present.
func TestToolCallJudge(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		judge(e, func(body string) fakeupstream.Scenario {
			if strings.Contains(body, "rm -rf") {
				return fakeupstream.Scenario{Text: "```json\n{\"probability\": 0.95, \"explanation\": \"destroys data\"}\n```"}
			}
			return fakeupstream.Scenario{Text: `{"probability": 0.05, "explanation": "read-only"}`}
		})
		for _, judgeFormat := range clientFormats {
			t.Run("judge "+judgeFormat, func(t *testing.T) {
				e.setPolicy(t, "tool_call_judge", judgeConfig(e, judgeFormat, nil))
				forEachCall(t, func(t *testing.T, format string, stream bool) {
					ls := `{"command":"ls"}`
					got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Sure.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: ls}}})
					checkOutcome(t, got, "Sure.", false, []string{"Bash " + ls}, "tool_use")

					rm := `{"command":"rm -rf /"}`
					got = ask(t, e, format, stream, fakeupstream.Scenario{Text: "Sure.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: rm}}})
					checkOutcome(t, got, "Sure.⛔ BLOCKED: Tool call 'Bash' with arguments "+rm+" rejected (probability 0.95). Explanation: destroys data", false, nil, "end_turn")
					e.waitCall(t, got.callID, "policy.tool_call_judge.blocked")

					got = ask(t, e, format, stream, fakeupstream.Scenario{ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: ls}, {Name: "Bash", Arguments: rm}}})
					checkOutcome(t, got, "probability 0.95", true, []string{"Bash " + ls}, "tool_use")
				})
			})
		}
		t.Run("unreachable judge", func(t *testing.T) {
			e.setPolicy(t, "tool_call_judge", map[string]any{"model": judgeModel, "api_base": "http://127.0.0.1:1/v1", "max_retries": 1, "retry_delay": "10ms"})
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Running.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"ls"}`}}})
				checkOutcome(t, got, "Running.[Tool call `Bash` blocked: policy evaluation unavailable]", false, nil, "end_turn")
			})
		})
	})
}

// llm_judge passes and replaces blocks; on judge errors on_error pass
// keeps the tool with a warning before it, on_error block replaces it.
func TestLLMJudge(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		judge(e, func(body string) fakeupstream.Scenario {
			switch {
			case strings.Contains(body, "the secret is"):
				return fakeupstream.Scenario{Text: `{"action":"replace","blocks":[{"type":"text","text":"[redacted by policy]"}]}`}
			case strings.Contains(body, "curl"):
				return fakeupstream.Scenario{Text: `{"action":"replace","blocks":[{"type":"tool_use","name":"Bash","input":{"command":"echo no network"}}]}`}
			case strings.Contains(body, "flaky"):
				return fakeupstream.Scenario{Status: 503}
			}
			return fakeupstream.Scenario{Text: `{"action":"pass"}`}
		})
		cfg := func(onError string) map[string]any {
			return judgeConfig(e, "openai", map[string]any{"instructions": "redact private data, avoid the network", "on_error": onError, "max_retries": 1})
		}
		ls, curl, flaky := `{"command":"ls"}`, `{"command":"curl x"}`, `{"command":"flaky"}`
		t.Run("pass and replace", func(t *testing.T) {
			e.setPolicy(t, "llm_judge", cfg("block"))
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Listing.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: ls}}})
				checkOutcome(t, got, "Listing.", false, []string{"Bash " + ls}, "tool_use")
				got = ask(t, e, format, stream, fakeupstream.Scenario{Text: "the secret is 42"})
				checkOutcome(t, got, "[redacted by policy]", false, nil, "end_turn")
				got = ask(t, e, format, stream, fakeupstream.Scenario{ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: curl}}})
				checkOutcome(t, got, "", false, []string{`Bash {"command":"echo no network"}`}, "tool_use")
			})
		})
		t.Run("on_error pass warns before the tool", func(t *testing.T) {
			e.setPolicy(t, "llm_judge", cfg("pass"))
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Trying.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: flaky}}})
				checkOutcome(t, got, "Trying.⚠️ [Policy evaluation unavailable: tool call `Bash` was not checked]", false, []string{"Bash " + flaky}, "tool_use")
				// Every bypass is recorded.
				e.waitCall(t, got.callID, "policy.llm_judge.bypassed")
			})
		})
		t.Run("on_error block", func(t *testing.T) {
			e.setPolicy(t, "llm_judge", cfg("block"))
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "Trying.", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: flaky}}})
				checkOutcome(t, got, "Trying.[Tool call `Bash` blocked: policy evaluation unavailable]", false, nil, "end_turn")
			})
		})
	})
}

// Invalid configurations are refused with the key and what was expected,
// and change nothing.
func TestPolicyConfigValidation(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		for _, c := range []struct{ body, want string }{
			{`{"class":"string_replacement","config":{"replacements":[["a"]]}}`, `replacements[0]`},
			{`{"class":"tool_call_judge","config":{"probability_threshold":3}}`, `probability_threshold`},
			{`{"class":"regex_block","config":{"patterns":["("]}}`, `patterns[0]`},
			{`{"class":"serial","config":{"policies":[{"class":"nope"}]}}`, `unknown policy class`},
		} {
			resp, body := e.do(t, "PUT", "/api/v1/policy", c.body, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != 400 || !strings.Contains(string(body), c.want) {
				t.Errorf("%s: %d %s", c.body, resp.StatusCode, body)
			}
		}
		_, body := e.do(t, "GET", "/api/v1/policy", "", nil)
		if !strings.Contains(string(body), `"noop"`) {
			t.Errorf("an invalid policy changed the active one: %s", body)
		}
		_, body = e.do(t, "GET", "/api/v1/policy-types", "", nil)
		for _, class := range []string{"tool_call_judge", "llm_judge", "serial", "sql_protection", "regex_block", "string_replacement", "debug_logging", "probability_threshold", "luthien_proxy.policies.tool_call_judge_policy:ToolCallJudgePolicy"} {
			if !strings.Contains(string(body), class) {
				t.Errorf("policy types lack %s", class)
			}
		}
	})
}

// debug_logging passes responses through untouched and records what it
// saw as policy events.
func TestDebugLogging(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "luthien_proxy.policies.debug_logging_policy:DebugLoggingPolicy", nil)
		for _, format := range clientFormats {
			got := ask(t, e, format, true, fakeupstream.Scenario{Text: "logged words", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"ls"}`}}})
			if up, _ := e.up.LastFinished(5 * time.Second); got.raw != string(up.Sent) {
				t.Errorf("%s: stream changed:\n got %s\nwant %s", format, got.raw, up.Sent)
			}
			e.waitCall(t, got.callID, "policy.debug_logging.request", "policy.debug_logging.stream_event", "policy.debug_logging.stream_end")
		}
	})
}
