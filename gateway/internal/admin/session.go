package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieName is the session cookie.
const CookieName = "luthien_session"

// maxRevoked bounds the logged-out sessions remembered until they expire.
const maxRevoked = 10000

// Session is a browser's login: the cookie carries its nonce and expiry,
// signed with a secret derived from the admin key.
type Session struct {
	Nonce   string
	Expires time.Time
	// CSRF is the token state-changing requests of this session carry.
	CSRF string
}

var b64 = base64.RawURLEncoding

// Login starts a session for a browser that presented the key and sets
// its cookie. It reports false (and counts a failed attempt) when the key
// is wrong, and refuses outright after too many failures from one address.
func (g *Guard) Login(w http.ResponseWriter, r *http.Request, key string) (ok bool, reason string) {
	if g.cfg.Key == "" {
		return false, "no admin key is configured: nothing to log in to"
	}
	ip := peerIP(r)
	if g.limiter.blocked(ip) {
		return false, "too many failed attempts; try again in a minute"
	}
	if !g.KeyMatches(key) {
		g.limiter.fail(ip)
		return false, "wrong admin key"
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	payload := "v1|" + strconv.FormatInt(g.cfg.Now().Add(g.cfg.SessionTTL).Unix(), 10) + "|" + hex.EncodeToString(raw[:])
	value := b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(g.sign("cookie", payload))
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(g.cfg.SessionTTL / time.Second)})
	return true, ""
}

// Logout ends the request's session: its cookie is cleared and the
// session refused from now on by this gateway, even if replayed.
func (g *Guard) Logout(w http.ResponseWriter, r *http.Request) {
	if s := g.session(r); s != nil {
		g.mu.Lock()
		now := g.cfg.Now()
		for n, exp := range g.revoked {
			if !exp.After(now) {
				delete(g.revoked, n)
			}
		}
		if len(g.revoked) < maxRevoked {
			g.revoked[s.Nonce] = s.Expires
		}
		g.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
}

// SessionOf returns the request's valid session, or nil.
func (g *Guard) SessionOf(r *http.Request) *Session { return g.session(r) }

func (g *Guard) session(r *http.Request) *Session {
	if g.cfg.Key == "" {
		return nil
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	enc, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil
	}
	payload, err1 := b64.DecodeString(enc)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, g.sign("cookie", string(payload))) {
		return nil
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil
	}
	exp := time.Unix(unix, 0)
	if !exp.After(g.cfg.Now()) {
		return nil
	}
	g.mu.Lock()
	_, revoked := g.revoked[parts[2]]
	g.mu.Unlock()
	if revoked {
		return nil
	}
	return &Session{Nonce: parts[2], Expires: exp, CSRF: b64.EncodeToString(g.sign("csrf", parts[2]))}
}

// CSRFToken is the token the pages embed for r's session ("" without one).
func (g *Guard) CSRFToken(r *http.Request) string {
	if s := g.session(r); s != nil {
		return s.CSRF
	}
	return ""
}

func (g *Guard) csrfOK(r *http.Request, s *Session) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue("csrf")
	}
	return got != "" && hmac.Equal([]byte(got), []byte(s.CSRF))
}

func (g *Guard) sign(purpose, payload string) []byte {
	mac := hmac.New(sha256.New, g.secret)
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write([]byte(payload))
	return mac.Sum(nil)
}
