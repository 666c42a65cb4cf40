package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// The gateway may not import the control plane (internal/app's dependency
// test), so the stream invariants of controlplane/streamcheck are checked
// here again, on the canonical events decoded back from a translated
// stream, together with the wire rules of gateway/e2e.

// decodeAll decodes a whole client stream with d's decoder.
func decodeAll(t *testing.T, d dialect.Dialect, stream []byte) []*cpv1.StreamEvent {
	t.Helper()
	dec := d.NewDecoder()
	rd := sse.NewReader(bytes.NewReader(stream))
	var evs []*cpv1.StreamEvent
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(ev)
		if err != nil {
			t.Fatalf("decode %q: %v", ev.Raw, err)
		}
		for _, e := range got {
			if e.GetOpaque() == nil && e.GetPing() == nil {
				evs = append(evs, e)
			}
		}
	}
}

// checkInvariants is controlplane/streamcheck's Check: the stream rules
// of REFERENCE.md §2.3.
func checkInvariants(evs []*cpv1.StreamEvent) error {
	var errs []error
	fail := func(i int, f string, a ...any) {
		errs = append(errs, fmt.Errorf("event %d: "+f, append([]any{i}, a...)...))
	}
	if len(evs) == 0 {
		return errors.New("empty stream")
	}
	next, open, deltas, tools, stops := uint32(0), int64(-1), 0, 0, 0
	stop, errored := "", false
	for i, ev := range evs {
		if stops > 0 {
			fail(i, "event after message_stop")
		}
		switch x := ev.GetEvent().(type) {
		case *cpv1.StreamEvent_MessageStart:
			if i != 0 {
				fail(i, "message_start not first")
			}
		case *cpv1.StreamEvent_ContentBlockStart:
			idx := x.ContentBlockStart.GetIndex()
			if deltas > 0 || open >= 0 || idx != next {
				fail(i, "bad block start %d (next %d, open %d)", idx, next, open)
			}
			next, open = idx+1, int64(idx)
			if x.ContentBlockStart.GetBlock().GetToolUse() != nil {
				tools++
			} else if tools > 0 {
				fail(i, "block %d after a tool_use block", idx)
			}
		case *cpv1.StreamEvent_ContentBlockDelta:
			if int64(x.ContentBlockDelta.GetIndex()) != open {
				fail(i, "delta outside its block")
			}
		case *cpv1.StreamEvent_ContentBlockStop:
			if int64(x.ContentBlockStop.GetIndex()) != open {
				fail(i, "stop of a block not open")
			}
			open = -1
		case *cpv1.StreamEvent_MessageDelta:
			deltas++
			if open >= 0 {
				fail(i, "message_delta with block %d open", open)
			}
			stop = x.MessageDelta.GetStopReason()
		case *cpv1.StreamEvent_MessageStop:
			stops++
		case *cpv1.StreamEvent_Error:
			errored = true
			if i != len(evs)-1 {
				fail(i, "error is not the last event")
			}
		}
	}
	if i := len(evs) - 1; !errored {
		if _, isStart := evs[0].GetEvent().(*cpv1.StreamEvent_MessageStart); !isStart {
			fail(0, "first event is not message_start")
		}
		if deltas != 1 {
			fail(i, "%d message_delta events, want 1", deltas)
		}
		if stops != 1 || evs[i].GetMessageStop() == nil {
			fail(i, "message_stop is not last")
		}
		if open >= 0 {
			fail(i, "block %d never stopped", open)
		}
		if stop == "tool_use" && tools == 0 {
			fail(i, "stop_reason tool_use without tool_use")
		}
	}
	return errors.Join(errs...)
}

// validateAnthropicStream checks an Anthropic client stream on the wire
// (event names match data types) and its invariants.
func validateAnthropicStream(t *testing.T, stream []byte) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(stream))
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(ev.Data, &m); err != nil || m.Type != string(ev.Name) {
			t.Errorf("event %q has data %s", ev.Name, ev.Data)
		}
	}
	if err := checkInvariants(decodeAll(t, anthropic.Dialect{}, stream)); err != nil {
		t.Errorf("invalid Anthropic stream: %v\n%s", err, stream)
	}
}

// validateChatStream checks an OpenAI client stream on the wire (the
// rules of gateway/e2e's validateOpenAI) and its invariants.
func validateChatStream(t *testing.T, stream []byte) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(stream))
	var datas [][]byte
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		datas = append(datas, bytes.Clone(ev.Data)) // the reader reuses its buffer
	}
	if len(datas) == 0 {
		t.Fatal("empty stream")
	}
	last := datas[len(datas)-1]
	errored := bytes.HasPrefix(last, []byte(`{"error"`))
	if !errored && string(last) != "[DONE]" {
		t.Errorf("stream does not end with [DONE] or an error: %s", last)
	}
	finishes, sawTool := 0, false
	for _, d := range datas {
		if string(d) == "[DONE]" || bytes.HasPrefix(d, []byte(`{"error"`)) {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content   *string           `json:"content"`
					ToolCalls []json.RawMessage `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(d, &c); err != nil {
			t.Fatalf("chunk is not JSON: %s", d)
		}
		for _, ch := range c.Choices {
			hasText := ch.Delta.Content != nil && *ch.Delta.Content != ""
			if finishes > 0 && (hasText || len(ch.Delta.ToolCalls) > 0) {
				t.Errorf("content after finish_reason: %s", d)
			}
			if len(ch.Delta.ToolCalls) > 0 {
				sawTool = true
			} else if sawTool && hasText {
				t.Errorf("content after a tool call: %s", d)
			}
			if ch.FinishReason != nil {
				finishes++
				if hasText {
					t.Errorf("content and finish_reason in one chunk: %s", d)
				}
			}
		}
	}
	if !errored && finishes != 1 {
		t.Errorf("%d finish_reason chunks, want 1", finishes)
	}
	if err := checkInvariants(decodeAll(t, openai.Dialect{}, stream)); err != nil {
		t.Errorf("invalid OpenAI stream: %v\n%s", err, stream)
	}
}
