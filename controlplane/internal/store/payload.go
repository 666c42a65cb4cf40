package store

import (
	"bytes"
	"encoding/json"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Events are kept with their payload as JSON text (CallEvent.payload_json)
// from the moment the control plane takes them until a reader asks: the
// store writes the text as it is, the feed carries it, and only readers
// pay for a Struct (Readable).

// emptyObject is the payload of an event without data.
var emptyObject = []byte("{}")

// TakePayload puts an incoming event's payload into its stored form: the
// text of a redacted JSON object in PayloadJson, Payload cleared. Text
// the store cannot keep (invalid UTF-8, NUL) is repaired first and the
// payload marked (RepairedField). A payload_json that is not a JSON object
// is kept as {"raw": text}, so that a bad payload costs its event nothing
// but its shape.
func TakePayload(ev *cpv1.CallEvent) {
	b, repaired := repairJSON(PayloadJSON(ev))
	if len(ev.GetPayloadJson()) > 0 {
		b = objectJSON(b)
	}
	b = redactValidJSON(b)
	if repaired != "" {
		b = markRepaired(b, repaired)
	}
	ev.PayloadJson, ev.Payload = b, nil
}

// objectJSON returns b if it is a JSON object, or {"raw": b as text}.
func objectJSON(b []byte) []byte {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' && json.Valid(b) {
		return b
	}
	raw, _ := json.Marshal(map[string]string{"raw": string(b)})
	return raw
}

// PayloadJSON returns the payload of a stored event as JSON text.
func PayloadJSON(ev *cpv1.CallEvent) []byte {
	if b := ev.GetPayloadJson(); len(b) > 0 {
		return b
	}
	if ev.GetPayload() == nil {
		return emptyObject
	}
	b, err := protojson.Marshal(ev.GetPayload())
	if err != nil {
		return emptyObject
	}
	return b
}

// PayloadStruct returns the payload of a stored event as a Struct (empty
// when it cannot be read).
func PayloadStruct(ev *cpv1.CallEvent) *structpb.Struct {
	if len(ev.GetPayloadJson()) == 0 {
		if p := ev.GetPayload(); p != nil {
			return p
		}
		return &structpb.Struct{}
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(ev.GetPayloadJson(), s); err != nil {
		return structFromJSON(ev.GetPayloadJson())
	}
	return s
}

// structFromJSON reads a JSON object that protojson refuses but that is
// JSON, so that no stored payload is unreadable: a key given twice (the
// last one counts), a number beyond float64 (kept as its text), invalid
// UTF-8 or an unpaired surrogate (U+FFFD).
func structFromJSON(b []byte) *structpb.Struct {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return &structpb.Struct{}
	}
	s, err := structpb.NewStruct(plainNumbers(m).(map[string]any))
	if err != nil {
		return &structpb.Struct{}
	}
	return s
}

// plainNumbers turns the json.Numbers of a decoded value into float64, or
// into their text when float64 cannot hold them.
func plainNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = plainNumbers(e)
		}
	case json.Number:
		if f, err := strconv.ParseFloat(string(t), 64); err == nil {
			return f
		}
		return string(t)
	}
	return v
}

// Readable returns the event as readers get it: a copy with payload filled
// in and payload_json empty. Stored events are shared, so they are never
// changed in place.
func Readable(ev *cpv1.CallEvent) *cpv1.CallEvent {
	if ev == nil || len(ev.GetPayloadJson()) == 0 {
		return ev
	}
	out := EventLike(ev, ev.GetEventType())
	out.Payload = PayloadStruct(ev)
	return out
}

// AsJSON returns the event with its payload as payload_json: the event
// itself when it is so already, else a copy.
func AsJSON(ev *cpv1.CallEvent) *cpv1.CallEvent {
	if ev == nil || len(ev.GetPayloadJson()) > 0 {
		return ev
	}
	out := EventLike(ev, ev.GetEventType())
	out.PayloadJson = PayloadJSON(ev)
	return out
}

// EventLike returns a new event of the given type with ev's call, session
// and time, and no payload.
func EventLike(ev *cpv1.CallEvent, eventType string) *cpv1.CallEvent {
	return &cpv1.CallEvent{CallId: ev.GetCallId(), SessionId: ev.GetSessionId(), EventType: eventType, Time: ev.GetTime()}
}

// ReadableAll applies Readable to every event, in a new slice.
func ReadableAll(events []*cpv1.CallEvent) []*cpv1.CallEvent {
	out := make([]*cpv1.CallEvent, len(events))
	for i, ev := range events {
		out[i] = Readable(ev)
	}
	return out
}
