package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/config"
)

const (
	adminKey  = "adm-routes-test-key"
	clientKey = "sk-client-routes-test"
)

func newApp(t *testing.T, vars map[string]string) *App {
	t.Helper()
	base := map[string]string{"LUTHIEN_HTTP_ADDR": "127.0.0.1:0", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
		"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
	for k, v := range vars {
		base[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return base[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// concrete turns a registered pattern into a request line: wildcards get
// a value, a subtree gets a path inside it.
func concrete(pattern string) (method, path string) {
	method, path = http.MethodGet, pattern
	if m, p, ok := strings.Cut(pattern, " "); ok {
		method, path = m, p
	}
	path = strings.ReplaceAll(path, "{$}", "")
	for strings.Contains(path, "{") {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + "some-id" + path[j+1:]
	}
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "stats"
	}
	return method, path
}

// serve runs one request against h, cutting long-lived answers (the
// activity feed) short.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(r.Context(), 300*time.Millisecond)
	defer cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(ctx))
	return w
}

// stateChanging is a state-changing method the pattern takes ("" when it
// takes none).
func stateChanging(pattern string) string {
	m, _, ok := strings.Cut(pattern, " ")
	switch {
	case !ok:
		return http.MethodPut
	case m == http.MethodGet || m == http.MethodHead:
		return ""
	}
	return m
}

func refused(w *httptest.ResponseRecorder) bool {
	switch w.Code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		return true
	case http.StatusSeeOther:
		// The guard sends browsers to the login page with where they
		// were going; logging out lands on the bare login page.
		return strings.HasPrefix(w.Header().Get("Location"), "/login?next=")
	}
	return false
}

// Every admin route, as registered (not a list kept by hand), refuses
// anonymous callers, wrong keys, the client key and forged forwarding
// headers, and accepts the admin key and a browser session.
func TestEveryAdminRouteIsGuarded(t *testing.T) {
	a := newApp(t, map[string]string{"LUTHIEN_ADMIN_API_KEY": adminKey, "LUTHIEN_CLIENT_API_KEY": clientKey})
	h := a.Handler()

	// A browser session, opened through the login form (one per route:
	// the logout route ends the one it is given).
	login := func(t *testing.T) (*http.Cookie, string) {
		t.Helper()
		form := url.Values{"key": {adminKey}, "next": {"/"}}
		lr := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		lr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		lw := serve(h, lr)
		for _, c := range lw.Result().Cookies() {
			if c.Name == admin.CookieName && lw.Code == http.StatusSeeOther {
				sr := httptest.NewRequest(http.MethodGet, "/", nil)
				sr.AddCookie(c)
				return c, a.Guard().CSRFToken(sr)
			}
		}
		t.Fatalf("login: %d: %s", lw.Code, lw.Body)
		return nil, ""
	}

	admins := 0
	for _, route := range a.Routes() {
		if route.Access != Admin {
			continue
		}
		admins++
		method, path := concrete(route.Pattern)
		t.Run(route.Pattern, func(t *testing.T) {
			attempts := map[string]func(r *http.Request){
				"anonymous":         func(*http.Request) {},
				"wrong key":         func(r *http.Request) { r.Header.Set("Authorization", "Bearer not-the-key") },
				"client key bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+clientKey) },
				"client key header": func(r *http.Request) { r.Header.Set("x-api-key", clientKey) },
				"admin key as x-api-key": func(r *http.Request) {
					r.Header.Set("x-api-key", adminKey)
				},
				"forged forwarding headers": func(r *http.Request) {
					r.RemoteAddr = "203.0.113.7:5555"
					r.Header.Set("X-Forwarded-For", "127.0.0.1")
					r.Header.Set("Forwarded", "for=127.0.0.1")
					r.Header.Set("X-Real-IP", "127.0.0.1")
				},
				"forged cookie": func(r *http.Request) {
					r.AddCookie(&http.Cookie{Name: admin.CookieName, Value: "djF8OTk5OTk5OTk5OXww.AAAA"})
				},
			}
			for name, mod := range attempts {
				r := httptest.NewRequest(method, path, strings.NewReader("{}"))
				// Loopback is no credential when there is a key. (Each route
				// gets an address of its own so that the failed-attempt
				// limit does not answer in place of the check under test.)
				r.RemoteAddr = fmt.Sprintf("127.0.0.%d:40000", admins)
				mod(r)
				if w := serve(h, r); !refused(w) || w.Code == http.StatusTooManyRequests {
					t.Errorf("%s: %s %s answered %d %.200s", name, method, path, w.Code, w.Body)
				}
			}
			cookie, csrf := login(t)
			accepted := map[string]func(r *http.Request){
				"admin key": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminKey) },
				"session": func(r *http.Request) {
					r.AddCookie(cookie)
					r.Header.Set(admin.CSRFHeader, csrf)
				},
			}
			for name, mod := range accepted {
				r := httptest.NewRequest(method, path, strings.NewReader("{}"))
				r.RemoteAddr = "198.51.100.3:40000"
				mod(r)
				if w := serve(h, r); refused(w) {
					t.Errorf("%s: %s %s refused with %d %.200s", name, method, path, w.Code, w.Body)
				}
			}
		})
	}
	if admins < 10 {
		t.Fatalf("only %d admin routes registered: the table is not what the gateway serves", admins)
	}
}

