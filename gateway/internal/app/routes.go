package app

import (
	"net/http"

	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/telemetry"
)

// Access says who may use a route.
type Access int

const (
	// Public routes answer anyone: health, readiness, the login page and
	// the UI's static files.
	Public Access = iota
	// Client routes are the LLM APIs; they check the client key
	// (LUTHIEN_CLIENT_API_KEY) themselves.
	Client
	// Admin routes are behind the admin guard: the UI's pages, /api/ and
	// /metrics.
	Admin
)

func (a Access) String() string {
	switch a {
	case Public:
		return "public"
	case Client:
		return "client"
	default:
		return "admin"
	}
}

// Route is one registered pattern and who may use it.
type Route struct {
	Pattern string
	Access  Access
}

// router registers every route through one place, so that each route's
// access is declared where it is added and the full table can be listed
// (the admin-route tests walk it).
type router struct {
	mux    *http.ServeMux
	guard  *admin.Guard
	routes []Route
	// metrics counts and times each route's requests; nil: not counted.
	metrics *telemetry.Metrics
}

func newRouter(guard *admin.Guard) *router {
	return &router{mux: http.NewServeMux(), guard: guard}
}

func (rt *router) add(access Access, pattern string, h http.Handler) {
	if access == Admin {
		h = rt.guard.Protect(h)
	}
	// Outside the guard: refused requests are counted too.
	h = rt.metrics.Route(telemetry.RouteName(pattern), h)
	rt.mux.Handle(pattern, h)
	rt.routes = append(rt.routes, Route{Pattern: pattern, Access: access})
}

// Admin registers a route behind the admin guard.
func (rt *router) Admin(pattern string, h http.Handler) { rt.add(Admin, pattern, h) }

// Public registers a route anyone may use.
func (rt *router) Public(pattern string, h http.Handler) { rt.add(Public, pattern, h) }

// clientRoutes registers the proxy's routes as client routes.
type clientRoutes struct{ rt *router }

func (c clientRoutes) Handle(pattern string, h http.Handler) { c.rt.add(Client, pattern, h) }
