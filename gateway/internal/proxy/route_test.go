package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"luthien.dev/gateway/internal/routes"
)

// seen is what a fake provider received.
type seen struct {
	path   string
	header http.Header
	body   string
}

// fakeProvider answers as an Anthropic (/v1/messages) or OpenAI
// (/chat/completions) provider, keeping what it received; status, when
// not 200, is answered with the provider's error body.
type fakeProvider struct {
	mu     sync.Mutex
	got    []seen
	status int
}

func (f *fakeProvider) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("the provider got no request")
	}
	return f.got[len(f.got)-1]
}

func (f *fakeProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, seen{r.URL.Path, r.Header.Clone(), string(b)})
	status := f.status
	f.mu.Unlock()
	anthropic := strings.HasSuffix(r.URL.Path, "/messages")
	stream := strings.Contains(string(b), `"stream":true`)
	switch {
	case status != 0 && anthropic:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
	case status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}`)
	case anthropic && stream:
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, strings.Join(anthropicStream, ""))
	case anthropic:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, wholeResponse(r.URL.Path))
	case stream:
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, strings.Join(openAIChunks, ""))
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, wholeResponse("/v1/chat/completions"))
	}
}

// routedGateway starts a gateway whose defaults go to home and whose
// routes (YAML, with PROVIDER standing for the routed provider's URL)
// go to routed.
func routedGateway(t *testing.T, cfg Config, yaml string, env map[string]string) (g *testGateway, home, routed *fakeProvider) {
	t.Helper()
	home, routed = &fakeProvider{}, &fakeProvider{}
	rs := httptest.NewServer(routed)
	t.Cleanup(rs.Close)
	tab, err := routes.Parse([]byte(strings.ReplaceAll(yaml, "PROVIDER", rs.URL)), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Routes = tab
	return startGateway(t, cfg, &passPolicy{}, home), home, routed
}

const crossRoutes = `
providers:
  claude: {kind: anthropic, base_url: PROVIDER, api_key_env: ROUTE_KEY, headers: {x-team: a}}
  gpt: {kind: openai, base_url: PROVIDER/v1, api_key_env: ROUTE_KEY}
routes:
  - {match: "m", provider: claude, model: "claude-upstream"}
  - {match: "c-*", provider: gpt, model: "gpt-upstream"}
`

// An OpenAI client's model routed to an Anthropic provider: the request
// goes there translated, with the route's model, key and headers and not
// the client's credential; the answer comes back in the client's format,
// streamed and not, errors too. And the other way round.
func TestCrossProviderRoute(t *testing.T) {
	const routeKey, clientKey = "sk-route-SECRET", "sk-test"
	g, home, routed := routedGateway(t, Config{}, crossRoutes, map[string]string{"ROUTE_KEY": routeKey})
	for _, f := range formats {
		for _, stream := range []bool{false, true} {
			ff := f
			if f.name == "anthropic" {
				// Routed by the second route: a model named c-*.
				ff.body = func(stream bool) string { return strings.Replace(f.body(stream), `"model":"m"`, `"model":"c-1"`, 1) }
			}
			resp, body, err := g.post(t, ff, stream)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s stream=%v: %d %s (%v)", f.name, stream, resp.StatusCode, body, err)
			}
			got := routed.last(t)
			wantPath, wantModel, keyHeader := "/v1/messages", "claude-upstream", "X-Api-Key"
			if f.name == "anthropic" {
				wantPath, wantModel, keyHeader = "/v1/chat/completions", "gpt-upstream", "Authorization"
			}
			if got.path != wantPath || !strings.Contains(got.body, `"model":"`+wantModel+`"`) {
				t.Errorf("%s: provider got %s %s", f.name, got.path, got.body)
			}
			if !strings.Contains(got.header.Get(keyHeader), routeKey) {
				t.Errorf("%s: provider got %s %q, want the route's key", f.name, keyHeader, got.header.Get(keyHeader))
			}
			for k, vs := range got.header {
				if strings.Contains(strings.Join(vs, " "), clientKey) {
					t.Errorf("%s: the client's key reached the other provider in %s", f.name, k)
				}
			}
			if f.name == "openai" && (got.header.Get("X-Team") != "a" || got.header.Get("Anthropic-Version") == "") {
				t.Errorf("route headers or anthropic-version missing: %v", got.header)
			}
			// The client's own format.
			switch {
			case f.name == "openai" && !stream && !strings.Contains(body, `"object":"chat.completion"`):
				t.Errorf("openai client got %s", body)
			case f.name == "openai" && stream && !strings.Contains(body, `"chat.completion.chunk"`):
				t.Errorf("openai client got %s", body)
			case f.name == "anthropic" && !stream && !strings.Contains(body, `"type":"message"`):
				t.Errorf("anthropic client got %s", body)
			case f.name == "anthropic" && stream && !strings.Contains(body, "event: message_stop"):
				t.Errorf("anthropic client got %s", body)
			}
			// The model the client named, streamed or not.
			clientModel := map[string]string{"openai": `"model":"m"`, "anthropic": `"model":"c-1"`}[f.name]
			if !strings.Contains(body, clientModel) {
				t.Errorf("%s stream=%v: the answer does not name the client's model (%s): %s", f.name, stream, clientModel, body)
			}
			rec := g.recs.next(t)
			if !strings.Contains(string(rec.RequestUpstream), wantModel) || len(rec.ResponseUpstream) == 0 || rec.Provider == "" {
				t.Errorf("%s stream=%v: record upstream request %q, upstream response of %d bytes, provider %q",
					f.name, stream, rec.RequestUpstream, len(rec.ResponseUpstream), rec.Provider)
			}
		}
	}
	if len(home.got) != 0 {
		t.Errorf("the default provider got %d routed requests", len(home.got))
	}

	// Upstream errors in the client's format, with the status.
	routed.status = http.StatusTooManyRequests
	for _, f := range formats {
		ff := f
		if f.name == "anthropic" {
			ff.body = func(stream bool) string { return strings.Replace(f.body(stream), `"model":"m"`, `"model":"c-1"`, 1) }
		}
		resp, body, _ := g.post(t, ff, false)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(body, f.errorShape) || !strings.Contains(body, "slow down") {
			t.Errorf("%s: upstream 429 reached the client as %d %s", f.name, resp.StatusCode, body)
		}
	}
}

// In passthrough mode (no client key) a route to a provider of the other
// kind without a key of its own is refused in the client's format: the
// client's key is for its own provider only. A route of the same kind to
// another host gets no key at all; unrouted models keep the client's.
func TestRouteCredentials(t *testing.T) {
	const yaml = `
