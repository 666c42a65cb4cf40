package routes

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"luthien.dev/gateway/internal/provider"
)

// Table is a validated routing table. It is immutable and safe for
// concurrent use; a nil *Table routes nothing.
type Table struct {
	providers []*entry // in file order
	rules     []*rule  // in file order
}

// entry is a provider of the file.
type entry struct {
	name    string
	kind    provider.Kind
	baseURL string // without a trailing slash
	keyEnv  string
	// key is a function so that even printed field by field (as an
	// unexported field of another struct), the table shows no key.
	key     func() string
	headers http.Header // canonical names; nil without headers
}

// provider is the entry's upstream with its key.
func (e *entry) provider() provider.Provider {
	return provider.New(e.kind, e.baseURL, e.key())
}

// rule is a route of the file.
type rule struct {
	index int
	match string
	prov  *entry
	model string // "" keeps the client's model
}

// Route is the answer of a look-up: where a request for a model goes.
type Route struct {
	// Provider is the upstream, with the gateway's key for it ("" when
	// the file configures none).
	Provider provider.Provider
	// ProviderName is the provider's name in the file.
	ProviderName string
	// Headers are the provider's extra request headers (canonical names);
	// the caller's copy, nil when there are none.
	Headers http.Header
	// Model is the model to send upstream: the route's, else the client's.
	Model string
	// Index and Pattern identify the route in the file.
	Index   int
	Pattern string
}

// Route returns the route of the first rule whose pattern matches the
// whole model name; false when none does (or the name is empty or longer
// than MaxModelLen), and the request keeps its default provider.
func (t *Table) Route(model string) (Route, bool) {
	if t == nil || model == "" || len(model) > MaxModelLen {
		return Route{}, false
	}
	for _, r := range t.rules {
		if ok, _ := path.Match(r.match, model); !ok {
			continue
		}
		up := r.model
		if up == "" {
			up = model
		}
		return Route{
			Provider:     r.prov.provider(),
			ProviderName: r.prov.name,
			Headers:      r.prov.headers.Clone(),
			Model:        up,
			Index:        r.index,
			Pattern:      r.match,
		}, true
	}
	return Route{}, false
}

// Models returns the model names the table serves, for GET /v1/models:
// each route's model when it has one, else its pattern when that has no
// glob metacharacter; without duplicates, in route order.
func (t *Table) Models() []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, r := range t.rules {
		m := r.model
		if m == "" && !strings.ContainsAny(r.match, `*?[\`) {
			m = r.match
		}
		if m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Len is the number of routes.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.rules)
}

// String describes the table without any key: each provider's kind, base
// URL, key variable and header names, then each route.
func (t Table) String() string {
	var b strings.Builder
	b.WriteString("routes.Table{providers: [")
	for i, e := range t.providers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s %s", e.name, e.kind, e.baseURL)
		if e.keyEnv != "" {
			fmt.Fprintf(&b, " key=$%s", e.keyEnv)
		}
		if len(e.headers) > 0 {
			names := make([]string, 0, len(e.headers))
			for n := range e.headers {
				names = append(names, n)
			}
			slices.Sort(names)
			fmt.Fprintf(&b, " headers=%s", strings.Join(names, ","))
		}
	}
	b.WriteString("], routes: [")
	for i, r := range t.rules {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q -> %s", r.match, r.prov.name)
		if r.model != "" {
			fmt.Fprintf(&b, " model %q", r.model)
		}
	}
	b.WriteString("]}")
	return b.String()
}

// GoString is String, so that %#v shows no key either.
func (t Table) GoString() string { return t.String() }

// String describes the route without its key.
func (r Route) String() string {
	key := "none"
	if r.Provider.Key != "" {
		key = "configured"
	}
	var names []string
	for n := range r.Headers {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("routes.Route{route %d %q -> %s (%s %s, key %s, headers [%s]), model %q}",
		r.Index, r.Pattern, r.ProviderName, r.Provider.Kind, r.Provider.BaseURL, key, strings.Join(names, ","), r.Model)
}

// GoString is String, so that %#v shows no key either.
func (r Route) GoString() string { return r.String() }
