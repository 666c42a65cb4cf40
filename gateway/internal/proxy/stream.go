package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"luthien.dev/gateway/internal/record"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// relayStream copies an upstream event stream no policy inspects, writing
// and flushing each event as it arrives. A stream that breaks off upstream
// ends with an in-stream error event, so the client knows it is cut.
func (p *Proxy) relayStream(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	copyResponseHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	flush(w)
	rd := sse.NewReader(resp.Body)
	dec := c.d.NewDecoder()
	enc := c.d.NewEncoder(c.req)
	var stop toolStop
	sr := &streamRecord{unchanged: true}
	defer sr.render(c)
	tl := &c.trace.Timeline
	tl.Begin(c.trace.Started)
	for first := true; ; first = false {
		ev, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				p.log.WarnContext(r.Context(), "upstream stream broke off", "call_id", c.id, "err", err)
				p.countUpstreamError(c.d, c, upstreamErrorKind(errBrokeOff, err))
				c.trace.Error = upstreamBrokeOffText(err)
				broke := upstreamBrokeOff(err)
				if enc.Event(w, broke, nil) == nil {
					tl.Add(broke, record.FromGateway)
				}
				flush(w)
				tl.Stamp()
			}
			return
		}
		if first {
			tl.UpstreamFirstEvent(time.Now())
		}
		evs, derr := dec.Decode(ev)
		if derr != nil {
			if _, err := w.Write(ev.Raw); err != nil {
				return
			}
			flush(w)
			tl.Add(unparsedEvent, record.FromUpstream)
			tl.Stamp()
			continue
		}
		addAll(&sr.original, evs)
		if out, fixed := stop.check(evs); fixed {
			// A tool_use stop without a tool call (stopreason.go).
			sr.stopFixed = true
			for i, e := range out {
				if enc.Event(w, e, ev.Raw) != nil {
					return
				}
				src := record.FromUpstream
				if e != evs[i] {
					src = record.FromGateway
				}
				tl.Add(e, src)
			}
		} else {
			if err := enc.Raw(w, ev.Raw, evs); err != nil {
				return
			}
			tl.AddAll(evs, record.FromUpstream)
		}
		flush(w)
		tl.Stamp()
	}
}

// unparsedEvent stands for an upstream event that could not be decoded.
var unparsedEvent = &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "sse.unparsed"}}}

// upstreamEvent is one upstream SSE event and the canonical events decoded
// from it (seqs first..first+len(evs)-1).
type upstreamEvent struct {
	raw   []byte
	evs   []*cpv1.StreamEvent
	first uint64
}

// eventTable maps seqs to the upstream events they came from. The upstream
// reader adds, the client writer looks up.
type eventTable struct {
	mu     sync.Mutex
	bySeq  []*upstreamEvent // index seq-1
	events []*cpv1.StreamEvent
}

func (t *eventTable) add(raw []byte, evs []*cpv1.StreamEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := &upstreamEvent{raw: raw, evs: evs, first: uint64(len(t.bySeq)) + 1}
	for i, e := range evs {
		e.Seq = u.first + uint64(i)
		t.bySeq = append(t.bySeq, u)
		t.events = append(t.events, e)
	}
}

func (t *eventTable) get(seq uint64) (*cpv1.StreamEvent, *upstreamEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq == 0 || seq > uint64(len(t.bySeq)) {
		return nil, nil
	}
	return t.events[seq-1], t.bySeq[seq-1]
}

