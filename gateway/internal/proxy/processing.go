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

// Processing modes. The control plane streams what its active policy
// needs of each call (CallService.WatchProcessing). When the policy has
// no request hook and the response cache is off, nothing has to be
// decided before upstream is called: the gateway sends the request
// upstream at once, while the decision comes (the fast path), instead of
// after it. The decision is still awaited before anything reaches the
// client, so a policy activated since the last update still decides the
// call: it can reject it (the upstream exchange is then cancelled) or
// rewrite it (then sent again, rewritten). Until the watch has its first
// update, and while it is broken, every call waits for its decision.

// Backoff between attempts to watch the processing modes.
const (
	minWatchBackoff = 100 * time.Millisecond
	maxWatchBackoff = 5 * time.Second
)

// processing is the latest processing mode the control plane announced;
// nil while unknown.
type processing struct {
	mode atomic.Pointer[cpv1.WatchProcessingResponse]
}

// fast reports whether a call may go upstream before its decision.
func (pr *processing) fast() bool {
	m := pr.mode.Load()
	return m != nil && !m.GetRequest() && !m.GetCache()
}

// WatchProcessing follows the control plane's processing modes until ctx
// ends, reconnecting with backoff while the control plane is away.
func (p *Proxy) WatchProcessing(ctx context.Context) {
	backoff := minWatchBackoff
	for ctx.Err() == nil {
		err := p.watchOnce(ctx, func() { backoff = minWatchBackoff })
		p.processing.mode.Store(nil)
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			p.log.WarnContext(ctx, "the control plane does not announce processing modes; every call waits for its decision", "err", err)
			return
		}
		p.log.DebugContext(ctx, "processing watch ended; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxWatchBackoff)
	}
}

// watchOnce follows one watch until it fails; connected is called on its
// first update.
func (p *Proxy) watchOnce(ctx context.Context, connected func()) error {
	stream, err := p.calls.WatchProcessing(ctx, &cpv1.WatchProcessingRequest{})
	if err != nil {
		return err
	}
	for first := true; ; first = false {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "the control plane ended the watch")
			}
			return err
		}
		p.processing.mode.Store(m)
		if first {
			connected()
		}
	}
}

// earlyUpstream is an exchange with upstream begun before the call's
// decision came (the fast path).
type earlyUpstream struct {
	up     upstreamExchange
	cancel context.CancelFunc
	done   chan struct{}
	resp   *http.Response
	err    error
}

// sendEarly sends the call upstream at once, in its own goroutine.
func (p *Proxy) sendEarly(r *http.Request, c *call) *earlyUpstream {
	ctx, cancel := context.WithCancel(r.Context())
	e := &earlyUpstream{cancel: cancel, done: make(chan struct{})}
	e.up = p.startUpstream(ctx, c)
	body := c.body
	go func() {
		defer close(e.done)
		defer func() {
			if v := recover(); v != nil {
				p.logPanic(ctx, v, "call_id", c.id, "in", "sending the request upstream")
				e.resp, e.err = nil, errRecovered
			}
		}()
		e.resp, e.err = p.sendCall(e.up.ctx, r, c, body)
	}()
	return e
}

// wait returns upstream's answer.
func (e *earlyUpstream) wait() (*http.Response, error) {
	<-e.done
	return e.resp, e.err
}

// abandon cancels the exchange (nil: none): the decision was not to send
// the request as it went.
func (e *earlyUpstream) abandon() {
	if e == nil {
		return
	}
	e.cancel()
	if resp, _ := e.wait(); resp != nil {
		_ = resp.Body.Close()
	}
	e.up.span.End()
}
