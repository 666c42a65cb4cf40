package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/app"
	"luthien.dev/gateway/internal/config"
)

// The routing table changed at run time through the admin API: GET and
// PUT /api/routes, in both deployment modes.

// routesAdminStart is the routes file the gateways start with: gpt-*
// stays on the OpenAI endpoint's provider (the fake upstream).
const routesAdminStart = `providers:
  home: {kind: openai, base_url: "HOME_URL"}
routes:
  - {match: "gpt-*", provider: home}
`

// routesAdminNew sends routed-* to a second upstream, with the model
// second-model and the key of $LUTHIEN_E2E_ROUTES_KEY.
const routesAdminNew = `providers:
  home: {kind: openai, base_url: "HOME_URL"}
  second: {kind: openai, base_url: "SECOND_URL", api_key_env: LUTHIEN_E2E_ROUTES_KEY, headers: {x-route-team: team-header-value}}
routes:
  - {match: "routed-*", provider: second, model: second-model}
  - {match: "gpt-*", provider: home}
`

// routesAdminText fills a routes file's URLs.
func routesAdminText(text string, home, second *fakeupstream.Server) string {
	r := []string{"HOME_URL", home.OpenAIBaseURL()}
	if second != nil {
		r = append(r, "SECOND_URL", second.OpenAIBaseURL())
	}
	return strings.NewReplacer(r...).Replace(text)
}

// routesAdminFile writes a routes file and returns its path.
func routesAdminFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// routesState is GET /api/routes's answer.
type routesState struct {
	Source    string `json:"source"`
	Path      string `json:"path"`
	Providers []struct {
		Name      string   `json:"name"`
		Kind      string   `json:"kind"`
		BaseURL   string   `json:"base_url"`
		APIKeyEnv string   `json:"api_key_env"`
		KeySet    bool     `json:"key_set"`
		Headers   []string `json:"headers"`
	} `json:"providers"`
	Routes []struct {
		Index    int    `json:"index"`
		Match    string `json:"match"`
		Provider string `json:"provider"`
		Model    string `json:"model"`
	} `json:"routes"`
	ChangedBy string `json:"changed_by"`
	ChangedAt string `json:"changed_at"`
	Note      string `json:"note"`
}

func decodeRoutes(t *testing.T, b []byte) routesState {
	t.Helper()
	var s routesState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("routes answer: %v: %s", err, b)
	}
	return s
}

// routedCall sends a Chat Completions request for model and returns its
// status and body.
func routedCall(t *testing.T, e *env, model string) (int, []byte) {
	t.Helper()
	resp, b := e.do(t, http.MethodPost, "/v1/chat/completions",
		`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`, openaiHeaders)
	return resp.StatusCode, b
}

// lastModel is the model of the last request up received ("" when none).
func lastModel(t *testing.T, up *fakeupstream.Server) (string, fakeupstream.Request) {
	t.Helper()
	r, ok := up.LastRequest()
	if !ok {
		return "", r
	}
	var body struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("upstream body: %v: %s", err, r.Body)
	}
	return body.Model, r
}

