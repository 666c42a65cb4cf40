package routesapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/routes"
)

// Routes is where the API's routes are registered: behind the admin guard.
type Routes interface {
	Admin(pattern string, h http.Handler)
}

// Register adds GET and PUT /api/routes to r, as admin routes.
func (h *Holder) Register(r Routes) {
	r.Admin("GET /api/routes", http.HandlerFunc(h.get))
	r.Admin("PUT /api/routes", http.HandlerFunc(h.put))
}

// get answers the table in effect.
func (h *Holder) get(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.State())
}

// yamlTypes are the content types a new table may be sent as ("" too:
// a client that names none).
var yamlTypes = map[string]bool{"": true, "application/yaml": true, "application/x-yaml": true,
	"text/yaml": true, "text/x-yaml": true, "text/plain": true}

// put replaces the table with the YAML routes file of the body: 400 with
// the parser's error when it is invalid (the table in effect stays), 413
// beyond the file's bound, else the new table's description.
func (h *Holder) put(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			mt = "invalid"
		}
		ct = mt
	}
	if !yamlTypes[ct] {
		admin.WriteError(w, http.StatusUnsupportedMediaType,
			"send the routes file as YAML text: Content-Type application/yaml or text/plain")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, routes.MaxFileSize))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			admin.WriteError(w, http.StatusRequestEntityTooLarge,
				"the routes file is larger than "+strconv.Itoa(routes.MaxFileSize)+" bytes")
			return
		}
		admin.WriteError(w, http.StatusBadRequest, "reading the routes file: "+err.Error())
		return
	}
	s, err := h.Replace(data, r.Header.Get(admin.ActorHeader))
	if err != nil {
		admin.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
