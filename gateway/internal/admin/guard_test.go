package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const key = "adm-0123456789abcdef"

func request(method, target string, mod func(r *http.Request)) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "127.0.0.1:50000"
	r.Host = "127.0.0.1:8000"
	if mod != nil {
		mod(r)
	}
	return r
}

// login opens a session on g and returns its cookie.
func login(t *testing.T, g *Guard) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if ok, reason := g.Login(w, request(http.MethodPost, "/login", nil), key); !ok {
		t.Fatalf("login refused: %s", reason)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 {
				t.Errorf("session cookie not HttpOnly/SameSite=Strict/expiring: %+v", c)
			}
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func TestKeyedGuard(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	g := New(Config{Key: key, SessionTTL: time.Hour, Now: clock})
	cookie := login(t, g)
	csrf := g.SessionOf(request(http.MethodGet, "/", func(r *http.Request) { r.AddCookie(cookie) })).CSRF
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }

	cases := []struct {
		name   string
		req    *http.Request
		status int // 0: allowed
		actor  string
	}{
		{"anonymous", request(http.MethodGet, "/api/v1/calls", nil), http.StatusUnauthorized, ""},
		{"bearer key", request(http.MethodGet, "/api/v1/calls", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }), 0, "admin-key"},
		{"wrong key", request(http.MethodGet, "/api/v1/calls", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }), http.StatusUnauthorized, ""},
		{"key as basic auth", request(http.MethodGet, "/api/v1/calls", func(r *http.Request) { r.SetBasicAuth("admin", key) }), http.StatusUnauthorized, ""},
		{"key in x-api-key is not admin auth", request(http.MethodGet, "/api/v1/calls", func(r *http.Request) { r.Header.Set("x-api-key", key) }), http.StatusUnauthorized, ""},
		{"loopback alone is not enough with a key", request(http.MethodGet, "/", nil), http.StatusUnauthorized, ""},
		{"session", request(http.MethodGet, "/calls", withCookie), 0, "session"},
		{"session PUT without CSRF", request(http.MethodPut, "/api/v1/policy", withCookie), http.StatusForbidden, ""},
		{"session PUT with wrong CSRF", request(http.MethodPut, "/api/v1/policy", func(r *http.Request) {
			withCookie(r)
			r.Header.Set(CSRFHeader, "forged")
		}), http.StatusForbidden, ""},
		{"session PUT with CSRF", request(http.MethodPut, "/api/v1/policy", func(r *http.Request) {
			withCookie(r)
			r.Header.Set(CSRFHeader, csrf)
		}), 0, "session"},
		{"session form POST with CSRF field", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
			r.RemoteAddr, r.Host = "127.0.0.1:1", "127.0.0.1:8000"
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			withCookie(r)
			return r
		}(), 0, "session"},
		{"cross-origin PUT even with the key", request(http.MethodPut, "/api/v1/policy", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+key)
			r.Header.Set("Origin", "https://evil.example")
		}), http.StatusForbidden, ""},
		{"cross-site fetch metadata", request(http.MethodPut, "/api/v1/policy", func(r *http.Request) {
			withCookie(r)
			r.Header.Set(CSRFHeader, csrf)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}), http.StatusForbidden, ""},
		{"tampered cookie", request(http.MethodGet, "/calls", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie.Value[:len(cookie.Value)-2] + "AA"})
		}), http.StatusUnauthorized, ""},
		{"forged cookie payload", request(http.MethodGet, "/calls", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: CookieName, Value: b64.EncodeToString([]byte("v1|99999999999|00")) + "." + strings.SplitN(cookie.Value, ".", 2)[1]})
		}), http.StatusUnauthorized, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := g.Check(c.req)
			if c.status == 0 {
				if !d.OK() || d.Actor != c.actor {
					t.Fatalf("refused (%d %s), want allowed as %q", d.Status, d.Reason, c.actor)
				}
				return
			}
			if d.OK() || d.Status != c.status {
				t.Fatalf("got actor %q status %d, want refused with %d", d.Actor, d.Status, c.status)
			}
		})
	}

	t.Run("session expires", func(t *testing.T) {
		later := New(Config{Key: key, SessionTTL: time.Hour, Now: func() time.Time { return now.Add(61 * time.Minute) }})
		if later.Check(request(http.MethodGet, "/calls", withCookie)).OK() {
			t.Fatal("an expired session was accepted")
		}
	})
	t.Run("a new key logs everyone out", func(t *testing.T) {
		rotated := New(Config{Key: key + "-rotated", SessionTTL: time.Hour, Now: clock})
		if rotated.Check(request(http.MethodGet, "/calls", withCookie)).OK() {
			t.Fatal("a session of the old key was accepted")
		}
		sameKeyNewSecret := New(Config{Key: key, SessionSecret: "other", SessionTTL: time.Hour, Now: clock})
		if sameKeyNewSecret.Check(request(http.MethodGet, "/calls", withCookie)).OK() {
			t.Fatal("a session signed with another secret was accepted")
		}
	})
	t.Run("logout revokes a replayed cookie", func(t *testing.T) {
		c2 := login(t, g)
		r := request(http.MethodPost, "/logout", func(r *http.Request) { r.AddCookie(c2) })
		w := httptest.NewRecorder()
		g.Logout(w, r)
		if cleared := w.Result().Cookies(); len(cleared) != 1 || cleared[0].MaxAge >= 0 {
			t.Errorf("logout did not clear the cookie: %+v", cleared)
		}
		if g.Check(request(http.MethodGet, "/calls", func(r *http.Request) { r.AddCookie(c2) })).OK() {
			t.Fatal("a logged-out session was accepted when replayed")
		}
		if !g.Check(request(http.MethodGet, "/calls", withCookie)).OK() {
			t.Fatal("logging one session out ended another")
		}
	})
}

