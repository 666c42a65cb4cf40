package policy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// credentials are what a judge endpoint received.
type credentials struct {
	mu    sync.Mutex
	seen  []string // "Authorization|x-api-key" per request
	calls int
}

func (c *credentials) add(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.seen = append(c.seen, r.Header.Get("Authorization")+"|"+r.Header.Get("x-api-key"))
}

func (c *credentials) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// credentialServer is a judge endpoint (an "internal" host) that records
// the credentials it gets and answers with handler.
func credentialServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *credentials) {
	t.Helper()
	creds := &credentials{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creds.add(r)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, creds
}

// allowAnswer answers every judge question with a low probability, in
// the format of the path.
func allowAnswer(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/messages") {
		_, _ = w.Write([]byte(`{"content":[{"type":"text","text":"{\"probability\":0}"}]}`))
		return
	}
	_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"{\"probability\":0}"}}]}`))
}

// providerEnv sets the control plane's provider keys and clears the
// judge settings.
func providerEnv(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-env-openai")
	t.Setenv("ANTHROPIC_API_KEY", "sk-env-anthropic")
	for _, name := range []string{"LUTHIEN_JUDGE_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "LUTHIEN_JUDGE_HOSTS", "LUTHIEN_JUDGE_KEY_ENVS"} {
		t.Setenv(name, "")
	}
}

// judgeOnce builds a tool_call_judge from cfg and judges one tool call,
// returning the recorded events.
func judgeOnce(t *testing.T, r *Registry, cfg map[string]any) *events {
	t.Helper()
	p, err := r.Build("tool_call_judge", cfg)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	call, ev := testCall(anthropicFormat)
	runStream(t, p, call, streamOf("", 0, []testTool{{"Bash", `{"command":"ls"}`}}, "tool_use"))
	return ev
}

// A judge pointed at a host that is not the provider's, without a key of
// its own, sends no credential: the control plane's provider keys never
// leave for a host a policy names.
func TestJudgeGetsNoProviderKeyElsewhere(t *testing.T) {
	providerEnv(t)
	srv, creds := credentialServer(t, allowAnswer)
	for _, tt := range []struct{ name, base, format string }{
		{"openai", srv.URL + "/v1", "openai"},
		{"anthropic", srv.URL, "anthropic"},
		{"anthropic by name", srv.URL + "/anthropic", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := map[string]any{"model": "judge-model", "api_base": tt.base, "max_retries": 0}
			if tt.format != "" {
				cfg["api_format"] = tt.format
			}
			judgeOnce(t, builtin(t), cfg)
		})
	}
	seen := creds.list()
	if len(seen) != 3 {
		t.Fatalf("the judge was called %d times, want 3", len(seen))
	}
	for _, s := range seen {
		if s != "|" {
			t.Errorf("the internal host got credentials %q", s)
		}
	}
}

// A judge at the provider's endpoint (the public one or the configured
// OPENAI_BASE_URL / ANTHROPIC_BASE_URL) gets the environment's key; a
// judge anywhere names its own with api_key or api_key_env.
func TestJudgeKeys(t *testing.T) {
	providerEnv(t)
	srv, creds := credentialServer(t, allowAnswer)
	t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
	t.Setenv("LUTHIEN_JUDGE_INTERNAL_KEY", "sk-named")
	for _, tt := range []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"configured provider base", map[string]any{"api_base": srv.URL + "/v1"}, "Bearer sk-env-openai|"},
		{"same origin, other path", map[string]any{"api_base": srv.URL + "/proxy/v1"}, "Bearer sk-env-openai|"},
		{"anthropic format at the openai base", map[string]any{"api_base": srv.URL, "api_format": "anthropic"}, "|"},
		{"api_key_env", map[string]any{"api_base": srv.URL + "/v1", "api_key_env": "LUTHIEN_JUDGE_INTERNAL_KEY"}, "Bearer sk-named|"},
		{"api_key", map[string]any{"api_base": srv.URL + "/v1", "api_key": "sk-inline"}, "Bearer sk-inline|"},
		{"api_key_env anthropic", map[string]any{"api_base": srv.URL, "api_format": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"}, "|sk-env-anthropic"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(creds.list())
			cfg := map[string]any{"model": "judge-model", "max_retries": 0}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			judgeOnce(t, builtin(t), cfg)
			seen := creds.list()
			if len(seen) != before+1 || seen[before] != tt.want {
				t.Errorf("credentials %q, want %q", seen[before:], tt.want)
			}
		})
	}
}

// api_key_env may only name a variable LUTHIEN_JUDGE_KEY_ENVS allows; the
// refusal names the key and the variable.
func TestJudgeKeyEnvAllowlist(t *testing.T) {
	providerEnv(t)
	t.Setenv("LUTHIEN_JUDGE_OTHER", "x")
	t.Setenv("MY_JUDGE_KEY", "x")
	base := "http://judge.internal/v1"
	for _, tt := range []struct {
		name, keyEnvs string
		cfg           map[string]any
		wantErr       string
	}{
		{"outside the default list", "", map[string]any{"api_key_env": "DATABASE_URL"}, `"api_key_env": variable "DATABASE_URL" is not one judges may use`},
		{"prefix of the default list", "", map[string]any{"api_key_env": "LUTHIEN_JUDGE_OTHER"}, ""},
		{"provider key by name", "", map[string]any{"api_key_env": "OPENAI_API_KEY"}, ""},
		{"narrowed list", "MY_JUDGE_KEY", map[string]any{"api_key_env": "OPENAI_API_KEY"}, `variable "OPENAI_API_KEY" is not one judges may use`},
		{"narrowed list allows", "MY_JUDGE_KEY", map[string]any{"api_key_env": "MY_JUDGE_KEY"}, ""},
		{"prefix entry", "MY_*", map[string]any{"api_key_env": "MY_JUDGE_KEY"}, ""},
		{"unset", "", map[string]any{"api_key_env": "LUTHIEN_JUDGE_UNSET"}, `variable "LUTHIEN_JUDGE_UNSET" is not set`},
		{"both", "", map[string]any{"api_key_env": "LUTHIEN_JUDGE_OTHER", "api_key": "k"}, `"api_key_env": give api_key or api_key_env, not both`},
		{"not a name", "", map[string]any{"api_key_env": "A=B"}, `variable "A=B" is not one judges may use`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LUTHIEN_JUDGE_KEY_ENVS", tt.keyEnvs)
			cfg := map[string]any{"model": "judge-model", "api_base": base}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			for _, class := range []string{"tool_call_judge", "llm_judge"} {
				if class == "llm_judge" {
					cfg["instructions"] = "be nice"
				}
				_, err := builtin(t).Build(class, cfg)
				if tt.wantErr == "" && err != nil {
					t.Errorf("%s: %v", class, err)
				}
				if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("%s: error %v, want %q", class, err, tt.wantErr)
				}
			}
		})
	}
	t.Setenv("LUTHIEN_JUDGE_KEY_ENVS", "OK,NOT-A-NAME")
	if _, err := Builtin(); err == nil || !strings.Contains(err.Error(), "LUTHIEN_JUDGE_KEY_ENVS") {
		t.Errorf("Builtin with an invalid list: %v", err)
	}
}

// With LUTHIEN_JUDGE_HOSTS set, a judge elsewhere is refused.
func TestJudgeHostAllowlist(t *testing.T) {
	providerEnv(t)
	srv, creds := credentialServer(t, allowAnswer)
	u, _ := url.Parse(srv.URL)
	for _, tt := range []struct {
		name, hosts, base string
		ok                bool
	}{
		{"listed host:port", u.Host, srv.URL + "/v1", true},
		{"listed host, any port", "judge.example, " + u.Hostname(), srv.URL + "/v1", true},
		{"other port", u.Hostname() + ":1", srv.URL + "/v1", false},
		{"other host", u.Host, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/v1", false},
		{"provider default not listed", u.Host, "", false},
		{"provider default listed", "api.openai.com", "", true},
		{"provider default listed with port", "api.openai.com:443", "", true},
		{"case and dots", "API.OpenAI.com", "https://api.openai.com./v1", true},
		{"unset allows any", "", "http://judge.internal/v1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LUTHIEN_JUDGE_HOSTS", tt.hosts)
			cfg := map[string]any{"model": "judge-model", "api_key": "sk-inline"}
			if tt.base != "" {
				cfg["api_base"] = tt.base
			}
			_, err := builtin(t).Build("tool_call_judge", cfg)
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), `"api_base"`) || !strings.Contains(err.Error(), "LUTHIEN_JUDGE_HOSTS")) {
				t.Errorf("error %v, want a refusal of api_base", err)
			}
		})
	}
	if n := len(creds.list()); n != 0 {
		t.Errorf("validation called the judge %d times", n)
	}
	for _, bad := range []string{"http://judge/", "host:port", "host:0", "a b"} {
		t.Setenv("LUTHIEN_JUDGE_HOSTS", bad)
		if _, err := Builtin(); err == nil || !strings.Contains(err.Error(), "LUTHIEN_JUDGE_HOSTS") {
			t.Errorf("Builtin with LUTHIEN_JUDGE_HOSTS=%q: %v", bad, err)
		}
	}
}

// api_base must be an http or https URL.
func TestJudgeBaseChecked(t *testing.T) {
	providerEnv(t)
	for _, base := range []string{"file:///etc/passwd", "gopher://x", "judge.internal/v1", "http://user:pw@judge.internal/v1"} {
		_, err := builtin(t).Build("tool_call_judge", map[string]any{"api_base": base})
		if err == nil || !strings.Contains(err.Error(), `"api_base"`) {
			t.Errorf("api_base %q: %v", base, err)
		}
	}
}

// A judge whose endpoint redirects fails (judge_failed, fail-secure)
// without the redirect target getting a request, so no credential, and
// the event quotes nothing of either response.
func TestJudgeRedirectGetsNoCredentials(t *testing.T) {
	providerEnv(t)
	target, targetCreds := credentialServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("INTERNAL-SERVICE-DATA"))
	})
	for _, tt := range []struct {
		name string
		cfg  map[string]any
	}{
		{"openai inline key", map[string]any{"api_key": "sk-inline"}},
		{"anthropic inline key", map[string]any{"api_key": "sk-inline", "api_format": "anthropic"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			redirector, redirCreds := credentialServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
			})
			cfg := map[string]any{"model": "judge-model", "api_base": redirector.URL + "/v1", "max_retries": 1, "retry_delay": "1ms"}
			for k, v := range tt.cfg {
				cfg[k] = v
			}
			ev := judgeOnce(t, builtin(t), cfg)
			failed, ok := ev.find("policy.tool_call_judge.judge_failed")
			if !ok {
				t.Fatalf("no judge_failed event: %v", ev.types())
			}
			msg, _ := failed.Details["error"].(string)
			if !strings.Contains(msg, "redirect") || strings.Contains(msg, "INTERNAL-SERVICE-DATA") {
				t.Errorf("event error %q", msg)
			}
			if len(redirCreds.list()) == 0 {
				t.Error("the judge endpoint was not called")
			}
		})
	}
	if seen := targetCreds.list(); len(seen) != 0 {
		t.Errorf("the redirect target got %d requests, credentials %q", len(seen), seen)
	}
}

// A long error body is quoted in the judge_failed event cut to 512 bytes.
func TestJudgeErrorBodyTruncated(t *testing.T) {
	providerEnv(t)
	srv, _ := credentialServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(strings.Repeat("ü", 4000) + "END-OF-BODY"))
	})
	ev := judgeOnce(t, builtin(t), map[string]any{"model": "judge-model", "api_base": srv.URL + "/v1", "max_retries": 0})
	failed, ok := ev.find("policy.tool_call_judge.judge_failed")
	if !ok {
		t.Fatalf("no judge_failed event: %v", ev.types())
	}
	msg, _ := failed.Details["error"].(string)
	if quoted := strings.Count(msg, "ü") * len("ü"); quoted > 512 || quoted < 400 || strings.Contains(msg, "END-OF-BODY") {
		t.Errorf("event quotes %d bytes of the body", quoted)
	}
	if !utf8.ValidString(msg) {
		t.Error("event error is not valid UTF-8")
	}
}
