package service

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/store"
	"luthien.dev/controlplane/internal/wire"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Bounds of a dry run.
const (
	// MaxDryRunSample bounds each sample of a dry run (request and
	// response), in bytes.
	MaxDryRunSample = 1 << 20
	// dryRunTimeout bounds each policy's run (a judge may call its model).
	dryRunTimeout = time.Minute
)

// sample is the validated input of a dry run.
type sample struct {
	format       cpv1.ClientFormat
	request      []byte
	metadata     *cpv1.RequestMetadata
	response     *cpv1.Message // nil: no response phase
	responseJSON []byte
}

// DryRunPolicy runs the samples through the active policy and, when
// given, a proposed one, on the code paths of live calls (decideRequest,
// decideResponse). It activates nothing, calls no upstream provider, and
// records nothing: the policy events are collected for the answer only,
// and the response cache is never consulted. Invalid samples and an
// invalid proposed policy are INVALID_ARGUMENT; a policy's failure is
// reported in its result.
func (s *AdminService) DryRunPolicy(ctx context.Context, req *cpv1.DryRunPolicyRequest) (*cpv1.DryRunPolicyResponse, error) {
	in, err := readSample(req)
	if err != nil {
		return nil, err
	}
	var proposed *Active
	if req.GetProposed() != nil {
		if proposed, err = s.prepare(req.GetProposed(), "proposed", ""); err != nil {
			return nil, err
		}
	}
	active := s.revisions.Active()
	out := &cpv1.DryRunPolicyResponse{Active: dryRun(ctx, active, in)}
	out.Active.Revision = active.Revision
	redacted(s.revisions.secrets(), out.Active.Policy)
	if proposed != nil {
		out.Proposed = dryRun(ctx, proposed, in)
		redacted(s.revisions.secrets(), out.Proposed.Policy)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, status.FromContextError(ctxErr).Err()
	}
	return out, nil
}

// readSample validates the samples of a dry run.
func readSample(req *cpv1.DryRunPolicyRequest) (*sample, error) {
	if err := validateFormat(req.GetFormat()); err != nil {
		return nil, err
	}
	request, response := []byte(req.GetRequestJson()), []byte(req.GetResponseJson())
	for _, f := range []struct {
		name string
		body []byte
	}{{"request_json", request}, {"response_json", response}} {
		if len(f.body) > MaxDryRunSample {
			return nil, status.Errorf(codes.InvalidArgument, "%s is %d bytes, more than the %d allowed", f.name, len(f.body), MaxDryRunSample)
		}
	}
	var head struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if t := bytes.TrimSpace(request); len(t) == 0 || t[0] != '{' || json.Unmarshal(request, &head) != nil {
		return nil, status.Error(codes.InvalidArgument, "request_json must be a JSON object in the client's format")
	}
	in := &sample{format: req.GetFormat(), request: request,
		metadata: &cpv1.RequestMetadata{Model: head.Model, Stream: head.Stream}}
	if t := bytes.TrimSpace(response); len(t) > 0 {
		if t[0] != '{' {
			return nil, status.Error(codes.InvalidArgument, "response_json must be a JSON object in the client's format")
		}
		msg, err := wire.ParseMessage(req.GetFormat(), response)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "response_json: %v", err)
		}
		in.response, in.responseJSON = msg, response
	}
	return in, nil
}

// dryRun runs one policy over the samples and reports what it did.
func dryRun(ctx context.Context, active *Active, in *sample) *cpv1.DryRunResult {
	ctx, cancel := context.WithTimeout(ctx, dryRunTimeout)
	defer cancel()
	events := &eventCapture{}
	res := &cpv1.DryRunResult{Policy: active.Proto().GetPolicy()}
	runDry(ctx, active, in, events, res)
	res.Events = events.list()
	return res
}

// runDry fills res with the request phase and, when it lets the request
// through and a response was given, the response phase.
func runDry(ctx context.Context, active *Active, in *sample, events policy.Recorder, res *cpv1.DryRunResult) {
	call := &policy.Call{ID: "dry-run-" + randomKey(), Format: in.format, Request: in.request, Metadata: in.metadata, Recorder: events}
	decision, err := decideRequest(ctx, active, call)
	if err != nil {
		res.Error = "on request: " + err.Error()
		return
	}
	forwarded := in.request
	switch o := decision.GetOutcome().(type) {
	case *cpv1.ApplyRequestPoliciesResponse_Respond:
		res.RequestChanged = true
		answer, err := wire.RenderMessage(in.format, nil, o.Respond.GetMessage())
		if err != nil {
			res.Error = "on request: the answer: " + err.Error()
			return
		}
		res.Outcome = &cpv1.DryRunResult_RespondJson{RespondJson: text(answer)}
		return
	case *cpv1.ApplyRequestPoliciesResponse_Reject:
		res.RequestChanged = true
		res.Outcome = &cpv1.DryRunResult_Reject{Reject: o.Reject}
		return
	case *cpv1.ApplyRequestPoliciesResponse_Continue:
		if body := o.Continue.GetBody(); body != nil {
			forwarded = body
			res.RequestChanged = true
		}
	}
	res.Outcome = &cpv1.DryRunResult_ForwardRequestJson{ForwardRequestJson: text(forwarded)}
	if in.response == nil {
		return
	}
	if !decision.GetInspectResponse() {
		// Live, the gateway skips the response phase.
		res.ResponseJson = text(in.responseJSON)
		return
	}
	msg, changed, err := decideResponse(ctx, active, call.WithRequest(forwarded), proto.CloneOf(in.response))
	if err != nil {
		res.Error = "on response: " + err.Error()
		return
	}
	if !changed {
		res.ResponseJson = text(in.responseJSON)
		return
	}
	final, err := wire.RenderMessage(in.format, in.responseJSON, msg)
	if err != nil {
		res.Error = "on response: " + err.Error()
		return
	}
	res.ResponseJson, res.ResponseChanged = text(final), true
}

// text returns JSON bytes as a proto string, which must be UTF-8.
func text(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// eventCapture is the policy.Recorder of a dry run: it keeps the events
// for the answer and sends them nowhere else. It is safe for concurrent
// use.
type eventCapture struct {
	mu     sync.Mutex
	events []*cpv1.DryRunEvent
}

var _ policy.Recorder = (*eventCapture)(nil)

// Record keeps one event, its details redacted like stored ones.
func (c *eventCapture) Record(_ context.Context, ev policy.Event) {
	payload := []byte("{}")
	if b := detailsJSON(ev.Details); b != nil {
		payload = store.RedactJSON(b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, &cpv1.DryRunEvent{Type: ev.Type, PayloadJson: text(payload)})
}

// list returns the events kept so far, in order.
func (c *eventCapture) list() []*cpv1.DryRunEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}
