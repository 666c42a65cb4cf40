package service

import (
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// EventQueue is the store's write queue as the call sessions and the
// policy-event recorder use it.
type EventQueue interface {
	// Enqueue queues a call row (may be nil) and its events without
	// blocking; false means they were dropped.
	Enqueue(call *store.Call, events []store.Event) bool
}

// ActivityFeed publishes events to the activity feed without blocking.
type ActivityFeed interface {
	Publish(ev *cpv1.CallEvent)
}

// recordCall redacts a call's record, queues it for the store and
// publishes its events to the activity feed (nil: none), whether or not
// the queue took them. It never blocks; false: the full queue dropped the
// record (the queue counts it).
func recordCall(queue EventQueue, feed ActivityFeed, rec *cpv1.CallRecord) bool {
	call, events := prepareRecord(rec)
	ok := queue.Enqueue(call, events)
	if feed != nil {
		for _, e := range events {
			feed.Publish(e.Event)
		}
	}
	return ok
}

// prepareRecord redacts a record and turns it into a call row and keyed
// events.
func prepareRecord(rec *cpv1.CallRecord) (*store.Call, []store.Event) {
	sum := rec.GetSummary()
	sum.Error = store.RedactString(sum.GetError())
	events := make([]store.Event, 0, len(rec.GetEvents()))
	var request []byte
	for i, ev := range rec.GetEvents() {
		if ev == nil {
			continue
		}
		if ev.CallId == "" {
			ev.CallId = sum.GetCallId()
		}
		if ev.SessionId == "" {
			ev.SessionId = sum.GetSessionId()
		}
		if ev.Time == nil {
			ev.Time = timestamppb.Now()
		}
		store.TakePayload(ev)
		if ev.EventType == "request.received" {
			request = ev.PayloadJson
		}
		events = append(events, store.Event{Key: fmt.Sprintf("g%d:%s", i, ev.GetEventType()), Event: ev})
	}
	// Bodies the gateway sent once because no policy changed them.
	call := &store.Call{Summary: sum}
	events, call.RequestUnchanged = appendUnchanged(events, rec.GetRequestUnchanged(), "request.received", "request.final", len(rec.GetEvents()))
	events, call.ResponseUnchanged = appendUnchanged(events, rec.GetResponseUnchanged(), "response.original", "response.final", len(rec.GetEvents())+1)
	call.Text, call.Preview = store.ConversationText(request, rec.GetFinalResponse())
	return call, events
}

// appendUnchanged adds the final event of a body a policy left unchanged,
// sharing the original's (redacted, no longer mutated) payload, marked as
// a copy; it reports whether it did. Its key is positional like the
// others.
func appendUnchanged(events []store.Event, unchanged bool, original, final string, pos int) ([]store.Event, bool) {
	if !unchanged {
		return events, false
	}
	for _, e := range events {
		if e.Event.GetEventType() == original {
			ev := store.EventLike(e.Event, final)
			ev.PayloadJson = e.Event.GetPayloadJson()
			return append(events, store.Event{Key: fmt.Sprintf("g%d:%s", pos, final), Event: ev, Copy: true}), true
		}
	}
	return events, false
}
