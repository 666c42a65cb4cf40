package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/canon"
	"luthien.dev/canon/truncate"
	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// CallService implements cpv1.CallServiceServer: each policed call is one
// stream, and its session (the policy chosen at start, the request as it
// went upstream, the stream's state) lives here from start to end, so
// that no revision has to be looked up again and a call never straddles
// two control planes. The session also completes the gateway's record of
// the call (the request, the policy revision, the cache hit are the
// session's) and records it.
type CallService struct {
	cpv1.UnimplementedCallServiceServer

	policies *PolicyService
	cache    *ResponseCache  // nil: no cache
	queue    EventQueue      // nil: records are not stored
	feed     ActivityFeed    // nil: records are not published
	stopping <-chan struct{} // closed at shutdown: ends the watches
}

var _ cpv1.CallServiceServer = (*CallService)(nil)

// NewCallService returns the call service over the policies of p and the
// response cache (nil: none). The calls' records go to the store's queue
// and the activity feed (nil: nowhere). Closing stopping ends the
// processing watches, so that a graceful stop does not wait for them.
func NewCallService(p *PolicyService, cache *ResponseCache, queue EventQueue, feed ActivityFeed, stopping <-chan struct{}) *CallService {
	return &CallService{policies: p, cache: cache, queue: queue, feed: feed, stopping: stopping}
}

// WatchProcessing streams what the active policy needs of each call: at
// once, then after every activation that changes the revision.
func (c *CallService) WatchProcessing(_ *cpv1.WatchProcessingRequest, stream cpv1.CallService_WatchProcessingServer) error {
	ctx := stream.Context()
	last := ""
	for {
		next := c.policies.revisions.changed() // before Active: no change is missed
		if active := c.policies.revisions.Active(); active.Revision != last {
			if err := stream.Send(c.processing(active)); err != nil {
				return err
			}
			last = active.Revision
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.stopping:
			return status.Error(codes.Unavailable, "the control plane is shutting down")
		case <-next:
		}
	}
}

// processing describes what an activation needs of each call.
func (c *CallService) processing(a *Active) *cpv1.WatchProcessingResponse {
	return &cpv1.WatchProcessingResponse{
		PolicyRevision: a.Revision,
		Request:        policy.InspectsRequest(a.Policy),
		Response:       a.Policy.InspectsResponse(),
		Cache:          c.cache != nil,
	}
}

// callStream is the server side of one Call.
type callStream = cpv1.CallService_CallServer

// session is one call as the control plane holds it. Its methods run on
// the call's goroutine only.
type session struct {
	s      *PolicyService
	svc    *CallService
	cache  *ResponseCache
	stream callStream
	active *Active
	call   *policy.Call

	start     *cpv1.CallStart
	begun     time.Time
	rewritten []byte // the request as a policy rewrote it; nil: unchanged
	cached    bool   // the decision is the response cache's answer

	inspect   cpv1.Inspect
	failed    bool          // the policy failed: the call waits for its end
	ended     bool          // the stream's end ran
	responded bool          // the complete response was handled
	ps        policy.Stream // the stream's state, opened by the first events
	counts    streamCounts  // what went in and out of ps, for its report
	reported  bool          // the stream's decision was reported
	inputs    inputTable
	lastSeq   uint64
	cut       bool // the policy ended the response: later events are dropped

	fill     cachePlan          // the key the response may be cached under
	upstream *cpv1.Message      // upstream's complete response, as the session saw it
	acc      *canon.Accumulator // upstream's stream, when it may fill the cache
}

