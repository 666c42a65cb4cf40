// Package config loads the gateway's configuration once at start-up:
// flags beat environment variables, which beat defaults. It is validated
// before anything listens.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"luthien.dev/gateway/internal/telemetry"
)

// InProcess is the LUTHIEN_CONTROL_PLANE value that links the control
// plane into the gateway.
const InProcess = "inprocess"

// Config is the gateway's configuration.
type Config struct {
	HTTPAddr         string
	ControlPlane     string // "inprocess", host:port or dns:///host:port
	OpenAIBaseURL    string
	AnthropicBaseURL string
	ClientAPIKey     string
	OpenAIAPIKey     string
	AnthropicAPIKey  string
	PolicyConfig     string // YAML path for the in-process control plane
	PolicyTimeout    time.Duration
	// UpstreamHeaderTimeout bounds the wait for a provider's response
	// headers; UpstreamIdleTimeout the silence between bytes of its
	// response (a stream then ends with an in-stream error event).
	UpstreamHeaderTimeout time.Duration
	UpstreamIdleTimeout   time.Duration
	// BodyReadTimeout bounds the reading of a client's request body.
	BodyReadTimeout time.Duration
	LogLevel        slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
	// MetricsModels bounds the model label of the metrics (nil: every
	// model is "other").
	MetricsModels *telemetry.ModelLabels
	// Heartbeat is the idle interval of the activity feed's keep-alives.
	Heartbeat time.Duration
	// DebugAddr is where the Go profiler (net/http/pprof) listens; empty:
	// nowhere. It is a separate listener so that the profiler is never
	// reachable on the proxy's own port.
	DebugAddr string

	// Admin surface (README, "Security"): the key that opens the
	// UI, /api/, /metrics and the profiler; empty: loopback clients only.
	AdminAPIKey string
	// SessionSecret signs browser sessions together with the admin key
	// (derived from the key alone when empty).
	SessionSecret string
	SessionTTL    time.Duration
	// AllowedHosts are Host names the admin surface accepts besides
	// loopback ones when there is no admin key.
	AllowedHosts []string
	// InsecureAdmin allows a non-loopback listener without an admin key.
	InsecureAdmin bool

	// The link to the control plane (README, "Split deployment").
	// ControlPlaneToken is presented on every call as `authorization:
	// Bearer`; an in-process control plane checks it too when it is set.
	// From $LUTHIEN_CONTROL_PLANE_TOKEN or the file
	// LUTHIEN_CONTROL_PLANE_TOKEN_FILE names.
	ControlPlaneToken string
	// ControlPlaneTLS dials a standalone control plane with TLS; set as
	// well by any of the settings below.
	ControlPlaneTLS bool
	// ControlPlaneCA is the PEM file of the CAs that verify the control
	// plane's certificate; empty: the system's roots.
	ControlPlaneCA string
	// ControlPlaneCert and ControlPlaneKey are the PEM files of the client
	// certificate for mutual TLS.
	ControlPlaneCert, ControlPlaneKey string
	// ControlPlaneServerName is the name checked in the control plane's
	// certificate; empty: the host of ControlPlane.
	ControlPlaneServerName string

	// Settings of the in-process control plane (a standalone control plane
	// reads its own): see docs/PERSISTENCE.md.
	DatabaseURL   string
	RedisURL      string
	RedisPrefix   string
	RetentionDays int
	CacheTTL      time.Duration
	CacheMode     string
	QueueCapacity int
}

// setting is one configuration value: its flag, its variable, its default.
type setting struct {
	flag, env, def, usage string
	dst                   *string
}

