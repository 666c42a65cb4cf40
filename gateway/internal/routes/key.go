package routes

import (
	"fmt"

	"luthien.dev/gateway/internal/provider"
)

// CrossProvider reports whether the route's provider speaks another API
// than the client's format: the request is translated.
func (r Route) CrossProvider(client provider.Kind) bool {
	return r.Provider.Kind != client
}

// Credential is what a routed request sends upstream as its credential.
type Credential struct {
	// Key is the gateway's key for the route's provider, set on the
	// request with provider.Provider.SetKey; "" sends none.
	Key string
	// PassClient keeps the client's own credential on the request: only
	// in passthrough mode, to the provider the credential was meant for.
	PassClient bool
}

// Credential decides the credential of a request the route serves, from
// a client whose format's default provider is home; passthrough is true
// when the gateway has no client key of its own and passes clients'
// credentials through.
//
// A client's credential is never sent to a provider other than the one it
// was meant for, its format's default provider (same kind and base URL):
//
//   - the route's provider has a configured key: that key, always, and
//     never the client's;
//   - without one, in passthrough mode, to the client's own default
//     provider: the client's credential passes, as it would unrouted;
//   - without one, in passthrough mode, to a provider of another kind: an
//     error (the request is refused: the client's key cannot go there and
//     the gateway has none);
//   - otherwise no key at all (a local server that needs none).
func (r Route) Credential(home provider.Provider, passthrough bool) (Credential, error) {
	switch {
	case r.Provider.Key != "":
		return Credential{Key: r.Provider.Key}, nil
	case !passthrough:
		return Credential{}, nil
	case r.Provider.Kind == home.Kind && r.Provider.BaseURL == home.BaseURL:
		return Credential{PassClient: true}, nil
	case r.CrossProvider(home.Kind):
		return Credential{}, fmt.Errorf("model routed by route %d (%q) to provider %q (%s), which has no api_key_env; "+
			"the client's own %s key is not sent to another provider: set api_key_env on %q",
			r.Index, r.Pattern, r.ProviderName, r.Provider.Kind, home.Kind, r.ProviderName)
	}
	return Credential{}, nil
}
