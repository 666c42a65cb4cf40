package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// EventRecorder is the policy.Recorder of the control plane: it redacts
// each policy event, queues it for the store and publishes it to the
// activity feed. It never blocks.
type EventRecorder struct {
	queue EventQueue
	feed  ActivityFeed
	// also receives every event too, when set.
	also policy.Recorder
}

var _ policy.Recorder = (*EventRecorder)(nil)

// NewEventRecorder returns a recorder writing to queue and feed, and
// forwarding to also when it is not nil.
func NewEventRecorder(queue EventQueue, feed ActivityFeed, also policy.Recorder) *EventRecorder {
	return &EventRecorder{queue: queue, feed: feed, also: also}
}

// Record records one event.
func (r *EventRecorder) Record(ctx context.Context, ev policy.Event) {
	if r.also != nil {
		r.also.Record(ctx, ev)
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	ce := &cpv1.CallEvent{
		CallId: ev.CallID, SessionId: ev.SessionID, EventType: ev.Type,
		Time: timestamppb.New(at), PayloadJson: detailsJSON(ev.Details),
	}
	store.TakePayload(ce)
	r.queue.Enqueue(nil, []store.Event{{Key: "p:" + randomKey(), Event: ce}})
	r.feed.Publish(ce)
}

// detailsJSON converts JSON-like details to the text of a JSON object;
// unmarshallable details become an error note.
func detailsJSON(details map[string]any) []byte {
	if len(details) == 0 {
		return nil
	}
	b, err := json.Marshal(details)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"details_error": err.Error()})
	}
	return b
}

// randomKey returns a fresh random event key.
func randomKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
