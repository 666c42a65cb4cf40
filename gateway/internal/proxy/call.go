package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"

	"luthien.dev/canon"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/record"
	"luthien.dev/gateway/internal/telemetry"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// maxResponseBytes bounds a complete upstream response read for the
// response policies.
const maxResponseBytes = 64 << 20

// call is one policed request in flight.
type call struct {
	id    string
	d     dialect.Dialect
	req   dialect.Request
	meta  *cpv1.RequestMetadata
	body  []byte // as sent upstream
	trace *record.Call
	// link is the call's stream to the control plane; wantsResponse says
	// the control plane asked for upstream's response in the end.
	link          *link
	wantsResponse bool
	// target is where the call goes upstream (route.go).
	target target
	// span is the call's span (observe.go); upstreamKind how its
	// exchange with upstream failed, if it did.
	span         trace.Span
	upstreamKind string
}

// policed serves a policy endpoint (chat completions, messages).
func (p *Proxy) policed(d dialect.Dialect) http.Handler {
	want := routeMessages
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		want = routeChat
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkPath(w, r, d, want) {
			return
		}
		body, ok := p.acceptPost(w, r, d)
		if !ok {
			return
		}
		req, err := d.ParseRequest(body)
		if err != nil {
			writeDialectError(w, d, err)
			return
		}
		tgt, err := p.targetOf(d, req.Model)
		if err != nil {
			WriteError(w, d, http.StatusForbidden, "permission_error", err.Error())
			return
		}
		c := &call{id: newCallID(), d: d, req: req, meta: requestMetadata(r, req), body: body, target: tgt}
		c.meta.CredentialSha256 = credentialSHA256(r.Header, p.cfg.ClientAPIKey)
		c.trace = &record.Call{ID: c.id, SessionID: c.meta.GetSessionId(), UserID: c.meta.GetUserId(), Model: c.meta.GetModel(),
			Format: d.Format(), Stream: req.Stream, Started: time.Now()}
		noteClientEdge(r, c)
		w.Header().Set("X-Call-ID", c.id)
		r = p.startCall(r, c)
		tw := &traceWriter{ResponseWriter: w}
		defer p.finishTrace(c, tw)
		p.runRecovering(tw, r, d, func() { c.trace.Error = errRecovered.Error() },
			func(w http.ResponseWriter, r *http.Request) { p.serveCall(w, r, c) })
	})
}

// acceptPost takes a client's POST: the method checked, the client
// authenticated, the body read within its bounds; false when the client
// has been answered.
func (p *Proxy) acceptPost(w http.ResponseWriter, r *http.Request, d dialect.Dialect) ([]byte, bool) {
	if r.Method != http.MethodPost {
		WriteError(w, d, http.StatusMethodNotAllowed, "invalid_request_error", r.Method+" not allowed on "+r.URL.Path+"; use POST")
		return nil, false
	}
	if !p.authenticate(w, r, d) {
		return nil, false
	}
	return p.readBody(w, r, d)
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
	if !errors.Is(err, errRecovered) { // a panic is logged where it was recovered
		p.log.ErrorContext(r.Context(), "policy call failed", "call_id", c.id, "phase", phase, "err", err)
	}
	msg := "policy evaluation failed (" + phase + "): " + status.Convert(err).Message()
	c.trace.Error = msg
	WriteError(w, c.d, http.StatusBadGateway, "api_error", msg)
}

func (p *Proxy) serveCall(w http.ResponseWriter, r *http.Request, c *call) {
	ctx := r.Context()
	_, span := p.span(ctx, spanPolicyRequest)
	l, err := p.openLink(r.WithContext(trace.ContextWithSpan(ctx, span)), c)
	var decision *cpv1.CallDecision
	var early *earlyUpstream
	if err == nil {
		c.link = l
		if p.processing.fast() {
			early = p.sendEarly(r, c)
		}
		decision, err = l.decision(r)
	}
	if early != nil {
		if cont := decision.GetContinue(); err != nil || cont == nil || cont.Body != nil {
			// Not to be sent as it went: rejected, answered, rewritten
			// (sent again below) or failed.
			early.abandon()
			early = nil
		}
	}
	if err == nil && span.IsRecording() {
		span.SetAttributes(attrOutcome.String(decisionOutcome(decision)))
	}
	endSpan(span, err)
	if err != nil {
		p.policyFailed(w, r, c, "request", err)
		return
	}
	switch out := decision.GetOutcome().(type) {
	case *cpv1.CallDecision_Reject:
		st := int(out.Reject.GetHttpStatus())
		if st < 400 || st > 599 {
			st = http.StatusForbidden
		}
		c.trace.Intervened, c.trace.Error = true, "rejected by policy: "+out.Reject.GetMessage()
		WriteError(w, c.d, st, out.Reject.GetErrorType(), out.Reject.GetMessage())
		return
	case *cpv1.CallDecision_Respond:
		c.trace.Intervened = !decision.GetCached()
		p.respond(w, c, out.Respond.GetMessage())
		return
	case *cpv1.CallDecision_Continue:
		if out.Continue.Body != nil {
			c.body = out.Continue.Body
			c.trace.Intervened = true
		}
	default:
		p.policyFailed(w, r, c, "request", errors.New("control plane answered no outcome"))
		return
	}
	c.wantsResponse = decision.GetWantsResponse()
	inspect := decision.GetInspect()
	if inspect != cpv1.Inspect_INSPECT_NONE && inspect != cpv1.Inspect_INSPECT_RESPONSE && inspect != cpv1.Inspect_INSPECT_STREAM {
		p.policyFailed(w, r, c, "request", fmt.Errorf("control plane answered an unknown inspection %d", inspect))
		return
	}
	p.forwardCall(w, r, c, inspect != cpv1.Inspect_INSPECT_NONE, early)
}