// Call runs one call: start, decision, the response or the events, end.
// A message out of order is INVALID_ARGUMENT; a policy's failure is
// answered as a failure message (the gateway fails closed) and the call
// goes on to its end.
func (c *CallService) Call(stream callStream) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "call closed before start")
	}
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Errorf(codes.InvalidArgument, "first message must be start, got %s", callMessageKind(first))
	}
	if err := validateCall(start.GetCallId(), start.GetFormat()); err != nil {
		return err
	}
	ss := &session{s: c.policies, svc: c, cache: c.cache, stream: stream, inputs: inputTable{}, start: start, begun: time.Now()}
	ss.call = &policy.Call{ID: start.GetCallId(), Format: start.GetFormat(), Request: start.GetBody(),
		Metadata: start.GetMetadata(), Recorder: c.policies.recorder}
	ss.active = c.policies.revisions.Active().forCall(ss.call)
	if err := ss.answerFailure(ss.decide(ctx, start.GetStream())); err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "call closed before end")
		}
		if err != nil {
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *cpv1.CallRequest_End:
			return ss.end(ctx, m.End)
		case *cpv1.CallRequest_Start:
			err = status.Error(codes.InvalidArgument, "start sent twice")
		case nil:
			err = status.Error(codes.InvalidArgument, "empty call message")
		default:
			if ss.failed {
				continue // under way when the policy failed
			}
			switch m := m.(type) {
			case *cpv1.CallRequest_Response:
				err = ss.response(ctx, m.Response)
			case *cpv1.CallRequest_Events:
				err = ss.events(ctx, m.Events.GetEvents())
			case *cpv1.CallRequest_StreamEnd:
				err = ss.streamEnd(ctx, m.StreamEnd)
			default:
				err = status.Errorf(codes.InvalidArgument, "unknown call message %T", m)
			}
		}
		if err := ss.answerFailure(err); err != nil {
			return err
		}
	}
}

// failure is a policy's failure: answered as a CallFailure, after which
// the call goes on to its end (and its record).
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }

// policyFailed logs a policy's failure in op and returns it as a failure,
// or, when the call itself is over, the call's status.
func (ss *session) policyFailed(ctx context.Context, op string, err error) error {
	st := ss.s.policyError(ctx, ss.active, ss.call, op, err)
	if ctx.Err() != nil {
		return st
	}
	return failure{st}
}

// answerFailure answers a policy's failure and returns nil; any other
// error it returns, to end the call.
func (ss *session) answerFailure(err error) error {
	var f failure
	if !errors.As(err, &f) {
		return err
	}
	ss.failed = true
	return ss.stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Failure{Failure: &cpv1.CallFailure{
		Message: status.Convert(f.err).Message()}}})
}

// decide runs the request phase and answers the decision.
func (ss *session) decide(ctx context.Context, streamed bool) error {
	begin := time.Now()
	out, err := decideRequest(ctx, ss.active, ss.call)
	ss.s.observeRequest(ctx, ss.active, out, err, begin)
	if err != nil {
		return ss.policyFailed(ctx, "on request", err)
	}
	dec := &cpv1.CallDecision{}
	switch o := out.GetOutcome().(type) {
	case *cpv1.ApplyRequestPoliciesResponse_Continue:
		dec.Outcome = &cpv1.CallDecision_Continue{Continue: o.Continue}
		if o.Continue.Body != nil {
			ss.call = ss.call.WithRequest(o.Continue.Body)
			if !bytes.Equal(o.Continue.Body, ss.start.GetBody()) {
				ss.rewritten = o.Continue.Body
			}
		}
		switch {
		case !out.GetInspectResponse():
			dec.Inspect = cpv1.Inspect_INSPECT_NONE
		case streamed:
			dec.Inspect = cpv1.Inspect_INSPECT_STREAM
		default:
			dec.Inspect = cpv1.Inspect_INSPECT_RESPONSE
		}
	case *cpv1.ApplyRequestPoliciesResponse_Respond:
		dec.Outcome = &cpv1.CallDecision_Respond{Respond: o.Respond}
	case *cpv1.ApplyRequestPoliciesResponse_Reject:
		dec.Outcome = &cpv1.CallDecision_Reject{Reject: o.Reject}
	}
	if dec.GetContinue() != nil {
		if err := ss.planCache(ctx, dec); err != nil {
			return err
		}
	}
	ss.inspect = dec.Inspect
	return ss.stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Decision{Decision: dec}})
}