// Without an admin key every admin route answers loopback clients whose
// Host is loopback, and nobody else.
func TestKeylessAdminRoutesAreLoopbackOnly(t *testing.T) {
	a := newApp(t, nil)
	h := a.Handler()
	for _, route := range a.Routes() {
		if route.Access != Admin {
			continue
		}
		method, path := concrete(route.Pattern)
		t.Run(route.Pattern, func(t *testing.T) {
			for name, mod := range map[string]func(r *http.Request){
				"remote peer with forged headers": func(r *http.Request) {
					r.RemoteAddr = "203.0.113.7:5555"
					r.Header.Set("X-Forwarded-For", "127.0.0.1")
					r.Header.Set("X-Real-IP", "127.0.0.1")
				},
				"rebound host": func(r *http.Request) { r.Host = "attacker.example:8000" },
			} {
				r := httptest.NewRequest(method, path, strings.NewReader("{}"))
				r.RemoteAddr, r.Host = "127.0.0.1:40000", "127.0.0.1:8000"
				mod(r)
				if w := serve(h, r); !refused(w) {
					t.Errorf("%s: answered %d %.200s", name, w.Code, w.Body)
				}
			}
			// A page elsewhere cannot change state through the loopback
			// gateway: every route that takes a state change refuses
			// another origin.
			if unsafe := stateChanging(route.Pattern); unsafe != "" {
				r := httptest.NewRequest(unsafe, path, strings.NewReader("{}"))
				r.RemoteAddr, r.Host = "127.0.0.1:40000", "127.0.0.1:8000"
				r.Header.Set("Origin", "http://attacker.example")
				if w := serve(h, r); !refused(w) {
					t.Errorf("cross-origin %s: answered %d %.200s", unsafe, w.Code, w.Body)
				}
			}
			r := httptest.NewRequest(method, path, strings.NewReader("{}"))
			r.RemoteAddr, r.Host = "[::1]:40000", "localhost:8000"
			if w := serve(h, r); refused(w) {
				t.Errorf("loopback client refused: %d %.200s", w.Code, w.Body)
			}
		})
	}
}

// Only health, readiness, the login page and static assets answer without
// admin rights; the LLM APIs are client routes. A route added without
// thinking about its access fails here.
func TestPublicAndClientRoutes(t *testing.T) {
	a := newApp(t, map[string]string{"LUTHIEN_ADMIN_API_KEY": adminKey})
	public := map[string]bool{"GET /health": true, "GET /ready": true, "GET /login": true, "POST /login": true,
		"GET /ui/static/": true, "/": true}
	for _, r := range a.Routes() {
		switch r.Access {
		case Public:
			if !public[r.Pattern] {
				t.Errorf("route %q is public", r.Pattern)
			}
		case Client:
			_, path := concrete(r.Pattern)
			if !strings.HasPrefix(path, "/v1/") && path != "/" {
				t.Errorf("client route %q outside the LLM APIs", r.Pattern)
			}
		}
	}
	// The catch-all answers a JSON 404, not a page or the API.
	w := serve(a.Handler(), httptest.NewRequest(http.MethodGet, "/api-nope", nil))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Header().Get("Content-Type"), "json") {
		t.Errorf("unknown path: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}