// forwardCall sends the call upstream, unless early already did, and
// answers the client: through the response or stream policy when
// inspected, else as upstream answers.
func (p *Proxy) forwardCall(w http.ResponseWriter, r *http.Request, c *call, inspected bool, early *earlyUpstream) {
	c.trace.Upstream, c.trace.Provider = c.target.prov.BaseURL, c.target.name
	var up upstreamExchange
	var resp *http.Response
	var err error
	if early != nil {
		up = early.up
		resp, err = early.wait()
	} else {
		up = p.startUpstream(r.Context(), c)
		resp, err = p.sendCall(up.ctx, r, c, c.body)
	}
	var te *translateError
	if errors.As(err, &te) {
		c.trace.Error = te.Error()
		WriteError(w, c.d, http.StatusBadRequest, "invalid_request_error", te.Error())
		up.span.End()
		return
	}
	if err != nil {
		c.trace.Error = upstreamFailure(errUnreachable, err)
		c.end().UpstreamError = c.trace.Error
		p.upstreamFailed(w, r, c, c.d, errUnreachable, err)
		p.endUpstream(up, c, 0)
		return
	}
	defer p.endUpstream(up, c, resp.StatusCode)
	defer resp.Body.Close()
	c.end().HttpStatus = int32(resp.StatusCode)
	streamed := isEventStream(resp) && resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// Upstream errors reach the client unchanged (clients match on
		// their wording), but for the gateway's own provider key.
		p.relay(w, c, resp)
	case streamed && inspected:
		p.streamWithPolicy(w, r, c, resp)
	case streamed:
		p.relayStream(w, r, c, resp)
	case inspected:
		p.completeWithPolicy(w, r, c, resp)
	default:
		p.relay(w, c, resp)
	}
}

// end is the outcome the call's link will send; a throwaway when the call
// has no link.
func (c *call) end() *cpv1.CallEnd {
	if c.link == nil {
		return &cpv1.CallEnd{}
	}
	return c.link.end
}

func isEventStream(resp *http.Response) bool { return isEventStreamHeader(resp.Header) }

func isEventStreamHeader(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}

// relay copies a response unchanged. With upstream's length known, the
// client gets it with that length and at once, before the gateway reads
// the body for the record. A successful response that may announce tool
// calls it does not hold is read first, to be corrected (relayChecked).
func (p *Proxy) relay(w http.ResponseWriter, c *call, resp *http.Response) {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 && resp.ContentLength <= maxResponseBytes {
		p.relayChecked(w, c, resp)
		return
	}
	copyResponseHeader(w.Header(), resp.Header)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	p.countUpstreamError(c.d, c, telemetry.UpstreamStatusKind(resp.StatusCode))
	cp := &capture{limit: maxResponseBytes}
	if n := resp.ContentLength; n > 0 && n <= maxResponseBytes {
		cp.buf.Grow(int(n))
	}
	err := copyBody(w, io.TeeReader(resp.Body, cp))
	if resp.ContentLength >= 0 {
		flush(w)
	}
	body := cp.buf.Bytes()
	c.trace.ResponseOriginal, c.trace.ResponseFinal = body, body
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		c.trace.Error = "upstream answered " + resp.Status
	case isTimeout(err) || errors.Is(err, io.ErrUnexpectedEOF):
		// The client got a cut body (its length tells it so).
		c.trace.Error = upstreamFailure(errBrokeOff, err)
		p.countUpstreamError(c.d, c, upstreamErrorKind(errBrokeOff, err))
	default:
		c.trace.FinalMessage, _ = c.d.ParseMessage(body)
	}
}