// planCache looks the call up in the response cache: a hit answers the
// call (respond) after the response phase of the call's policy, as a
// fresh response would go through it; a call that may fill the cache has
// its response kept, and asks for it when it inspects nothing.
func (ss *session) planCache(ctx context.Context, dec *cpv1.CallDecision) error {
	p := ss.cache.plan(ctx, ss.call.ID, ss.call.Format, ss.call.Request, ss.call.Metadata)
	if p.hit == nil {
		if p.fill {
			ss.fill = p
			dec.WantsResponse = dec.Inspect == cpv1.Inspect_INSPECT_NONE
		}
		return nil
	}
	msg := p.hit
	if ss.active.Policy.InspectsResponse() {
		var err error
		if msg, _, err = decideResponse(ctx, ss.active, ss.call, msg); err != nil {
			return ss.policyFailed(ctx, "on cached response", err)
		}
	}
	dec.Outcome = &cpv1.CallDecision_Respond{Respond: &cpv1.Respond{Message: msg}}
	dec.Inspect = cpv1.Inspect_INSPECT_UNSPECIFIED
	dec.Cached, ss.cached = true, true
	return nil
}

// inspecting refuses a response or events the decision did not ask for,
// or that come after the other kind.
func (ss *session) inspecting(kind string) error {
	switch {
	case ss.inspect != cpv1.Inspect_INSPECT_RESPONSE && ss.inspect != cpv1.Inspect_INSPECT_STREAM:
		return status.Errorf(codes.InvalidArgument, "%s sent, but the decision inspects nothing", kind)
	case ss.responded:
		return status.Errorf(codes.InvalidArgument, "%s sent after the complete response", kind)
	case kind == "response" && ss.ps != nil:
		return status.Error(codes.InvalidArgument, "response sent after events")
	}
	return nil
}

// response runs the response phase on a complete response.
func (ss *session) response(ctx context.Context, msg *cpv1.Message) error {
	if err := ss.inspecting("response"); err != nil {
		return err
	}
	if msg == nil {
		return status.Error(codes.InvalidArgument, "response message without a response")
	}
	ss.responded, ss.upstream = true, msg
	begin := time.Now()
	final, changed, err := decideResponse(ctx, ss.active, ss.call, msg)
	ss.s.observeResponse(ctx, ss.active, changed, err, begin)
	if err != nil {
		return ss.policyFailed(ctx, "on response", err)
	}
	out := &cpv1.ApplyResponsePolicyResponse{}
	if changed {
		out.Response = final
	}
	return ss.stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Response{Response: out}})
}

// events hands each event to the policy's stream and sends the outputs of
// the message as one batch.
func (ss *session) events(ctx context.Context, evs []*cpv1.StreamEvent) error {
	if err := ss.inspecting("events"); err != nil {
		return err
	}
	ss.openStream(ctx)
	var emitted policy.Emit
	for i, ev := range evs {
		if ev == nil || ev.GetSeq() <= ss.lastSeq {
			return status.Errorf(codes.InvalidArgument, "event %d: seq %d does not follow %d", i, ev.GetSeq(), ss.lastSeq)
		}
		ss.lastSeq = ev.GetSeq()
		if ss.fill.key != "" {
			if ss.acc == nil {
				ss.acc = &canon.Accumulator{}
			}
			ss.acc.Add(ev)
		}
		if ss.cut {
			continue
		}
		ss.inputs.add(ev)
		ss.counts.inputs++
		emit, err := ss.ps.OnEvent(ctx, ev)
		if err != nil {
			return ss.policyFailed(ctx, "on event", err)
		}
		emitted.Events = append(emitted.Events, emit.Events...)
		if emit.End {
			emitted.End, ss.cut = true, true
		}
	}
	return ss.sendOutputs(ctx, emitted)
}

