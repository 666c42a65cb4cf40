package record

import (
	"bytes"
	"encoding/json"
	"time"

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

	// Bodies as JSON in the client's format; nil when there was none.
	RequestReceived  []byte
	RequestFinal     []byte
	ResponseOriginal []byte
	ResponseFinal    []byte
	// FinalMessage is the response sent to the client in canonical form,
	// for successful calls.
	FinalMessage *cpv1.Message
	// Timeline is what a streamed response wrote to the client, and when;
	// recorded as the stream.timeline event.
	Timeline Timeline
}

// Record converts the call into the contract's record. Its events:
// request.received, request.final, response.original, response.final (the
// bodies; a final one equal to its original is left out and flagged),
// error ({"message", "status"}) and, for a response streamed to the
// client, stream.timeline (see Timeline).
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
	rec := &cpv1.CallRecord{Summary: s, FinalResponse: c.FinalMessage, FinalRequest: c.RequestFinal}
	// A body no policy changed crosses the wire once: the control plane
	// records its final event from the original.
	rec.RequestUnchanged = c.RequestReceived != nil && bytes.Equal(c.RequestReceived, c.RequestFinal)
	rec.ResponseUnchanged = c.ResponseOriginal != nil && bytes.Equal(c.ResponseOriginal, c.ResponseFinal)
	add := func(typ string, at time.Time, body []byte) {
		if body == nil {
			return
		}
		rec.Events = append(rec.Events, &cpv1.CallEvent{CallId: c.ID, SessionId: c.SessionID, EventType: typ,
			Time: timestamppb.New(at), PayloadJson: body})
	}
	add("request.received", c.Started, c.RequestReceived)
	if !rec.RequestUnchanged {
		add("request.final", c.Started, c.RequestFinal)
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
