package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/dialect"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// models serves GET /v1/models and /v1/models/{id}. With a routing table
// that names models, the gateway answers them itself, in the client's
// format: every model a route names (its upstream model, or its pattern
// when that has no wildcard). The default providers' own lists are not
// merged in: a client sees the models the routes promise. Without such a
// table the request goes to the format's provider, as before.
func (p *Proxy) models(w http.ResponseWriter, r *http.Request) {
	d := dialectFor(r)
	if !checkPath(w, r, d, routeCountTokens, routeModels, routeModel) {
		return
	}
	names := p.routes.Load().Models()
	if len(names) == 0 || r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/count_tokens") {
		p.forwardTo(w, r, d)
		return
	}
	if !p.authenticate(w, r, d) {
		return
	}
	id := r.PathValue("id")
	if id != "" {
		if !slices.Contains(names, id) {
			WriteError(w, d, http.StatusNotFound, "not_found_error", "model "+strconv.Quote(id)+" is not routed by this gateway")
			return
		}
		writeJSONBody(w, modelObject(d, id))
		return
	}
	writeJSONBody(w, modelList(d, names))
}

// modelObject is one model in the format of d.
func modelObject(d dialect.Dialect, id string) []byte {
	var o jsonx.Object
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		o.Set("id", jsonx.String(id))
		o.Set("object", jsonx.String("model"))
		o.Set("created", []byte("0"))
		o.Set("owned_by", jsonx.String("luthien"))
	} else {
		o.Set("type", jsonx.String("model"))
		o.Set("id", jsonx.String(id))
		o.Set("display_name", jsonx.String(id))
		o.Set("created_at", jsonx.String("1970-01-01T00:00:00Z"))
	}
	return o.Encode()
}

// modelList is the list of models in the format of d.
func modelList(d dialect.Dialect, ids []string) []byte {
	items := make([]byte, 0, 64*len(ids))
	items = append(items, '[')
	for i, id := range ids {
		if i > 0 {
			items = append(items, ',')
		}
		items = append(items, modelObject(d, id)...)
	}
	items = append(items, ']')
	var o jsonx.Object
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		o.Set("object", jsonx.String("list"))
		o.Set("data", items)
	} else {
		o.Set("data", items)
		o.Set("has_more", []byte("false"))
		o.Set("first_id", jsonx.String(ids[0]))
		o.Set("last_id", jsonx.String(ids[len(ids)-1]))
	}
	return o.Encode()
}

func writeJSONBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
