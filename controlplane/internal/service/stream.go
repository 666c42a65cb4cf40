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
func (s *PolicyService) StreamChunkPolicy(stream chunkStream) (err error) {
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
	active := s.revisions.Lookup(start.GetPolicyRevision())
	call := &policy.Call{ID: start.GetCallId(), Format: start.GetFormat(), Request: start.GetRequest(), Metadata: start.GetMetadata(), Recorder: s.recorder}
	s.logger.DebugContext(ctx, "stream policy started",
		"call_id", call.ID, "policy", active.Policy.Name(), "revision", active.Revision)
	ps := active.Policy.NewStream(ctx, call)
	stream, ps, observed := s.observeStream(stream, active, ps)
	defer func() { observed(ctx, err) }()
	inputs := inputTable{}

	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return s.end(ctx, stream, active, call, ps, inputs, "")
		}
		if err != nil {
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *cpv1.StreamChunkPolicyRequest_Event:
			if m.Event == nil {
				return status.Error(codes.InvalidArgument, "event message without an event")
			}
			inputs.add(m.Event)
			emit, err := ps.OnEvent(ctx, m.Event)
			if err != nil {
				return s.policyError(ctx, active, call, "on event", err)
			}
			if err := s.send(ctx, stream, active, call, inputs, emit); err != nil {
				return err
			}
			if emit.End {
				return nil
			}
		case *cpv1.StreamChunkPolicyRequest_End:
			return s.end(ctx, stream, active, call, ps, inputs, m.End.GetUpstreamError())
		case *cpv1.StreamChunkPolicyRequest_Start:
			return status.Error(codes.InvalidArgument, "start sent twice")
		default:
			return status.Error(codes.InvalidArgument, "empty stream message")
		}
	}
}

// end runs the policy's end hook and sends its outputs.
func (s *PolicyService) end(ctx context.Context, stream chunkStream, active *Active, call *policy.Call, ps policy.Stream, inputs inputTable, upstreamErr string) error {
	emit, err := ps.OnEnd(ctx, upstreamErr)
	if err != nil {
		return s.policyError(ctx, active, call, "on end", err)
	}
	return s.send(ctx, stream, active, call, inputs, emit)
}

// inputTable maps the seqs of the inputs not yet emitted to the input
// events, so that an event held back and released later unchanged (the
// same pointer) still passes through by seq.
type inputTable map[uint64]*cpv1.StreamEvent

// add remembers an input.
func (t inputTable) add(ev *cpv1.StreamEvent) {
	if ev.GetSeq() != 0 {
		t[ev.GetSeq()] = ev
	}
}

// output converts one emitted event: an input itself, emitted now or held
// and released unchanged, passes through by seq; anything else (including
// an input without a seq, which cannot be referenced) is sent whole. An
// emitted event consumes the entry of its seq.
func (t inputTable) output(ev *cpv1.StreamEvent) *cpv1.StreamOutput {
	seq := ev.GetSeq()
	in, ok := t[seq]
	if seq != 0 && ok {
		delete(t, seq)
	}
	if ok && in == ev {
		return &cpv1.StreamOutput{Output: &cpv1.StreamOutput_PassthroughSeq{PassthroughSeq: seq}}
	}
	return &cpv1.StreamOutput{Output: &cpv1.StreamOutput_Event{Event: ev}}
}

// send sends the outputs of one policy hook as one batch; it sends nothing
// when there are no outputs and the response goes on.
func (s *PolicyService) send(ctx context.Context, stream chunkStream, active *Active, call *policy.Call, inputs inputTable, emit policy.Emit) error {
	batch, err := inputs.batch(emit)
	if err != nil {
		return s.policyError(ctx, active, call, "emit", err)
	}
	if batch == nil {
		return nil
	}
	return stream.Send(batch)
}

// batch converts the outputs of one policy hook into one batch: an
// output that is an input itself (pointer-identical) becomes its
// passthrough_seq. It is nil when there are no outputs and the response
// goes on.
func (t inputTable) batch(emit policy.Emit) (*cpv1.StreamChunkPolicyResponse, error) {
	if len(emit.Events) == 0 && !emit.End {
		return nil, nil
	}
	resp := &cpv1.StreamChunkPolicyResponse{
		Outputs:   make([]*cpv1.StreamOutput, 0, len(emit.Events)),
		EndStream: emit.End,
	}
	for i, ev := range emit.Events {
		if ev == nil {
			return nil, fmt.Errorf("output %d is nil", i)
		}
		resp.Outputs = append(resp.Outputs, t.output(ev))
	}
	return resp, nil
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
