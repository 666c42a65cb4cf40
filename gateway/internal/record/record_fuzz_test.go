package record

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// FuzzRecord converts calls with arbitrary bodies and texts into the
// contract's record: it never panics, the record always encodes (a record
// that cannot be marshalled would be refused by the control plane and
// lost), and the events the record writes itself (error, timeline) are
// JSON whatever the call held; bodies travel as the client sent them.
func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[]}`), []byte(`{"id":"x","content":[]}`), "upstream said no", "s1")
	f.Add([]byte("\xff\xfe{not json"), []byte(nil), "bad \xff utf-8", "\x00")
	f.Add([]byte(`{"a":"`+string(make([]byte, 300))+`"}`), []byte(`[]`), "", "")
	f.Fuzz(func(t *testing.T, req, resp []byte, errText, session string) {
		c := &Call{ID: "c1", SessionID: session, Model: session, Error: errText, Status: 200, Stream: true,
			Started: time.Unix(1, 0), Finished: time.Unix(2, 0), ResponseOriginal: req, ResponseFinal: append([]byte("x"), resp...)}
		rec := c.Record()
		if _, err := proto.Marshal(rec); err != nil {
			t.Fatalf("the record does not encode: %v", err)
		}
		for _, ev := range rec.GetEvents() {
			b := ev.GetPayloadJson()
			if len(b) > 0 && !json.Valid(b) && ev.GetEventType() != "response.original" && ev.GetEventType() != "response.final" {
				t.Fatalf("event %s carries invalid JSON: %q", ev.GetEventType(), b)
			}
		}
	})
}
