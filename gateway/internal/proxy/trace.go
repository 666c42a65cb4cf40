package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Recorder takes each finished call with the link to end it through
// (record.Recorder: off the request path).
type Recorder interface {
	Submit(c *record.Call, end record.Ender)
}

// nopRecorder ends each call without its record.
type nopRecorder struct{}

func (nopRecorder) Submit(_ *record.Call, end record.Ender) { _ = end.End(nil) }

// noLink stands for the link of a call that has none: its stream never
// opened, so its record cannot reach the control plane.
type noLink struct{}

func (noLink) End(*cpv1.CallRecord) error { return errNoLink }

var errNoLink = errors.New("the call has no stream to the control plane")

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

// finishTrace completes a call's record and hands it to the recorder,
// which ends the call's link with it.
func (p *Proxy) finishTrace(c *call, tw *traceWriter) {
	t := c.trace
	t.Finished = time.Now()
	t.Status = tw.status
	t.FirstByte = tw.firstByte
	if t.Status >= 400 && t.Error == "" {
		t.Error = "HTTP " + http.StatusText(t.Status)
	}
	p.finishCall(c) // before the recorder owns the record
	if c.link == nil {
		p.rec.Submit(t, noLink{})
		return
	}
	if c.wantsResponse && !t.Intervened && t.Error == "" {
		// Upstream's response as the client got it, for the cache.
		c.link.end.Response = t.FinalMessage
	}
	p.rec.Submit(t, c.link)
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
