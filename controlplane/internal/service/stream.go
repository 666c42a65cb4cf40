package service

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// chunkStream is the server side of one StreamChunkPolicy call.
type chunkStream = cpv1.PolicyService_StreamChunkPolicyServer

// StreamChunkPolicy runs the policy of the call's revision on one streamed
// response. The first message must be a start; then each event is handed
// to the policy and its outputs are sent as one batch (none when it emits
// nothing). An end, or the client closing its side, runs the policy's end
// hook, sends its outputs and closes the stream. A batch the policy marks
// as the end of the response is sent with end_stream and closes the
// stream. A policy failure is INTERNAL: the gateway fails closed.
func (s *PolicyService) StreamChunkPolicy(stream chunkStream) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "stream closed before start")
	}
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Errorf(codes.InvalidArgument, "first message must be start, got %s", messageKind(first))
	}
	if err := validateCall(start.GetCallId(), start.GetFormat()); err != nil {
		return err
	}
	active := s.store.Lookup(start.GetPolicyRevision())
	call := &policy.Call{ID: start.GetCallId(), Format: start.GetFormat(), Request: start.GetRequest(), Metadata: start.GetMetadata()}
	s.logger.DebugContext(ctx, "stream policy started",
		"call_id", call.ID, "policy", active.Policy.Name(), "revision", active.Revision)
	ps := active.Policy.NewStream(ctx, call)

	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return s.end(ctx, stream, active, call, ps, "")
		}
		if err != nil {
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *cpv1.StreamChunkPolicyRequest_Event:
			if m.Event == nil {
				return status.Error(codes.InvalidArgument, "event message without an event")
			}
			emit, err := ps.OnEvent(ctx, m.Event)
			if err != nil {
				return s.policyError(ctx, active, call, "on event", err)
			}
			if err := s.send(ctx, stream, active, call, m.Event, emit); err != nil {
				return err
			}
			if emit.End {
				return nil
			}
		case *cpv1.StreamChunkPolicyRequest_End:
			return s.end(ctx, stream, active, call, ps, m.End.GetUpstreamError())
		case *cpv1.StreamChunkPolicyRequest_Start:
			return status.Error(codes.InvalidArgument, "start sent twice")
		default:
			return status.Error(codes.InvalidArgument, "empty stream message")
		}
	}
}

// end runs the policy's end hook and sends its outputs.
func (s *PolicyService) end(ctx context.Context, stream chunkStream, active *Active, call *policy.Call, ps policy.Stream, upstreamErr string) error {
	emit, err := ps.OnEnd(ctx, upstreamErr)
	if err != nil {
		return s.policyError(ctx, active, call, "on end", err)
	}
	return s.send(ctx, stream, active, call, nil, emit)
}

// send sends the outputs of one policy hook as one batch; it sends nothing
// when there are no outputs and the response goes on. An output that is
// the input itself (pointer-identical) is sent as its passthrough_seq.
func (s *PolicyService) send(ctx context.Context, stream chunkStream, active *Active, call *policy.Call, input *cpv1.StreamEvent, emit policy.Emit) error {
	if len(emit.Events) == 0 && !emit.End {
		return nil
	}
	resp := &cpv1.StreamChunkPolicyResponse{
		Outputs:   make([]*cpv1.StreamOutput, 0, len(emit.Events)),
		EndStream: emit.End,
	}
	for i, ev := range emit.Events {
		if ev == nil {
			return s.policyError(ctx, active, call, "emit", fmt.Errorf("output %d is nil", i))
		}
		resp.Outputs = append(resp.Outputs, output(input, ev))
	}
	return stream.Send(resp)
}

// output converts one emitted event: the input itself passes through by
// seq (an input without a seq cannot be referenced and is sent whole).
func output(input, ev *cpv1.StreamEvent) *cpv1.StreamOutput {
	if ev == input && ev.GetSeq() != 0 {
		return &cpv1.StreamOutput{Output: &cpv1.StreamOutput_PassthroughSeq{PassthroughSeq: ev.GetSeq()}}
	}
	return &cpv1.StreamOutput{Output: &cpv1.StreamOutput_Event{Event: ev}}
}

// messageKind names the kind of a stream message for errors.
func messageKind(msg *cpv1.StreamChunkPolicyRequest) string {
	switch msg.GetMsg().(type) {
	case *cpv1.StreamChunkPolicyRequest_Event:
		return "event"
	case *cpv1.StreamChunkPolicyRequest_End:
		return "end"
	case *cpv1.StreamChunkPolicyRequest_Start:
		return "start"
	default:
		return "an empty message"
	}
}
