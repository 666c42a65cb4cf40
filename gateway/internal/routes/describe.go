package routes

import "slices"

// Description is a table as plain values, for the admin API and the web
// UI: the providers and the routes in file order. It holds no key and no
// header value: a provider shows the name of its key variable, whether a
// key was found there, and the names of its headers only.
type Description struct {
	Providers []ProviderInfo `json:"providers"`
	Routes    []RouteInfo    `json:"routes"`
}

// ProviderInfo describes a provider of the table.
type ProviderInfo struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	BaseURL string `json:"base_url"`
	// APIKeyEnv is the variable holding the provider's key ("" when the
	// file names none); KeySet says whether a key was read from it.
	APIKeyEnv string `json:"api_key_env"`
	KeySet    bool   `json:"key_set"`
	// Headers are the names (canonical, sorted) of the provider's extra
	// request headers; never their values.
	Headers []string `json:"headers"`
}

// RouteInfo describes a route of the table.
type RouteInfo struct {
	// Index is the route's position in the file, from 0: the first
	// route that matches wins.
	Index    int    `json:"index"`
	Match    string `json:"match"`
	Provider string `json:"provider"`
	// Model is the model sent upstream; "" sends the client's.
	Model string `json:"model"`
}

// Describe returns the table's providers and routes without keys or
// header values. A nil table describes as empty lists (never nil, so that
// they encode as [] in JSON).
func (t *Table) Describe() Description {
	d := Description{Providers: []ProviderInfo{}, Routes: []RouteInfo{}}
	if t == nil {
		return d
	}
	for _, e := range t.providers {
		names := make([]string, 0, len(e.headers))
		for n := range e.headers {
			names = append(names, n)
		}
		slices.Sort(names)
		d.Providers = append(d.Providers, ProviderInfo{
			Name:      e.name,
			Kind:      string(e.kind),
			BaseURL:   e.baseURL,
			APIKeyEnv: e.keyEnv,
			KeySet:    e.keyEnv != "" && e.key() != "",
			Headers:   names,
		})
	}
	for _, r := range t.rules {
		d.Routes = append(d.Routes, RouteInfo{Index: r.index, Match: r.match, Provider: r.prov.name, Model: r.model})
	}
	return d
}
