package proxy

import (
	"net/http"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// clientWriter writes a policy's outputs to the client. Response headers
// go out with the first output, so that a policy failing before it emits
// anything still gets a proper error status.
//
// An upstream event whose canonical events all come back as passthroughs,
// consecutively and in order, is written as upstream's exact bytes. When a
// policy changes, drops or reorders part of such an event, the parts that
// did pass are encoded instead, so the client sees what the policy meant.
//
// Every event written is noted on the timeline tl with its source, and
// stamped when its batch is flushed.
type clientWriter struct {
	w        http.ResponseWriter
	upstream http.Header
	enc      dialect.Encoder
	table    *eventTable
	rec      *streamRecord
	tl       *record.Timeline
	stop     toolStop
	started  bool // headers sent
	wrote    bool // at least one event written
	dirty    bool // written since the last flush

	// An upstream event whose first passthroughs arrived and whose rest
	// may follow.
	pending    *upstreamEvent
	pendingEvs []*cpv1.StreamEvent
}

func (cw *clientWriter) start() {
	if cw.started {
		return
	}
	cw.started = true
	copyResponseHeader(cw.w.Header(), cw.upstream)
	setStreamHeaders(cw.w.Header())
	cw.w.WriteHeader(http.StatusOK)
}

func (cw *clientWriter) output(out *cpv1.StreamOutput) error {
	switch o := out.GetOutput().(type) {
	case *cpv1.StreamOutput_PassthroughSeq:
		ev, u := cw.table.get(o.PassthroughSeq)
		if ev == nil {
			return nil // nothing known by that seq: nothing to write
		}
		pos := int(o.PassthroughSeq - u.first)
		if cw.pending == u && pos == len(cw.pendingEvs) {
			cw.pendingEvs = append(cw.pendingEvs, ev)
		} else {
			if err := cw.flushPending(); err != nil {
				return err
			}
			if pos != 0 {
				return cw.event(ev, record.Reencoded)
			}
			cw.pending, cw.pendingEvs = u, append(cw.pendingEvs[:0], ev)
		}
		if len(cw.pendingEvs) == len(u.evs) {
			cw.pending, cw.pendingEvs = nil, cw.pendingEvs[:0]
			if _, fixed := cw.stop.check(u.evs); fixed {
				// A tool_use stop without a tool call (stopreason.go):
				// event re-checks and rewrites it.
				cw.stop.tools = false
				for _, e := range u.evs {
					if err := cw.event(e, record.Reencoded); err != nil {
						return err
					}
				}
				return nil
			}
			cw.start()
			cw.wrote, cw.dirty = true, true
			if cw.rec != nil {
				addAll(&cw.rec.final, u.evs)
			}
			if err := cw.enc.Raw(cw.w, u.raw, u.evs); err != nil {
				return err
			}
			cw.tl.AddAll(u.evs, record.FromUpstream)
		}
		return nil
	case *cpv1.StreamOutput_Event:
		if err := cw.flushPending(); err != nil {
			return err
		}
		return cw.event(o.Event, record.FromPolicy)
	}
	return nil
}

// event encodes one event from src, with its upstream event as template.
// A tool_use stop without a tool call before it goes out as end_turn.
func (cw *clientWriter) event(ev *cpv1.StreamEvent, src record.Source) error {
	if out, fixed := cw.stop.check([]*cpv1.StreamEvent{ev}); fixed {
		ev, src = out[0], record.FromGateway
	}
	var template []byte
	if _, u := cw.table.get(ev.GetSeq()); u != nil {
		template = u.raw
	}
	cw.start()
	cw.wrote, cw.dirty = true, true
	if cw.rec != nil {
		cw.rec.final.Add(ev)
	}
	if err := cw.enc.Event(cw.w, ev, template); err != nil {
		return err
	}
	cw.tl.Add(ev, src)
	return nil
}

// flushPending encodes the passed-through part of an upstream event whose
// remainder did not follow.
func (cw *clientWriter) flushPending() error {
	evs := cw.pendingEvs
	cw.pending, cw.pendingEvs = nil, cw.pendingEvs[:0]
	for _, ev := range evs {
		if err := cw.event(ev, record.Reencoded); err != nil {
			return err
		}
	}
	return nil
}

// flushBatch flushes what a batch of outputs wrote. A partial upstream
// event stays pending: its other parts come in the next batches.
func (cw *clientWriter) flushBatch() error {
	if cw.dirty {
		cw.dirty = false
		flush(cw.w)
		cw.tl.Stamp()
	}
	return nil
}

// finish writes whatever is pending at the end of the stream.
func (cw *clientWriter) finish() error {
	if err := cw.flushPending(); err != nil {
		return err
	}
	return cw.flushBatch()
}

// fail ends the response with an in-stream error event (the caller
// answers with a JSON error instead while no header is out).
func (cw *clientWriter) fail(errType, msg string) {
	cw.failWith(&cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{
		Type: errType, Message: msg}}})
}

func (cw *clientWriter) failWith(ev *cpv1.StreamEvent) {
	_ = cw.flushPending()
	cw.start()
	if cw.enc.Event(cw.w, ev, nil) == nil {
		cw.tl.Add(ev, record.FromGateway)
	}
	flush(cw.w)
	cw.tl.Stamp()
}
