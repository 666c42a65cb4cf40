package ui

import (
	"net/http"

	"luthien.dev/gateway/internal/routesapi"
)

// RouteTable is the routing table the routes page shows (routesapi.Holder).
type RouteTable interface {
	State() routesapi.State
}

// routesData is the routes page: the table in effect, the endpoints'
// own providers and the editor's starting text.
type routesData struct {
	routesapi.State
	// Available is false when the gateway has no routing table holder
	// (the page then says so instead of offering an editor).
	Available bool
	// Actor is who this request was authenticated as: changes from the
	// page are recorded as made by it.
	Actor string
}

// routesPage renders the routing table: its providers, its routes in
// order, what happens without a match, and an editor whose script
// replaces the table through PUT /api/routes.
func (u *UI) routesPage(w http.ResponseWriter, r *http.Request) {
	d := routesData{Actor: actor(r)}
	if u.cfg.Routes != nil {
		d.State, d.Available = u.cfg.Routes.State(), true
	}
	u.render(w, r, "routes.html", http.StatusOK, page{Title: "Routes", Nav: "routes", Data: d})
}
