// Package admin guards the gateway's admin surface: the web UI, the REST
// and activity APIs under /api/, /metrics and the profiler.
//
// With an admin key, a caller proves itself with `Authorization: Bearer
// KEY` or with a session cookie a browser got by logging in with the key.
// Without one, the admin surface answers only to clients connecting from
// loopback whose Host header names loopback or an allowed host (so a page
// on another site cannot reach it through DNS rebinding). Forwarding
// headers never count as the client's address. State-changing requests
// must come from the gateway's own origin, and from a browser session they
// must also carry the session's CSRF token.
package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ActorHeader carries who an admin request was authenticated as, from the
// guard to the handlers behind it (the REST layer forwards it to the
// control plane, which records who changed the policy). The guard removes
// any value a client sent.
const ActorHeader = "X-Luthien-Actor"

// CSRFHeader is where scripts of the UI send the session's CSRF token;
// forms send it as the csrf field.
const CSRFHeader = "X-CSRF-Token"

// Config configures a Guard.
type Config struct {
	// Key is the admin key; empty: loopback-only access without
	// authentication.
	Key string
	// SessionSecret, when set, is mixed with the key to sign session
	// cookies; otherwise the secret is derived from the key alone. Either
	// way a new key invalidates every session.
	SessionSecret string
	// SessionTTL is how long a login lasts (default 12h).
	SessionTTL time.Duration
	// AllowedHosts are Host header values (without port) accepted besides
	// loopback names when there is no key.
	AllowedHosts []string
	// Insecure opens the admin surface to every client when there is no
	// key (the operator said so explicitly).
	Insecure bool
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Guard checks access to admin routes.
type Guard struct {
	cfg     Config
	secret  []byte
	allowed map[string]bool
	limiter *failLimiter

	mu      sync.Mutex
	revoked map[string]time.Time // session nonce → expiry
}

// New returns a Guard for cfg.
func New(cfg Config) *Guard {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg, allowed: map[string]bool{}, revoked: map[string]time.Time{}, limiter: newFailLimiter(cfg.Now)}
	for _, h := range cfg.AllowedHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			g.allowed[h] = true
		}
	}
	if cfg.Key != "" {
		mac := hmac.New(sha256.New, []byte(cfg.SessionSecret))
		mac.Write([]byte("luthien admin session v1\x00"))
		mac.Write([]byte(cfg.Key))
		g.secret = mac.Sum(nil)
	}
	return g
}

// HasKey reports whether admin access needs the key.
func (g *Guard) HasKey() bool { return g.cfg.Key != "" }

// Decision is the outcome of checking one request.
type Decision struct {
	// Actor is who the request was authenticated as; empty when refused.
	Actor string
	// Session is the browser session the request carries, when valid.
	Session *Session
	// Status and Reason explain a refusal.
	Status int
	Reason string
}

// OK reports whether the request may proceed.
func (d Decision) OK() bool { return d.Actor != "" }

// Check decides whether r may use an admin route.
func (g *Guard) Check(r *http.Request) Decision {
	if !sameOrigin(r) {
		return Decision{Status: http.StatusForbidden, Reason: "cross-origin request refused"}
	}
	if g.cfg.Key == "" {
		return g.checkKeyless(r)
	}
	ip := peerIP(r)
	if g.limiter.blocked(ip) {
		return Decision{Status: http.StatusTooManyRequests, Reason: "too many failed attempts; try again in a minute"}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if ok && g.KeyMatches(token) {
			return Decision{Actor: "admin-key"}
		}
		g.limiter.fail(ip)
		return Decision{Status: http.StatusUnauthorized, Reason: "invalid admin key"}
	}
	s := g.session(r)
	if s == nil {
		return Decision{Status: http.StatusUnauthorized, Reason: "admin key required: send Authorization: Bearer KEY or log in"}
	}
	if !safeMethod(r.Method) && !g.csrfOK(r, s) {
		return Decision{Status: http.StatusForbidden, Reason: "missing or invalid CSRF token"}
	}
	return Decision{Actor: "session", Session: s}
}

func (g *Guard) checkKeyless(r *http.Request) Decision {
	if g.cfg.Insecure && len(g.allowed) == 0 {
		return Decision{Actor: "anonymous"}
	}
	if !g.hostAllowed(r.Host) {
		return Decision{Status: http.StatusForbidden, Reason: "Host " + quote(r.Host) + " is not allowed: use a loopback address or add it to LUTHIEN_ALLOWED_HOSTS"}
	}
	ip := peerIP(r)
	if !g.cfg.Insecure && (ip == nil || !ip.IsLoopback()) {
		return Decision{Status: http.StatusForbidden, Reason: "the admin surface answers only to loopback clients until LUTHIEN_ADMIN_API_KEY is set"}
	}
	if g.cfg.Insecure {
		return Decision{Actor: "anonymous"}
	}
	return Decision{Actor: "loopback"}
}

// Protect wraps an admin handler: refused requests get a JSON error (or,
// from a browser asking for a page, a redirect to the login page).
func (g *Guard) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := g.Check(r)
		if !d.OK() {
			g.refuse(w, r, d)
			return
		}
		r.Header.Set(ActorHeader, d.Actor)
		h.ServeHTTP(w, r)
	})
}

// refuse answers a refused request.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, d Decision) {
	if d.Status == http.StatusUnauthorized && r.Method == http.MethodGet && wantsHTML(r) {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if d.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="luthien-admin"`)
	}
	WriteError(w, d.Status, d.Reason)
}

// WriteError writes an admin API error as JSON.
func WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
}

// KeyMatches compares a presented key with the admin key in constant time
// (for equal lengths; the length itself is not secret).
func (g *Guard) KeyMatches(key string) bool {
	if g.cfg.Key == "" {
		return false
	}
	a := sha256.Sum256([]byte(key))
	b := sha256.Sum256([]byte(g.cfg.Key))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// hostAllowed accepts loopback names and addresses and the allowed hosts.
func (g *Guard) hostAllowed(hostport string) bool {
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return g.allowed[host]
}

// peerIP is the address of the connection itself: forwarding headers
// (X-Forwarded-For, Forwarded, X-Real-IP) are never consulted.
func peerIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return net.ParseIP(host)
}

// sameOrigin refuses state-changing requests a browser sent from another
// origin. Browsers send Origin (and Sec-Fetch-Site) on such requests;
// non-browser clients send neither and are judged by their credentials.
func sameOrigin(r *http.Request) bool {
	if safeMethod(r.Method) {
		return true
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
