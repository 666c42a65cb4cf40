package routes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"

	"luthien.dev/gateway/internal/provider"
)

// Limits of a routes file.
const (
	MaxFileSize  = 1 << 20 // bytes
	MaxProviders = 256
	MaxRoutes    = 1024
	MaxModelLen  = 256 // bytes, of a pattern, a route's model or a looked-up model
)

var (
	providerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// forbidden are the headers a provider's headers may not set, with why.
var forbidden = map[string]string{
	"Connection":          "a hop-by-hop header",
	"Keep-Alive":          "a hop-by-hop header",
	"Proxy-Authenticate":  "a hop-by-hop header",
	"Proxy-Authorization": "a hop-by-hop header",
	"Proxy-Connection":    "a hop-by-hop header",
	"Te":                  "a hop-by-hop header",
	"Trailer":             "a hop-by-hop header",
	"Transfer-Encoding":   "a hop-by-hop header",
	"Upgrade":             "a hop-by-hop header",
	"Host":                "set by the gateway",
	"Content-Length":      "set by the gateway",
	"Content-Type":        "set by the gateway",
	"Content-Encoding":    "set by the gateway",
	"Accept-Encoding":     "set by the gateway",
	"Authorization":       "keys are set only through api_key_env",
	"X-Api-Key":           "keys are set only through api_key_env",
}

// fileSpec is a routes file as written.
type fileSpec struct {
	Providers map[string]providerSpec `yaml:"providers"`
	Routes    []routeSpec             `yaml:"routes"`
}

type providerSpec struct {
	Kind      string            `yaml:"kind"`
	BaseURL   string            `yaml:"base_url"`
	APIKeyEnv string            `yaml:"api_key_env"`
	Headers   map[string]string `yaml:"headers"`
}

type routeSpec struct {
	Match    string  `yaml:"match"`
	Provider string  `yaml:"provider"`
	Model    *string `yaml:"model"`
}

// Load reads and parses the routes file at path; getenv (os.Getenv when
// nil) resolves api_key_env.
func Load(path string, getenv func(string) string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("routes: read %s: %w", path, err)
	}
	t, err := parse(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("routes: %s: %w", path, err)
	}
	return t, nil
}

// Parse parses and validates a routes file; getenv (os.Getenv when nil)
// resolves api_key_env. An empty file is an empty table. Errors name the
// provider or the route (by its index from 0) and the key at fault.
func Parse(data []byte, getenv func(string) string) (*Table, error) {
	t, err := parse(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return t, nil
}

func parse(data []byte, getenv func(string) string) (*Table, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file larger than %d bytes", MaxFileSize)
	}
	order, err := providerOrder(data)
	if err != nil {
		return nil, err
	}
	var spec fileSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(spec.Providers) > MaxProviders {
		return nil, fmt.Errorf("providers: %d providers, at most %d", len(spec.Providers), MaxProviders)
	}
	if len(spec.Routes) > MaxRoutes {
		return nil, fmt.Errorf("routes: %d routes, at most %d", len(spec.Routes), MaxRoutes)
	}

	t := &Table{}
	byName := make(map[string]*entry, len(spec.Providers))
	for _, name := range completeOrder(order, spec.Providers) {
		e, err := newEntry(name, spec.Providers[name], getenv)
		if err != nil {
			return nil, err
		}
		t.providers = append(t.providers, e)
		byName[name] = e
	}
	for i, rs := range spec.Routes {
		r, err := newRule(i, rs, byName)
		if err != nil {
			return nil, err
		}
		t.rules = append(t.rules, r)
	}
	return t, nil
}

// providerOrder returns the provider names in the order the file gives
// them, and refuses a name given twice or a second document.
func providerOrder(data []byte) ([]string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil // the strict decoding says what is wrong
	}
	top := doc.Content[0]
	var providers *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "providers" {
			providers = top.Content[i+1]
		}
	}
	if providers == nil || providers.Kind != yaml.MappingNode {
		return nil, nil
	}
	var names []string
	line := make(map[string]int)
	for i := 0; i+1 < len(providers.Content); i += 2 {
		k := providers.Content[i]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			continue
		}
		if first, ok := line[k.Value]; ok {
			return nil, fmt.Errorf("providers: provider %q defined twice (lines %d and %d)", k.Value, first, k.Line)
		}
		line[k.Value] = k.Line
		names = append(names, k.Value)
	}
	return names, nil
}

