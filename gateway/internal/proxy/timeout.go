package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Defaults of the upstream timeouts (Config).
const (
	// DefaultUpstreamHeaderTimeout bounds the wait for upstream's response
	// headers. Streaming responses start with the first token, which for a
	// long prompt to a large model can take a minute or more (prompt
	// processing, queueing under load); two minutes leaves room for that
	// while still freeing a connection to a provider that hangs.
	DefaultUpstreamHeaderTimeout = 2 * time.Minute
	// DefaultUpstreamIdleTimeout bounds the silence between bytes of an
	// upstream response once its headers arrived. Providers keep streams
	// alive (Anthropic sends pings, tokens arrive many times a second), so
	// a minute without a byte means the stream is dead.
	DefaultUpstreamIdleTimeout = 60 * time.Second
)

// timeoutError is an upstream exchange abandoned for lack of progress: no
// response headers in time, or a response body silent too long.
type timeoutError struct {
	headers bool
	after   time.Duration
}

func (e *timeoutError) Error() string {
	if e.headers {
		return fmt.Sprintf("upstream sent no response headers within %s", e.after)
	}
	return fmt.Sprintf("upstream sent nothing for %s", e.after)
}

// Timeout reports true, like the net package's timeouts.
func (e *timeoutError) Timeout() bool { return true }

// isTimeout reports whether err is an upstream timeout of the proxy's own.
func isTimeout(err error) bool {
	var te *timeoutError
	return errors.As(err, &te)
}

// upstreamDeadline bounds one upstream exchange with one timer: armed for
// the header timeout when the request goes out, then re-armed for the idle
// timeout by every read that brings bytes. When it fires, the exchange's
// context is cancelled with a *timeoutError as cause, which ends the
// upstream request and is what the failed call reports.
type upstreamDeadline struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
}

func newUpstreamDeadline(parent context.Context, header, idle time.Duration) *upstreamDeadline {
	ctx, cancel := context.WithCancelCause(parent)
	u := &upstreamDeadline{ctx: ctx, cancel: cancel, idle: idle}
	u.timer = time.AfterFunc(header, func() { cancel(&timeoutError{headers: true, after: header}) })
	return u
}

// responded switches from waiting for headers to waiting for bytes.
func (u *upstreamDeadline) responded() {
	u.timer.Stop()
	u.timer = time.AfterFunc(u.idle, func() { u.cancel(&timeoutError{after: u.idle}) })
}

// explain returns the timeout that cancelled the exchange, or err.
func (u *upstreamDeadline) explain(err error) error {
	if cause := context.Cause(u.ctx); isTimeout(cause) {
		return cause
	}
	return err
}

// stop releases the exchange.
func (u *upstreamDeadline) stop() {
	u.timer.Stop()
	u.cancel(context.Canceled)
}

// idleBody is an upstream response body under its idle timeout.
type idleBody struct {
	body io.ReadCloser
	u    *upstreamDeadline
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.u.timer.Reset(b.u.idle)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.u.explain(err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	err := b.body.Close()
	b.u.stop()
	return err
}
