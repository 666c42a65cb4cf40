package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/provider"
	"luthien.dev/gateway/internal/routes"
	"luthien.dev/gateway/internal/sse"
	"luthien.dev/gateway/internal/translate"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Model routing. A policed call goes to its format's default provider
// unless the routing table (routes.Table, LUTHIEN_ROUTES) routes its model
// elsewhere. A route to a provider of the client's kind changes where the
// request goes, and the model when the route names one; a route to a
// provider of the other kind also translates (package translate): the
// request after its policies decided it, and upstream's answer before the
// response and stream policies see it. So policies, the record and the
// client all see the client's format; the record also keeps the request
// as it went upstream (request.upstream), upstream's own answer
// (response.upstream) and what the translation could not carry
// (translation.dropped).

// target is where a call goes upstream.
type target struct {
	prov provider.Provider
	// passClient keeps the client's credential on the request (see
	// routes.Route.Credential); key, when set, is sent instead.
	passClient bool
	key        string
	headers    http.Header // the route's extra headers
	model      string      // the model sent upstream; "" keeps the client's
	cross      bool        // the provider speaks the other API: translate
	name       string      // the route's provider, for the record; "" unrouted
}

// SetRoutes replaces the routing table; nil routes nothing. Calls already
// routed keep their route.
func (p *Proxy) SetRoutes(t *routes.Table) { p.routes.Store(t) }

// Routes returns the routing table; nil when there is none.
func (p *Proxy) Routes() *routes.Table { return p.routes.Load() }

// targetOf returns where a call for model goes from a client of format d;
// an error when its route cannot take the client's request (a
// cross-provider route without a key in passthrough mode).
func (p *Proxy) targetOf(d dialect.Dialect, model string) (target, error) {
	home := p.provider(d)
	passthrough := p.cfg.ClientAPIKey == ""
	rt, ok := p.routes.Load().Route(model)
	if !ok {
		return target{prov: home, passClient: passthrough, key: home.Key}, nil
	}
	cred, err := rt.Credential(provider.Provider{Kind: home.Kind, BaseURL: home.BaseURL}, passthrough)
	if err != nil {
		return target{}, err
	}
	t := target{prov: rt.Provider, passClient: cred.PassClient, key: cred.Key, headers: rt.Headers,
		cross: rt.CrossProvider(home.Kind), name: rt.ProviderName}
	if rt.Model != model {
		t.model = rt.Model
	}
	return t, nil
}

// upstreamPath is the path of a call's request at its provider.
func (t target) upstreamPath(r *http.Request) string {
	if !t.cross {
		return r.URL.Path
	}
	if t.prov.Kind == provider.OpenAI {
		return "/v1/chat/completions"
	}
	return "/v1/messages"
}