// streamEnd runs the stream's end hook and answers its last outputs, the
// last batch ending the stream. After the policy ended the response
// early, it has nothing more to say.
func (ss *session) streamEnd(ctx context.Context, end *cpv1.StreamEnd) error {
	if err := ss.inspecting("stream_end"); err != nil {
		return err
	}
	if ss.inspect != cpv1.Inspect_INSPECT_STREAM {
		return status.Error(codes.InvalidArgument, "stream_end sent, but the decision inspects a complete response")
	}
	if ss.ended {
		return status.Error(codes.InvalidArgument, "stream_end sent twice")
	}
	ss.ended = true
	if ss.cut {
		return nil
	}
	ss.openStream(ctx) // for an empty stream
	emit, err := ss.ps.OnEnd(ctx, end.GetUpstreamError())
	if err != nil {
		ss.reportStream(ctx, err)
		return ss.policyFailed(ctx, "on end", err)
	}
	emit.End = true
	err = ss.sendOutputs(ctx, emit)
	ss.reportStream(ctx, err)
	return err
}

// reportStream reports the stream's decision, once.
func (ss *session) reportStream(ctx context.Context, err error) {
	if ss.ps != nil && !ss.reported {
		ss.reported = true
		ss.s.reportStream(ctx, trace.SpanFromContext(ctx), ss.active, ss.counts, err)
	}
}

// openStream opens the policy's stream on the first events.
func (ss *session) openStream(ctx context.Context) {
	if ss.ps == nil {
		ss.ps = ss.s.timed(ss.active, ss.active.Policy.NewStream(ctx, ss.call))
	}
}

// end closes the policy's stream when the gateway gave it up before its
// end (the client went away), waits for the gateway to close its side,
// caches upstream's response, records the call and answers done.
func (ss *session) end(ctx context.Context, end *cpv1.CallEnd) error {
	if ss.ps != nil && !ss.cut && !ss.ended && !ss.failed {
		// Its outputs have no one to go to: the policy only finishes.
		ss.ended = true
		if _, err := ss.ps.OnEnd(ctx, end.GetUpstreamError()); err != nil {
			_ = ss.s.policyError(ctx, ss.active, ss.call, "on end", err)
		}
	}
	var failed error
	if ss.failed {
		failed = errors.New("the policy failed")
	}
	ss.reportStream(ctx, failed) // cut short by the policy, or given up
	if end.GetResponse() != nil {
		if ss.inspect != cpv1.Inspect_INSPECT_NONE || ss.fill.key == "" {
			return status.Error(codes.InvalidArgument, "end carries a response the control plane did not ask for")
		}
		ss.upstream = end.GetResponse()
	}
	msg, err := ss.stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
	case err != nil:
		return err
	default:
		return status.Errorf(codes.InvalidArgument, "%s sent after end", callMessageKind(msg))
	}
	ss.storeResponse(ctx, end) // whether or not the call is recorded
	ss.record(ctx, end.GetRecord())
	return ss.stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Done{Done: &cpv1.CallDone{}}})
}

// storeResponse caches upstream's response as the session received it
// (whole, or accumulated from the stream's events), when the call may
// fill the cache and upstream answered in full and with success.
func (ss *session) storeResponse(ctx context.Context, end *cpv1.CallEnd) {
	if ss.acc != nil && !ss.cut {
		ss.upstream = ss.acc.Message()
	}
	if ss.fill.key == "" || ss.upstream == nil || len(ss.upstream.GetContent()) == 0 ||
		end.GetHttpStatus() != http.StatusOK || end.GetUpstreamError() != "" {
		return
	}
	ss.cache.fill(ctx, &pendingFill{callID: ss.call.ID, key: ss.fill.key, msg: ss.upstream})
}