func TestFailedAttemptsAreLimited(t *testing.T) {
	g := New(Config{Key: key})
	attacker := func(r *http.Request) {
		r.RemoteAddr = "192.0.2.7:4000"
		r.Header.Set("Authorization", "Bearer guess")
	}
	for i := 0; i < maxFailures; i++ {
		if d := g.Check(request(http.MethodGet, "/api/v1/calls", attacker)); d.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i, d.Status)
		}
	}
	d := g.Check(request(http.MethodGet, "/api/v1/calls", func(r *http.Request) {
		r.RemoteAddr = "192.0.2.7:4001"
		r.Header.Set("Authorization", "Bearer "+key)
	}))
	if d.Status != http.StatusTooManyRequests {
		t.Fatalf("after %d failures the right key got %d, want 429 until the window passes", maxFailures, d.Status)
	}
	if ok, _ := g.Login(httptest.NewRecorder(), request(http.MethodPost, "/login", func(r *http.Request) { r.RemoteAddr = "192.0.2.7:4002" }), key); ok {
		t.Fatal("login from a blocked address succeeded")
	}
	if !g.Check(request(http.MethodGet, "/api/v1/calls", func(r *http.Request) {
		r.RemoteAddr = "198.51.100.1:1"
		r.Header.Set("Authorization", "Bearer "+key)
	})).OK() {
		t.Fatal("another address was blocked too")
	}
}

func TestKeylessGuard(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		remote string
		host   string
		header map[string]string
		ok     bool
	}{
		{"loopback v4", Config{}, "127.0.0.1:1", "127.0.0.1:8000", nil, true},
		{"loopback v6", Config{}, "[::1]:1", "[::1]:8000", nil, true},
		{"localhost host", Config{}, "127.0.0.1:1", "localhost:8000", nil, true},
		{"remote client", Config{}, "192.0.2.1:1", "127.0.0.1:8000", nil, false},
		{"remote client forging X-Forwarded-For", Config{}, "192.0.2.1:1", "127.0.0.1:8000", map[string]string{"X-Forwarded-For": "127.0.0.1"}, false},
		{"remote client forging Forwarded", Config{}, "192.0.2.1:1", "127.0.0.1:8000", map[string]string{"Forwarded": "for=127.0.0.1"}, false},
		{"remote client forging X-Real-IP", Config{}, "192.0.2.1:1", "127.0.0.1:8000", map[string]string{"X-Real-IP": "::1"}, false},
		{"DNS rebinding: loopback peer, foreign Host", Config{}, "127.0.0.1:1", "evil.example:8000", nil, false},
		{"foreign Host without port", Config{}, "127.0.0.1:1", "evil.example", nil, false},
		{"empty Host", Config{}, "127.0.0.1:1", "", nil, false},
		{"Host that only starts like loopback", Config{}, "127.0.0.1:1", "127.0.0.1.evil.example", nil, false},
		{"allowed host", Config{AllowedHosts: []string{"gw.internal"}}, "127.0.0.1:1", "GW.internal:8000", nil, true},
		{"allowed host from a remote peer", Config{AllowedHosts: []string{"gw.internal"}}, "192.0.2.1:1", "gw.internal", nil, false},
		{"insecure: anyone", Config{Insecure: true}, "192.0.2.1:1", "203.0.113.9:8000", nil, true},
		{"insecure with allowed hosts checks Host", Config{Insecure: true, AllowedHosts: []string{"gw.example"}}, "192.0.2.1:1", "evil.example", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := New(c.cfg)
			r := request(http.MethodGet, "/api/v1/calls", func(r *http.Request) {
				r.RemoteAddr, r.Host = c.remote, c.host
				for k, v := range c.header {
					r.Header.Set(k, v)
				}
			})
			d := g.Check(r)
			if d.OK() != c.ok {
				t.Fatalf("allowed=%v (%d %s), want %v", d.OK(), d.Status, d.Reason, c.ok)
			}
			if !c.ok && d.Status != http.StatusForbidden {
				t.Fatalf("refused with %d, want 403", d.Status)
			}
		})
	}
	t.Run("cross-origin state change from loopback", func(t *testing.T) {
		d := New(Config{}).Check(request(http.MethodPut, "/api/v1/policy", func(r *http.Request) {
			r.Header.Set("Origin", "http://evil.example")
		}))
		if d.OK() {
			t.Fatal("a page on another site changed state through a loopback gateway")
		}
	})
	t.Run("no login without a key", func(t *testing.T) {
		if ok, _ := New(Config{}).Login(httptest.NewRecorder(), request(http.MethodPost, "/login", nil), ""); ok {
			t.Fatal("login with an empty key succeeded while no key is configured")
		}
	})
}

func TestProtect(t *testing.T) {
	g := New(Config{Key: key})
	var gotActor string
	h := g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gotActor = r.Header.Get(ActorHeader) }))

	w := httptest.NewRecorder()
	h.ServeHTTP(w, request(http.MethodGet, "/calls?x=1", func(r *http.Request) { r.Header.Set("Accept", "text/html") }))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Fcalls%3Fx%3D1" {
		t.Errorf("a browser was not sent to the login page: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, request(http.MethodGet, "/api/v1/calls", nil))
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "admin key required") || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("an API client got %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, request(http.MethodGet, "/api/v1/calls", func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set(ActorHeader, "forged-admin")
	}))
	if w.Code != http.StatusOK || gotActor != "admin-key" {
		t.Errorf("status %d, actor %q: want 200 as admin-key (the client's actor header replaced)", w.Code, gotActor)
	}
}
