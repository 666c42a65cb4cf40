package proxy

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// hopByHop headers belong to one connection and are never relayed.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// upstreamHeader copies the client's headers for upstream: everything
// (anthropic-*, openai-*, user agent, unknown headers) except hop-by-hop
// headers, Host, Content-Length and Accept-Encoding (the gateway reads
// streams uncompressed). With a client key the client's credential is
// replaced by the gateway's provider key.
func (p *Proxy) upstreamHeader(dst, src http.Header, d dialect.Dialect) {
	copyRequestHeader(dst, src)
	if p.cfg.ClientAPIKey != "" {
		dst.Del("Authorization")
		dst.Del("X-Api-Key")
	}
	p.provider(d).SetKey(dst)
}

// copyRequestHeader copies the client's headers for upstream, but for
// hop-by-hop headers, Host, Content-Length and Accept-Encoding.
func copyRequestHeader(dst, src http.Header) {
	drop := connectionTokens(src)
	for k, vs := range src {
		if hopByHop[k] || drop[k] || k == "Host" || k == "Content-Length" || k == "Accept-Encoding" {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

// connectionTokens lists the headers named in Connection.
func connectionTokens(h http.Header) map[string]bool {
	var out map[string]bool
	for _, v := range h.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				if out == nil {
					out = map[string]bool{}
				}
				out[http.CanonicalHeaderKey(t)] = true
			}
		}
	}
	return out
}

// copyResponseHeader copies upstream's response headers for the client.
func copyResponseHeader(dst, src http.Header) {
	drop := connectionTokens(src)
	for k, vs := range src {
		if hopByHop[k] || drop[k] || k == "Content-Length" {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

// metadataHeaders are the request headers the control plane sees; never
// credentials or cookies.
func metadataHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "anthropic-") || lk == "user-agent" || lk == "x-claude-code-session-id" ||
			lk == "x-request-id" || lk == "cache-control" || strings.HasPrefix(lk, "x-stainless-") {
			out[lk] = strings.Join(vs, ", ")
		}
	}
	return out
}

// requestMetadata builds the control plane's view of who is calling.
func requestMetadata(r *http.Request, req dialect.Request) *cpv1.RequestMetadata {
	session := r.Header.Get("x-claude-code-session-id")
	if session == "" {
		session = req.SessionID
	}
	return &cpv1.RequestMetadata{SessionId: boundID(session), UserId: boundID(req.UserID), Model: boundID(req.Model),
		Stream: req.Stream, Headers: metadataHeaders(r.Header)}
}

// maxIDBytes bounds the ids a client names (session, user, model): they
// are indexed and shown, and a client chooses them.
const maxIDBytes = 256

// boundID keeps a client-chosen id valid UTF-8 and at most maxIDBytes,
// cut on a character boundary.
func boundID(s string) string {
	if len(s) <= maxIDBytes && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > maxIDBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
