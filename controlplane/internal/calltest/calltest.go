// Package calltest drives calls on CallService.Call as a gateway does,
// for the control plane's tests: start, the decision, the response or the
// stream the decision inspects, end with the call's record, done.
package calltest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Call is one call as a gateway runs it.
type Call struct {
	// Start opens the call.
	Start *cpv1.CallStart
	// Upstream is upstream's complete answer: sent as the response
	// message when the decision inspects a complete response, and in end
	// when the control plane wants it (CallDecision.wants_response).
	Upstream *cpv1.Message
	// Events are upstream's stream, sent in one message when the decision
	// inspects a stream (numbered by seq from 1 when they have none), then
	// stream_end. Nil: Upstream as a stream (canon.Events).
	Events []*cpv1.StreamEvent
	// UpstreamError is the stream_end's upstream_error: the stream broke
	// off.
	UpstreamError string
	// Record is the gateway's record of the call, sent in end; nil: none.
	Record *cpv1.CallRecord
	// RecordOf, when set, makes the record from what the control plane
	// answered, as a gateway records what it wrote to its client; it
	// takes precedence over Record.
	RecordOf func(*Result) *cpv1.CallRecord
	// End, when set, is sent as the call's end as it is (Record and
	// Upstream are then not added to it). Unset: an end with HTTP status
	// 200 after a continue (0 otherwise), upstream_error, upstream's
	// response when the control plane wants it, and the record.
	End *cpv1.CallEnd
}

// Result is what the control plane answered.
type Result struct {
	// Decision is the decision on the request; nil after a failure.
	Decision *cpv1.CallDecision
	// Response answers the complete response (INSPECT_RESPONSE).
	Response *cpv1.ApplyResponsePolicyResponse
	// Outputs are the stream's outputs, in order (INSPECT_STREAM).
	Outputs []*cpv1.StreamOutput
	// Failure is the policy's failure, when it failed.
	Failure *cpv1.CallFailure
}

// Run runs c on conn from start to done and returns what the control
// plane answered. An error is the call's (its gRPC status is kept: a
// refused call's Unauthenticated, an out-of-order message's
// InvalidArgument) or a broken sequence.
func Run(ctx context.Context, conn grpc.ClientConnInterface, c Call) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cpv1.NewCallServiceClient(conn).Call(ctx)
	if err != nil {
		return nil, err
	}
	send := func(m *cpv1.CallRequest) error {
		if err := stream.Send(m); errors.Is(err, io.EOF) {
			// The server ended the call: Recv says how.
			_, err = stream.Recv()
			if err == nil {
				err = errors.New("the server ended the call")
			}
			return err
		} else if err != nil {
			return err
		}
		return nil
	}
	res := &Result{}
	if err := send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: c.Start}}); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("decision: %w", err)
	}
	if res.Failure = first.GetFailure(); res.Failure == nil {
		if res.Decision = first.GetDecision(); res.Decision == nil {
			return nil, fmt.Errorf("got %v, want a decision", first)
		}
		if err := res.inspect(stream, send, c); err != nil {
			return res, err
		}
	}
	if err := send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: res.end(c)}}); err != nil {
		return res, fmt.Errorf("end: %w", err)
	}
	if err := stream.CloseSend(); err != nil {
		return res, err
	}
	msg, err := stream.Recv()
	if err != nil {
		return res, fmt.Errorf("got %w; want done", err)
	}
	if msg.GetDone() == nil {
		return res, fmt.Errorf("got %v; want done", msg)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("after done: %v, want the end of the stream", err)
	}
	return res, nil
}

// inspect sends what the decision inspects of upstream's answer and reads
// the control plane's answers, up to a failure.
func (res *Result) inspect(stream cpv1.CallService_CallClient, send func(*cpv1.CallRequest) error, c Call) error {
	switch res.Decision.GetInspect() {
	case cpv1.Inspect_INSPECT_RESPONSE:
		if c.Upstream == nil {
			return nil // upstream failed: nothing to inspect
		}
		if err := send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Response{Response: c.Upstream}}); err != nil {
			return fmt.Errorf("response: %w", err)
		}
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("final response: %w", err)
		}
		if res.Failure = msg.GetFailure(); res.Failure == nil {
			if res.Response = msg.GetResponse(); res.Response == nil {
				return fmt.Errorf("got %v, want the final response", msg)
			}
		}
	case cpv1.Inspect_INSPECT_STREAM:
		upstream := c.Events
		if upstream == nil && c.Upstream != nil {
			upstream = canon.Events(c.Upstream)
		}
		events := make([]*cpv1.StreamEvent, len(upstream))
		for i, ev := range upstream {
			events[i] = proto.Clone(ev).(*cpv1.StreamEvent)
			if events[i].Seq == 0 {
				events[i].Seq = uint64(i + 1)
			}
		}
		if len(events) > 0 {
			if err := send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Events{Events: &cpv1.CallEvents{Events: events}}}); err != nil {
				return fmt.Errorf("events: %w", err)
			}
		}
		if err := send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_StreamEnd{StreamEnd: &cpv1.StreamEnd{UpstreamError: c.UpstreamError}}}); err != nil {
			return fmt.Errorf("stream_end: %w", err)
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return fmt.Errorf("outputs: %w", err)
			}
			if res.Failure = msg.GetFailure(); res.Failure != nil {
				return nil
			}
			out := msg.GetOutputs()
			if out == nil {
				return fmt.Errorf("got %v, want outputs", msg)
			}
			res.Outputs = append(res.Outputs, out.GetOutputs()...)
			if out.GetEndStream() {
				return nil
			}
		}
	}
	return nil
}

// end is the call's end message.
func (res *Result) end(c Call) *cpv1.CallEnd {
	if c.End != nil {
		return c.End
	}
	end := &cpv1.CallEnd{UpstreamError: c.UpstreamError, Record: c.Record}
	if c.RecordOf != nil {
		end.Record = c.RecordOf(res)
	}
	if res.Decision.GetContinue() != nil {
		end.HttpStatus = 200
	}
	if res.Decision.GetWantsResponse() {
		end.Response = c.Upstream
	}
	return end
}
