package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
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

// policyStream is a stream policy call opened, with its start sent, while
// the request goes upstream: opening it (the start carries the whole
// request) then overlaps upstream's time to first byte instead of adding
// to the client's.
type policyStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	span   trace.Span // policy.stream: from opening to the end
	done   chan struct{}
	stream cpv1.PolicyService_StreamChunkPolicyClient
	err    error
}

// openPolicyStream starts opening the stream policy call of c.
func (p *Proxy) openPolicyStream(r *http.Request, c *call) *policyStream {
	ps := &policyStream{done: make(chan struct{})}
	ps.ctx, ps.cancel = context.WithCancel(r.Context())
	ps.ctx, ps.span = p.span(ps.ctx, spanPolicyStream)
	go func() {
		defer close(ps.done)
		defer func() {
			if v := recover(); v != nil {
				p.logPanic(ps.ctx, v, "call_id", c.id, "in", "opening the stream policy call")
				ps.err = errRecovered
			}
		}()
		ps.stream, ps.err = p.policies.StreamChunkPolicy(ps.ctx)
		if ps.err == nil {
			ps.err = ps.stream.Send(&cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{
				CallId: c.id, Format: c.d.Format(), Request: c.body, Metadata: c.meta, PolicyRevision: c.revision}}})
		}
	}()
	return ps
}

// wait returns the opened stream.
func (ps *policyStream) wait() (cpv1.PolicyService_StreamChunkPolicyClient, error) {
	<-ps.done
	return ps.stream, ps.err
}

// close ends the call (a no-op for a nil stream): the policy sees it
// cancelled when the response was not a stream after all.
func (ps *policyStream) close() {
	if ps != nil {
		ps.cancel()
		<-ps.done
		ps.span.End()
	}
}

// streamWithPolicy runs one streamed response through the stream policy
// call ps, full duplex: upstream events are sent as they arrive while the
// policy's outputs are written to the client as they come back.
func (p *Proxy) streamWithPolicy(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response, ps *policyStream) {
	ctx, cancel := ps.ctx, ps.cancel
	defer cancel()
	stream, err := ps.wait()
	defer func() { endSpan(ps.span, err) }()
	if err != nil {
		p.policyFailed(w, r, c, "stream", err)
		return
	}
	table := &eventTable{}
	var wg sync.WaitGroup
	var upstreamErr, pumpErr error
	var upstreamFirst time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			// A panic here would end the process: it becomes the call's
			// error, and cancelling ends the policy call being drained.
			if v := recover(); v != nil {
				p.logPanic(ctx, v, "call_id", c.id, "in", "reading the upstream stream")
				pumpErr = errRecovered
				cancel()
			}
		}()
		upstreamFirst, upstreamErr = p.pumpUpstream(ctx, c, resp.Body, table, stream)
	}()
	sr := &streamRecord{}
	tl := &c.trace.Timeline
	tl.Begin(c.trace.Started)
	cw := &clientWriter{w: w, upstream: resp.Header, enc: c.d.NewEncoder(c.req), table: table, rec: sr, tl: tl}
	err = p.drainPolicy(stream, cw)
	cancel()
	// Closing the body unblocks the upstream reader if it is mid-read.
	_ = resp.Body.Close()
	wg.Wait()
	// The reader is done: the table is complete and no longer written.
	addAll(&sr.original, table.events)
	tl.UpstreamFirstEvent(upstreamFirst)
	defer sr.render(c)
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

// pumpUpstream sends every upstream event to the policy stream, then the
// end. It returns when the first upstream event arrived (zero: none did)
// and the error that broke the upstream stream off, if any.
func (p *Proxy) pumpUpstream(ctx context.Context, c *call, body io.Reader, table *eventTable,
	stream cpv1.PolicyService_StreamChunkPolicyClient) (first time.Time, upstreamErr error) {
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
		for _, e := range evs {
			if err := stream.Send(&cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Event{Event: e}}); err != nil {
				return first, nil
			}
		}
	}
	if ctx.Err() != nil {
		return first, nil
	}
	_ = stream.Send(&cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_End{End: end}})
	_ = stream.CloseSend()
	return first, upstreamErr
}

// drainPolicy writes the policy's outputs until it closes the stream.
func (p *Proxy) drainPolicy(stream cpv1.PolicyService_StreamChunkPolicyClient, cw *clientWriter) error {
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return cw.finish()
		}
		if err != nil {
			return err
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