// A table put through the API routes the next calls; an invalid one, an
// unset key variable or an oversized file is refused and the table in
// effect stays; no answer shows the key.
func TestRoutesAdminAPI(t *testing.T) {
	secret := uniqueName("sk-e2e-routes-canary-")
	t.Setenv("LUTHIEN_E2E_ROUTES_KEY", secret) // the split gateway inherits it
	home, second := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(home.Close)
	t.Cleanup(second.Close)
	startText := routesAdminText(routesAdminStart, home, nil)
	path := routesAdminFile(t, startText)
	newText := routesAdminText(routesAdminNew, home, second)

	forEachMode(t, options{up: home, gatewayEnv: map[string]string{"LUTHIEN_ROUTES": path, "LUTHIEN_ROUTES_KEY_ENVS": "LUTHIEN_E2E_ROUTES_KEY"}}, func(t *testing.T, e *env) {
		home.Reset()
		second.Reset()
		var answers [][]byte
		get := func() routesState {
			t.Helper()
			resp, b := adminDo(t, e, "", http.MethodGet, "/api/routes", "")
			answers = append(answers, b)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/routes: %d %s", resp.StatusCode, b)
			}
			return decodeRoutes(t, b)
		}
		put := func(body, contentType string) (int, []byte) {
			t.Helper()
			resp, b := e.do(t, http.MethodPut, "/api/routes", body, map[string]string{"Content-Type": contentType})
			answers = append(answers, b)
			return resp.StatusCode, b
		}

		s := get()
		if s.Source != startText || s.Path != path || s.ChangedBy != "" || len(s.Routes) != 1 || s.Routes[0].Match != "gpt-*" {
			t.Fatalf("GET at start: %+v", s)
		}
		if code, b := routedCall(t, e, "routed-x"); code != http.StatusOK {
			t.Fatalf("call before the change: %d %s", code, b)
		}
		if m, _ := lastModel(t, home); m != "routed-x" || second.Count("/v1/chat/completions") != 0 {
			t.Fatalf("before the change routed-x reached home with %q, second %d times", m, second.Count("/v1/chat/completions"))
		}

		code, b := put(newText, "application/yaml")
		if code != http.StatusOK {
			t.Fatalf("PUT: %d %s", code, b)
		}
		s = decodeRoutes(t, b)
		if s.Source != newText || s.ChangedBy != "loopback" || s.ChangedAt == "" || len(s.Routes) != 2 ||
			!strings.Contains(s.Note, "until the gateway restarts") {
			t.Errorf("PUT answer: %+v", s)
		}
		if p := s.Providers; len(p) != 2 || p[1].Name != "second" || !p[1].KeySet || p[1].APIKeyEnv != "LUTHIEN_E2E_ROUTES_KEY" ||
			strings.Join(p[1].Headers, ",") != "X-Route-Team" {
			t.Errorf("providers: %+v", p)
		}

		// The next call goes where the new route says, with its model
		// and key.
		if code, b := routedCall(t, e, "routed-x"); code != http.StatusOK {
			t.Fatalf("routed call: %d %s", code, b)
		}
		m, r := lastModel(t, second)
		if m != "second-model" || r.Header.Get("Authorization") != "Bearer "+secret || r.Header.Get("X-Route-Team") != "team-header-value" {
			t.Errorf("second upstream got model %q, authorization %q, x-route-team %q", m, r.Header.Get("Authorization"), r.Header.Get("X-Route-Team"))
		}
		if n := home.Count("/v1/chat/completions"); n != 1 {
			t.Errorf("home upstream got %d calls, want only the one before the change", n)
		}

		// Refused tables leave the new one in effect.
		for _, bad := range []struct {
			name, body, contentType string
			status                  int
			want                    string
		}{
			{"syntax", "routes: [\n", "application/yaml", http.StatusBadRequest, "yaml"},
			{"unknown provider", "routes:\n  - {match: 'x', provider: nope}\n", "text/plain", http.StatusBadRequest, `unknown provider "nope"`},
			{"unset key variable", "providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: LUTHIEN_E2E_UNSET_KEY}\n",
				"application/yaml", http.StatusBadRequest, "$LUTHIEN_E2E_UNSET_KEY is unset or empty"},
			{"over 1 MiB", newText + "# " + strings.Repeat("x", 1<<20) + "\n", "application/yaml", http.StatusRequestEntityTooLarge, "larger than"},
		} {
			code, b := put(bad.body, bad.contentType)
			var answer struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			_ = json.Unmarshal(b, &answer)
			if code != bad.status || !strings.Contains(answer.Error.Message, bad.want) {
				t.Errorf("%s: %d %.300s, want %d saying %q", bad.name, code, b, bad.status, bad.want)
			}
		}
		if s := get(); s.Source != newText || len(s.Routes) != 2 {
			t.Errorf("after refused tables: %+v", s)
		}
		if code, _ := routedCall(t, e, "routed-y"); code != http.StatusOK || second.Count("/v1/chat/completions") != 2 {
			t.Errorf("after refused tables routed-y: %d, second upstream %d calls", code, second.Count("/v1/chat/completions"))
		}
		for _, b := range answers {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("an admin answer holds the key: %s", b)
			}
		}
		// The file is not written: a restart reads the table of the start.
		if disk, _ := os.ReadFile(path); string(disk) != startText {
			t.Errorf("the routes file changed: %s", disk)
		}
	})
}

var csrfMetaRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

