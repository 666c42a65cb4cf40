package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/gateway/internal/admin"
)

// page is what every template gets: the layout's parts and the page's
// own data.
type page struct {
	Title string
	// Nav names the navigation entry to highlight.
	Nav string
	// CSRF is the session's token, for forms and scripts.
	CSRF string
	// Keyless: the admin surface has no key (the banner says so).
	Keyless bool
	// LoggedIn: a browser session is open (the logout button shows).
	LoggedIn bool
	Data     any
}

// contentSecurityPolicy allows the page's own scripts and styles only: no
// inline script, so markup that slipped through could not run anyway.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// render writes a page. It renders into a buffer first, so that a
// template error gives a clean 500 instead of half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, name string, status int, p page) {
	p.Keyless = !u.cfg.Guard.HasKey()
	if s := u.cfg.Guard.SessionOf(r); s != nil {
		p.CSRF, p.LoggedIn = s.CSRF, true
	}
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.cfg.Log.ErrorContext(r.Context(), "rendering a page", "page", name, "err", err)
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with form posts, which the origin checks refuse.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page for a failed control-plane query.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	code := http.StatusBadGateway
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
		switch st.Code().String() {
		case "NotFound":
			code = http.StatusNotFound
		case "InvalidArgument":
			code = http.StatusBadRequest
		}
	}
	u.render(w, r, "error.html", code, page{Title: what, Data: map[string]any{"What": what, "Message": msg, "Status": code}})
}

// actor is who the guard authenticated the request as.
func actor(r *http.Request) string { return r.Header.Get(admin.ActorHeader) }

var funcs = template.FuncMap{
	"ts": func(t *timestamppb.Timestamp) string {
		if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
			return ""
		}
		return t.AsTime().UTC().Format("2006-01-02 15:04:05.000")
	},
	"tsISO": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().UTC().Format(time.RFC3339Nano)
	},
	"ms": func(v float64) string {
		if v == 0 {
			return "–"
		}
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.0f ms", v)
	},
	// pretty renders any JSON-able value as indented JSON text (to be
	// shown as text, never as markup).
	"pretty": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	},
	"lower":   strings.ToLower,
	"trimFmt": func(s string) string { return strings.ToLower(strings.TrimPrefix(s, "CLIENT_FORMAT_")) },
	"add":     func(a, b int) int { return a + b },
}
