// Package floor is the benchmark's baseline proxy: the least any proxy in
// the gateway's place must do. It reads the request body, forwards the
// request with its headers, and relays the response, flushing a stream
// after every event. It is importable (not internal) so that the
// gateway's own micro-benchmarks can compare against it.
package floor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"luthien.dev/gateway/transport"
)

// headerTimeout bounds the wait for upstream's response headers, as the
// gateway's default does: a backstop that never fires in a run, there so
// that the floor's transport arms the same per-request timer.
const headerTimeout = 2 * time.Minute

// Proxy is the floor proxy. It uses the gateway's upstream transport
// (package transport), so that connection handling is the same on both
// sides of the comparison.
type Proxy struct {
	upstream string
	client   *http.Client
}

// New returns a floor proxy to the upstream base URL (scheme and host;
// request paths are appended as they come).
func New(upstream string) *Proxy {
	return &Proxy{upstream: strings.TrimRight(upstream, "/"), client: &http.Client{Transport: transport.New(headerTimeout)}}
}

// hopHeaders are never forwarded.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true, "Accept-Encoding": true,
}

// ServeHTTP implements http.Handler.
func (f *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, f.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for k, vs := range r.Header {
		if !hopHeaders[k] {
			req.Header[k] = vs
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if !hopHeaders[k] {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		_, _ = io.Copy(w, resp.Body)
		return
	}
	relayEvents(w, resp.Body)
}

// relayEvents copies an event stream, flushing at the end of every event
// (its blank line).
func relayEvents(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	br := bufio.NewReaderSize(body, 32<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 && !errors.Is(err, bufio.ErrBufferFull) {
				if rc.Flush() != nil {
					return
				}
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			_ = rc.Flush()
			return
		}
	}
}
