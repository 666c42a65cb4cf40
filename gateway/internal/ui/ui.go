// Package ui serves the gateway's web pages: status and client set-up,
// the live activity monitor, recorded calls with their diffs, sessions as
// transcripts, policy management and the routing table. Pages are
// rendered on the server from html/template (whose contextual escaping
// keeps model output and every other recorded text inert) over the same
// gRPC services the REST API maps, and the routing table's holder; live
// parts read the activity feed over SSE. Templates, styles and scripts
// are embedded in the binary.
package ui

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"luthien.dev/gateway/internal/admin"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the pages read from and how they are protected.
type Config struct {
	Guard   *admin.Guard
	History cpv1.HistoryServiceClient
	Policy  cpv1.PolicyAdminServiceClient
	Health  healthpb.HealthClient
	// Routes is the routing table the routes page shows; nil: the page
	// says there is none.
	Routes RouteTable
	// Mode says how the control plane runs: "in-process" or its address.
	Mode string
	Log  *slog.Logger
}

// UI is the set of pages.
type UI struct {
	cfg   Config
	pages map[string]*template.Template
}

// Routes is where the pages are registered: Admin routes are behind the
// admin guard, Public ones answer anyone.
type Routes interface {
	Admin(pattern string, h http.Handler)
	Public(pattern string, h http.Handler)
}

// pageFiles are the page templates; each is rendered inside layout.html.
var pageFiles = []string{"login.html", "home.html", "activity.html", "calls.html", "call.html",
	"sessions.html", "session.html", "policy.html", "routes.html", "error.html"}

// New parses the templates.
func New(cfg Config) (*UI, error) {
	u := &UI{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range pageFiles {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		u.pages[name] = t
	}
	return u, nil
}

// Register adds every page to r.
func (u *UI) Register(r Routes) {
	static, _ := fs.Sub(staticFS, "static")
	r.Public("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(static))))
	r.Public("GET /login", http.HandlerFunc(u.loginPage))
	r.Public("POST /login", http.HandlerFunc(u.login))
	r.Admin("POST /logout", http.HandlerFunc(u.logout))
	r.Admin("GET /{$}", http.HandlerFunc(u.home))
	r.Admin("GET /activity", http.HandlerFunc(u.activity))
	r.Admin("GET /calls", http.HandlerFunc(u.calls))
	r.Admin("GET /calls/{id}", http.HandlerFunc(u.call))
	r.Admin("GET /sessions", http.HandlerFunc(u.sessions))
	r.Admin("GET /sessions/{id}", http.HandlerFunc(u.session))
	r.Admin("GET /sessions/{id}/export", http.HandlerFunc(u.exportSession))
	r.Admin("GET /sessions/{id}/turns", http.HandlerFunc(u.sessionTurns))
	r.Admin("GET /policy", http.HandlerFunc(u.policy))
	r.Admin("POST /policy/parse", http.HandlerFunc(u.parsePolicy))
	r.Admin("GET /routes", http.HandlerFunc(u.routesPage))
}

// staticHandler serves embedded assets with their security headers.
func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