// Load reads args (without the program name) and the environment.
func Load(args []string, getenv func(string) string) (Config, error) {
	var c Config
	var timeout, headerTimeout, idleTimeout, bodyTimeout, level, heartbeat, retention, cacheTTL, queue, sessionTTL, allowedHosts, insecureAdmin string
	var tokenFile, linkTLS, metricsModels string
	settings := []setting{
		{"http-addr", "LUTHIEN_HTTP_ADDR", "127.0.0.1:8000", "address the HTTP front end listens on", &c.HTTPAddr},
		{"control-plane", "LUTHIEN_CONTROL_PLANE", InProcess, `"inprocess", or the host:port or dns:///host:port of the control plane(s): calls are balanced over every address the name resolves to`, &c.ControlPlane},
		{"openai-base-url", "OPENAI_BASE_URL", "https://api.openai.com/v1", "OpenAI upstream", &c.OpenAIBaseURL},
		{"anthropic-base-url", "ANTHROPIC_BASE_URL", "https://api.anthropic.com", "Anthropic upstream", &c.AnthropicBaseURL},
		{"client-api-key", "LUTHIEN_CLIENT_API_KEY", "", "key clients must present (unset: passthrough of client credentials)", &c.ClientAPIKey},
		{"openai-api-key", "OPENAI_API_KEY", "", "provider key used upstream when a client key is set", &c.OpenAIAPIKey},
		{"anthropic-api-key", "ANTHROPIC_API_KEY", "", "provider key used upstream when a client key is set", &c.AnthropicAPIKey},
		{"policy-config", "LUTHIEN_POLICY_CONFIG", "", "policy YAML for the in-process control plane (unset: noop)", &c.PolicyConfig},
		{"policy-timeout", "LUTHIEN_POLICY_TIMEOUT", "60s", "deadline of each request and response policy call", &timeout},
		{"upstream-header-timeout", "LUTHIEN_UPSTREAM_HEADER_TIMEOUT", "2m", "how long to wait for a provider's response headers before answering 504 (a long prompt to a large model can take a minute or more to its first token)", &headerTimeout},
		{"body-read-timeout", "LUTHIEN_BODY_READ_TIMEOUT", "60s", "how long a client may take to send its request body (408 after)", &bodyTimeout},
		{"upstream-idle-timeout", "LUTHIEN_UPSTREAM_IDLE_TIMEOUT", "60s", "how long a provider's response may send nothing before it is abandoned (a stream ends with an in-stream error event)", &idleTimeout},
		{"log-level", "LUTHIEN_LOG_LEVEL", "info", "debug, info, warn or error", &level},
		{"log-format", "LUTHIEN_LOG_FORMAT", "text", "text or json", &c.LogFormat},
		{"metrics-models", "LUTHIEN_METRICS_MODELS", "", "comma-separated models (NAME* for a prefix) the metrics name in their model label; others are \"other\"", &metricsModels},
		{"debug-addr", "LUTHIEN_DEBUG_ADDR", "", "loopback host:port of the Go profiler, /debug/pprof/ (unset: off)", &c.DebugAddr},
		{"admin-api-key", "LUTHIEN_ADMIN_API_KEY", "", "key of the admin surface: UI, /api/, /metrics, profiler (unset: loopback clients only)", &c.AdminAPIKey},
		{"session-secret", "LUTHIEN_SESSION_SECRET", "", "secret signing UI sessions with the admin key (unset: derived from the key)", &c.SessionSecret},
		{"session-ttl", "LUTHIEN_SESSION_TTL", "12h", "how long a UI login lasts", &sessionTTL},
		{"allowed-hosts", "LUTHIEN_ALLOWED_HOSTS", "", "comma-separated Host names the keyless admin surface accepts besides loopback", &allowedHosts},
		{"insecure-admin", "LUTHIEN_INSECURE_ADMIN", "", "1: allow a non-loopback listen address without an admin key", &insecureAdmin},
		{"control-plane-token-file", "LUTHIEN_CONTROL_PLANE_TOKEN_FILE", "", "file holding the token presented to the control plane (or set $LUTHIEN_CONTROL_PLANE_TOKEN; no flag: it would show in ps)", &tokenFile},
		{"control-plane-tls", "LUTHIEN_CONTROL_PLANE_TLS", "", "1: dial the control plane with TLS (implied by the CA, certificate and server name settings)", &linkTLS},
		{"control-plane-ca", "LUTHIEN_CONTROL_PLANE_CA", "", "PEM CAs that verify the control plane's certificate (unset: the system's roots)", &c.ControlPlaneCA},
		{"control-plane-cert", "LUTHIEN_CONTROL_PLANE_CERT", "", "PEM client certificate for a control plane with mutual TLS", &c.ControlPlaneCert},
		{"control-plane-key", "LUTHIEN_CONTROL_PLANE_KEY", "", "PEM private key of the client certificate", &c.ControlPlaneKey},
		{"control-plane-server-name", "LUTHIEN_CONTROL_PLANE_SERVER_NAME", "", "name checked in the control plane's certificate (unset: the host of LUTHIEN_CONTROL_PLANE)", &c.ControlPlaneServerName},
		{"activity-heartbeat", "LUTHIEN_ACTIVITY_HEARTBEAT", "15s", "keep-alive interval of the activity feed", &heartbeat},
		{"database-url", "DATABASE_URL", "", "PostgreSQL of the in-process control plane (unset: in-memory store)", &c.DatabaseURL},
		{"redis-url", "REDIS_URL", "", "Redis of the in-process control plane (unset: in-process feed and cache)", &c.RedisURL},
		{"redis-prefix", "LUTHIEN_REDIS_PREFIX", "", "prefix of Redis keys and channels", &c.RedisPrefix},
		{"retention-days", "LUTHIEN_RETENTION_DAYS", "0", "purge calls older than this many days (0: keep)", &retention},
		{"cache-ttl", "LUTHIEN_CACHE_TTL", "1h", "response cache lifetime (0 disables the cache)", &cacheTTL},
		{"cache-mode", "LUTHIEN_CACHE_MODE", "temperature0", "cacheable requests: temperature0, all or off", &c.CacheMode},
		{"store-queue", "LUTHIEN_STORE_QUEUE", "0", "write queue capacity in events (0: default)", &queue},
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var usage strings.Builder
	fs.SetOutput(&usage)
	for _, s := range settings {
		fs.StringVar(s.dst, s.flag, s.def, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, &HelpError{Usage: usage.String()}
		}
		return Config{}, fmt.Errorf("config: %w", err)
	}
	// Flags win; the environment fills what no flag set. (Applied after
	// parsing so that -h never prints a secret taken from the environment.)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range settings {
		if v := getenv(s.env); v != "" && !set[s.flag] {
			*s.dst = v
		}
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	d, err := time.ParseDuration(timeout)
	if err != nil || d <= 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_POLICY_TIMEOUT: want a positive duration such as 30s, got %q", timeout)
	}
	c.PolicyTimeout = d
	if c.UpstreamHeaderTimeout, err = time.ParseDuration(headerTimeout); err != nil || c.UpstreamHeaderTimeout <= 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_UPSTREAM_HEADER_TIMEOUT: want a positive duration such as 2m, got %q", headerTimeout)
	}
	if c.UpstreamIdleTimeout, err = time.ParseDuration(idleTimeout); err != nil || c.UpstreamIdleTimeout <= 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_UPSTREAM_IDLE_TIMEOUT: want a positive duration such as 60s, got %q", idleTimeout)
	}
	if c.BodyReadTimeout, err = time.ParseDuration(bodyTimeout); err != nil || c.BodyReadTimeout <= 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_BODY_READ_TIMEOUT: want a positive duration such as 60s, got %q", bodyTimeout)
	}
	if c.Heartbeat, err = time.ParseDuration(heartbeat); err != nil || c.Heartbeat <= 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_ACTIVITY_HEARTBEAT: want a positive duration such as 15s, got %q", heartbeat)
	}
	if c.RetentionDays, err = strconv.Atoi(retention); err != nil || c.RetentionDays < 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_RETENTION_DAYS: want a whole number of days, got %q", retention)
	}
	if c.QueueCapacity, err = strconv.Atoi(queue); err != nil || c.QueueCapacity < 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_STORE_QUEUE: want a whole number of events, got %q", queue)
	}
	if c.CacheTTL, err = time.ParseDuration(cacheTTL); err != nil || c.CacheTTL < 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_CACHE_TTL: want a duration such as 1h (0 disables), got %q", cacheTTL)
	}
	if c.SessionTTL, err = time.ParseDuration(sessionTTL); err != nil || c.SessionTTL <= 0 {
		return Config{}, fmt.Errorf("config: LUTHIEN_SESSION_TTL: want a positive duration such as 12h, got %q", sessionTTL)
	}
	for _, h := range strings.Split(allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
	}
	switch insecureAdmin {
	case "", "0", "false":
	case "1", "true":
		c.InsecureAdmin = true
	default:
		return Config{}, fmt.Errorf("config: LUTHIEN_INSECURE_ADMIN: want 1 or 0, got %q", insecureAdmin)
	}
	if err := c.loadLink(getenv("LUTHIEN_CONTROL_PLANE_TOKEN"), tokenFile, linkTLS); err != nil {
		return Config{}, err
	}
	switch c.CacheMode {
	case "temperature0", "all", "off":
	default:
		return Config{}, fmt.Errorf("config: LUTHIEN_CACHE_MODE: want temperature0, all or off, got %q", c.CacheMode)
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return Config{}, fmt.Errorf("config: LUTHIEN_LOG_LEVEL: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return Config{}, fmt.Errorf("config: LUTHIEN_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	if c.MetricsModels, err = telemetry.ParseModelLabels(metricsModels); err != nil {
		return Config{}, fmt.Errorf("config: LUTHIEN_METRICS_MODELS: %w", err)
	}
	return c, c.validate()
}

// HelpError is returned for -h: Usage lists every flag with its variable.
type HelpError struct{ Usage string }

func (e *HelpError) Error() string { return e.Usage }

// Unwrap makes errors.Is(err, flag.ErrHelp) true.
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

func (c Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("LUTHIEN_HTTP_ADDR: want host:port, got %q", c.HTTPAddr))
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			errs = append(errs, fmt.Errorf("LUTHIEN_DEBUG_ADDR: want host:port, got %q", c.DebugAddr))
		} else if !IsLoopback(c.DebugAddr) {
			errs = append(errs, fmt.Errorf("LUTHIEN_DEBUG_ADDR: the profiler listens on loopback only (127.0.0.1, ::1 or localhost), got %q", c.DebugAddr))
		}
	}
	if c.AdminAPIKey == "" && !c.InsecureAdmin && !IsLoopback(c.HTTPAddr) {
		errs = append(errs, fmt.Errorf("LUTHIEN_HTTP_ADDR %q is not a loopback address: set LUTHIEN_ADMIN_API_KEY to protect the admin surface, or LUTHIEN_INSECURE_ADMIN=1 to leave it open", c.HTTPAddr))
	}
	if c.AdminAPIKey != "" && c.AdminAPIKey == c.ClientAPIKey {
		errs = append(errs, errors.New("LUTHIEN_ADMIN_API_KEY must differ from LUTHIEN_CLIENT_API_KEY: a client key never opens the admin surface"))
	}
	if c.ControlPlane == InProcess && c.ControlPlaneTLS {
		errs = append(errs, errors.New("LUTHIEN_CONTROL_PLANE_TLS, _CA, _CERT, _KEY and _SERVER_NAME apply only to a standalone control plane (LUTHIEN_CONTROL_PLANE=host:port)"))
	}
	if (c.ControlPlaneCert == "") != (c.ControlPlaneKey == "") {
		errs = append(errs, errors.New("LUTHIEN_CONTROL_PLANE_CERT and LUTHIEN_CONTROL_PLANE_KEY go together: set both or neither"))
	}
	if c.ControlPlane != InProcess {
		if _, _, err := net.SplitHostPort(ControlPlaneAddr(c.ControlPlane)); err != nil {
			errs = append(errs, fmt.Errorf("LUTHIEN_CONTROL_PLANE: want %q, host:port, dns:///host:port or dns://dns-server/host:port, got %q", InProcess, c.ControlPlane))
		}
		if c.PolicyConfig != "" || c.DatabaseURL != "" || c.RedisURL != "" {
			errs = append(errs, errors.New("LUTHIEN_POLICY_CONFIG, DATABASE_URL and REDIS_URL apply only to the in-process control plane; configure the standalone control plane instead"))
		}
	}
	for name, v := range map[string]string{"OPENAI_BASE_URL": c.OpenAIBaseURL, "ANTHROPIC_BASE_URL": c.AnthropicBaseURL} {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: want an http(s) URL, got %q", name, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// ControlPlaneAddr returns the host:port a control plane target names:
// the target itself, or the endpoint of a DNS target (dns:///host:port,
// or dns://dns-server/host:port to ask that DNS server). It returns ""
// for a DNS target without an endpoint. (gRPC resolves a bare host:port
// through DNS too.)
func ControlPlaneAddr(target string) string {
	rest, ok := strings.CutPrefix(target, "dns://")
	if !ok {
		return target
	}
	_, endpoint, _ := strings.Cut(rest, "/")
	return endpoint
}

// IsLoopback reports whether a host:port listens on loopback only: an
// empty host or an unspecified address (0.0.0.0, ::) listens everywhere.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LogValue renders the configuration for logs with secrets redacted.
func (c Config) LogValue() slog.Value {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("control_plane", c.ControlPlane),
		slog.String("openai_base_url", c.OpenAIBaseURL),
		slog.String("anthropic_base_url", c.AnthropicBaseURL),
		slog.String("client_api_key", redact(c.ClientAPIKey)),
		slog.String("openai_api_key", redact(c.OpenAIAPIKey)),
		slog.String("anthropic_api_key", redact(c.AnthropicAPIKey)),
		slog.String("policy_config", c.PolicyConfig),
		slog.Duration("policy_timeout", c.PolicyTimeout),
		slog.Duration("upstream_header_timeout", c.UpstreamHeaderTimeout),
		slog.Duration("upstream_idle_timeout", c.UpstreamIdleTimeout),
		slog.Duration("body_read_timeout", c.BodyReadTimeout),
		slog.String("log_level", strings.ToLower(c.LogLevel.String())),
		slog.String("log_format", c.LogFormat),
		slog.String("database_url", redact(c.DatabaseURL)),
		slog.String("redis_url", redact(c.RedisURL)),
		slog.String("debug_addr", c.DebugAddr),
		slog.String("control_plane_token", redact(c.ControlPlaneToken)),
		slog.Bool("control_plane_tls", c.ControlPlaneTLS),
		slog.Bool("control_plane_client_cert", c.ControlPlaneCert != ""),
		slog.String("admin_api_key", redact(c.AdminAPIKey)),
		slog.String("session_secret", redact(c.SessionSecret)),
		slog.Duration("session_ttl", c.SessionTTL),
		slog.Any("allowed_hosts", c.AllowedHosts),
		slog.Bool("insecure_admin", c.InsecureAdmin),
	)
}

