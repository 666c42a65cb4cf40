package record

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestRecordPayloads(t *testing.T) {
	resp := []byte(`{"content":[{"type":"text","text":"hello"}]}`)
	changed := []byte(`{"content":[{"type":"text","text":"HELLO"}]}`)
	now := time.Now()
	c := &Call{ID: "c1", Started: now, Finished: now,
		ResponseOriginal: resp, ResponseFinal: changed, Error: "boom", Status: 502}
	want := map[string][]byte{"response.original": resp, "response.final": changed}
	rec := c.Record()
	if rec.ResponseUnchanged {
		t.Error("response unchanged, want changed")
	}
	if len(rec.Events) != 3 {
		t.Fatalf("%d events, want 3 (the request is the control plane's to record)", len(rec.Events))
	}
	same := &Call{ID: "c2", Started: now, Finished: now, ResponseOriginal: resp, ResponseFinal: append([]byte(nil), resp...)}
	if r := same.Record(); !r.ResponseUnchanged || len(r.Events) != 1 {
		t.Errorf("an unchanged response (equal bytes, another array): unchanged %v, %d events; want true and only response.original",
			r.ResponseUnchanged, len(r.Events))
	}
	for _, ev := range rec.Events {
		body, ok := want[ev.GetEventType()]
		if !ok && ev.GetEventType() != "error" {
			t.Errorf("unexpected event %s", ev.GetEventType())
		}
		if ok && !bytes.Equal(ev.GetPayloadJson(), body) {
			t.Errorf("%s payload %s, want %s", ev.GetEventType(), ev.GetPayloadJson(), body)
		}
	}
	var errPayload struct {
		Message string `json:"message"`
		Status  int    `json:"status"`
	}
	if err := json.Unmarshal(rec.Events[2].GetPayloadJson(), &errPayload); err != nil || errPayload.Message != "boom" || errPayload.Status != 502 {
		t.Errorf("error payload %s (%v)", rec.Events[2].GetPayloadJson(), err)
	}
}

// BenchmarkRecord measures the conversion of one finished call (on the
// recorder's goroutine, off the request path) with bodies no policy
// changed.
func BenchmarkRecord(b *testing.B) {
	resp := []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":" w000 w001 w002 w003"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4}}`)
	now := time.Now()
	c := &Call{ID: "c1", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Started: now, Finished: now,
		ResponseOriginal: resp, ResponseFinal: resp}
	b.ReportAllocs()
	for b.Loop() {
		if len(c.Record().Events) != 1 {
			b.Fatal("want 1 event: the final body is the original")
		}
	}
}