// completeOrder keeps the names of order that specs has, then adds the
// others (merged in through YAML aliases) sorted.
func completeOrder(order []string, specs map[string]providerSpec) []string {
	names := make([]string, 0, len(specs))
	seen := make(map[string]bool, len(specs))
	for _, n := range order {
		if _, ok := specs[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range specs {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// newEntry validates a provider; its errors name the provider and the key
// and never hold the key's value.
func newEntry(name string, s providerSpec, getenv func(string) string) (*entry, error) {
	if !providerName.MatchString(name) {
		return nil, fmt.Errorf("providers: invalid provider name %q: want letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64 bytes", name)
	}
	fail := func(key, format string, args ...any) error {
		return fmt.Errorf("provider %q: %s: %s", name, key, fmt.Sprintf(format, args...))
	}
	kind := provider.Kind(s.Kind)
	switch {
	case s.Kind == "":
		return nil, fail("kind", "missing: want %q or %q", provider.OpenAI, provider.Anthropic)
	case kind != provider.OpenAI && kind != provider.Anthropic:
		return nil, fail("kind", "unknown kind %q: want %q or %q", s.Kind, provider.OpenAI, provider.Anthropic)
	}
	if err := checkBaseURL(s.BaseURL); err != nil {
		return nil, fail("base_url", "%v", err)
	}
	var key string
	if s.APIKeyEnv != "" {
		if !envName.MatchString(s.APIKeyEnv) {
			return nil, fail("api_key_env", "invalid variable name %q: want [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes", s.APIKeyEnv)
		}
		if reservedEnv[s.APIKeyEnv] {
			return nil, fail("api_key_env", "$%s holds one of the gateway's own secrets, never sent to a provider", s.APIKeyEnv)
		}
		key = getenv(s.APIKeyEnv)
		if key == "" {
			return nil, fail("api_key_env", "$%s is unset or empty", s.APIKeyEnv)
		}
		if !httpguts.ValidHeaderFieldValue(key) {
			return nil, fail("api_key_env", "$%s holds characters not allowed in an HTTP header", s.APIKeyEnv)
		}
	}
	headers, err := checkHeaders(s.Headers)
	if err != nil {
		return nil, fail("headers", "%v", err)
	}
	return &entry{
		name:    name,
		kind:    kind,
		baseURL: strings.TrimRight(s.BaseURL, "/"),
		keyEnv:  s.APIKeyEnv,
		key:     func() string { return key },
		headers: headers,
	}, nil
}

// checkBaseURL accepts an http(s) URL with a host and without user
// information, query or fragment. Its errors never quote a URL holding
// user information.
func checkBaseURL(raw string) error {
	if raw == "" {
		return errors.New("missing: want an http:// or https:// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL: %v", err)
	}
	switch {
	case u.User != nil:
		return errors.New("user information is not allowed in the URL (keys come only through api_key_env)")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http:// or https:// URL", raw)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q: want a URL with a host", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q: a query is not allowed", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q: a fragment is not allowed", raw)
	}
	return nil
}

// checkHeaders validates a provider's extra headers and returns them with
// canonical names. Its errors never quote a value.
func checkHeaders(in map[string]string) (http.Header, error) {
	if len(in) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(in))
	for n := range in {
		names = append(names, n)
	}
	slices.Sort(names)
	h := make(http.Header, len(in))
	for _, n := range names {
		if !httpguts.ValidHeaderFieldName(n) {
			return nil, fmt.Errorf("invalid header name %q", n)
		}
		c := http.CanonicalHeaderKey(n)
		if why, ok := forbidden[c]; ok {
			return nil, fmt.Errorf("header %q may not be set: %s", n, why)
		}
		if _, dup := h[c]; dup {
			return nil, fmt.Errorf("header %q given twice (names are case-insensitive)", c)
		}
		if !httpguts.ValidHeaderFieldValue(in[n]) {
			return nil, fmt.Errorf("header %q: value holds characters not allowed in an HTTP header", n)
		}
		h[c] = []string{in[n]}
	}
	return h, nil
}

// newRule validates a route; its errors name the route's index.
func newRule(i int, s routeSpec, byName map[string]*entry) (*rule, error) {
	fail := func(key, format string, args ...any) error {
		return fmt.Errorf("route %d: %s: %s", i, key, fmt.Sprintf(format, args...))
	}
	if s.Match == "" {
		return nil, fail("match", "missing or empty: want a model name or a path.Match glob")
	}
	if err := checkName(s.Match); err != nil {
		return nil, fail("match", "%v", err)
	}
	if _, err := path.Match(s.Match, ""); err != nil {
		return nil, fail("match", "invalid pattern %q: %v", s.Match, err)
	}
	if s.Provider == "" {
		return nil, fail("provider", "missing: want the name of a provider")
	}
	e, ok := byName[s.Provider]
	if !ok {
		return nil, fail("provider", "unknown provider %q", s.Provider)
	}
	r := &rule{index: i, match: s.Match, prov: e}
	if s.Model != nil {
		if *s.Model == "" {
			return nil, fail("model", "empty: leave it out to send the client's model")
		}
		if err := checkName(*s.Model); err != nil {
			return nil, fail("model", "%v", err)
		}
		r.model = *s.Model
	}
	return r, nil
}

// checkName bounds a pattern or model name and refuses control characters.
func checkName(s string) error {
	if len(s) > MaxModelLen {
		return fmt.Errorf("%d bytes long, at most %d", len(s), MaxModelLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%q holds control characters", s)
	}
	return nil
}

// reservedEnv are the variables of the gateway's own secrets (and those of
// the in-process control plane): never a provider's key, whoever writes
// the table.
var reservedEnv = map[string]bool{
	"LUTHIEN_ADMIN_API_KEY": true, "LUTHIEN_CLIENT_API_KEY": true, "LUTHIEN_SESSION_SECRET": true,
	"LUTHIEN_CONTROL_PLANE_TOKEN": true, "DATABASE_URL": true, "REDIS_URL": true,
	"OTEL_EXPORTER_OTLP_HEADERS": true, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": true,
}