// relayChecked relays a successful response that no policy inspects,
// read whole first (up to maxResponseBytes: a larger one is relayed as it
// comes): when it says tool_use (tool_calls) without holding a tool call,
// the client gets it with end_turn (stop) instead (stopreason.go). Only a
// body that names the stop reason at all is parsed, so the check costs
// one scan.
func (p *Proxy) relayChecked(w http.ResponseWriter, c *call, resp *http.Response) {
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1))
	body := buf.Bytes()
	if err != nil || len(body) > maxResponseBytes || resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		// Cut short, or too large to hold: the client gets what came
		// and the rest as it comes, with upstream's length, if any,
		// telling it when the body is cut.
		copyResponseHeader(w.Header(), resp.Header)
		if resp.ContentLength >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		if err == nil {
			err = copyBody(w, resp.Body)
		}
		c.trace.ResponseOriginal, c.trace.ResponseFinal = body, body
		if err != nil || resp.ContentLength >= 0 && int64(len(body)) < resp.ContentLength {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			c.trace.Error = upstreamFailure(errBrokeOff, err)
			if isTimeout(err) || errors.Is(err, io.ErrUnexpectedEOF) {
				p.countUpstreamError(c.d, c, upstreamErrorKind(errBrokeOff, err))
			}
		}
		return
	}
	c.trace.ResponseOriginal, c.trace.ResponseFinal = body, body
	out, parsed := body, false
	if bytes.Contains(body, []byte(`"tool_use"`)) || bytes.Contains(body, []byte(`"tool_calls"`)) {
		parsed = true
		if msg, err := c.d.ParseMessage(body); err == nil {
			c.trace.FinalMessage = msg
			if fixed, ok := fixStop(msg); ok {
				if rendered, err := c.d.RenderMessage(body, fixed); err == nil {
					out, c.trace.FinalMessage = rendered, fixed
					c.trace.ResponseFinal, c.trace.Intervened = rendered, true
				}
			}
		}
	}
	copyResponseHeader(w.Header(), resp.Header)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
	if !parsed {
		// For the record and the metrics, once the client has it.
		flush(w)
		c.trace.FinalMessage, _ = c.d.ParseMessage(body)
	}
}

// completeWithPolicy runs the response policies on a complete response.
func (p *Proxy) completeWithPolicy(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		c.trace.Error = upstreamFailure(errBrokeOff, err)
		p.upstreamFailed(w, r, c, c.d, errBrokeOff, err)
		return
	}
	msg, err := c.d.ParseMessage(body)
	if err != nil {
		p.log.WarnContext(r.Context(), "upstream response not understood", "call_id", c.id, "err", err)
		WriteError(w, c.d, http.StatusBadGateway, "api_error", "upstream response could not be read for policy evaluation")
		return
	}
	_, span := p.span(r.Context(), spanPolicyResponse)
	out, err := c.link.response(r, msg)
	if err == nil && span.IsRecording() {
		span.SetAttributes(attrOutcome.String(responseOutcome(out)))
	}
	endSpan(span, err)
	if err != nil {
		p.policyFailed(w, r, c, "response", err)
		return
	}
	c.trace.ResponseOriginal, c.trace.FinalMessage = body, msg
	final, changed := out.Response, out.Response != nil
	if !changed {
		final = msg
	}
	if fixed, ok := fixStop(final); ok {
		final, changed = fixed, true
	}
	if changed {
		if body, err = c.d.RenderMessage(body, final); err != nil {
			p.policyFailed(w, r, c, "response", err)
			return
		}
		c.trace.Intervened, c.trace.FinalMessage = true, final
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
	msg, _ = fixStop(msg)
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

// credentialSHA256 is whose credential a call goes upstream with, for the
// response cache's scope (see RequestMetadata.credential_sha256): the hex
// SHA-256 of the client key when the gateway has one (its clients share
// the provider keys), else of the x-api-key and Authorization values the
// client presented; empty without any.
func credentialSHA256(h http.Header, clientKey string) string {
	sum := sha256.New()
	if clientKey != "" {
		sum.Write([]byte(clientKey))
		return hex.EncodeToString(sum.Sum(nil))
	}
	n := 0
	for _, name := range []string{"X-Api-Key", "Authorization"} {
		for _, v := range h.Values(name) {
			if v == "" {
				continue
			}
			n++
			fmt.Fprintf(sum, "%s\x00%s\n", strings.ToLower(name), v)
		}
	}
	if n == 0 {
		return ""
	}
	return hex.EncodeToString(sum.Sum(nil))
}
