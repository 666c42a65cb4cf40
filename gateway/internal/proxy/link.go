package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// link is one call's stream to the control plane (CallService.Call): it
// opens with the call's start, carries the decision, the response or the
// events and their outputs, and ends, once the client has its answer,
// with the call's outcome and record (sent by the recorder, off the
// request path; see End).
//
// Its context is the call's own, not the request's: the end goes out
// after the handler returned. While the gateway waits for the control
// plane (recv), the client going away cancels it, so that no policy works
// on for nobody.
type link struct {
	stream   cpv1.CallService_CallClient
	cancel   context.CancelFunc
	timedOut atomic.Bool
	timeout  time.Duration // bounds each wait for the control plane

	// end is the call's outcome, completed by the proxy before the
	// recorder sends it.
	end *cpv1.CallEnd
}

// openLink opens the call's stream and sends its start.
func (p *Proxy) openLink(r *http.Request, c *call) (*link, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stream, err := p.calls.Call(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	l := &link{stream: stream, cancel: cancel, timeout: p.cfg.PolicyTimeout, end: &cpv1.CallEnd{}}
	err = l.send(r, &cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: &cpv1.CallStart{
		CallId: c.id, Format: c.d.Format(), Body: c.body, Metadata: c.meta, Stream: c.req.Stream}}})
	if err != nil {
		cancel()
		return nil, err
	}
	return l, nil
}

// send sends one message. A stream the control plane has ended refuses
// it with io.EOF; the error is then the stream's status.
func (l *link) send(r *http.Request, msg *cpv1.CallRequest) error {
	err := l.stream.Send(msg)
	if errors.Is(err, io.EOF) {
		_, err = l.recv(r, false)
		if err == nil {
			err = status.Error(codes.Internal, "the control plane answered out of turn")
		}
	}
	return err
}

// recv receives the control plane's next message; a policy's failure is
// an INTERNAL error. The client going away (r's context ending) cancels
// the call; with timed, so does the control plane taking longer than the
// policy timeout.
func (l *link) recv(r *http.Request, timed bool) (*cpv1.CallResponse, error) {
	if r != nil {
		stop := context.AfterFunc(r.Context(), l.cancel)
		defer stop()
	}
	if timed && l.timeout > 0 {
		t := time.AfterFunc(l.timeout, func() { l.timedOut.Store(true); l.cancel() })
		defer t.Stop()
	}
	msg, err := l.stream.Recv()
	switch {
	case err != nil && l.timedOut.Load():
		err = status.Errorf(codes.DeadlineExceeded, "the control plane did not answer within %s", l.timeout)
	case msg.GetFailure() != nil:
		// The policy failed; the call goes on to its end and its record.
		msg, err = nil, status.Error(codes.Internal, msg.GetFailure().GetMessage())
	}
	return msg, err
}

// decision receives the decision on the request.
func (l *link) decision(r *http.Request) (*cpv1.CallDecision, error) {
	msg, err := l.recv(r, true)
	if err != nil {
		return nil, err
	}
	d := msg.GetDecision()
	if d == nil {
		return nil, status.Error(codes.Internal, "the control plane answered no decision")
	}
	return d, nil
}

// response sends upstream's complete response and receives the final one.
func (l *link) response(r *http.Request, msg *cpv1.Message) (*cpv1.ApplyResponsePolicyResponse, error) {
	if err := l.send(r, &cpv1.CallRequest{Msg: &cpv1.CallRequest_Response{Response: msg}}); err != nil {
		return nil, err
	}
	out, err := l.recv(r, true)
	if err != nil {
		return nil, err
	}
	if out.GetResponse() == nil {
		return nil, status.Error(codes.Internal, "the control plane answered no response")
	}
	return out.GetResponse(), nil
}

// End sends the call's end with rec (nil: none), closes the gateway's
// side and waits for the control plane's done (record.Ender). It cancels
// the stream when it returns, whatever happened.
func (l *link) End(rec *cpv1.CallRecord) error {
	defer l.cancel()
	l.end.Record = rec
	if err := l.send(nil, &cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: l.end}}); err != nil {
		return err
	}
	if err := l.stream.CloseSend(); err != nil {
		return err
	}
	for {
		msg, err := l.recv(nil, true)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if msg.GetDone() == nil && msg.GetOutputs() == nil {
			// Outputs may still come for a stream the client left.
			return status.Error(codes.Internal, "the control plane answered after the end")
		}
	}
}
