package routesapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/proxy"
	"luthien.dev/gateway/internal/routes"
)

// secret is the provider key of the test environment: no answer and no
// log line may hold it.
const secret = "sk-ant-CANARY-routesapi-7f3e9a"

var testEnv = map[string]string{"CLAUDE_KEY": secret, "OTHER_KEY": "sk-CANARY-other-41c2"}

func getenv(k string) string { return testEnv[k] }

const startFile = `providers:
  claude: {kind: anthropic, base_url: "https://claude.example", api_key_env: CLAUDE_KEY, headers: {x-team: team-value-q7}}
routes:
  - {match: "claude-*", provider: claude}
`

const newFile = `providers:
  local: {kind: openai, base_url: "http://127.0.0.1:11434/v1"}
  other: {kind: openai, base_url: "https://other.example/v1", api_key_env: OTHER_KEY}
routes:
  - {match: "gpt-oss*", provider: local, model: "gpt-oss:20b"}
  - {match: "gpt-*", provider: other}
`

var clock = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture is a holder over a real proxy whose table was loaded from a
// routes file at start, logging into logs.
type fixture struct {
	h     *Holder
	p     *proxy.Proxy
	start *routes.Table
	path  string
	logs  *bytes.Buffer
	mux   *http.ServeMux
}

type mux struct{ *http.ServeMux }

func (m mux) Admin(pattern string, h http.Handler) { m.Handle(pattern, h) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(startFile), 0o600); err != nil {
		t.Fatal(err)
	}
	start, err := routes.Load(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := proxy.New(proxy.Config{Routes: start}, nil, log)
	h := New(Config{Proxy: p, Path: path, Getenv: getenv, Log: log, Now: func() time.Time { return clock }, KeyEnvs: []string{"OTHER_KEY"},
		Defaults: []Default{{Endpoint: "/v1/messages", Kind: "anthropic", BaseURL: "https://api.anthropic.com"}}})
	m := mux{http.NewServeMux()}
	h.Register(m)
	return &fixture{h: h, p: p, start: start, path: path, logs: logs, mux: m.ServeMux}
}

// do sends a request as the admin guard passes it on (with the actor).
func (f *fixture) do(t *testing.T, method, contentType, body string) (int, []byte) {
	t.Helper()
	r := httptest.NewRequest(method, "/api/routes", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Header.Set(admin.ActorHeader, "admin-key")
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

func decode(t *testing.T, b []byte) State {
	t.Helper()
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return s
}

// noSecret fails when any output holds a key of the environment or a
// header value of the file.
func noSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, s := range []string{secret, testEnv["OTHER_KEY"], "CANARY"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds the secret %q: %s", what, s, b)
		}
	}
}

func TestGetDescribesTheTableInEffect(t *testing.T) {
	f := newFixture(t)
	code, b := f.do(t, http.MethodGet, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET: %d %s", code, b)
	}
	noSecret(t, "GET", b)
	s := decode(t, b)
	if s.Source != startFile || s.Path != f.path || s.ChangedBy != "" || s.ChangedAt != "" || s.Note != Note {
		t.Errorf("GET: %+v", s)
	}
	want := routes.ProviderInfo{Name: "claude", Kind: "anthropic", BaseURL: "https://claude.example",
		APIKeyEnv: "CLAUDE_KEY", KeySet: true, Headers: []string{"X-Team"}}
	if len(s.Providers) != 1 || s.Providers[0].Name != want.Name || s.Providers[0].BaseURL != want.BaseURL ||
		!s.Providers[0].KeySet || s.Providers[0].APIKeyEnv != want.APIKeyEnv || strings.Join(s.Providers[0].Headers, ",") != "X-Team" {
		t.Errorf("providers: %+v, want [%+v]", s.Providers, want)
	}
	if len(s.Routes) != 1 || s.Routes[0] != (routes.RouteInfo{Index: 0, Match: "claude-*", Provider: "claude"}) {
		t.Errorf("routes: %+v", s.Routes)
	}
	if len(s.Defaults) != 1 || s.Defaults[0].Endpoint != "/v1/messages" {
		t.Errorf("defaults: %+v", s.Defaults)
	}
	// The providers' part of the answer holds header names, not values.
	prov, _ := json.Marshal(s.Providers)
	if bytes.Contains(prov, []byte("team-value-q7")) {
		t.Errorf("providers hold a header value: %s", prov)
	}
}

