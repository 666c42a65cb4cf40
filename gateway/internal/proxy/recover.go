package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/telemetry"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// errRecovered stands for a recovered panic, already logged with its
// stack; it is what the client and the call's record are told.
var errRecovered = errors.New("internal error in the gateway")

// logPanic logs a recovered panic once, with the stack of the goroutine
// that panicked: call it from the deferred function that recovered.
func (p *Proxy) logPanic(ctx context.Context, v any, attrs ...any) {
	p.log.ErrorContext(ctx, "panic recovered", append([]any{"panic", fmt.Sprint(v), "stack", string(debug.Stack())}, attrs...)...)
}

// recovering returns h with its panics recovered (see runRecovering); d
// is the client's format, nil to guess it from the request.
func (p *Proxy) recovering(d dialect.Dialect, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fd := d
		if fd == nil {
			fd = dialectFor(r)
		}
		telemetry.SetFormat(w, formatLabel(fd))
		p.runRecovering(&traceWriter{ResponseWriter: w}, r, d, nil, h.ServeHTTP)
	})
}

// runRecovering runs h, recovering its panics: each is logged once with
// its stack, noted by onPanic (when not nil) and answered by answerPanic.
// The server never sees the panic, so it neither logs it again nor drops
// the connection without an answer.
func (p *Proxy) runRecovering(w *traceWriter, r *http.Request, d dialect.Dialect, onPanic func(), h http.HandlerFunc) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v) // a deliberate abort, which the server handles quietly
		}
		p.logPanic(r.Context(), v, "method", r.Method, "path", r.URL.Path)
		if onPanic != nil {
			onPanic()
		}
		if d == nil {
			d = dialectFor(r)
		}
		answerPanic(w, r, d)
	}()
	h(w, r)
}

// answerPanic answers a request whose handler panicked: a 502 in the
// client's format while no header is out, an in-stream error event once a
// stream has begun, and otherwise (a body partly sent) a broken-off
// connection, so that the client cannot take what it got for the whole
// body.
func answerPanic(w *traceWriter, r *http.Request, d dialect.Dialect) {
	switch {
	case r.Context().Err() != nil:
		// The client went away; nothing to answer.
	case w.status == 0:
		h := w.Header()
		id := h.Get("X-Call-ID")
		clear(h) // upstream's headers, if they were being copied
		if id != "" {
			h.Set("X-Call-ID", id)
		}
		WriteError(w, d, http.StatusBadGateway, "api_error", errRecovered.Error())
	case isEventStreamHeader(w.Header()):
		_ = d.NewEncoder(dialect.Request{}).Event(w, internalErrorEvent(), nil)
		flush(w)
	default:
		panic(http.ErrAbortHandler)
	}
}

// internalErrorEvent is the in-stream error for a recovered panic.
func internalErrorEvent() *cpv1.StreamEvent {
	return &cpv1.StreamEvent{Event: &cpv1.StreamEvent_Error{Error: &cpv1.StreamError{
		Type: "api_error", Message: errRecovered.Error()}}}
}
