package routes

import (
	"fmt"

	"luthien.dev/gateway/internal/provider"
)

// CrossProvider reports whether the route's provider speaks another API
// than the client's format: the request is translated, and the client's
// own credential must not be sent upstream.
func (r Route) CrossProvider(client provider.Kind) bool {
	return r.Provider.Kind != client
}

// Key returns the key to send the route's provider (with
// provider.Provider.SetKey) for a client of format client; passthrough is
// true when the gateway has no client key of its own and passes clients'
// credentials through.
//
// The provider's configured key, when set, is always the answer. Without
// one, "" and nil mean: pass the client's credential through on a
// same-kind route in passthrough mode, send no key otherwise. A
// cross-provider route without a configured key in passthrough mode is an
// error: the client's own key is never sent to another provider.
func (r Route) Key(client provider.Kind, passthrough bool) (string, error) {
	if r.Provider.Key != "" {
		return r.Provider.Key, nil
	}
	if passthrough && r.CrossProvider(client) {
		return "", fmt.Errorf("routes: route %d (%q -> provider %q): provider %q (%s) has no api_key_env, "+
			"and the client's own %s key is not sent to another provider: set api_key_env on %q",
			r.Index, r.Pattern, r.ProviderName, r.ProviderName, r.Provider.Kind, client, r.ProviderName)
	}
	return "", nil
}