// minTokenLen is the shortest control plane token accepted, as the
// control plane has it.
const minTokenLen = 16

// loadLink reads the control plane token (from its variable or from
// tokenFile, not both) and the TLS switch; any TLS file or name turns TLS
// on.
func (c *Config) loadLink(token, tokenFile, linkTLS string) error {
	switch linkTLS {
	case "", "0", "false":
	case "1", "true":
		c.ControlPlaneTLS = true
	default:
		return fmt.Errorf("config: LUTHIEN_CONTROL_PLANE_TLS: want 1 or 0, got %q", linkTLS)
	}
	if c.ControlPlaneCA != "" || c.ControlPlaneCert != "" || c.ControlPlaneServerName != "" {
		c.ControlPlaneTLS = true
	}
	switch {
	case token != "" && tokenFile != "":
		return errors.New("config: LUTHIEN_CONTROL_PLANE_TOKEN and LUTHIEN_CONTROL_PLANE_TOKEN_FILE are both set: set one")
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("config: LUTHIEN_CONTROL_PLANE_TOKEN_FILE: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("config: LUTHIEN_CONTROL_PLANE_TOKEN_FILE: %s is empty", tokenFile)
		}
	}
	if token != "" && len(token) < minTokenLen {
		return fmt.Errorf("config: control plane token: shorter than %d characters (e.g. openssl rand -hex 32)", minTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return errors.New("config: control plane token: only printable ASCII characters without spaces are allowed")
		}
	}
	c.ControlPlaneToken = token
	return nil
}

// SettingNames returns the environment variables Load reads, in the order
// it reads them: Load itself, run on no flags and an empty environment,
// records every name it asks for, so the list cannot drift from the
// settings table.
func SettingNames() ([]string, error) {
	var names []string
	seen := map[string]bool{}
	record := func(name string) string {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return ""
	}
	if _, err := Load(nil, record); err != nil {
		return nil, fmt.Errorf("config: list settings: %w", err)
	}
	return names, nil
}