providers:
  claude: {kind: anthropic, base_url: PROVIDER}
  local: {kind: openai, base_url: PROVIDER/v1}
routes:
  - {match: "m", provider: claude}
  - {match: "local-*", provider: local}
`
	g, home, routed := routedGateway(t, Config{}, yaml, nil)
	resp, body, _ := g.post(t, formats[1], false) // openai client, model m
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "api_key_env") || !strings.HasPrefix(body, formats[1].errorShape) {
		t.Errorf("cross-provider route without a key: %d %s, want a 403 naming api_key_env", resp.StatusCode, body)
	}
	if len(routed.got) != 0 {
		t.Errorf("the refused request reached the provider")
	}
	local := formats[1]
	local.body = func(stream bool) string {
		return strings.Replace(formats[1].body(stream), `"model":"m"`, `"model":"local-1"`, 1)
	}
	if resp, body, _ := g.post(t, local, false); resp.StatusCode != http.StatusOK {
		t.Fatalf("same-kind route: %d %s", resp.StatusCode, body)
	}
	if h := routed.last(t).header; h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" {
		t.Errorf("a same-kind route to another host got a credential: %v", h)
	}
	// Unrouted: the client's own provider, with the client's credential.
	unrouted := formats[0] // anthropic, model "other": no route
	unrouted.body = func(stream bool) string {
		return strings.Replace(formats[0].body(stream), `"model":"m"`, `"model":"other"`, 1)
	}
	if resp, body, _ := g.post(t, unrouted, false); resp.StatusCode != http.StatusOK {
		t.Fatalf("unrouted: %d %s", resp.StatusCode, body)
	}
	if got := home.last(t); got.header.Get("X-Api-Key") != "sk-test" || got.path != "/v1/messages" {
		t.Errorf("unrouted request: %s with x-api-key %q", got.path, got.header.Get("X-Api-Key"))
	}
}

// A same-kind route with a model keeps every other byte of the request.
func TestSameKindRouteRenamesOnly(t *testing.T) {
	const yaml = `
providers:
  other: {kind: anthropic, base_url: PROVIDER, api_key_env: K}
routes:
  - {match: "m", provider: other, model: "renamed"}
`
	g, _, routed := routedGateway(t, Config{}, yaml, map[string]string{"K": "sk-other"})
	f := formats[0]
	if resp, body, _ := g.post(t, f, false); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	want := strings.Replace(f.body(false), `"model":"m"`, `"model":"renamed"`, 1)
	if got := routed.last(t); got.body != want || got.header.Get("X-Api-Key") != "sk-other" {
		t.Errorf("provider got %s (key %q), want %s", got.body, got.header.Get("X-Api-Key"), want)
	}
}

// GET /v1/models lists the routed models in the client's format.
func TestModelsListsRoutes(t *testing.T) {
	g, _, _ := routedGateway(t, Config{}, crossRoutes, map[string]string{"ROUTE_KEY": "k"})
	for _, f := range formats {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/models", nil)
		for k, v := range f.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Object string `json:"object"`
			Data   []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(list.Data) != 2 ||
			list.Data[0].ID != "claude-upstream" || list.Data[1].ID != "gpt-upstream" {
			t.Errorf("%s: %d %+v (%v)", f.name, resp.StatusCode, list, err)
		}
		if f.name == "openai" && list.Object != "list" || f.name == "anthropic" && list.Data[0].Type != "model" {
			t.Errorf("%s: not the client's format: %+v", f.name, list)
		}
	}
}
