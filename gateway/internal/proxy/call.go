package proxy

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/status"

	"luthien.dev/gateway/internal/canon"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/record"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// maxResponseBytes bounds a complete upstream response read for the
// response policies.
const maxResponseBytes = 64 << 20

// call is one policed request in flight.
type call struct {
	id       string
	d        dialect.Dialect
	req      dialect.Request
	meta     *cpv1.RequestMetadata
	body     []byte // as sent upstream
	revision string
	trace    *record.Call
}

// policed serves a policy endpoint (chat completions, messages).
func (p *Proxy) policed(d dialect.Dialect) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			WriteError(w, d, http.StatusMethodNotAllowed, "invalid_request_error", r.Method+" not allowed on "+r.URL.Path+"; use POST")
			return
		}
		if !p.authenticate(w, r, d) {
			return
		}
		body, ok := readBody(w, r, d)
		if !ok {
			return
		}
		req, err := d.ParseRequest(body)
		if err != nil {
			writeDialectError(w, d, err)
			return
		}
		c := &call{id: newCallID(), d: d, req: req, meta: requestMetadata(r, req), body: body}
		c.trace = &record.Call{ID: c.id, SessionID: c.meta.GetSessionId(), UserID: c.meta.GetUserId(), Model: req.Model,
			Format: d.Format(), Stream: req.Stream, Started: time.Now(), RequestReceived: body}
		w.Header().Set("X-Call-ID", c.id)
		tw := &traceWriter{ResponseWriter: w}
		defer p.finishTrace(c, tw)
		p.serveCall(tw, r, c)
	})
}

func writeDialectError(w http.ResponseWriter, d dialect.Dialect, err error) {
	var de *dialect.Error
	if errors.As(err, &de) {
		WriteError(w, d, de.Status, de.Type, de.Message)
		return
	}
	WriteError(w, d, http.StatusInternalServerError, "api_error", err.Error())
}

// policyFailed answers a failed policy call, failing closed: the request
// does not go on without its policies.
func (p *Proxy) policyFailed(w http.ResponseWriter, r *http.Request, c *call, phase string, err error) {
	if r.Context().Err() != nil {
		return
	}
	p.log.ErrorContext(r.Context(), "policy call failed", "call_id", c.id, "phase", phase, "err", err)
	msg := "policy evaluation failed (" + phase + "): " + status.Convert(err).Message()
	c.trace.Error = msg
	WriteError(w, c.d, http.StatusBadGateway, "api_error", msg)
}

func (p *Proxy) serveCall(w http.ResponseWriter, r *http.Request, c *call) {
	ctx := r.Context()
	pctx, cancel := context.WithTimeout(ctx, p.cfg.PolicyTimeout)
	decision, err := p.policies.ApplyRequestPolicies(pctx, &cpv1.ApplyRequestPoliciesRequest{
		CallId: c.id, Format: c.d.Format(), Body: c.body, Metadata: c.meta})
	cancel()
	if err != nil {
		p.policyFailed(w, r, c, "request", err)
		return
	}
	c.revision = decision.GetPolicyRevision()
	c.trace.Revision = c.revision
	switch out := decision.GetOutcome().(type) {
	case *cpv1.ApplyRequestPoliciesResponse_Reject:
		st := int(out.Reject.GetHttpStatus())
		if st < 400 || st > 599 {
			st = http.StatusForbidden
		}
		c.trace.Intervened, c.trace.Error = true, "rejected by policy: "+out.Reject.GetMessage()
		WriteError(w, c.d, st, out.Reject.GetErrorType(), out.Reject.GetMessage())
		return
	case *cpv1.ApplyRequestPoliciesResponse_Respond:
		c.trace.Intervened = true
		p.respond(w, c, out.Respond.GetMessage())
		return
	case *cpv1.ApplyRequestPoliciesResponse_Continue:
		if out.Continue.Body != nil {
			c.body = out.Continue.Body
			c.trace.Intervened = true
		}
	default:
		p.policyFailed(w, r, c, "request", errors.New("control plane answered no outcome"))
		return
	}

	c.trace.Upstream = p.upstreamBase(c.d)
	var ps *policyStream
	if decision.GetInspectResponse() && c.req.Stream {
		ps = p.openPolicyStream(r, c)
	}
	resp, err := p.send(ctx, r, c.d, c.body)
	if err != nil {
		ps.close()
		c.trace.Error = "upstream unreachable: " + err.Error()
		p.upstreamFailed(w, r, c.d, err)
		return
	}
	defer resp.Body.Close()
	streamed := isEventStream(resp) && resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ps != nil && !streamed {
		ps.close()
	}
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// Upstream errors reach the client unchanged: clients match on
		// their wording.
		p.relay(w, c, resp)
	case streamed && decision.GetInspectResponse():
		if ps == nil { // a stream the client did not ask for
			ps = p.openPolicyStream(r, c)
		}
		p.streamWithPolicy(w, r, c, resp, ps)
	case streamed:
		p.relayStream(w, r, c, resp)
	case decision.GetInspectResponse():
		p.completeWithPolicy(w, r, c, resp)
	default:
		p.relay(w, c, resp)
	}
}

