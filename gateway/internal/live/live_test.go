package live

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// A payload sent as JSON text reads, on the feed, exactly as the same
// payload sent as a Struct would through protojson.
func TestEncodeSplicesPayload(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	payload := `{"model":"m","messages":[{"role":"user","content":"héllo \"x\""}],"n":1.5,"ok":true,"none":null}`
	var st structpb.Struct
	if err := protojson.Unmarshal([]byte(payload), &st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ev   *cpv1.CallEvent
	}{
		{"full", &cpv1.CallEvent{CallId: "c1", SessionId: "s", EventType: "request.received", Time: at}},
		{"bare", &cpv1.CallEvent{}},
	} {
		for _, dropped := range []int64{0, 7} {
			asJSON := &cpv1.StreamActivityResponse{Event: withPayload(tc.ev, nil, []byte(payload)), Dropped: dropped}
			asStruct := &cpv1.StreamActivityResponse{Event: withPayload(tc.ev, &st, nil), Dropped: dropped}
			got, err := encode(asJSON)
			if err != nil {
				t.Fatal(err)
			}
			want, err := encode(asStruct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("data: ")) || !bytes.HasSuffix(got, []byte("\n\n")) {
				t.Fatalf("%s: not an SSE event: %q", tc.name, got)
			}
			if g, w := decode(t, got), decode(t, want); !reflect.DeepEqual(g, w) {
				t.Errorf("%s, dropped %d:\n got %s\nwant %s", tc.name, dropped, got, want)
			}
		}
	}
}

func withPayload(ev *cpv1.CallEvent, st *structpb.Struct, raw []byte) *cpv1.CallEvent {
	return &cpv1.CallEvent{CallId: ev.GetCallId(), SessionId: ev.GetSessionId(), EventType: ev.GetEventType(),
		Time: ev.GetTime(), Payload: st, PayloadJson: raw}
}

func decode(t *testing.T, sse []byte) map[string]any {
	t.Helper()
	var m map[string]any
	data := strings.TrimSuffix(strings.TrimPrefix(string(sse), "data: "), "\n\n")
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return m
}

// BenchmarkEncode measures the encoding of one activity event with a
// request body of about 1 KiB for the SSE feed: payload as JSON text (what
// the feed receives) against the same payload as a Struct.
func BenchmarkEncode(b *testing.B) {
	payload := []byte(`{"model":"claude","max_tokens":1024,"messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 80) + `"}]}`)
	var st structpb.Struct
	if err := protojson.Unmarshal(payload, &st); err != nil {
		b.Fatal(err)
	}
	ev := &cpv1.CallEvent{CallId: "c1", SessionId: "s", EventType: "request.received", Time: timestamppb.Now()}
	for _, bc := range []struct {
		name string
		msg  *cpv1.StreamActivityResponse
	}{
		{"json", &cpv1.StreamActivityResponse{Event: withPayload(ev, nil, payload)}},
		{"struct", &cpv1.StreamActivityResponse{Event: withPayload(ev, &st, nil)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encode(bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
