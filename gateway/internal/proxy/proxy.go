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
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
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
	// Recorder takes each finished call's record; nil records nothing.
	Recorder Recorder
}

// Proxy serves the LLM API endpoints.
type Proxy struct {
	cfg      Config
	policies cpv1.PolicyServiceClient
	client   *http.Client
	rec      Recorder
	log      *slog.Logger
}

// New returns a proxy that applies policies through policies.
func New(cfg Config, policies cpv1.PolicyServiceClient, log *slog.Logger) *Proxy {
	if cfg.PolicyTimeout <= 0 {
		cfg.PolicyTimeout = 60 * time.Second
	}
	cfg.OpenAIBaseURL = strings.TrimRight(cfg.OpenAIBaseURL, "/")
	cfg.AnthropicBaseURL = strings.TrimRight(cfg.AnthropicBaseURL, "/")
	rec := cfg.Recorder
	if rec == nil {
		rec = nopRecorder{}
	}
	return &Proxy{cfg: cfg, policies: policies, client: &http.Client{Transport: NewTransport()}, rec: rec, log: log}
}

// NewTransport returns the upstream transport: keep-alive connections for
// hundreds of concurrent streams, no transparent compression (streams must
// be parsed and relayed as they arrive), no overall timeout (a long
// generation is not an error; the client's disconnect cancels it).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ResponseHeaderTimeout = 10 * time.Minute
	return t
}

// Mux is where the proxy registers its routes.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the LLM API routes to mux: the client-facing routes, each
// of which checks the client key itself.
func (p *Proxy) Register(mux Mux) {
	mux.Handle("/v1/chat/completions", p.policed(openai.Dialect{}))
	mux.Handle("/v1/messages", p.policed(anthropic.Dialect{}))
	mux.Handle("/v1/messages/count_tokens", http.HandlerFunc(p.forward))
	mux.Handle("/v1/models", http.HandlerFunc(p.forward))
	mux.Handle("/v1/models/", http.HandlerFunc(p.forward))
	mux.Handle("HEAD /{$}", http.HandlerFunc(p.ServeRoot))
}

// ServeRoot answers HEAD / (Claude Code's connectivity probe) by
// forwarding it to the Anthropic upstream, and every other path it is
// given with a JSON 404 in the client's format.
func (p *Proxy) ServeRoot(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" && r.Method == http.MethodHead {
		p.forwardTo(w, r, anthropic.Dialect{})
		return
	}
	WriteError(w, dialectFor(r), http.StatusNotFound, "", "no route for "+r.Method+" "+r.URL.Path)
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
func readBody(w http.ResponseWriter, r *http.Request, d dialect.Dialect) ([]byte, bool) {
	if r.ContentLength > MaxBodyBytes {
		WriteError(w, d, http.StatusRequestEntityTooLarge, "", "request body exceeds 10 MiB")
		return nil, false
	}
	// With the length known, one allocation instead of io.ReadAll's
	// doublings (coding agents send hundreds of kilobytes).
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, d, http.StatusRequestEntityTooLarge, "", "request body exceeds 10 MiB")
		} else {
			WriteError(w, d, http.StatusBadRequest, "", "reading request body: "+err.Error())
		}
		return nil, false
	}
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
	p.forwardTo(w, r, dialectFor(r))
}

func (p *Proxy) forwardTo(w http.ResponseWriter, r *http.Request, d dialect.Dialect) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		WriteError(w, d, http.StatusMethodNotAllowed, "invalid_request_error", r.Method+" not allowed on "+r.URL.Path)
		return
	}
	if !p.authenticate(w, r, d) {
		return
	}
	body, ok := readBody(w, r, d)
	if !ok {
		return
	}
	callID := newCallID()
	w.Header().Set("X-Call-ID", callID)
	resp, err := p.send(r.Context(), r, d, body)
	if err != nil {
		p.upstreamFailed(w, r, d, err)
		return
	}
	defer resp.Body.Close()
	copyResponseHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	copyBody(w, resp.Body)
}

// copyBuffers are the buffers of copyBody: io.Copy would allocate 32 KiB
// per response (neither side offers a shortcut), a third of the bytes a
// call allocates.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies a response body to the client.
func copyBody(w io.Writer, body io.Reader) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, _ = io.CopyBuffer(w, body, *buf)
}

// upstreamFailed answers 502 when upstream could not be reached (unless
// the client is the one that went away).
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, d dialect.Dialect, err error) {
	if r.Context().Err() != nil {
		return
	}
	p.log.WarnContext(r.Context(), "upstream request failed", "path", r.URL.Path, "err", err)
	WriteError(w, d, http.StatusBadGateway, "api_error", "upstream unreachable: "+errors.Unwrap(err).Error())
}

// upstreamBase is the upstream of a format.
func (p *Proxy) upstreamBase(d dialect.Dialect) string {
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		return p.cfg.OpenAIBaseURL
	}
	return p.cfg.AnthropicBaseURL
}

// upstreamURL maps a client path onto the upstream of its format.
func (p *Proxy) upstreamURL(r *http.Request, d dialect.Dialect) string {
	var u string
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		u = p.cfg.OpenAIBaseURL + strings.TrimPrefix(r.URL.Path, "/v1")
	} else {
		u = p.cfg.AnthropicBaseURL + r.URL.Path
	}
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// send makes the upstream request with body.
func (p *Proxy) send(ctx context.Context, r *http.Request, d dialect.Dialect, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, p.upstreamURL(r, d), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	p.upstreamHeader(req.Header, r.Header, d)
	req.ContentLength = int64(len(body))
	if len(body) == 0 && r.Method != http.MethodPost {
		req.Body = http.NoBody
	}
	return p.client.Do(req)
}