// upstreamBody is the body a call sends its provider: translated across
// kinds, with the route's model; what the translation could not carry is
// returned to be recorded.
func (t target) upstreamBody(d dialect.Dialect, body []byte) ([]byte, []translate.Dropped, error) {
	var dropped []translate.Dropped
	if t.cross {
		var err error
		if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
			body, dropped, err = translate.ChatToMessages(body)
		} else {
			body, dropped, err = translate.MessagesToChat(body)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if t.model == "" {
		return body, dropped, nil
	}
	var o jsonx.Object
	if err := o.Decode(body); err != nil {
		return nil, nil, err
	}
	o.Set("model", jsonx.String(t.model))
	return o.Encode(), dropped, nil
}

// setHeaders completes an upstream request's headers for the target: the
// client's credential removed unless it passes, the target's key, the
// route's headers, and across kinds the headers of the other API (an
// Anthropic provider needs anthropic-version; an OpenAI one gets no
// anthropic-* header).
func (t target) setHeaders(h http.Header) {
	if !t.passClient || t.key != "" {
		h.Del("Authorization")
		h.Del("X-Api-Key")
	}
	if t.cross {
		h.Set("Content-Type", "application/json")
		if t.prov.Kind == provider.Anthropic {
			h.Set("Anthropic-Version", anthropicVersion)
		} else {
			for k := range h { // canonical names: copyRequestHeader copied them so
				if strings.HasPrefix(k, "Anthropic-") {
					delete(h, k)
				}
			}
		}
	}
	provider.Provider{Kind: t.prov.Kind, Key: t.key}.SetKey(h) // none without a key
	for k, vs := range t.headers {
		h[k] = append([]string(nil), vs...)
	}
}

// anthropicVersion is the API version asked of an Anthropic provider for
// translated requests.
const anthropicVersion = "2023-06-01"

// sendCall sends a call's body to its target and returns upstream's
// answer in the client's format: translated across kinds, with the
// provider's key scrubbed from errors.
func (p *Proxy) sendCall(ctx context.Context, r *http.Request, c *call, body []byte) (*http.Response, error) {
	t := c.target
	out, dropped, err := t.upstreamBody(c.d, body)
	if err != nil {
		return nil, &translateError{err}
	}
	if t.cross || t.model != "" {
		c.trace.RequestUpstream = out
		c.trace.Dropped = append(c.trace.Dropped, droppedText(dropped)...)
	}
	resp, err := p.exchange(ctx, http.MethodPost, t.prov.URL(t.upstreamPath(r), r.URL.RawQuery), out, func(h http.Header) {
		copyRequestHeader(h, r.Header)
		t.setHeaders(h)
	})
	if err != nil {
		return nil, err
	}
	scrubKey(resp, t.key)
	if t.cross {
		p.translateResponse(resp, c)
	}
	return resp, nil
}

// translateError is a request the translation could not carry.
type translateError struct{ err error }

func (e *translateError) Error() string {
	return "the request could not be translated: " + e.err.Error()
}
func (e *translateError) Unwrap() error { return e.err }

// droppedText lists dropped fields for the record.
func droppedText(ds []translate.Dropped) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// translateResponse turns upstream's answer into the client's format, in
// place: an error body into the client's error, a complete response into
// the client's, a stream into the client's stream as it is read. The
// record keeps upstream's own answer (response.upstream; of a stream, its
// first MaxUpstreamRecordBytes).
func (p *Proxy) translateResponse(resp *http.Response, c *call) {
	toChat := c.d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok && isEventStream(resp) {
		var s *translate.Stream
		if toChat {
			s = translate.NewAnthropicToChatStream(c.req)
		} else {
			s = translate.NewChatToAnthropicStream()
		}
		s.WithModel(c.req.Model)
		tee := &capture{limit: maxUpstreamRecordBytes}
		resp.Body = &translatedStream{rd: sse.NewReader(io.TeeReader(resp.Body, tee)), s: s, body: resp.Body,
			done: func() {
				c.trace.ResponseUpstream = tee.buf.Bytes()
				c.trace.Dropped = append(c.trace.Dropped, droppedText(s.Dropped())...)
			}}
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	c.trace.ResponseUpstream = raw
	out, status := raw, resp.StatusCode
	switch {
	case err != nil:
		// Broken off: the client gets what came, cut as it was.
	case !ok && toChat:
		status, out = translate.ErrorToChat(status, raw)
	case !ok:
		status, out = translate.ErrorToAnthropic(status, raw)
	default:
		var dropped []translate.Dropped
		var terr error
		if toChat {
			out, dropped, terr = translate.AnthropicResponseToChat(raw, c.req.Model)
		} else {
			out, dropped, terr = translate.ChatResponseToAnthropic(raw, c.req.Model)
		}
		if terr != nil {
			status, out = http.StatusBadGateway, c.d.ErrorBody(http.StatusBadGateway, "api_error",
				"the upstream response could not be translated: "+terr.Error())
		}
		c.trace.Dropped = append(c.trace.Dropped, droppedText(dropped)...)
	}
	resp.StatusCode, resp.Status = status, strconv.Itoa(status)+" "+http.StatusText(status)
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.ContentLength = int64(len(out))
	var rerr error
	if err != nil {
		rerr = err
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(out), errReader{rerr}))
}

// maxUpstreamRecordBytes bounds the upstream stream a record keeps.
const maxUpstreamRecordBytes = 1 << 20

// errReader ends a body with err (nil: EOF).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}

// translatedStream reads an upstream stream as the client's stream.
type translatedStream struct {
	rd   *sse.Reader
	s    *translate.Stream
	body io.Closer
	buf  bytes.Buffer
	err  error
	done func()
}

func (t *translatedStream) Read(b []byte) (int, error) {
	for t.buf.Len() == 0 && t.err == nil {
		ev, err := t.rd.Next()
		switch {
		case err == io.EOF:
			t.err = t.s.Finish(&t.buf)
			if t.err == nil {
				t.err = io.EOF
			}
		case err != nil:
			t.err = err
		default:
			if err := t.s.Event(&t.buf, ev); err != nil {
				t.err = err
			}
		}
		if t.err != nil && t.done != nil {
			t.done()
			t.done = nil
		}
	}
	if t.buf.Len() > 0 {
		return t.buf.Read(b)
	}
	return 0, t.err
}

func (t *translatedStream) Close() error { return t.body.Close() }
