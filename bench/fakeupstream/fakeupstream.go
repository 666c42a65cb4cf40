// Package fakeupstream implements a fake LLM provider for the gateway's
// end-to-end tests and benchmark harness.
//
// The server speaks the OpenAI Chat Completions API
// (POST /v1/chat/completions) and the Anthropic Messages API
// (POST /v1/messages), both streaming (server-sent events) and non-streaming,
// with response shapes that follow the real providers byte for byte. Every
// request is recorded together with every byte the server sent back, so tests
// can compare what a client received through the gateway with what the
// upstream actually produced.
//
// What a response looks like is described by a Scenario. Scenarios are taken
// from a FIFO queue (Enqueue); when the queue is empty a responder function
// (SetResponder) picks one from the request, and without a responder the
// default scenario (SetDefault) is used.
//
// Point the gateway's OPENAI_BASE_URL at srv.URL+"/v1" (see OpenAIBaseURL)
// and ANTHROPIC_BASE_URL at srv.URL.
//
// Other endpoints:
//
//   - POST /v1/messages/count_tokens answers {"input_tokens":N} with
//     N = len(body)/4.
//   - GET /v1/models answers an OpenAI-style model list.
//   - GET / and HEAD / answer 200 with an empty body.
//   - Anything else answers 404 with an error JSON.
package fakeupstream

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// DefaultText is the assistant text used when a Scenario has neither Text
// nor ToolCalls.
const DefaultText = "Hello from the fake upstream."

// Server is a running fake upstream. Create it with New and stop it with
// Close. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, e.g. "http://127.0.0.1:41234",
	// without a trailing slash.
	URL string

	ts        *httptest.Server
	baseCtx   context.Context
	stop      context.CancelFunc
	closeOnce sync.Once

	mu        sync.Mutex
	seq       int
	reqs      []*Request
	queue     []Scenario
	def       Scenario
	responder func(r Request) Scenario
	trackers  map[int]*tracker
	noRecord  bool
}

// tracker lets WaitCancelled wait for the fate of one request, even before
// that request has arrived.
type tracker struct {
	cancelled    chan struct{}
	done         chan struct{}
	cancelClosed bool
	doneClosed   bool
}

// Request is one request received by the server, with what the server sent
// back.
type Request struct {
	// Seq is the 1-based arrival order of the request. Sequence numbers keep
	// increasing across Reset, so they identify a request for the whole life
	// of the Server.
	Seq int
	// Method is the HTTP method.
	Method string
	// Path is the URL path, e.g. "/v1/messages".
	Path string
	// RawQuery is the encoded query string without the '?', e.g. "beta=true".
	RawQuery string
	// Header is a copy of the request headers.
	Header http.Header
	// Body is the complete request body.
	Body []byte
	// Received is when the request body had been read.
	Received time.Time
	// Sent is every byte the server wrote in its response body (for streams,
	// the whole SSE byte stream). It is filled when the response finishes,
	// also when it was cut or the client went away.
	Sent []byte
	// Status is the HTTP status code of the response; it is set when the
	// response finishes.
	Status int
	// Cancelled reports that the client went away (the request context was
	// cancelled or a write failed) before the server finished writing the
	// response.
	Cancelled bool
	// Done reports that the handler finished.
	Done bool
}

// JSON decodes Body as a JSON object. It returns nil when the body is not a
// JSON object.
func (r Request) JSON() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil
	}
	return m
}

// clone returns a copy of r that shares no mutable state with r.
func (r *Request) clone() Request {
	c := *r
	c.Header = r.Header.Clone()
	return c
}

// New starts a fake upstream listening on 127.0.0.1 on a free port.
func New() *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		baseCtx:  ctx,
		stop:     cancel,
		trackers: make(map[int]*tracker),
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	// Requests may carry very large headers; streams may be arbitrarily
	// slow, so no read/write timeouts are set.
	ts.Config.MaxHeaderBytes = 64 << 20
	ts.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	ts.Start()
	s.ts = ts
	s.URL = ts.URL
	return s
}

// OpenAIBaseURL returns the base URL to use as OPENAI_BASE_URL, i.e. URL+"/v1".
func (s *Server) OpenAIBaseURL() string { return s.URL + "/v1" }

// AnthropicBaseURL returns the base URL to use as ANTHROPIC_BASE_URL, i.e. URL.
func (s *Server) AnthropicBaseURL() string { return s.URL }

// Close aborts all in-flight responses, closes all connections and stops the
// server. Aborted responses are not marked Cancelled. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// Enqueue queues scenarios used by the next requests to
// POST /v1/chat/completions or POST /v1/messages, first in first out. When
// the queue is empty the responder (SetResponder) is asked, and without a
// responder the default scenario (SetDefault, initially Scenario{}) is used.
// Requests whose body is not valid JSON are rejected with 400 and do not
// consume a scenario.
func (s *Server) Enqueue(sc ...Scenario) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, sc...)
}