func isEventStream(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

// relay copies a response unchanged. With upstream's length known, the
// client gets it with that length and at once, before the gateway reads
// the body for the record.
func (p *Proxy) relay(w http.ResponseWriter, c *call, resp *http.Response) {
	copyResponseHeader(w.Header(), resp.Header)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	cp := &capture{limit: maxResponseBytes}
	if n := resp.ContentLength; n > 0 && n <= maxResponseBytes {
		cp.buf.Grow(int(n))
	}
	copyBody(w, io.TeeReader(resp.Body, cp))
	if resp.ContentLength >= 0 {
		flush(w)
	}
	body := cp.buf.Bytes()
	c.trace.ResponseOriginal, c.trace.ResponseFinal = body, body
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		c.trace.FinalMessage, _ = c.d.ParseMessage(body)
	} else {
		c.trace.Error = "upstream answered " + resp.Status
	}
}

// completeWithPolicy runs the response policies on a complete response.
func (p *Proxy) completeWithPolicy(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		p.upstreamFailed(w, r, c.d, err)
		return
	}
	msg, err := c.d.ParseMessage(body)
	if err != nil {
		p.log.WarnContext(r.Context(), "upstream response not understood", "call_id", c.id, "err", err)
		WriteError(w, c.d, http.StatusBadGateway, "api_error", "upstream response could not be read for policy evaluation")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.PolicyTimeout)
	out, err := p.policies.ApplyResponsePolicy(ctx, &cpv1.ApplyResponsePolicyRequest{
		CallId: c.id, Format: c.d.Format(), Request: c.body, Metadata: c.meta, PolicyRevision: c.revision, Response: msg})
	cancel()
	if err != nil {
		p.policyFailed(w, r, c, "response", err)
		return
	}
	c.trace.ResponseOriginal, c.trace.FinalMessage = body, msg
	if out.Response != nil {
		if body, err = c.d.RenderMessage(body, out.Response); err != nil {
			p.policyFailed(w, r, c, "response", err)
			return
		}
		c.trace.Intervened, c.trace.FinalMessage = true, out.Response
	}
	c.trace.ResponseFinal = body
	copyResponseHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// respond answers with a message the policies produced, without calling
// upstream; as a stream when the client asked for one.
func (p *Proxy) respond(w http.ResponseWriter, c *call, msg *cpv1.Message) {
	if msg.GetModel() == "" {
		msg.Model = c.req.Model
	}
	if msg.GetId() == "" {
		msg.Id = "msg_" + c.id
	}
	c.trace.FinalMessage = msg
	c.trace.ResponseFinal, _ = c.d.RenderMessage(nil, msg)
	if !c.req.Stream {
		body, err := c.d.RenderMessage(nil, msg)
		if err != nil {
			WriteError(w, c.d, http.StatusInternalServerError, "api_error", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	enc := c.d.NewEncoder(c.req)
	tl := &c.trace.Timeline
	tl.Begin(c.trace.Started)
	defer tl.Stamp()
	for _, ev := range canon.Events(msg) {
		if err := enc.Event(w, ev, nil); err != nil {
			return
		}
		tl.Add(ev, record.FromPolicy)
	}
	flush(w)
}

func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
}

func flush(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush()
}
