package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// waitCached repeats a request until the cache answers it (upstream is not
// called) and returns that answer. The call that fills the cache is
// recorded after it is answered, so the first repeats may still go
// upstream.
func waitCached(t *testing.T, e *env, path, body string, headers map[string]string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := e.up.Count(path)
		resp, got := e.do(t, http.MethodPost, path, body, headers)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, got)
		}
		if e.up.Count(path) == before {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was never answered from the cache (upstream called %d times)", path, e.up.Count(path))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withHeaders returns the Anthropic headers with the credential headers
// replaced by creds (none when creds is empty).
func withHeaders(creds map[string]string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "anthropic-version": "2023-06-01"}
	for k, v := range creds {
		h[k] = v
	}
	return h
}

// TestHardeningCachedAnswerPassesPolicy fills the cache under noop, then
// activates all_caps: the next identical request is answered from the
// cache and uppercased, whole and streamed.
func TestHardeningCachedAnswerPassesPolicy(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.up.SetDefault(fakeupstream.Scenario{Text: "cached words here", Chunks: 3})
		body := anthropicBody(false, `,"temperature":0`)
		e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
		if got := waitCached(t, e, "/v1/messages", body, anthropicHeaders); !strings.Contains(string(got), "cached words here") {
			t.Fatalf("cached answer under noop: %s", got)
		}
		calls := e.up.Count("/v1/messages")

		e.setPolicy(t, "all_caps", nil)
		resp, got := e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(got), "CACHED WORDS HERE") {
			t.Errorf("under all_caps: %d %s, want the answer uppercased", resp.StatusCode, got)
		}
		_, stream := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, `,"temperature":0`), anthropicHeaders)
		evs := parseSSE(t, stream)
		validateAnthropic(t, evs)
		if text, _ := anthropicContent(t, evs); text != "CACHED WORDS HERE" {
			t.Errorf("streamed under all_caps: %q, want the answer uppercased", text)
		}
		if n := e.up.Count("/v1/messages"); n != calls {
			t.Errorf("upstream called %d times, want %d: the answers did not come from the cache", n, calls)
		}
	})
}

// TestHardeningCacheScopedByCredential checks, in passthrough mode (each
// client's own provider key goes upstream), that clients with different
// keys never share cached answers, that a request without any credential
// is never answered from the cache, and that the same key is.
func TestHardeningCacheScopedByCredential(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		body := anthropicBody(false, `,"temperature":0`)
		alice := withHeaders(map[string]string{"x-api-key": "sk-alice"})
		e.do(t, http.MethodPost, "/v1/messages", body, alice)
		waitCached(t, e, "/v1/messages", body, alice)
		calls := e.up.Count("/v1/messages")

		// Same key in the other header: another credential as far as
		// upstream goes.
		for _, creds := range []map[string]string{{"x-api-key": "sk-bob"}, {"Authorization": "Bearer sk-alice"}} {
			e.do(t, http.MethodPost, "/v1/messages", body, withHeaders(creds))
			if n := e.up.Count("/v1/messages"); n != calls+1 {
				t.Errorf("%v: upstream called %d times in all, want %d: another client got alice's answer", creds, n, calls+1)
			}
			calls = e.up.Count("/v1/messages")
		}

		// No credential: never from the cache, even once one is recorded.
		resp, _ := e.do(t, http.MethodPost, "/v1/messages", body, withHeaders(nil))
		e.waitCall(t, resp.Header.Get("X-Call-ID"), "request.received", "response.original")
		e.do(t, http.MethodPost, "/v1/messages", body, withHeaders(nil))
		if n := e.up.Count("/v1/messages"); n != calls+2 {
			t.Errorf("without a credential: upstream called %d times in all, want %d", n, calls+2)
		}
		calls = e.up.Count("/v1/messages")

		e.do(t, http.MethodPost, "/v1/messages", body, alice)
		if n := e.up.Count("/v1/messages"); n != calls {
			t.Errorf("alice again: upstream called %d times in all, want %d (a hit)", n, calls)
		}
	})
}

// TestHardeningCacheSharedUnderClientKey checks that with a client key,
// whose clients all go upstream with the gateway's provider keys, the
// cache is shared however a client presents the key.
func TestHardeningCacheSharedUnderClientKey(t *testing.T) {
	forEachMode(t, options{clientKey: "sk-gateway-client", providerKeys: true}, func(t *testing.T, e *env) {
		body := anthropicBody(false, `,"temperature":0`)
		first := withHeaders(map[string]string{"x-api-key": "sk-gateway-client"})
		e.do(t, http.MethodPost, "/v1/messages", body, first)
		waitCached(t, e, "/v1/messages", body, first)
		calls := e.up.Count("/v1/messages")
		e.do(t, http.MethodPost, "/v1/messages", body, withHeaders(map[string]string{"Authorization": "Bearer sk-gateway-client"}))
		if n := e.up.Count("/v1/messages"); n != calls {
			t.Errorf("upstream called %d times in all, want %d: clients of one client key do not share the cache", n, calls)
		}
	})
}