// SetDefault sets the scenario used when the queue is empty and no responder
// is set.
func (s *Server) SetDefault(sc Scenario) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = sc
}

// SetResponder sets a function that picks the scenario from the request; it
// is used when the queue is empty, before the default scenario. nil removes
// it. The function is called without any lock held and may be called
// concurrently for concurrent requests. It is useful e.g. to play an LLM
// judge whose answer depends on the prompt.
func (s *Server) SetResponder(f func(r Request) Scenario) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responder = f
}

// Requests returns a copy of every request received so far (all paths), in
// arrival order. Requests still in flight are included with Done == false.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = r.clone()
	}
	return out
}

// LastRequest returns the most recently received request, if any.
func (s *Server) LastRequest() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return Request{}, false
	}
	return s.reqs[len(s.reqs)-1].clone(), true
}

// LastFinished waits until the most recently received request has been
// answered (its response written to the end, or cut), at most timeout, and
// returns it. A proxy can hand a client the whole response before the
// server here has recorded what it sent: compare Sent through this, not
// LastRequest.
func (s *Server) LastFinished(timeout time.Duration) (Request, bool) {
	s.mu.Lock()
	if len(s.reqs) == 0 {
		s.mu.Unlock()
		return Request{}, false
	}
	t := s.trackerLocked(s.reqs[len(s.reqs)-1].Seq)
	s.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
	}
	return s.LastRequest()
}

// Reset clears the recorded requests, the scenario queue, the default
// scenario and the responder. Sequence numbers are not reset.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
	s.queue = nil
	s.def = Scenario{}
	s.responder = nil
	for seq, t := range s.trackers {
		if t.doneClosed {
			delete(s.trackers, seq)
		}
	}
}

// SetRecording turns the recording of requests on (the default) or off.
// While it is off, requests are served as usual but neither kept for
// Requests, LastRequest and Count nor tracked for WaitCancelled, so that
// a long-running server (the benchmark harness's) keeps a flat memory
// profile.
func (s *Server) SetRecording(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noRecord = !on
}

// Count returns the number of recorded requests whose URL path is exactly
// path.
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqs {
		if r.Path == path {
			n++
		}
	}
	return n
}

// WaitCancelled waits until the request with sequence number seq
// (Request.Seq) has observed its client going away before its response
// finished, or until timeout passes. It reports whether the request was
// cancelled. It returns false early when the request finished without being
// cancelled. The request does not need to have arrived yet.
func (s *Server) WaitCancelled(seq int, timeout time.Duration) bool {
	s.mu.Lock()
	t := s.trackerLocked(seq)
	s.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.cancelled:
		return true
	case <-t.done:
		// The handler finished; cancelled is closed before done when it
		// was cancelled.
		select {
		case <-t.cancelled:
			return true
		default:
			return false
		}
	case <-timer.C:
		return false
	}
}

// trackerLocked returns the tracker of seq, creating it. s.mu must be held.
func (s *Server) trackerLocked(seq int) *tracker {
	t := s.trackers[seq]
	if t == nil {
		t = &tracker{cancelled: make(chan struct{}), done: make(chan struct{})}
		s.trackers[seq] = t
	}
	return t
}

// arrive records a new request and returns its record and tracker.
func (s *Server) arrive(r *http.Request, body []byte) (*Request, *tracker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	rec := &Request{
		Seq:      s.seq,
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
		Received: time.Now(),
	}
	if s.noRecord {
		return rec, &tracker{cancelled: make(chan struct{}), done: make(chan struct{})}
	}
	s.reqs = append(s.reqs, rec)
	return rec, s.trackerLocked(rec.Seq)
}

