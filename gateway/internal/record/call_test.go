package record

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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
		if ok && !proto.Equal(ev.GetPayload(), Payload(body)) {
			t.Errorf("%s payload %v, want %s", ev.GetEventType(), ev.GetPayload(), body)
		}
	}
	if got := rec.Events[3].GetPayload().GetFields()["message"].GetStringValue(); got != "boom" {
		t.Errorf("error payload message %q", got)
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
		if len(c.Record().Events) != 4 {
			b.Fatal("want 4 events")
		}
	}
}
