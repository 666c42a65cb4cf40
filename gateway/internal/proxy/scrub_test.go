package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// An upstream that refuses the gateway's provider key quoting it does not
// hand that key to the client: with a client key the client never had it.
// The rest of upstream's answer (status, wording, length) stays intact;
// in passthrough the client's own key comes back as upstream wrote it.
func TestProviderKeyScrubbedFromUpstreamErrors(t *testing.T) {
	const anthropicKey, openaiKey = "sk-ant-provider-SECRET-1", "sk-proj-provider-SECRET-2"
	quoting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-Api-Key") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"message":"invalid api key `+got+` (check it)"}}`)
	})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			g := startGateway(t, Config{ClientAPIKey: "sk-test", AnthropicAPIKey: anthropicKey, OpenAIAPIKey: openaiKey},
				&passPolicy{}, quoting)
			for _, path := range []string{f.path, "/v1/models"} {
				method, reqBody := http.MethodPost, f.body(false)
				if path == "/v1/models" {
					method, reqBody = http.MethodGet, ""
				}
				req, _ := http.NewRequest(method, g.URL+path, strings.NewReader(reqBody))
				for k, v := range f.header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "SECRET") ||
					!strings.Contains(string(body), "invalid api key [redacted] (check it)") {
					t.Errorf("%s: %d %s", path, resp.StatusCode, body)
				}
				if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
					t.Errorf("%s: Content-Length %s for %d bytes", path, cl, len(body))
				}
			}
		})
	}
	t.Run("passthrough", func(t *testing.T) {
		g := startGateway(t, Config{}, &passPolicy{}, quoting)
		_, body, _ := g.post(t, formats[0], false)
		if !strings.Contains(body, "invalid api key sk-test (check it)") {
			t.Errorf("the client's own key was changed in upstream's answer: %s", body)
		}
	})
}
