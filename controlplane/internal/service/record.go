package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// EventQueue is the store's write queue as the recording services use it.
type EventQueue interface {
	// Enqueue queues a call row (may be nil) and its events without
	// blocking; false means they were dropped.
	Enqueue(call *store.Call, events []store.Event) bool
}

// ActivityFeed publishes events to the activity feed without blocking.
type ActivityFeed interface {
	Publish(ev *cpv1.CallEvent)
}

// RecordService implements cpv1.RecordServiceServer: it redacts the
// gateway's call records, queues them for the store, publishes their
// events to the activity feed and caches upstream's responses of the
// calls that bring back their cache-fill token.
type RecordService struct {
	cpv1.UnimplementedRecordServiceServer

	queue  EventQueue
	feed   ActivityFeed
	cache  *ResponseCache
	logger *slog.Logger
	seen   *recentSet
}

var _ cpv1.RecordServiceServer = (*RecordService)(nil)

// NewRecordService returns a RecordService writing to queue and feed;
// cache may be nil.
func NewRecordService(queue EventQueue, feed ActivityFeed, cache *ResponseCache, logger *slog.Logger) *RecordService {
	return &RecordService{queue: queue, feed: feed, cache: cache, logger: logger, seen: newRecentSet(recentCalls)}
}

// recentCalls is how many call ids RecordService remembers to recognise a
// resent record (published and cached once).
const recentCalls = 16384

// RecordCalls queues each record. It fails only for a cancelled call: a
// record without a call id is skipped, and one the full queue cannot take
// is counted in dropped; the gateway does not resend either.
func (s *RecordService) RecordCalls(ctx context.Context, req *cpv1.RecordCallsRequest) (*cpv1.RecordCallsResponse, error) {
	resp := &cpv1.RecordCallsResponse{}
	for _, rec := range req.GetCalls() {
		sum := rec.GetSummary()
		if sum.GetCallId() == "" {
			s.logger.WarnContext(ctx, "call record without a call id skipped", "events", len(rec.GetEvents()))
			resp.Dropped++
			continue
		}
		fill := s.cache.claim(ctx, rec)
		call, events := prepareRecord(rec)
		if s.queue.Enqueue(call, events) {
			resp.Accepted++
		} else {
			resp.Dropped++
		}
		if !s.seen.add(sum.GetCallId()) {
			continue // a resent record: already published (and its token used)
		}
		for _, e := range events {
			s.feed.Publish(e.Event)
		}
		s.cache.fill(ctx, fill)
	}
	return resp, nil
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
// others, so a resent record adds nothing.
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

// recentSet remembers the last n strings added.
type recentSet struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add adds s and reports whether it was new.
func (r *recentSet) add(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[s]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = s
	r.next = (r.next + 1) % len(r.ring)
	r.set[s] = struct{}{}
	return true
}
