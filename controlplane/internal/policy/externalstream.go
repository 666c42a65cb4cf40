package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// The stream side of the external policy: one StreamChunkPolicy call per
// streamed response.

// NewStream returns the stream of one response; the server's stream is
// opened by the first hook. ctx is the response's: the server's stream
// lives in it, beyond each hook's own deadline.
func (p *external) NewStream(ctx context.Context, call *Call) Stream {
	if !p.inspect {
		return passthroughStream{}
	}
	ctx, cancel := context.WithCancel(ctx)
	return &externalStream{p: p, call: call, ctx: ctx, cancel: cancel, pending: map[uint64][]*cpv1.StreamEvent{}}
}

// externalStream is one streamed response through a policy server. Inputs
// are sent as they come; outputs are received on a goroutine of their
// own, and OnEvent returns those that have arrived so far without waiting
// (the server may answer an event with nothing, or later). So outputs
// usually come with a later event than the one that caused them; OnEnd
// waits for the rest, until the server closes its stream.
type externalStream struct {
	p    *external
	call *Call
	// ctx is the response's context: the server's stream lives in it, and
	// cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc
	cs     cpv1.PolicyService_StreamChunkPolicyClient // nil until the first hook
	recv   *externalReceiver
	// pending holds the inputs sent and not yet passed through, by seq,
	// oldest first: a member before this one in a chain may emit several
	// events with one seq.
	pending map[uint64][]*cpv1.StreamEvent
	ended   bool  // the server ended the response
	err     error // the failure every later hook returns
}

// OnEvent sends ev and returns the outputs that have arrived.
func (s *externalStream) OnEvent(ctx context.Context, ev *cpv1.StreamEvent) (Emit, error) {
	if s.err != nil {
		return Emit{}, s.err
	}
	if s.ended {
		return Emit{}, s.fail(s.p.remoteError("StreamChunkPolicy", errors.New("an event after the server ended the response")))
	}
	ctx, done := s.watch(ctx)
	defer done()
	if err := s.open(ctx); err != nil {
		return Emit{}, s.fail(err)
	}
	var emit Emit
	if err := s.collect(&emit, false); err != nil {
		return Emit{}, s.fail(err)
	}
	if emit.End {
		return emit, nil // the input comes after the end: it is dropped
	}
	if seq := ev.GetSeq(); seq != 0 {
		s.pending[seq] = append(s.pending[seq], ev)
	}
	if err := s.send(ctx, &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Event{Event: ev}}); err != nil {
		return Emit{}, s.fail(err)
	}
	if err := s.collect(&emit, false); err != nil {
		return Emit{}, s.fail(err)
	}
	return emit, nil
}

// OnEnd sends the end and returns the outputs that arrive until the
// server closes its stream.
func (s *externalStream) OnEnd(ctx context.Context, upstreamErr string) (Emit, error) {
	if s.err != nil {
		return Emit{}, s.err
	}
	if s.ended {
		return Emit{}, nil
	}
	defer s.cancel()
	ctx, done := s.watch(ctx)
	defer done()
	if err := s.open(ctx); err != nil {
		return Emit{}, s.fail(err)
	}
	end := &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_End{End: &cpv1.StreamEnd{UpstreamError: upstreamErr}}}
	if err := s.send(ctx, end); err != nil {
		return Emit{}, s.fail(err)
	}
	if err := s.cs.CloseSend(); err != nil {
		return Emit{}, s.fail(s.p.remoteError("StreamChunkPolicy", err))
	}
	if err := s.recv.wait(ctx); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no end of the stream within the deadline: %w", ctx.Err())
		}
		return Emit{}, s.fail(s.p.remoteError("StreamChunkPolicy", err))
	}
	var emit Emit
	if err := s.collect(&emit, true); err != nil {
		return Emit{}, s.fail(err)
	}
	return emit, nil
}

// watch bounds a hook: its context's deadline, or externalTimeout when it
// has none. When the hook's context ends first, the server's stream is
// cancelled, which unblocks a send or the opening of the stream.
func (s *externalStream) watch(ctx context.Context) (context.Context, func()) {
	ctx, cancel := externalCallContext(ctx)
	stop := context.AfterFunc(ctx, s.cancel)
	return ctx, func() { stop(); cancel() }
}

// fail ends the stream with err, which every later hook returns.
func (s *externalStream) fail(err error) error {
	s.err = err
	s.cancel()
	return err
}