func TestPutReplacesTheTable(t *testing.T) {
	f := newFixture(t)
	code, b := f.do(t, http.MethodPut, "application/yaml", newFile)
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, b)
	}
	noSecret(t, "PUT answer", b)
	s := decode(t, b)
	if s.Source != newFile || s.ChangedBy != "admin-key" || s.ChangedAt != "2025-03-04T05:06:07.000Z" || s.Path != f.path {
		t.Errorf("PUT answer: %+v", s)
	}
	if !strings.Contains(s.Note, "until the gateway restarts") {
		t.Errorf("the answer does not say the change lasts until a restart: %q", s.Note)
	}
	if len(s.Routes) != 2 || s.Routes[0].Model != "gpt-oss:20b" || s.Routes[1].Provider != "other" {
		t.Errorf("routes: %+v", s.Routes)
	}

	// The proxy routes by the new table.
	if f.p.Routes() == f.start {
		t.Fatal("the proxy still holds the table of the start")
	}
	rt, ok := f.p.Routes().Route("gpt-oss-120b")
	if !ok || rt.ProviderName != "local" || rt.Model != "gpt-oss:20b" {
		t.Errorf("gpt-oss-120b routes to %v %v", rt, ok)
	}
	if rt, ok := f.p.Routes().Route("gpt-4o"); !ok || rt.ProviderName != "other" || rt.Provider.Key != testEnv["OTHER_KEY"] {
		t.Errorf("gpt-4o routes to %v %v, want other with its key", rt, ok)
	}
	if _, ok := f.p.Routes().Route("claude-sonnet-4-5"); ok {
		t.Error("the old route still matches")
	}

	// GET answers the same; the file is not written.
	if _, g := f.do(t, http.MethodGet, "", ""); decode(t, g).Source != newFile || decode(t, g).ChangedBy != "admin-key" {
		t.Errorf("GET after PUT: %s", g)
	}
	if disk, _ := os.ReadFile(f.path); string(disk) != startFile {
		t.Errorf("the routes file was written: %s", disk)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "routing table changed") || !strings.Contains(logs, "actor=admin-key") || !strings.Contains(logs, "level=INFO") {
		t.Errorf("the change is not logged at info with its actor: %s", logs)
	}
	noSecret(t, "logs", f.logs.Bytes())

	// An empty file is an empty table: nothing is routed.
	if code, b := f.do(t, http.MethodPut, "text/plain; charset=utf-8", ""); code != http.StatusOK || len(decode(t, b).Routes) != 0 {
		t.Fatalf("PUT empty: %d %s", code, b)
	}
	if f.p.Routes().Len() != 0 {
		t.Errorf("%d routes after an empty table", f.p.Routes().Len())
	}
}

func TestPutRefusesAnInvalidTable(t *testing.T) {
	big := startFile + "# " + strings.Repeat("x", routes.MaxFileSize) + "\n"
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    []string // in the error message
	}{
		{"syntax", "application/yaml", "providers: [\n", http.StatusBadRequest, []string{"yaml"}},
		{"unknown key", "application/yaml", "providers: {}\nroute: []\n", http.StatusBadRequest, []string{"route"}},
		{"unknown provider", "application/yaml", "routes:\n  - {match: x, provider: nope}\n", http.StatusBadRequest,
			[]string{"route 0", "unknown provider", "nope"}},
		{"unset key variable", "application/yaml",
			"providers:\n  p: {kind: openai, base_url: 'https://p.example/v1', api_key_env: UNSET_ROUTES_KEY}\n", http.StatusBadRequest,
			[]string{`provider "p"`, "api_key_env", "$UNSET_ROUTES_KEY is unset"}},
		{"bad pattern", "text/plain", "providers:\n  p: {kind: openai, base_url: 'https://p.example/v1'}\nroutes:\n  - {match: '[', provider: p}\n",
			http.StatusBadRequest, []string{"route 0", "match"}},
		{"too large", "application/yaml", big, http.StatusRequestEntityTooLarge, []string{"larger than"}},
		{"not YAML", "application/json", `{"routes": []}`, http.StatusUnsupportedMediaType, []string{"application/yaml"}},
		{"form", "application/x-www-form-urlencoded", "routes=x", http.StatusUnsupportedMediaType, []string{"application/yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			code, b := f.do(t, http.MethodPut, tt.contentType, tt.body)
			if code != tt.status {
				t.Fatalf("PUT: %d %.300s, want %d", code, b, tt.status)
			}
			var e struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("%v: %.300s", err, b)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.Error.Message, w) {
					t.Errorf("error %q does not say %q", e.Error.Message, w)
				}
			}
			noSecret(t, "error", b)
			noSecret(t, "logs", f.logs.Bytes())
			if f.p.Routes() != f.start {
				t.Error("a refused table replaced the one in effect")
			}
			if s := f.h.State(); s.Source != startFile || s.ChangedBy != "" {
				t.Errorf("state after a refused table: %+v", s)
			}
		})
	}
}

func TestPublicURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.openai.com/v1":           "https://api.openai.com/v1",
		"https://user:pw@proxy.example/v1":    "https://proxy.example/v1",
		"http://127.0.0.1:9":                  "http://127.0.0.1:9",
		"https://only-user@proxy.example/api": "https://proxy.example/api",
	} {
		if got := PublicURL(in); got != want {
			t.Errorf("PublicURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A routes file that cannot be read again leaves the text empty; the
// table in effect is still described.
func TestUnreadableFile(t *testing.T) {
	start, err := routes.Parse([]byte(startFile), getenv)
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.New(proxy.Config{Routes: start}, nil, slog.New(slog.DiscardHandler))
	s := New(Config{Proxy: p, Path: filepath.Join(t.TempDir(), "gone.yaml")}).State()
	if s.Source != "" || len(s.Routes) != 1 {
		t.Errorf("state: %+v", s)
	}
}

// A table set at run time sends a key variable only where the start-up
// table sent it, or anywhere when LUTHIEN_ROUTES_KEY_ENVS lists it; the
// gateway's own secrets never. A refused table leaves the old one.
func TestPutCannotSendKeysElsewhere(t *testing.T) {
	testEnv["LUTHIEN_ADMIN_API_KEY"] = "sk-admin-CANARY"
	t.Cleanup(func() { delete(testEnv, "LUTHIEN_ADMIN_API_KEY") })
	f := newFixture(t)
	for _, tc := range []struct {
		name, file string
		ok         bool
	}{
		{"the start-up key to a new host", "providers:\n  evil: {kind: anthropic, base_url: \"https://evil.example\", api_key_env: CLAUDE_KEY}\n", false},
		{"the admin key", "providers:\n  evil: {kind: openai, base_url: \"https://evil.example/v1\", api_key_env: LUTHIEN_ADMIN_API_KEY}\n", false},
		{"the start-up key to its own host", "providers:\n  claude: {kind: anthropic, base_url: \"https://claude.example\", api_key_env: CLAUDE_KEY}\n", true},
		{"a listed key anywhere", "providers:\n  any: {kind: openai, base_url: \"https://any.example/v1\", api_key_env: OTHER_KEY}\n", true},
	} {
		before := f.p.Routes()
		code, b := f.do(t, http.MethodPut, "application/yaml", tc.file)
		noSecret(t, tc.name, b)
		if strings.Contains(string(b), "sk-admin-CANARY") {
			t.Errorf("%s: the answer holds the admin key", tc.name)
		}
		switch {
		case tc.ok && code != http.StatusOK:
			t.Errorf("%s: %d %s, want 200", tc.name, code, b)
		case !tc.ok && (code != http.StatusBadRequest || !strings.Contains(string(b), "api_key_env")):
			t.Errorf("%s: %d %s, want 400 naming api_key_env", tc.name, code, b)
		case !tc.ok && f.p.Routes() != before:
			t.Errorf("%s: a refused table took effect", tc.name)
		}
	}
}
