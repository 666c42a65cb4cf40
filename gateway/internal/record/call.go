package record

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Call is what the gateway saw of one call. The proxy fills it while
// serving; Record converts it, on the recorder's goroutine.
type Call struct {
	ID         string
	SessionID  string
	UserID     string
	Model      string
	Format     cpv1.ClientFormat
	Upstream   string
	Status     int
	Stream     bool
	Revision   string
	Intervened bool
	Error      string

	Started   time.Time
	FirstByte time.Time
	Finished  time.Time

	// Response bodies as JSON in the client's format; nil when there was
	// none. The request is not here: the control plane's session of the
	// call records it.
	ResponseOriginal []byte
	ResponseFinal    []byte
	// A routed call's exchange as upstream saw it, when it differs from
	// the client's (a translated or renamed request): the request as
	// sent, upstream's own answer (of a stream, its start), and what the
	// translation could not carry. Provider is the route's provider.
	RequestUpstream  []byte
	ResponseUpstream []byte
	Dropped          []string
	Provider         string
	// RequestClient is the request as the client sent it, when its format
	// was translated at the edge (the Responses API) before the call
	// began; the call's own forms are then the translated ones.
	RequestClient []byte
	// FinalMessage is the response sent to the client in canonical form,
	// for successful calls.
	FinalMessage *cpv1.Message
	// Timeline is what a streamed response wrote to the client, and when;
	// recorded as the stream.timeline event.
	Timeline Timeline

	// Set by the recorder when it truncated bodies (see limit): what the
	// whole bodies said.
	trimmed      bool
	responseSame bool
	usage        *cpv1.Usage
	// weight is what the call counts against the queue's byte budget.
	weight int64
}

// Record converts the call into the contract's record, which the control
// plane's session of the call completes with the request. Its events:
// response.original, response.final (the bodies; a final one equal to its
// original is left out and flagged), error ({"message", "status"}) and,
// for a response streamed to the client, stream.timeline (see Timeline).
func (c *Call) Record() *cpv1.CallRecord {
	s := &cpv1.CallSummary{
		CallId: c.ID, SessionId: c.SessionID, UserId: c.UserID, Model: c.Model, Format: c.Format,
		Upstream: c.Upstream, Status: int32(c.Status), Stream: c.Stream, Intervened: c.Intervened,
		PolicyRevision: c.Revision, Error: c.Error, StartedAt: timestamppb.New(c.Started),
		FinishedAt: timestamppb.New(c.Finished), DurationMs: ms(c.Finished.Sub(c.Started)),
		Usage: c.FinalMessage.GetUsage(),
	}
	if !c.FirstByte.IsZero() {
		s.TtftMs = ms(c.FirstByte.Sub(c.Started))
	}
	repairStrings(s)
	rec := &cpv1.CallRecord{Summary: s, FinalResponse: c.FinalMessage}
	// A body no policy changed crosses the wire once: the control plane
	// records its final event from the original.
	if c.trimmed {
		rec.ResponseUnchanged = c.responseSame
		s.Usage = c.usage
	} else {
		rec.ResponseUnchanged = c.ResponseOriginal != nil && bytes.Equal(c.ResponseOriginal, c.ResponseFinal)
	}
	add := func(typ string, at time.Time, body []byte) {
		if body == nil {
			return
		}
		rec.Events = append(rec.Events, &cpv1.CallEvent{CallId: s.CallId, SessionId: s.SessionId, EventType: typ,
			Time: timestamppb.New(at), PayloadJson: body})
	}
	add("request.client", c.Started, c.RequestClient)
	add("request.upstream", c.Started, c.RequestUpstream)
	add("response.upstream", c.Finished, c.ResponseUpstream)
	if len(c.Dropped) > 0 || c.Provider != "" {
		routed, _ := json.Marshal(map[string]any{"provider": c.Provider, "dropped": c.Dropped})
		add("route", c.Started, routed)
	}
	add("response.original", c.Finished, c.ResponseOriginal)
	if !rec.ResponseUnchanged {
		add("response.final", c.Finished, c.ResponseFinal)
	}
	if c.Error != "" {
		errJSON, _ := json.Marshal(map[string]any{"message": c.Error, "status": c.Status})
		add("error", c.Finished, errJSON)
	}
	add("stream.timeline", c.Finished, c.Timeline.payload(c.Finished))
	return rec
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// repairStrings makes the summary's strings valid UTF-8, which protobuf
// requires of them: a record that cannot be marshalled would never be
// sent. Ids and the error can come from a client's headers or upstream.
func repairStrings(s *cpv1.CallSummary) {
	if utf8.ValidString(s.CallId) && utf8.ValidString(s.SessionId) && utf8.ValidString(s.UserId) && utf8.ValidString(s.Model) &&
		utf8.ValidString(s.Upstream) && utf8.ValidString(s.PolicyRevision) && utf8.ValidString(s.Error) {
		return
	}
	for _, p := range [...]*string{&s.CallId, &s.SessionId, &s.UserId, &s.Model, &s.Upstream, &s.PolicyRevision, &s.Error} {
		*p = strings.ToValidUTF8(*p, "\uFFFD")
	}
}
