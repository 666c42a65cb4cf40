package proxy

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
)

// FuzzHeaders sends arbitrary client headers through the header handling:
// upstream never gets hop-by-hop headers, headers the client's Connection
// names, Host, Content-Length or Accept-Encoding; with a client key it
// gets the provider key and never the client's credential; the control
// plane's view never holds a credential or a cookie; ids stay bounded.
func FuzzHeaders(f *testing.F) {
	f.Add("Authorization", "Bearer sk-client", "Connection", "x-secret, keep-alive", "x-claude-code-session-id", "s1", true)
	f.Add("X-Api-Key", "sk-client", "Cookie", "a=b", "Anthropic-Beta", "tools", false)
	f.Add("Proxy-Authorization", "Basic eA==", "Te", "trailers", "X-Stainless-Os", "linux", true)
	f.Add("x-claude-code-session-id", strings.Repeat("é", 300), "Content-Length", "5", "Host", "evil", true)
	f.Add("Connection", "Authorization", "Authorization", "Bearer x", "x-api-key", "\xff\xfe", false)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, clientKey bool) {
		src := http.Header{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			if kv[0] != "" {
				src.Add(kv[0], kv[1])
			}
		}
		cfg := Config{OpenAIAPIKey: "sk-provider-openai", AnthropicAPIKey: "sk-provider-anthropic"}
		if clientKey {
			cfg.ClientAPIKey = "sk-client-key"
		}
		p := &Proxy{cfg: cfg}
		for _, d := range []dialect.Dialect{openai.Dialect{}, anthropic.Dialect{}} {
			dst := http.Header{}
			p.upstreamHeader(dst, src, d)
			named := connectionTokens(src)
			for k := range dst {
				if hopByHop[k] || k == "Host" || k == "Content-Length" || k == "Accept-Encoding" {
					t.Fatalf("%s forwarded upstream", k)
				}
				if named[k] && !(clientKey && (k == "Authorization" || k == "X-Api-Key")) {
					t.Fatalf("%s, named by Connection, forwarded upstream", k)
				}
			}
			if clientKey {
				for _, k := range []string{"Authorization", "X-Api-Key"} {
					for _, v := range dst.Values(k) {
						if !strings.Contains(v, "sk-provider-") {
							t.Fatalf("with a client key, upstream got %s: %q", k, v)
						}
					}
				}
			}
			r := &http.Request{Header: src}
			meta := requestMetadata(r, dialect.Request{SessionID: v1, UserID: v2, Model: v3})
			for k, v := range meta.GetHeaders() {
				if lk := strings.ToLower(k); lk == "authorization" || lk == "x-api-key" || lk == "cookie" || lk == "proxy-authorization" {
					t.Fatalf("the control plane sees %s: %q", k, v)
				}
			}
			for _, id := range []string{meta.GetSessionId(), meta.GetUserId(), meta.GetModel()} {
				if len(id) > maxIDBytes || !utf8.ValidString(id) {
					t.Fatalf("id not bounded: %d bytes, valid %v", len(id), utf8.ValidString(id))
				}
			}
		}
	})
}
