package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/sse"
)

// streamTimeline is the payload of a call's stream.timeline event.
type streamTimeline struct {
	Entries []struct {
		Ms     float64 `json:"ms"`
		Kind   string  `json:"kind"`
		Source string  `json:"source"`
	} `json:"entries"`
	Dropped       *float64 `json:"dropped"`
	UpstreamFirst *float64 `json:"upstream_first_event_ms"`
}

// callEvent returns the payload of the call's only event of type typ, nil
// when it has none.
func callEvent(t *testing.T, call map[string]any, typ string) []byte {
	t.Helper()
	var found []byte
	events, _ := call["events"].([]any)
	for _, ev := range events {
		m, _ := ev.(map[string]any)
		if m["event_type"] != typ {
			continue
		}
		if found != nil {
			t.Fatalf("two %s events", typ)
		}
		found, _ = json.Marshal(m["payload"])
	}
	return found
}

// clientEvents decodes what a client received into canonical events, as
// the gateway counts them, and counts the text deltas by the client's own
// reading of its format.
func clientEvents(t *testing.T, format string, body []byte) (events, textDeltas int) {
	t.Helper()
	var d dialect.Dialect = anthropic.Dialect{}
	if format == "openai" {
		d = openai.Dialect{}
	}
	dec := d.NewDecoder()
	rd := sse.NewReader(bytes.NewReader(body))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs, err := dec.Decode(ev)
		if err != nil {
			t.Fatalf("client got an undecodable event %q: %v", ev.Raw, err)
		}
		events += len(evs)
	}
	for _, ev := range parseSSE(t, body) {
		if ev.data == "" || ev.data == "[DONE]" {
			continue
		}
		var m struct {
			Delta struct {
				Type string `json:"type"`
			} `json:"delta"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatalf("%s: %v", ev.data, err)
		}
		if format == "anthropic" && ev.name == "content_block_delta" && m.Delta.Type == "text_delta" ||
			format == "openai" && len(m.Choices) > 0 && m.Choices[0].Delta.Content != "" {
			textDeltas++
		}
	}
	if format == "anthropic" && events != len(parseSSE(t, body)) {
		t.Errorf("%d canonical events from %d Anthropic events: want one each", events, len(parseSSE(t, body)))
	}
	return events, textDeltas
}

// Every streamed call records its timeline: one entry per event the
// client received, in time order, marked as upstream's when it passed
// unchanged and as the policy's when all_caps changed it. Whole responses
// have none.
func TestStreamTimeline(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		sc := fakeupstream.Scenario{Text: "alpha beta gamma delta", Pings: true,
			ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"ls"}`}}}
		for _, policy := range []string{"noop", "all_caps"} {
			e.setPolicy(t, policy, nil)
			for _, format := range clientFormats {
				t.Run(policy+"/"+format, func(t *testing.T) {
					o := ask(t, e, format, true, sc)
					if o.status != http.StatusOK {
						t.Fatalf("status %d: %s", o.status, o.raw)
					}
					call := e.waitCall(t, o.callID, "stream.timeline")
					var tl streamTimeline
					if err := json.Unmarshal(callEvent(t, call, "stream.timeline"), &tl); err != nil {
						t.Fatal(err)
					}
					events, textDeltas := clientEvents(t, format, []byte(o.raw))
					if len(tl.Entries) != events || tl.Dropped == nil || *tl.Dropped != 0 {
						t.Errorf("%d entries, dropped %v; the client received %d events", len(tl.Entries), tl.Dropped, events)
					}
					duration, _ := call["call"].(map[string]any)["duration_ms"].(float64)
					for i, en := range tl.Entries {
						if en.Ms < 0 || en.Ms > duration+0.01 || i > 0 && en.Ms < tl.Entries[i-1].Ms {
							t.Errorf("entry %d at %v ms (previous %v, call %v ms)", i, en.Ms, tl.Entries[max(i-1, 0)].Ms, duration)
						}
					}
					if tl.UpstreamFirst == nil || len(tl.Entries) > 0 && *tl.UpstreamFirst > tl.Entries[0].Ms {
						t.Errorf("upstream's first event at %v ms, the first write at %v ms", tl.UpstreamFirst, tl.Entries[0].Ms)
					}
					kinds := map[string]int{}
					for _, en := range tl.Entries {
						kinds[en.Kind]++
						switch {
						case policy == "noop" && en.Source != "upstream":
							t.Errorf("noop: %s from %s, want upstream", en.Kind, en.Source)
						case policy == "all_caps" && en.Kind == "text_delta" && en.Source != "policy":
							t.Errorf("all_caps: text delta from %s, want policy", en.Source)
						case policy == "all_caps" && en.Kind != "text_delta" && en.Source != "upstream" && en.Source != "reencoded":
							t.Errorf("all_caps: %s from %s, want upstream or reencoded", en.Kind, en.Source)
						}
					}
					if kinds["text_delta"] != textDeltas || textDeltas == 0 || kinds["tool_call_start"] != 1 ||
						kinds["tool_args_delta"] == 0 || kinds["message_start"] != 1 || kinds["message_stop"] != 1 {
						t.Errorf("kinds %v; the client received %d text deltas and one tool call", kinds, textDeltas)
					}
				})
			}
		}
		t.Run("not streamed", func(t *testing.T) {
			for _, format := range clientFormats {
				o := ask(t, e, format, false, sc)
				call := e.waitCall(t, o.callID, "response.original")
				if p := callEvent(t, call, "stream.timeline"); p != nil {
					t.Errorf("%s: a whole response has a timeline: %s", format, p)
				}
			}
		})
	})
}
