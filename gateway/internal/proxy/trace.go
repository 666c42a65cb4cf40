package proxy

import (
	"bytes"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Recorder takes the record of each finished call (off the request path).
type Recorder interface {
	Submit(c *record.Call)
}

// nopRecorder records nothing.
type nopRecorder struct{}

func (nopRecorder) Submit(*record.Call) {}

// traceWriter notes the status answered and when the first byte went out.
type traceWriter struct {
	http.ResponseWriter
	status    int
	firstByte time.Time
}

func (t *traceWriter) WriteHeader(code int) {
	if t.status == 0 {
		t.status = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *traceWriter) Write(b []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	if t.firstByte.IsZero() && len(b) > 0 {
		t.firstByte = time.Now()
	}
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush.
func (t *traceWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// finishTrace completes a call's record and hands it to the recorder.
func (p *Proxy) finishTrace(c *call, tw *traceWriter) {
	t := c.trace
	t.Finished = time.Now()
	t.Status = tw.status
	t.FirstByte = tw.firstByte
	t.RequestFinal = c.body
	if t.Status >= 400 && t.Error == "" {
		t.Error = "HTTP " + http.StatusText(t.Status)
	}
	p.finishCall(c) // before the recorder owns the record
	p.rec.Submit(t)
}

// capture keeps a copy of what is relayed, for the record.
type capture struct {
	buf   bytes.Buffer
	limit int
}

func (c *capture) Write(b []byte) (int, error) {
	if c.buf.Len()+len(b) <= c.limit {
		c.buf.Write(b)
	}
	return len(b), nil
}

// streamRecord rebuilds the original and final messages of a stream.
type streamRecord struct {
	original, final canon.Accumulator
	// unchanged: the client got upstream's stream as is, but for
	// stopFixed: its tool_use stop reason turned into end_turn
	// (stopreason.go).
	unchanged bool
	stopFixed bool
}

// render stores both messages in the call's record; a policy that changed
// the content (rewrote, dropped or added anything) marks the call.
func (s *streamRecord) render(c *call) {
	orig := s.original.Message()
	fin := orig
	switch {
	case !s.unchanged:
		fin = s.final.Message()
	case s.stopFixed:
		fin, _ = fixStop(orig)
	}
	c.trace.ResponseOriginal, _ = c.d.RenderMessage(nil, orig)
	c.trace.ResponseFinal = c.trace.ResponseOriginal
	if fin != orig {
		c.trace.ResponseFinal, _ = c.d.RenderMessage(nil, fin)
		if !proto.Equal(orig, fin) {
			c.trace.Intervened = true
		}
	}
	c.trace.FinalMessage = fin
}

// addAll folds events into an accumulator.
func addAll(a *canon.Accumulator, evs []*cpv1.StreamEvent) {
	for _, e := range evs {
		a.Add(e)
	}
}
