package record

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func TestRecordPayloads(t *testing.T) {
	req := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	resp := []byte(`{"content":[{"type":"text","text":"hello"}]}`)
	changed := []byte(`{"content":[{"type":"text","text":"HELLO"}]}`)
	now := time.Now()
	c := &Call{ID: "c1", Started: now, Finished: now,
		RequestReceived: req, RequestFinal: append([]byte(nil), req...), // equal bytes, another array
		ResponseOriginal: resp, ResponseFinal: changed, Error: "boom", Status: 502}
	want := map[string][]byte{
		"request.received": req, "response.original": resp, "response.final": changed,
	}
	rec := c.Record()
	if !rec.RequestUnchanged || rec.ResponseUnchanged {
		t.Errorf("request unchanged %v, response unchanged %v; want true, false", rec.RequestUnchanged, rec.ResponseUnchanged)
	}
	if len(rec.Events) != 4 {
		t.Fatalf("%d events, want 4 (no request.final: it is the request as received)", len(rec.Events))
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
	if err := json.Unmarshal(rec.Events[3].GetPayloadJson(), &errPayload); err != nil || errPayload.Message != "boom" || errPayload.Status != 502 {
		t.Errorf("error payload %s (%v)", rec.Events[3].GetPayloadJson(), err)
	}
}

// BenchmarkRecord measures the conversion of one finished call (on the
// recorder's goroutine, off the request path) with bodies no policy
// changed.
func BenchmarkRecord(b *testing.B) {
	req := []byte(`{"model":"claude-bench","max_tokens":1024,"stream":false,"messages":[{"role":"user","content":"Count for me."}]}`)
	resp := []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":" w000 w001 w002 w003"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4}}`)
	now := time.Now()
	c := &Call{ID: "c1", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Started: now, Finished: now,
		RequestReceived: req, RequestFinal: req, ResponseOriginal: resp, ResponseFinal: resp}
	b.ReportAllocs()
	for b.Loop() {
		if len(c.Record().Events) != 2 {
			b.Fatal("want 2 events: the final bodies are the originals")
		}
	}
}
