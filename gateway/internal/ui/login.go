package ui

import (
	"net/http"
	"strings"
)

// loginPage shows the login form (nothing to log in to without a key).
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if !u.cfg.Guard.HasKey() || u.cfg.Guard.SessionOf(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	u.render(w, r, "login.html", http.StatusOK, page{Title: "Log in", Data: map[string]any{"Next": next}})
}

// login checks the key a browser sent and opens a session.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if origin := r.Header.Get("Origin"); origin != "" && !sameHost(origin, r.Host) {
		u.render(w, r, "login.html", http.StatusForbidden, page{Title: "Log in", Data: map[string]any{"Error": "cross-origin login refused"}})
		return
	}
	next := safeNext(r.PostFormValue("next"))
	ok, reason := u.cfg.Guard.Login(w, r, r.PostFormValue("key"))
	if !ok {
		code := http.StatusUnauthorized
		if strings.HasPrefix(reason, "too many") {
			code = http.StatusTooManyRequests
		}
		u.render(w, r, "login.html", code, page{Title: "Log in", Data: map[string]any{"Next": next, "Error": reason}})
		return
	}
	u.cfg.Log.InfoContext(r.Context(), "admin login", "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session.
func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	u.cfg.Guard.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps redirects on this site: a path, never a scheme or a
// protocol-relative URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

func sameHost(origin, host string) bool {
	rest, ok := strings.CutPrefix(origin, "http://")
	if !ok {
		rest, ok = strings.CutPrefix(origin, "https://")
	}
	return ok && strings.EqualFold(rest, host)
}