// record completes the gateway's record of the call and records it: it
// never blocks, and a record the store's full queue drops is counted
// there. Without a record (the gateway could not keep it) nothing is
// recorded.
func (ss *session) record(ctx context.Context, rec *cpv1.CallRecord) {
	if rec == nil || ss.svc.queue == nil {
		return
	}
	ss.complete(rec)
	if !recordCall(ss.svc.queue, ss.svc.feed, rec) {
		ss.s.logger.DebugContext(ctx, "call record dropped: the store's write queue is full", "call_id", ss.call.ID)
	}
}

// complete makes rec the record of the session's call. The session is the
// authority on what it holds, so that a gateway cannot record a request
// other than the one it sent: the call id and the policy revision are the
// session's, the request events are the session's (request.received from
// start, request.final when a policy rewrote the request, else flagged
// unchanged), the gateway's own are dropped. The summary's session, user,
// model, format and stream default to the start's; a cache hit is not an
// intervention.
func (ss *session) complete(rec *cpv1.CallRecord) {
	sum := rec.GetSummary()
	if sum == nil {
		sum = &cpv1.CallSummary{}
		rec.Summary = sum
	}
	meta := ss.start.GetMetadata()
	sum.CallId, sum.PolicyRevision = ss.call.ID, ss.active.Revision
	if sum.SessionId == "" {
		sum.SessionId = meta.GetSessionId()
	}
	if sum.UserId == "" {
		sum.UserId = meta.GetUserId()
	}
	if sum.Model == "" {
		sum.Model = meta.GetModel()
	}
	if sum.Format == cpv1.ClientFormat_CLIENT_FORMAT_UNSPECIFIED {
		sum.Format = ss.start.GetFormat()
	}
	sum.Stream = sum.Stream || ss.start.GetStream()
	if ss.cached {
		sum.Intervened = false
	}

	at := sum.GetStartedAt()
	if at == nil {
		at = timestamppb.New(ss.begun)
	}
	events := make([]*cpv1.CallEvent, 0, len(rec.GetEvents())+2)
	if body := ss.start.GetBody(); len(body) > 0 {
		events = append(events, &cpv1.CallEvent{EventType: "request.received", Time: at, PayloadJson: recordedBody(body)})
	}
	if ss.rewritten != nil {
		events = append(events, &cpv1.CallEvent{EventType: "request.final", Time: at, PayloadJson: recordedBody(ss.rewritten)})
	}
	rec.RequestUnchanged = ss.rewritten == nil
	for _, ev := range rec.GetEvents() {
		if t := ev.GetEventType(); ev == nil || t == "request.received" || t == "request.final" {
			continue
		}
		events = append(events, ev)
	}
	for _, ev := range events {
		ev.CallId = sum.CallId
	}
	rec.Events = events
}

// recordedBody is a request body as the record keeps it: whole up to the
// record's bound, else its truncation marker, as the gateway's recorder
// writes it.
func recordedBody(body []byte) []byte {
	if len(body) <= truncate.DefaultMaxBytes {
		return body
	}
	return truncate.Body(body, truncate.DefaultMaxBytes)
}

// sendOutputs sends one batch of outputs; nothing when there is none and
// the response goes on.
func (ss *session) sendOutputs(ctx context.Context, emit policy.Emit) error {
	batch, err := ss.inputs.batch(emit)
	if err != nil {
		return ss.policyFailed(ctx, "emit", err)
	}
	if batch == nil {
		return nil
	}
	ss.counts.sent(batch)
	return ss.stream.Send(&cpv1.CallResponse{Msg: &cpv1.CallResponse_Outputs{Outputs: batch}})
}

// callMessageKind names the kind of a call message for errors.
func callMessageKind(msg *cpv1.CallRequest) string {
	switch msg.GetMsg().(type) {
	case *cpv1.CallRequest_Start:
		return "start"
	case *cpv1.CallRequest_Response:
		return "response"
	case *cpv1.CallRequest_Events:
		return "events"
	case *cpv1.CallRequest_End:
		return "end"
	case *cpv1.CallRequest_StreamEnd:
		return "stream_end"
	}
	return fmt.Sprintf("an empty message (%T)", msg.GetMsg())
}