// open opens the server's stream and sends the start, once.
func (s *externalStream) open(ctx context.Context) error {
	if s.cs != nil {
		return nil
	}
	cs, err := s.p.client.StreamChunkPolicy(s.ctx, s.p.opts...)
	if err != nil {
		return s.p.remoteError("StreamChunkPolicy", err)
	}
	s.cs = cs
	s.recv = newExternalReceiver(cs)
	return s.send(ctx, &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{
		CallId: s.call.ID, Format: s.call.Format, Request: s.call.Request, Metadata: s.call.Metadata,
	}}})
}

// send sends one message. A stream the server has already ended (io.EOF)
// is not a failure of the send: what the server sent before its end, and
// its status, tell what happened, and the next collect or wait reads them.
func (s *externalStream) send(ctx context.Context, msg *cpv1.StreamChunkPolicyRequest) error {
	err := s.cs.Send(msg)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return s.p.remoteError("StreamChunkPolicy", fmt.Errorf("no progress within the deadline: %w", ctx.Err()))
	case errors.Is(err, io.EOF):
		if werr := s.recv.wait(ctx); werr != nil && ctx.Err() != nil {
			return s.p.remoteError("StreamChunkPolicy", fmt.Errorf("no progress within the deadline: %w", ctx.Err()))
		}
		return nil
	}
	return s.p.remoteError("StreamChunkPolicy", err)
}

// collect appends the outputs that have arrived to emit. Unless the
// stream is ending, the server's stream having closed without ending the
// response is an error.
func (s *externalStream) collect(emit *Emit, ending bool) error {
	closed := s.recv.closed() // before taking the outputs, so none is missed
	more, err := s.outputs()
	if err != nil {
		return err
	}
	emit.Events = append(emit.Events, more.Events...)
	emit.End = more.End
	if ending || !closed || emit.End {
		return nil
	}
	cause := s.recv.err
	if cause == nil {
		cause = errors.New("closed the stream before the end of the response")
	}
	return s.p.remoteError("StreamChunkPolicy", cause)
}

// outputs maps the batches received so far to events: a passthrough_seq
// to the input itself (so an unchanged event stays upstream's bytes), an
// event as it is. A batch with end_stream ends the response.
func (s *externalStream) outputs() (Emit, error) {
	var emit Emit
	for _, batch := range s.recv.take() {
		if emit.End {
			break // nothing follows the end
		}
		for i, o := range batch.GetOutputs() {
			switch x := o.GetOutput().(type) {
			case *cpv1.StreamOutput_PassthroughSeq:
				seq := x.PassthroughSeq
				q := s.pending[seq]
				if len(q) == 0 {
					return Emit{}, s.p.remoteError("StreamChunkPolicy", fmt.Errorf("output %d passes through seq %d, which is no input awaiting an answer", i, seq))
				}
				emit.Events = append(emit.Events, q[0])
				if len(q) == 1 {
					delete(s.pending, seq)
				} else {
					s.pending[seq] = q[1:]
				}
			case *cpv1.StreamOutput_Event:
				if x.Event.GetEvent() == nil {
					return Emit{}, s.p.remoteError("StreamChunkPolicy", fmt.Errorf("output %d is an empty event", i))
				}
				emit.Events = append(emit.Events, x.Event)
			default:
				return Emit{}, s.p.remoteError("StreamChunkPolicy", fmt.Errorf("output %d is empty", i))
			}
		}
		emit.End = batch.GetEndStream()
	}
	if emit.End {
		s.ended = true
		s.cancel()
	}
	return emit, nil
}

// externalReceiver collects a server's batches as they arrive.
type externalReceiver struct {
	mu      sync.Mutex
	batches []*cpv1.StreamChunkPolicyResponse
	done    chan struct{} // closed when the server's side has ended
	err     error         // why, nil for a clean end; set before done is closed
}

// newExternalReceiver receives cs's batches until its end.
func newExternalReceiver(cs cpv1.PolicyService_StreamChunkPolicyClient) *externalReceiver {
	r := &externalReceiver{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			resp, err := cs.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					r.err = err
				}
				return
			}
			r.mu.Lock()
			r.batches = append(r.batches, resp)
			r.mu.Unlock()
		}
	}()
	return r
}

// take returns the batches received since the last take.
func (r *externalReceiver) take() []*cpv1.StreamChunkPolicyResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.batches
	r.batches = nil
	return b
}

// closed reports whether the server's side has ended.
func (r *externalReceiver) closed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// wait waits for the end of the server's side and returns why it ended
// (nil for a clean end), or ctx's error.
func (r *externalReceiver) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
