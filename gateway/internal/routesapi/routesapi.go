// Package routesapi changes the gateway's routing table at run time: it
// holds the YAML text of the table in effect and who last replaced it,
// and serves the admin API over it (GET and PUT /api/routes). The table
// itself lives in the proxy, which routes each call by the table it holds
// when the call starts.
//
// A replaced table lives in memory only: it lasts until the gateway
// restarts, when LUTHIEN_ROUTES is read again; the file is never written.
package routesapi

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"luthien.dev/gateway/internal/routes"
)

// Note is what every answer, the page and the docs say about a change.
const Note = "A table set here lasts until the gateway restarts: the routes file is not written, " +
	"and at start the gateway reads LUTHIEN_ROUTES again."

// Swapper is where the table in effect lives (the proxy).
type Swapper interface {
	Routes() *routes.Table
	SetRoutes(t *routes.Table)
}

// Default is where requests no route matches go: each endpoint's own
// provider.
type Default struct {
	Endpoint string `json:"endpoint"`
	Kind     string `json:"kind"`
	BaseURL  string `json:"base_url"`
}

// Config configures a Holder.
type Config struct {
	// Proxy holds the table in effect.
	Proxy Swapper
	// Path is LUTHIEN_ROUTES, the file the table in effect at start was
	// loaded from ("" when none); its text is read once, to be shown.
	Path string
	// Defaults are the endpoints' providers, shown as what happens
	// without a match.
	Defaults []Default
	// Getenv resolves api_key_env in a new table (os.Getenv when nil),
	// as the configuration did at start.
	Getenv func(string) string
	// KeyEnvs are the key variables a table set at run time may name for
	// any provider (LUTHIEN_ROUTES_KEY_ENVS). Besides them, it may name a
	// variable only for a provider at the base URL the table loaded at
	// start gave it: whoever holds the admin surface can change where
	// calls go, not send the operator's provider keys to a host the
	// operator did not pair them with.
	KeyEnvs []string
	Log     *slog.Logger
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// State is the table in effect as the API answers it: its text, where it
// came from, its providers and routes without keys or header values, and
// who replaced it last.
type State struct {
	// Source is the YAML text of the table in effect ("" when there is
	// none, or when the file could not be read again after start).
	Source string `json:"source"`
	// Path is LUTHIEN_ROUTES ("" when unset).
	Path      string                `json:"path"`
	Providers []routes.ProviderInfo `json:"providers"`
	Routes    []routes.RouteInfo    `json:"routes"`
	// Defaults are the endpoints' own providers, for models no route
	// matches.
	Defaults []Default `json:"defaults"`
	// ChangedBy and ChangedAt (RFC 3339 to the millisecond, UTC) say who replaced the table
	// and when; both "" while the table is the one loaded at start.
	ChangedBy string `json:"changed_by"`
	ChangedAt string `json:"changed_at"`
	Note      string `json:"note"`
}

// timeFormat is RFC 3339 to the millisecond.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Holder keeps the text of the table in effect and its change record,
// and replaces the table in the proxy.
type Holder struct {
	cfg Config

	// keyHosts pairs each key variable of the table loaded at start with
	// the base URLs it was sent to.
	keyHosts map[string]map[string]bool

	mu        sync.Mutex // held across a replacement, so that text and table agree
	source    string
	changedBy string
	changedAt time.Time
}

// New returns a Holder over the table the proxy holds, reading the text
// of cfg.Path (a file that cannot be read leaves the text empty, with a
// warning: the table in effect is still the one loaded at start).
func New(cfg Config) *Holder {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Holder{cfg: cfg, keyHosts: map[string]map[string]bool{}}
	for _, p := range cfg.Proxy.Routes().Describe().Providers {
		if p.APIKeyEnv != "" {
			if h.keyHosts[p.APIKeyEnv] == nil {
				h.keyHosts[p.APIKeyEnv] = map[string]bool{}
			}
			h.keyHosts[p.APIKeyEnv][p.BaseURL] = true
		}
	}
	if cfg.Path != "" {
		src, err := readSource(cfg.Path)
		if err != nil {
			cfg.Log.Warn("the routes file could not be read again to show its text", "path", cfg.Path, "err", err)
		}
		h.source = src
	}
	return h
}

// readSource reads a routes file's text, within the file's bound.
func readSource(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, routes.MaxFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > routes.MaxFileSize {
		return "", fmt.Errorf("larger than %d bytes", routes.MaxFileSize)
	}
	return string(b), nil
}

// State describes the table in effect.
func (h *Holder) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stateLocked()
}

func (h *Holder) stateLocked() State {
	d := h.cfg.Proxy.Routes().Describe()
	s := State{Source: h.source, Path: h.cfg.Path, Providers: d.Providers, Routes: d.Routes,
		Defaults: h.cfg.Defaults, ChangedBy: h.changedBy, Note: Note}
	if s.Defaults == nil {
		s.Defaults = []Default{}
	}
	if !h.changedAt.IsZero() {
		s.ChangedAt = h.changedAt.UTC().Format(timeFormat)
	}
	return s
}

// Replace parses data as a routes file (api_key_env resolved from the
// gateway's environment) and, when it is valid, makes it the table in
// effect for the calls that start afterwards, recorded as changed by
// actor. An invalid table changes nothing; the error is the parser's,
// which names the provider or route at fault and never holds a key.
func (h *Holder) Replace(data []byte, actor string) (State, error) {
	t, err := routes.Parse(data, h.cfg.Getenv)
	if err == nil {
		err = h.checkKeys(t)
	}
	if err != nil {
		h.cfg.Log.Info("routing table change refused", "actor", actor, "err", err)
		return State{}, err
	}
	h.mu.Lock()
	h.cfg.Proxy.SetRoutes(t)
	h.source = string(data)
	h.changedBy = actor
	h.changedAt = h.cfg.Now()
	s := h.stateLocked()
	h.mu.Unlock()
	// Table.String names key variables, never keys.
	h.cfg.Log.Info("routing table changed", "actor", actor, "providers", len(s.Providers), "routes", len(s.Routes),
		"table", t.String())
	return s, nil
}

// checkKeys refuses a table that would send a key variable to a base URL
// neither the start-up table nor LUTHIEN_ROUTES_KEY_ENVS allows.
func (h *Holder) checkKeys(t *routes.Table) error {
	for _, p := range t.Describe().Providers {
		if p.APIKeyEnv == "" || slices.Contains(h.cfg.KeyEnvs, p.APIKeyEnv) || h.keyHosts[p.APIKeyEnv][p.BaseURL] {
			continue
		}
		return fmt.Errorf("routes: provider %q: api_key_env $%s may be sent only to the base URL the routes file loaded at start gave it, "+
			"unless LUTHIEN_ROUTES_KEY_ENVS lists it: a table set at run time cannot send a key to a new host", p.Name, p.APIKeyEnv)
	}
	return nil
}

// PublicURL is a base URL as the page and the API show it: without user
// information.
func PublicURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
