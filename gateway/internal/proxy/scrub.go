package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// providerKey is the gateway's own key that goes upstream for d ("" when
// the client's credential is passed through).
func (p *Proxy) providerKey(d dialect.Dialect) string {
	if p.cfg.ClientAPIKey == "" {
		return ""
	}
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		return p.cfg.OpenAIAPIKey
	}
	return p.cfg.AnthropicAPIKey
}

// scrubProviderKey keeps the gateway's provider key out of an upstream
// error answer before it reaches the client: some providers quote the key
// they were sent when they refuse it, and the client never had that key.
// Upstream's answer is otherwise relayed as it is.
func (p *Proxy) scrubProviderKey(resp *http.Response, d dialect.Dialect) {
	key := p.providerKey(d)
	if key == "" || (resp.StatusCode >= 200 && resp.StatusCode <= 299) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	rest := resp.Body
	if !bytes.Contains(body, []byte(key)) {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), rest}
		return
	}
	body = bytes.ReplaceAll(body, []byte(key), []byte("[redacted]"))
	if err == nil && int64(len(body)) < maxResponseBytes {
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), rest}
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }
