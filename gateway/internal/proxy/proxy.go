// Package proxy is the gateway's HTTP front end for LLM clients: it
// authenticates, validates, asks the control plane to apply policies to
// each request, response and stream event, and forwards to the provider.
package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/provider"
	"luthien.dev/gateway/internal/routes"
	"luthien.dev/gateway/internal/telemetry"
	"luthien.dev/gateway/transport"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// MaxBodyBytes bounds a request body; larger bodies get 413.
const MaxBodyBytes = 10 << 20

// Config configures the proxy.
type Config struct {
	// OpenAIBaseURL is the upstream for OpenAI clients, e.g.
	// https://api.openai.com/v1 (paths are appended after /v1).
	OpenAIBaseURL string
	// AnthropicBaseURL is the upstream for Anthropic clients, e.g.
	// https://api.anthropic.com (paths are appended whole).
	AnthropicBaseURL string
	// ClientAPIKey, when set, must be presented by clients; the gateway
	// then uses its own provider keys upstream.
	ClientAPIKey    string
	OpenAIAPIKey    string
	AnthropicAPIKey string
	// PolicyTimeout bounds each unary policy call.
	PolicyTimeout time.Duration
	// UpstreamHeaderTimeout bounds the wait for upstream's response
	// headers (answered 504); UpstreamIdleTimeout the silence between
	// bytes of its response (a stream then ends with an in-stream error
	// event). Zero: DefaultUpstreamHeaderTimeout, DefaultUpstreamIdleTimeout.
	UpstreamHeaderTimeout time.Duration
	UpstreamIdleTimeout   time.Duration
	// BodyReadTimeout bounds the reading of a request body, so that a
	// client trickling bytes cannot hold a handler (and its buffer) open
	// (answered 408). Zero: DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// Recorder takes each finished call's record; nil records nothing.
	Recorder Recorder
	// Metrics counts and times the calls and upstream's failures; nil
	// records nothing.
	Metrics *telemetry.Metrics
	// Tracer traces each call, its policy phases and its exchange with
	// upstream (observe.go); nil traces nothing.
	Tracer trace.Tracer
	// Routes is the routing table at start (route.go); nil routes
	// nothing. SetRoutes replaces it.
	Routes *routes.Table
}

// Proxy serves the LLM API endpoints.
type Proxy struct {
	cfg   Config
	calls cpv1.CallServiceClient
	// processing is what the active policy needs of each call
	// (processing.go).
	processing processing
	// routes is the routing table (route.go); nil routes nothing.
	routes  atomic.Pointer[routes.Table]
	client  *http.Client
	rec     Recorder
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracer  trace.Tracer
	// openai and anthropic are the upstreams of the two client formats.
	openai, anthropic provider.Provider
}

// New returns a proxy that runs each call through the control plane
// behind calls.
func New(cfg Config, calls cpv1.CallServiceClient, log *slog.Logger) *Proxy {
	if cfg.PolicyTimeout <= 0 {
		cfg.PolicyTimeout = 60 * time.Second
	}
	if cfg.UpstreamHeaderTimeout <= 0 {
		cfg.UpstreamHeaderTimeout = DefaultUpstreamHeaderTimeout
	}
	if cfg.UpstreamIdleTimeout <= 0 {
		cfg.UpstreamIdleTimeout = DefaultUpstreamIdleTimeout
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	// The gateway's provider keys go upstream only when the gateway has a
	// client key of its own; without, the client's credential passes.
	openaiKey, anthropicKey := cfg.OpenAIAPIKey, cfg.AnthropicAPIKey
	if cfg.ClientAPIKey == "" {
		openaiKey, anthropicKey = "", ""
	}
	rec := cfg.Recorder
	if rec == nil {
		rec = nopRecorder{}
	}
	t := NewTransport()
	// The proxy's own timer bounds the wait (send), with a cause it can
	// tell apart; the transport's is a backstop that never fires first.
	t.ResponseHeaderTimeout = cfg.UpstreamHeaderTimeout + time.Second
	p := &Proxy{cfg: cfg, calls: calls, client: &http.Client{Transport: t}, rec: rec, log: log,
		metrics: cfg.Metrics, tracer: cfg.Tracer,
		openai:    provider.New(provider.OpenAI, cfg.OpenAIBaseURL, openaiKey),
		anthropic: provider.New(provider.Anthropic, cfg.AnthropicBaseURL, anthropicKey)}
	p.routes.Store(cfg.Routes)
	return p
}

// provider is the upstream of a client format.
func (p *Proxy) provider(d dialect.Dialect) provider.Provider {
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		return p.openai
	}
	return p.anthropic
}

// NewTransport returns the upstream transport (package transport, shared
// with the benchmark's floor proxy) with DefaultUpstreamHeaderTimeout for
// response headers.
func NewTransport() *http.Transport {
	return transport.New(DefaultUpstreamHeaderTimeout)
}