// routesAdminSession logs in with key and returns the session cookie and
// the CSRF token its pages carry.
func routesAdminSession(t *testing.T, e *env, key string) (*http.Cookie, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(e.URL+"/login", url.Values{"key": {key}, "next": {"/routes"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "luthien_session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("login: %d, no session cookie", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/routes", nil)
	req.AddCookie(cookie)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfMetaRE.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || len(m[1]) == 0 {
		t.Fatalf("GET /routes with the session: %d, no CSRF token", resp.StatusCode)
	}
	return cookie, string(m[1])
}

// The state change is refused to everyone but an admin on the gateway's
// own origin: no credential, the client key, another origin (even with
// the admin key, and with no key on loopback), and a browser session
// without its CSRF token. The table stays what it was.
func TestRoutesAdminAttacks(t *testing.T) {
	const adminKey, clientKey = "adm-e2e-routes-attacks", "sk-client-e2e-routes-attacks"
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	startText := routesAdminText(routesAdminStart, up, nil)
	path := routesAdminFile(t, startText)
	evil := "routes:\n  - {match: '*', provider: home}\nproviders:\n  home: {kind: openai, base_url: 'http://attacker.example/v1'}\n"

	t.Run("with an admin key", func(t *testing.T) {
		e := start(t, "inprocess", options{up: up, clientKey: clientKey,
			gatewayEnv: map[string]string{"LUTHIEN_ROUTES": path, "LUTHIEN_ROUTES_KEY_ENVS": "LUTHIEN_E2E_ROUTES_KEY", "LUTHIEN_ADMIN_API_KEY": adminKey}})
		cookie, csrf := routesAdminSession(t, e, adminKey)
		send := func(h map[string]string, withCookie bool) (int, string) {
			req, _ := http.NewRequest(http.MethodPut, e.URL+"/api/routes", strings.NewReader(evil))
			req.Header.Set("Content-Type", "application/yaml")
			for k, v := range h {
				req.Header.Set(k, v)
			}
			if withCookie {
				req.AddCookie(cookie)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		for _, tt := range []struct {
			name    string
			headers map[string]string
			cookie  bool
			status  int
		}{
			{"anonymous", nil, false, http.StatusUnauthorized},
			{"client key", map[string]string{"Authorization": "Bearer " + clientKey}, false, http.StatusUnauthorized},
			{"forged actor", map[string]string{"X-Luthien-Actor": "admin-key"}, false, http.StatusUnauthorized},
			{"cross-origin with the admin key", map[string]string{"Authorization": "Bearer " + adminKey, "Origin": "http://attacker.example"}, false, http.StatusForbidden},
			{"cross-site fetch with the admin key", map[string]string{"Authorization": "Bearer " + adminKey, "Sec-Fetch-Site": "cross-site"}, false, http.StatusForbidden},
			{"session without CSRF token", nil, true, http.StatusForbidden},
			{"session with a wrong CSRF token", map[string]string{"X-CSRF-Token": csrf + "x"}, true, http.StatusForbidden},
			{"cross-origin session with its CSRF token", map[string]string{"X-CSRF-Token": csrf, "Origin": "http://attacker.example"}, true, http.StatusForbidden},
		} {
			if code, b := send(tt.headers, tt.cookie); code != tt.status {
				t.Errorf("%s: %d %.200s, want %d", tt.name, code, b, tt.status)
			}
		}
		resp, b := adminDo(t, e, adminKey, http.MethodGet, "/api/routes", "")
		if s := decodeRoutes(t, b); resp.StatusCode != http.StatusOK || s.Source != startText || s.ChangedBy != "" {
			t.Fatalf("after the refused changes: %d %+v", resp.StatusCode, s)
		}
		// The same session with its token, from the gateway's own page,
		// may change it: the refusals above were the checks, not a
		// broken route.
		if code, b := send(map[string]string{"X-CSRF-Token": csrf, "Origin": e.URL}, true); code != http.StatusOK ||
			decodeRoutes(t, []byte(b)).ChangedBy != "session" {
			t.Errorf("session with its CSRF token: %d %.300s", code, b)
		}
	})

	t.Run("keyless loopback", func(t *testing.T) {
		e := start(t, "inprocess", options{up: up, gatewayEnv: map[string]string{"LUTHIEN_ROUTES": path, "LUTHIEN_ROUTES_KEY_ENVS": "LUTHIEN_E2E_ROUTES_KEY"}})
		for name, h := range map[string]map[string]string{
			"cross-origin": {"Content-Type": "application/yaml", "Origin": "http://attacker.example"},
			"cross-site":   {"Content-Type": "application/yaml", "Sec-Fetch-Site": "cross-site"},
			"rebound host": {"Content-Type": "application/yaml", "Host": "attacker.example"},
		} {
			req, _ := http.NewRequest(http.MethodPut, e.URL+"/api/routes", strings.NewReader(evil))
			for k, v := range h {
				req.Header.Set(k, v)
			}
			if host := h["Host"]; host != "" {
				req.Host = host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d %.200s, want 403", name, resp.StatusCode, b)
			}
		}
		_, b := adminDo(t, e, "", http.MethodGet, "/api/routes", "")
		if s := decodeRoutes(t, b); s.Source != startText {
			t.Errorf("after the refused changes: %+v", s)
		}
	})
}

// A recognisable key named by a route's api_key_env appears in no answer,
// page or log line of the gateway (logged at debug level, without the
// log redaction, so that only the code's own care keeps it out), while
// the provider does receive it.
func TestRoutesAdminKeyCanary(t *testing.T) {
	secret := uniqueName("routes-canary-key-")
	t.Setenv("LUTHIEN_E2E_ROUTES_KEY", secret)
	home, second := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(home.Close)
	t.Cleanup(second.Close)
	startText := strings.Replace(routesAdminText(routesAdminNew, home, second), "routed-*", "start-*", 1)
	vars := map[string]string{
		"OPENAI_BASE_URL": home.OpenAIBaseURL(), "ANTHROPIC_BASE_URL": home.AnthropicBaseURL(),
		"LUTHIEN_HTTP_ADDR": "127.0.0.1:0", "LUTHIEN_LOG_LEVEL": "debug",
		"LUTHIEN_ROUTES": routesAdminFile(t, startText), "LUTHIEN_E2E_ROUTES_KEY": secret, "LUTHIEN_ROUTES_KEY_ENVS": "LUTHIEN_E2E_ROUTES_KEY",
	}
	cfg, err := config.Load(nil, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	// The log is written by handlers and the call's end after the answer.
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); a.Close() })
	e := &env{mode: "inprocess", URL: srv.URL, up: home}

	var out bytes.Buffer
	keep := func(what string, resp *http.Response, b []byte) {
		out.WriteString(what + "\n")
		for k, vs := range resp.Header {
			out.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		out.Write(b)
		out.WriteString("\n")
	}
	for _, req := range []struct{ method, path, body, contentType string }{
		{http.MethodGet, "/api/routes", "", ""},
		{http.MethodGet, "/routes", "", ""},
		{http.MethodPut, "/api/routes", routesAdminText(routesAdminNew, home, second), "application/yaml"},
		{http.MethodPut, "/api/routes", "providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: LUTHIEN_E2E_UNSET_KEY}\n", "application/yaml"},
		{http.MethodPut, "/api/routes", "providers: {p: {kind: openai, base_url: 'http://x.example/v1', api_key_env: 'LUTHIEN_E2E_ROUTES_KEY', api_key: 1}}\n", "application/yaml"},
		{http.MethodPut, "/api/routes", "routes: [", "text/plain"},
		{http.MethodGet, "/api/routes", "", ""},
		{http.MethodGet, "/routes", "", ""},
		{http.MethodGet, "/v1/models", "", ""},
		{http.MethodGet, "/metrics", "", ""},
	} {
		resp, b := e.do(t, req.method, req.path, req.body, map[string]string{"Content-Type": req.contentType, "Authorization": "Bearer sk-client-key"})
		keep(req.method+" "+req.path, resp, b)
	}
	code, b := routedCall(t, e, "routed-canary")
	out.Write(b)
	if code != http.StatusOK {
		t.Fatalf("routed call: %d %s", code, b)
	}
	if _, r := lastModel(t, second); r.Header.Get("Authorization") != "Bearer "+secret {
		t.Fatalf("the provider did not receive the key: %q", r.Header.Get("Authorization"))
	}
	if !strings.Contains(logs.String(), "routing table changed") {
		t.Errorf("the change is not logged: %s", logs.String())
	}
	if !strings.Contains(out.String(), "LUTHIEN_E2E_ROUTES_KEY") {
		t.Error("the answers do not even name the key variable: the canary search looked at nothing")
	}
	for what, s := range map[string]string{"answers and pages": out.String(), "logs": logs.String()} {
		if strings.Contains(s, secret) {
			i := strings.Index(s, secret)
			t.Errorf("%s hold the key: …%s…", what, s[max(0, i-200):min(len(s), i+len(secret)+50)])
		}
	}
}