// streamWithPolicy runs one streamed response through the call's link,
// full duplex: upstream events are sent as they arrive while the policy's
// outputs are written to the client as they come back.
func (p *Proxy) streamWithPolicy(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	_, span := p.span(r.Context(), spanPolicyStream)
	// Ending the pump: the client went away, the policy ended the
	// response, or its stream failed.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	table := &eventTable{}
	var wg sync.WaitGroup
	var upstreamErr, pumpErr error
	var upstreamFirst time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			// A panic here would end the process: it becomes the call's
			// error, and cancelling ends the link being drained.
			if v := recover(); v != nil {
				p.logPanic(ctx, v, "call_id", c.id, "in", "reading the upstream stream")
				pumpErr = errRecovered
				c.link.cancel()
			}
		}()
		upstreamFirst, upstreamErr = p.pumpUpstream(ctx, r, c, resp.Body, table)
	}()
	sr := &streamRecord{}
	tl := &c.trace.Timeline
	tl.Begin(c.trace.Started)
	cw := &clientWriter{w: w, upstream: resp.Header, enc: c.d.NewEncoder(c.req), table: table, rec: sr, tl: tl}
	err := p.drainPolicy(c.link, cw)
	endSpan(span, err)
	cancel()
	// Closing the body unblocks the upstream reader if it is mid-read.
	_ = resp.Body.Close()
	wg.Wait()
	// The reader is done: the table is complete and no longer written.
	addAll(&sr.original, table.events)
	tl.UpstreamFirstEvent(upstreamFirst)
	defer sr.render(c)
	if upstreamErr != nil {
		c.end().UpstreamError = upstreamErr.Error()
	}
	switch {
	case pumpErr != nil:
		c.trace.Error = pumpErr.Error()
	case err != nil:
		c.trace.Error = "stream policy failed: " + status.Convert(err).Message()
	case upstreamErr != nil:
		c.trace.Error = upstreamBrokeOffText(upstreamErr)
	}
	switch {
	case r.Context().Err() != nil && (err != nil || pumpErr != nil):
		// The client went away; nothing to answer.
	case pumpErr != nil && !cw.started:
		WriteError(w, c.d, http.StatusBadGateway, "api_error", pumpErr.Error())
	case pumpErr != nil:
		cw.failWith(internalErrorEvent())
	case err != nil && !cw.started:
		p.policyFailed(w, r, c, "stream", err)
	case err != nil:
		p.log.ErrorContext(r.Context(), "stream policy failed", "call_id", c.id, "err", err)
		cw.fail("api_error", "policy evaluation failed: "+status.Convert(err).Message())
	case upstreamErr != nil && !cw.started:
		// Nothing went out yet: a status says it best.
		p.upstreamFailed(w, r, c, c.d, errBrokeOff, upstreamErr)
	case upstreamErr != nil:
		p.log.WarnContext(r.Context(), "upstream stream broke off", "call_id", c.id, "err", upstreamErr)
		p.countUpstreamError(c.d, c, upstreamErrorKind(errBrokeOff, upstreamErr))
		cw.failWith(upstreamBrokeOff(upstreamErr))
	case !cw.wrote:
		// Never an empty 200: say why there is nothing.
		cw.fail("api_error", "the policy produced an empty response")
	}
}

// upstreamBrokeOff is the in-stream error for a stream cut upstream (or
// abandoned for its silence).
func upstreamBrokeOff(err error) *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{
		Type: "api_error", Message: upstreamBrokeOffText(err)}}}
}

func upstreamBrokeOffText(err error) string {
	if te := (*timeoutError)(nil); errors.As(err, &te) {
		return "upstream stream abandoned: " + te.Error()
	}
	return "upstream stream broke off: " + err.Error()
}

// pumpUpstream sends upstream's events over the call's link, the events
// of each upstream event in one message, then the stream's end. It
// returns when the first upstream event arrived (zero: none did) and the
// error that broke the upstream stream off, if any. When ctx ends because
// the drain is over, it stops without the end; when the client went away,
// with it.
func (p *Proxy) pumpUpstream(ctx context.Context, r *http.Request, c *call, body io.Reader, table *eventTable) (first time.Time, upstreamErr error) {
	dec := c.d.NewDecoder()
	rd := sse.NewReader(body)
	end := &cpv1.StreamEnd{}
	for {
		ev, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				end.UpstreamError = err.Error()
				upstreamErr = err
			}
			break
		}
		if first.IsZero() {
			first = time.Now()
		}
		raw := append([]byte(nil), ev.Raw...)
		evs, derr := dec.Decode(ev)
		if derr != nil {
			// Unreadable JSON is still upstream's bytes: carry them.
			p.log.WarnContext(ctx, "upstream stream event not understood", "call_id", c.id, "err", derr)
			evs = []*cpv1.StreamEvent{{Event: &cpv1.StreamEvent_Opaque{Opaque: &cpv1.OpaqueEvent{Type: "sse.unparsed", Json: raw}}}}
		}
		table.add(raw, evs)
		if len(evs) == 0 {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		// Only the drain receives: an ended stream's status reaches it.
		if err := c.link.stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Events{Events: &cpv1.CallEvents{Events: evs}}}); err != nil {
			return first, nil
		}
	}
	if ctx.Err() != nil {
		if r.Context().Err() == nil {
			return first, nil // the drain is over: the stream's end came
		}
		// The client went away: the policy still closes its stream, so
		// that the call ends, and is recorded, as any other.
		end.UpstreamError = errClientGone
	}
	_ = c.link.stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_StreamEnd{StreamEnd: end}})
	return first, upstreamErr
}

// errClientGone closes the policy's stream of a client that went away.
const errClientGone = "the client went away"

// drainPolicy writes the policy's outputs until a batch ends the stream.
// The client going away does not cancel the call: the pump closes the
// policy's stream instead, and the call ends with its record.
func (p *Proxy) drainPolicy(l *link, cw *clientWriter) error {
	for {
		msg, err := l.recv(nil, false)
		if errors.Is(err, io.EOF) {
			return status.Error(codes.Internal, "the control plane ended the call before the stream")
		}
		if err != nil {
			return err
		}
		resp := msg.GetOutputs()
		if resp == nil {
			return status.Error(codes.Internal, "the control plane answered no outputs")
		}
		for _, out := range resp.GetOutputs() {
			if err := cw.output(out); err != nil {
				return err
			}
		}
		if err := cw.flushBatch(); err != nil {
			return err
		}
		if resp.GetEndStream() {
			return cw.finish()
		}
	}
}