// Mux is where the proxy registers its routes.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the LLM API routes to mux: the client-facing routes, each
// of which checks the client key itself. A panic in a handler becomes an
// error in the client's format (recover.go).
func (p *Proxy) Register(mux Mux) {
	mux.Handle("/v1/chat/completions", p.recovering(openai.Dialect{}, p.policed(openai.Dialect{})))
	mux.Handle(responsesPath, p.recovering(openai.Dialect{}, p.responses()))
	mux.Handle("/v1/messages", p.recovering(anthropic.Dialect{}, p.policed(anthropic.Dialect{})))
	mux.Handle("/v1/messages/count_tokens", p.recovering(nil, http.HandlerFunc(p.forward)))
	mux.Handle("/v1/models", p.recovering(nil, http.HandlerFunc(p.models)))
	mux.Handle("/v1/models/{id}", p.recovering(nil, http.HandlerFunc(p.models)))
	mux.Handle("HEAD /{$}", p.recovering(nil, http.HandlerFunc(p.serveRoot)))
}

// ServeRoot answers HEAD / (Claude Code's connectivity probe) by
// forwarding it to the Anthropic upstream, and every other path it is
// given with a JSON 404 in the client's format (400 for a malformed path).
func (p *Proxy) ServeRoot(w http.ResponseWriter, r *http.Request) {
	p.recovering(nil, http.HandlerFunc(p.serveRoot)).ServeHTTP(w, r)
}

func (p *Proxy) serveRoot(w http.ResponseWriter, r *http.Request) {
	d := dialectFor(r)
	rt, err := matchPath(r.URL.EscapedPath())
	switch {
	case err != nil:
		WriteError(w, d, http.StatusBadRequest, "invalid_request_error", err.Error())
	case rt == routeRoot && r.Method == http.MethodHead:
		p.forwardTo(w, r, anthropic.Dialect{})
	default:
		WriteError(w, d, http.StatusNotFound, "", "no route for "+r.Method+" "+r.URL.Path)
	}
}

// checkPath lets a request on when its path is one of want; otherwise it
// answers 400 (malformed path) or 404 (a path the gateway does not serve)
// in the client's format, before anything goes upstream.
func checkPath(w http.ResponseWriter, r *http.Request, d dialect.Dialect, want ...route) bool {
	rt, err := matchPath(r.URL.EscapedPath())
	if err != nil {
		WriteError(w, d, http.StatusBadRequest, "invalid_request_error", err.Error())
		return false
	}
	for _, ok := range want {
		if rt == ok {
			return true
		}
	}
	WriteError(w, d, http.StatusNotFound, "", "no route for "+r.Method+" "+r.URL.Path)
	return false
}

// dialectFor guesses the client's format for requests outside the two
// policy endpoints: Anthropic clients send anthropic-version or x-api-key.
func dialectFor(r *http.Request) dialect.Dialect {
	if r.Header.Get("anthropic-version") != "" || r.Header.Get("x-api-key") != "" ||
		strings.HasPrefix(r.URL.Path, "/v1/messages") {
		return anthropic.Dialect{}
	}
	return openai.Dialect{}
}

// WriteError writes an error in the client's format.
func WriteError(w http.ResponseWriter, d dialect.Dialect, status int, errType, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(d.ErrorBody(status, errType, msg))
}

// authenticate checks the client's credential when the gateway has a
// client key. It reports whether the request may go on (having answered
// 401 otherwise).
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request, d dialect.Dialect) bool {
	if p.cfg.ClientAPIKey == "" {
		return true
	}
	got := r.Header.Get("x-api-key")
	if got == "" {
		got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if got == "" {
		WriteError(w, d, http.StatusUnauthorized, "", "missing API key: send it as x-api-key or Authorization: Bearer")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(p.cfg.ClientAPIKey)) != 1 {
		WriteError(w, d, http.StatusUnauthorized, "", "invalid API key")
		return false
	}
	return true
}

// readBody reads the whole request body (forwarding a fully read body also
// avoids truncation of streamed request bodies), answering 413 or 400.
// DefaultBodyReadTimeout is how long a client has to send its request
// body: 10 MiB at a slow 200 KiB/s.
const DefaultBodyReadTimeout = 60 * time.Second

// initialBodyBuffer bounds what is allocated for a body before its bytes
// arrive: a client announcing 10 MiB and sending one byte gets 64 KiB,
// and the buffer grows as the bytes come.
const initialBodyBuffer = 64 << 10

func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request, d dialect.Dialect) ([]byte, bool) {
	if r.ContentLength > MaxBodyBytes {
		WriteError(w, d, http.StatusRequestEntityTooLarge, "", "request body exceeds 10 MiB")
		return nil, false
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(p.cfg.BodyReadTimeout)) // unsupported only by test recorders
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), initialBodyBuffer)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		// The connection is not reused: the server would otherwise try to
		// read the rest of the body before answering.
		w.Header().Set("Connection", "close")
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			WriteError(w, d, http.StatusRequestEntityTooLarge, "", "request body exceeds 10 MiB")
		case errors.Is(err, os.ErrDeadlineExceeded):
			WriteError(w, d, http.StatusRequestTimeout, "", fmt.Sprintf("request body not received within %s", p.cfg.BodyReadTimeout))
		default:
			WriteError(w, d, http.StatusBadRequest, "", "reading request body: "+err.Error())
		}
		return nil, false
	}
	// A streamed answer may take its time; what the server reads later
	// (the next request) has its own deadline.
	_ = rc.SetReadDeadline(time.Time{})
	return body, true
}

