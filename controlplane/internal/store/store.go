// Package store persists the record of every call: call rows and their
// events, in PostgreSQL or in a bounded in-memory store, written off the
// request path through a bounded, batching Queue. It also holds what is
// computed from records: credential redaction, conversation text for
// search, and JSON diffs of original and final bodies.
package store

import (
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ErrNotFound is returned for a call or session the store does not have.
var ErrNotFound = errors.New("not found")

// Call is one call row.
type Call struct {
	// Summary is what the gateway reported of the call.
	Summary *cpv1.CallSummary
	// Preview is the start of the call's first user message.
	Preview string
	// Text is the conversation text (request messages and the final
	// response) that search runs over.
	Text string
	// RequestUnchanged and ResponseUnchanged say that the record's
	// request.final (response.final) event is a copy of its
	// request.received (response.original), marked Copy: a store may keep
	// the flag instead of the copy and rebuild the event when read.
	RequestUnchanged, ResponseUnchanged bool
}

// Event is one event of a call, with the key that makes writing it
// idempotent: an event whose call id and key are already stored is not
// stored again.
type Event struct {
	Key   string
	Event *cpv1.CallEvent
	// Copy marks a final event that repeats the original (see
	// Call.RequestUnchanged); it is always queued with its call row.
	Copy bool
}

// CallFilter selects calls for ListCalls.
type CallFilter struct {
	SessionID      string
	Model          string
	Status         int32
	IntervenedOnly bool
	// Since and Until bound started_at; zero means unbounded.
	Since, Until time.Time
	// Limit is the page size.
	Limit int
	// PageToken continues a previous listing.
	PageToken string
}

// Turn is one call of a session with its request, final response and
// policy events.
type Turn struct {
	Call         *cpv1.CallSummary
	Request      *cpv1.CallEvent
	Response     *cpv1.CallEvent
	PolicyEvents []*cpv1.CallEvent
}

// Kinds of store, as reported by GetStats.
const (
	KindPostgres = "postgres"
	KindMemory   = "memory"
)

// Batch limits shared by the backends.
const (
	// maxTextBytes bounds the conversation text kept per call.
	maxTextBytes = 256 << 10
	// previewRunes bounds a call's preview.
	previewRunes = 200
)

// isPolicyEvent reports whether an event type is a policy event.
func isPolicyEvent(eventType string) bool {
	return len(eventType) > len("policy.") && eventType[:len("policy.")] == "policy."
}

// nowProto is the current time as a timestamp.
func nowProto() *timestamppb.Timestamp { return timestamppb.Now() }
