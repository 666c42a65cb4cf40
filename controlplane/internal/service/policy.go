package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// PolicyService implements cpv1.PolicyServiceServer: pure evaluation of
// the active policy on a request, a complete response or a stream, the
// contract external policies implement, served for other control planes
// and tools. It never consults nor fills the response cache and records
// no call (the call sessions of CallService do); the sessions share its
// policy store, recorder and observer.
type PolicyService struct {
	cpv1.UnimplementedPolicyServiceServer

	revisions *Revisions
	logger    *slog.Logger
	recorder  policy.Recorder
	observer  Observer // nil: none (observe.go)
}

var _ cpv1.PolicyServiceServer = (*PolicyService)(nil)

// NewPolicyService returns a PolicyService that runs the policies of
// store. Policy events go to recorder; nil logs them at debug level.
func NewPolicyService(revisions *Revisions, logger *slog.Logger, recorder policy.Recorder) *PolicyService {
	if recorder == nil {
		recorder = policy.LogRecorder{Logger: logger}
	}
	return &PolicyService{revisions: revisions, logger: logger, recorder: recorder}
}

// ApplyRequestPolicies runs the active policy on a request.
func (s *PolicyService) ApplyRequestPolicies(ctx context.Context, req *cpv1.ApplyRequestPoliciesRequest) (*cpv1.ApplyRequestPoliciesResponse, error) {
	if err := validateCall(req.GetCallId(), req.GetFormat()); err != nil {
		return nil, err
	}
	active := s.revisions.Active()
	call := &policy.Call{ID: req.GetCallId(), Format: req.GetFormat(), Request: req.GetBody(), Metadata: req.GetMetadata(), Recorder: s.recorder}
	start := time.Now()
	out, err := decideRequest(ctx, active, call)
	s.observeRequest(ctx, active, out, err, start)
	if err != nil {
		return nil, s.policyError(ctx, active, call, "on request", err)
	}
	return out, nil
}

// ApplyResponsePolicy runs the policy of the call's revision on a complete
// response.
func (s *PolicyService) ApplyResponsePolicy(ctx context.Context, req *cpv1.ApplyResponsePolicyRequest) (*cpv1.ApplyResponsePolicyResponse, error) {
	if err := validateCall(req.GetCallId(), req.GetFormat()); err != nil {
		return nil, err
	}
	if req.GetResponse() == nil {
		return nil, status.Error(codes.InvalidArgument, "response is required")
	}
	active := s.revisions.Lookup(req.GetPolicyRevision())
	call := &policy.Call{ID: req.GetCallId(), Format: req.GetFormat(), Request: req.GetRequest(), Metadata: req.GetMetadata(), Recorder: s.recorder}
	start := time.Now()
	msg, changed, err := decideResponse(ctx, active, call, req.GetResponse())
	s.observeResponse(ctx, active, changed, err, start)
	if err != nil {
		return nil, s.policyError(ctx, active, call, "on response", err)
	}
	if !changed {
		return &cpv1.ApplyResponsePolicyResponse{}, nil
	}
	return &cpv1.ApplyResponsePolicyResponse{Response: msg}, nil
}

// decideRequest runs a policy's request phase on a call whose Request is
// the body as the client sent it, and returns the answer for the gateway.
// Live calls and dry runs both decide here. A policy's failure is
// returned as it is.
func decideRequest(ctx context.Context, active *Active, call *policy.Call) (*cpv1.ApplyRequestPoliciesResponse, error) {
	res, err := active.Policy.OnRequest(ctx, call)
	if err != nil {
		return nil, err
	}
	out := &cpv1.ApplyRequestPoliciesResponse{
		PolicyRevision:  active.Revision,
		InspectResponse: active.Policy.InspectsResponse(),
	}
	switch {
	case countSet(res.Body != nil, res.Respond != nil, res.Reject != nil) > 1:
		return nil, errors.New("returned more than one outcome")
	case res.Respond != nil:
		out.Outcome = &cpv1.ApplyRequestPoliciesResponse_Respond{Respond: &cpv1.Respond{Message: res.Respond}}
	case res.Reject != nil:
		out.Outcome = &cpv1.ApplyRequestPoliciesResponse_Reject{Reject: res.Reject}
	case res.Body != nil && !bytes.Equal(res.Body, call.Request):
		out.Outcome = &cpv1.ApplyRequestPoliciesResponse_Continue{Continue: &cpv1.Continue{Body: res.Body}}
	default:
		out.Outcome = &cpv1.ApplyRequestPoliciesResponse_Continue{Continue: &cpv1.Continue{}}
	}
	return out, nil
}

// decideResponse runs a policy's response phase on a complete response
// and returns the final one and whether the policy changed it. Live calls
// and dry runs both decide here. A policy's failure is returned as it is.
func decideResponse(ctx context.Context, active *Active, call *policy.Call, msg *cpv1.Message) (*cpv1.Message, bool, error) {
	out, err := active.Policy.OnResponse(ctx, call, msg)
	if err == nil && out == nil {
		err = errors.New("returned no message")
	}
	if err != nil {
		return nil, false, err
	}
	return out, out != msg, nil
}

// validateCall checks the fields every call of the policy service needs.
func validateCall(callID string, format cpv1.ClientFormat) error {
	if callID == "" {
		return status.Error(codes.InvalidArgument, "call_id is required")
	}
	return validateFormat(format)
}

// validateFormat checks that a client format is one the contract names.
func validateFormat(format cpv1.ClientFormat) error {
	if _, known := cpv1.ClientFormat_name[int32(format)]; !known || format == cpv1.ClientFormat_CLIENT_FORMAT_UNSPECIFIED {
		return status.Errorf(codes.InvalidArgument, "format must be specified (got %v)", format)
	}
	return nil
}

// policyError translates a policy's failure into a gRPC status: the
// context's own status if the call was cancelled or timed out, otherwise
// INTERNAL, on which the gateway fails closed. It logs the failure once.
func (s *PolicyService) policyError(ctx context.Context, active *Active, call *policy.Call, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	s.logger.ErrorContext(ctx, "policy failed",
		"call_id", call.ID, "policy", active.Policy.Name(), "revision", active.Revision, "op", op, "error", err)
	return status.Errorf(codes.Internal, "policy %s: %s: %v", active.Policy.Name(), op, err)
}

// countSet counts the true values.
func countSet(values ...bool) int {
	n := 0
	for _, v := range values {
		if v {
			n++
		}
	}
	return n
}