// newCallID returns a random call id.
func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// forward relays a request that no policy sees (count_tokens, models,
// HEAD /) to the right upstream.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	d := dialectFor(r)
	if !checkPath(w, r, d, routeCountTokens, routeModels, routeModel) {
		return
	}
	p.forwardTo(w, r, d)
}

func (p *Proxy) forwardTo(w http.ResponseWriter, r *http.Request, d dialect.Dialect) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		WriteError(w, d, http.StatusMethodNotAllowed, "invalid_request_error", r.Method+" not allowed on "+r.URL.Path)
		return
	}
	if !p.authenticate(w, r, d) {
		return
	}
	body, ok := p.readBody(w, r, d)
	if !ok {
		return
	}
	callID := newCallID()
	w.Header().Set("X-Call-ID", callID)
	resp, err := p.send(r.Context(), r, d, body)
	if err != nil {
		p.upstreamFailed(w, r, nil, d, errUnreachable, err)
		return
	}
	defer resp.Body.Close()
	p.countUpstreamError(d, nil, telemetry.UpstreamStatusKind(resp.StatusCode))
	p.scrubProviderKey(resp, d)
	copyResponseHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_ = copyBody(w, resp.Body)
}

// copyBuffers are the buffers of copyBody: io.Copy would allocate 32 KiB
// per response (neither side offers a shortcut), a third of the bytes a
// call allocates.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies a response body to the client, returning the error
// that stopped it (upstream's or the client's).
func copyBody(w io.Writer, body io.Reader) error {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, err := io.CopyBuffer(w, body, *buf)
	return err
}

// What failed in an exchange with upstream (upstreamFailure).
const (
	errUnreachable = "upstream unreachable"
	errBrokeOff    = "upstream response broke off"
)

// upstreamFailed answers a failed exchange with upstream, unless the
// client is the one that went away: 504 when upstream timed out, 502
// otherwise, in the client's format. It counts the failure (for c, when
// it is a policed call's).
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, c *call, d dialect.Dialect, what string, err error) {
	if r.Context().Err() != nil {
		return
	}
	p.countUpstreamError(d, c, upstreamErrorKind(what, err))
	p.log.WarnContext(r.Context(), "upstream request failed", "path", r.URL.Path, "err", err)
	st := http.StatusBadGateway
	if isTimeout(err) {
		st = http.StatusGatewayTimeout
	}
	WriteError(w, d, st, "api_error", upstreamFailure(what, err))
}

// upstreamFailure describes a failed exchange with upstream: a timeout
// says so itself; other errors follow what failed, without the request
// URL that *url.Error adds.
func upstreamFailure(what string, err error) string {
	if te := (*timeoutError)(nil); errors.As(err, &te) {
		return te.Error()
	}
	if ue := (*url.Error)(nil); errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return what + ": " + err.Error()
}

// upstreamURL is the upstream URL of a client request in d.
func (p *Proxy) upstreamURL(r *http.Request, d dialect.Dialect) string {
	return p.provider(d).URL(r.URL.Path, r.URL.RawQuery)
}

// send makes the upstream request of a forwarded route with body (see
// exchange).
func (p *Proxy) send(ctx context.Context, r *http.Request, d dialect.Dialect, body []byte) (*http.Response, error) {
	return p.exchange(ctx, r.Method, p.upstreamURL(r, d), body, func(h http.Header) { p.upstreamHeader(h, r.Header, d) })
}

// exchange makes an upstream request with body and the headers header
// sets, under the upstream timeouts: the response's body ends with a
// *timeoutError when upstream goes silent (closing it releases the
// request).
func (p *Proxy) exchange(ctx context.Context, method, url string, body []byte, header func(http.Header)) (*http.Response, error) {
	u := newUpstreamDeadline(ctx, p.cfg.UpstreamHeaderTimeout, p.cfg.UpstreamIdleTimeout)
	req, err := http.NewRequestWithContext(u.ctx, method, url, bytes.NewReader(body))
	if err != nil {
		u.stop()
		return nil, err
	}
	header(req.Header)
	req.ContentLength = int64(len(body))
	if len(body) == 0 && method != http.MethodPost {
		req.Body = http.NoBody
	}
	resp, err := p.client.Do(req)
	if err != nil {
		err = u.explain(err)
		u.stop()
		return nil, err
	}
	u.responded()
	resp.Body = &idleBody{body: resp.Body, u: u}
	return resp, nil
}
