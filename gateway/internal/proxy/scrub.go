package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"luthien.dev/gateway/internal/dialect"
)

// scrubProviderKey keeps the gateway's provider key out of an upstream
// error answer before it reaches the client: some providers quote the key
// they were sent when they refuse it, and the client never had that key.
// Upstream's answer is otherwise relayed as it is.
func (p *Proxy) scrubProviderKey(resp *http.Response, d dialect.Dialect) {
	scrubKey(resp, p.provider(d).Key)
}

// scrubKey replaces key in an upstream error body (see scrubProviderKey).
func scrubKey(resp *http.Response, key string) {
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