// pick chooses the scenario for a request: queue, then responder, then the
// default scenario.
func (s *Server) pick(rec *Request) Scenario {
	s.mu.Lock()
	if len(s.queue) > 0 {
		sc := s.queue[0]
		s.queue[0] = Scenario{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return sc
	}
	f, def := s.responder, s.def
	snapshot := rec.clone()
	s.mu.Unlock()
	if f != nil {
		return f(snapshot)
	}
	return def
}

// exchange is the state of one request being served.
type exchange struct {
	s   *Server
	rec *Request
	tr  *tracker
	ctx context.Context
	w   *captureWriter
	rc  *http.ResponseController
}

// captureWriter records the status and every body byte written.
type captureWriter struct {
	http.ResponseWriter
	status int
	buf    []byte
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.buf = append(c.buf, b[:n]...)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(r.Body)
	rec, tr := s.arrive(r, body)
	cw := &captureWriter{ResponseWriter: w}
	x := &exchange{s: s, rec: rec, tr: tr, ctx: r.Context(), w: cw, rc: http.NewResponseController(cw)}
	defer x.finish()
	if readErr != nil {
		x.markCancelled()
		return
	}
	x.route(r)
}

func (x *exchange) route(r *http.Request) {
	switch r.URL.Path {
	case "/":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			x.w.WriteHeader(http.StatusOK)
			return
		}
		x.methodNotAllowed(r, apiOpenAI)
	case "/v1/messages":
		if r.Method != http.MethodPost {
			x.methodNotAllowed(r, apiAnthropic)
			return
		}
		x.serveAnthropic()
	case "/v1/chat/completions":
		if r.Method != http.MethodPost {
			x.methodNotAllowed(r, apiOpenAI)
			return
		}
		x.serveOpenAI()
	case "/v1/messages/count_tokens":
		if r.Method != http.MethodPost {
			x.methodNotAllowed(r, apiAnthropic)
			return
		}
		x.writeJSON(http.StatusOK, object{{"input_tokens", len(x.rec.Body) / 4}})
	case "/v1/models":
		if r.Method != http.MethodGet {
			x.methodNotAllowed(r, apiOpenAI)
			return
		}
		x.writeJSON(http.StatusOK, object{
			{"object", "list"},
			{"data", []any{
				object{{"id", "gpt-fake"}, {"object", "model"}, {"created", 1700000000}, {"owned_by", "fake"}},
				object{{"id", "claude-fake"}, {"object", "model"}, {"created", 1700000000}, {"owned_by", "fake"}},
			}},
		})
	default:
		api := apiOpenAI
		if r.Header.Get("anthropic-version") != "" || r.Header.Get("x-api-key") != "" {
			api = apiAnthropic
		}
		if api == apiAnthropic {
			x.writeRaw(http.StatusNotFound, marshal(anthropicError("not_found_error", "Not Found")))
		} else {
			x.writeRaw(http.StatusNotFound, marshal(openAIError("Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", nil)))
		}
	}
}

func (x *exchange) methodNotAllowed(r *http.Request, api apiKind) {
	msg := "Method " + r.Method + " not allowed for " + r.URL.Path
	if api == apiAnthropic {
		x.writeRaw(http.StatusMethodNotAllowed, marshal(anthropicError("invalid_request_error", msg)))
	} else {
		x.writeRaw(http.StatusMethodNotAllowed, marshal(openAIError(msg, "invalid_request_error", nil)))
	}
}

// finish publishes the outcome of the exchange.
func (x *exchange) finish() {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	x.rec.Sent = x.w.buf
	x.rec.Status = x.w.status
	if x.rec.Status == 0 {
		x.rec.Status = http.StatusOK
	}
	x.rec.Done = true
	if !x.tr.doneClosed {
		x.tr.doneClosed = true
		close(x.tr.done)
	}
}

// markCancelled records that the client went away. Aborts caused by Close are
// not client cancellations.
func (x *exchange) markCancelled() {
	if x.s.baseCtx.Err() != nil {
		return
	}
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	x.rec.Cancelled = true
	if !x.tr.cancelClosed {
		x.tr.cancelClosed = true
		close(x.tr.cancelled)
	}
}

// sleep waits for d, watching the request context. It reports false (and
// marks the request cancelled) when the client went away. When the server is
// closing, the connection is closed abruptly so that the client cannot take
// the unfinished response for a complete one.
func (x *exchange) sleep(d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-x.ctx.Done():
		}
	}
	if x.ctx.Err() == nil {
		return true
	}
	if x.s.baseCtx.Err() != nil {
		x.cut()
		return false
	}
	x.markCancelled()
	return false
}

// write writes b to the response body and flushes it. It reports false (and
// marks the request cancelled) when the write failed.
func (x *exchange) write(b []byte) bool {
	if _, err := x.w.Write(b); err != nil {
		x.markCancelled()
		return false
	}
	if err := x.rc.Flush(); err != nil {
		x.markCancelled()
		return false
	}
	return true
}

// writeRaw writes a complete JSON response.
func (x *exchange) writeRaw(status int, body []byte) {
	h := x.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(len(body)))
	x.w.WriteHeader(status)
	if _, err := x.w.Write(body); err != nil {
		x.markCancelled()
	}
}

func (x *exchange) writeJSON(status int, v any) { x.writeRaw(status, marshal(v)) }

// cut closes the connection abruptly, without finishing the response.
func (x *exchange) cut() {
	_ = x.rc.Flush()
	conn, _, err := x.rc.Hijack()
	if err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}
