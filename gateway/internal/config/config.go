// Package config loads the gateway's configuration once at start-up:
// flags beat environment variables, which beat defaults. It is validated
// before anything listens. Every setting is declared with the settings
// package; those the control plane reads too (persistence, policy, logs,
// the link token) are declared once, in settings/shared, for both
// binaries.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"luthien.dev/gateway/internal/routes"
	"luthien.dev/gateway/internal/telemetry"
	"luthien.dev/settings"
	"luthien.dev/settings/shared"
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
	// Routes is the path of the routing table's YAML file (empty: none);
	// RouteTable the table it holds, loaded and validated at start.
	Routes     string
	RouteTable *routes.Table
	// RoutesKeyEnvs are the key variables a routing table set at run time
	// may send to any provider (see routesapi.Config.KeyEnvs).
	RoutesKeyEnvs []string
	PolicyTimeout time.Duration
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

	// Persistence holds the settings of the in-process control plane (a
	// standalone control plane reads its own): see docs/PERSISTENCE.md.
	shared.Persistence
}

// The gateway's own settings; the shared ones are in settings/shared.
var (
	httpAddr = settings.HostPort{Flag: "http-addr", Env: "LUTHIEN_HTTP_ADDR", Default: "127.0.0.1:8000",
		Usage: "address the HTTP front end listens on"}
	controlPlane = settings.String{Flag: "control-plane", Env: "LUTHIEN_CONTROL_PLANE", Default: InProcess, Check: checkControlPlane,
		Usage: `"inprocess", or the host:port or dns:///host:port of the control plane(s): calls are balanced over every address the name resolves to`}
	openAIBaseURL = settings.URL{Flag: "openai-base-url", Env: "OPENAI_BASE_URL", Default: "https://api.openai.com/v1",
		Schemes: []string{"http", "https"}, Host: true, Usage: "OpenAI upstream"}
	anthropicBaseURL = settings.URL{Flag: "anthropic-base-url", Env: "ANTHROPIC_BASE_URL", Default: "https://api.anthropic.com",
		Schemes: []string{"http", "https"}, Host: true, Usage: "Anthropic upstream"}
	clientAPIKey = settings.String{Flag: "client-api-key", Env: "LUTHIEN_CLIENT_API_KEY", Secret: true,
		Usage: "key clients must present (unset: passthrough of client credentials)"}
	openAIAPIKey = settings.String{Flag: "openai-api-key", Env: "OPENAI_API_KEY", Secret: true,
		Usage: "provider key used upstream when a client key is set"}
	anthropicAPIKey = settings.String{Flag: "anthropic-api-key", Env: "ANTHROPIC_API_KEY", Secret: true,
		Usage: "provider key used upstream when a client key is set"}
	policyTimeout = settings.Duration{Flag: "policy-timeout", Env: "LUTHIEN_POLICY_TIMEOUT", Default: 60 * time.Second,
		Usage: "deadline of each request and response policy call"}
	upstreamHeaderTimeout = settings.Duration{Flag: "upstream-header-timeout", Env: "LUTHIEN_UPSTREAM_HEADER_TIMEOUT", Default: 2 * time.Minute,
		Usage: "how long to wait for a provider's response headers before answering 504 (a long prompt to a large model can take a minute or more to its first token)"}
	bodyReadTimeout = settings.Duration{Flag: "body-read-timeout", Env: "LUTHIEN_BODY_READ_TIMEOUT", Default: 60 * time.Second,
		Usage: "how long a client may take to send its request body (408 after)"}
	upstreamIdleTimeout = settings.Duration{Flag: "upstream-idle-timeout", Env: "LUTHIEN_UPSTREAM_IDLE_TIMEOUT", Default: 60 * time.Second,
		Usage: "how long a provider's response may send nothing before it is abandoned (a stream ends with an in-stream error event)"}
	metricsModels = settings.Custom[*telemetry.ModelLabels]{Flag: "metrics-models", Env: "LUTHIEN_METRICS_MODELS", Arg: "list",
		Func:  telemetry.ParseModelLabels,
		Usage: `comma-separated models (NAME* for a prefix) the metrics name in their model label; others are "other"`}
	debugAddr = settings.HostPort{Flag: "debug-addr", Env: "LUTHIEN_DEBUG_ADDR",
		Usage: "loopback host:port of the Go profiler, /debug/pprof/ (unset: off)"}
	adminAPIKey = settings.String{Flag: "admin-api-key", Env: "LUTHIEN_ADMIN_API_KEY", Secret: true,
		Usage: "key of the admin surface: UI, /api/, /metrics, profiler (unset: loopback clients only)"}
	sessionSecret = settings.String{Flag: "session-secret", Env: "LUTHIEN_SESSION_SECRET", Secret: true,
		Usage: "secret signing UI sessions with the admin key (unset: derived from the key)"}
	sessionTTL = settings.Duration{Flag: "session-ttl", Env: "LUTHIEN_SESSION_TTL", Default: 12 * time.Hour,
		Usage: "how long a UI login lasts"}
	allowedHosts = settings.List{Flag: "allowed-hosts", Env: "LUTHIEN_ALLOWED_HOSTS",
		Usage: "comma-separated Host names the keyless admin surface accepts besides loopback"}
	insecureAdmin = settings.Bool{Flag: "insecure-admin", Env: "LUTHIEN_INSECURE_ADMIN",
		Usage: "1: allow a non-loopback listen address without an admin key"}
	tokenFile = shared.TokenFile("control-plane-token-file",
		"file holding the token presented to the control plane (or set $LUTHIEN_CONTROL_PLANE_TOKEN; no flag: it would show in ps)")
	controlPlaneTLS = settings.Bool{Flag: "control-plane-tls", Env: "LUTHIEN_CONTROL_PLANE_TLS",
		Usage: "1: dial the control plane with TLS (implied by the CA, certificate and server name settings)"}
	controlPlaneCA = settings.String{Flag: "control-plane-ca", Env: "LUTHIEN_CONTROL_PLANE_CA",
		Usage: "PEM CAs that verify the control plane's certificate (unset: the system's roots)"}
	controlPlaneCert = settings.String{Flag: "control-plane-cert", Env: "LUTHIEN_CONTROL_PLANE_CERT",
		Usage: "PEM client certificate for a control plane with mutual TLS"}
	controlPlaneKey = settings.String{Flag: "control-plane-key", Env: "LUTHIEN_CONTROL_PLANE_KEY",
		Usage: "PEM private key of the client certificate"}
	controlPlaneServerName = settings.String{Flag: "control-plane-server-name", Env: "LUTHIEN_CONTROL_PLANE_SERVER_NAME",
		Usage: "name checked in the control plane's certificate (unset: the host of LUTHIEN_CONTROL_PLANE)"}
	routesFile = settings.String{Flag: "routes", Env: "LUTHIEN_ROUTES",
		Usage: "YAML file routing model names to providers, with translation between the OpenAI and Anthropic APIs (docs/ROUTING.md; unset: each endpoint keeps its provider)"}
	routesKeyEnvs = settings.List{Flag: "routes-key-envs", Env: "LUTHIEN_ROUTES_KEY_ENVS",
		Usage: "comma-separated api_key_env variables a routing table set at run time (PUT /api/routes) may send to any base URL; others only to the base URL the LUTHIEN_ROUTES file pairs them with"}
	heartbeat = settings.Duration{Flag: "activity-heartbeat", Env: "LUTHIEN_ACTIVITY_HEARTBEAT", Default: 15 * time.Second,
		Usage: "keep-alive interval of the activity feed"}
)

// Load reads args (without the program name) and the environment.
func Load(args []string, getenv func(string) string) (Config, error) {
	var c Config
	var tokenPath string
	s := settings.NewSet("gateway")
	settings.Bind(s, &c.HTTPAddr, httpAddr)
	settings.Bind(s, &c.ControlPlane, controlPlane)
	settings.Bind(s, &c.OpenAIBaseURL, openAIBaseURL)
	settings.Bind(s, &c.AnthropicBaseURL, anthropicBaseURL)
	settings.Bind(s, &c.ClientAPIKey, clientAPIKey)
	settings.Bind(s, &c.OpenAIAPIKey, openAIAPIKey)
	settings.Bind(s, &c.AnthropicAPIKey, anthropicAPIKey)
	settings.Bind(s, &c.PolicyConfig, shared.PolicyConfig)
	settings.Bind(s, &c.Routes, routesFile)
	settings.Bind(s, &c.RoutesKeyEnvs, routesKeyEnvs)
	settings.Bind(s, &c.PolicyTimeout, policyTimeout)
	settings.Bind(s, &c.UpstreamHeaderTimeout, upstreamHeaderTimeout)
	settings.Bind(s, &c.BodyReadTimeout, bodyReadTimeout)
	settings.Bind(s, &c.UpstreamIdleTimeout, upstreamIdleTimeout)
	settings.Bind(s, &c.LogLevel, shared.LogLevel)
	settings.Bind(s, &c.LogFormat, shared.LogFormat)
	settings.Bind(s, &c.MetricsModels, metricsModels)
	settings.Bind(s, &c.DebugAddr, debugAddr)
	settings.Bind(s, &c.AdminAPIKey, adminAPIKey)
	settings.Bind(s, &c.SessionSecret, sessionSecret)
	settings.Bind(s, &c.SessionTTL, sessionTTL)
	settings.Bind(s, &c.AllowedHosts, allowedHosts)
	settings.Bind(s, &c.InsecureAdmin, insecureAdmin)
	settings.Bind(s, &tokenPath, tokenFile)
	settings.Bind(s, &c.ControlPlaneTLS, controlPlaneTLS)
	settings.Bind(s, &c.ControlPlaneCA, controlPlaneCA)
	settings.Bind(s, &c.ControlPlaneCert, controlPlaneCert)
	settings.Bind(s, &c.ControlPlaneKey, controlPlaneKey)
	settings.Bind(s, &c.ControlPlaneServerName, controlPlaneServerName)
	settings.Bind(s, &c.Heartbeat, heartbeat)
	c.Persistence.Bind(s)
	if err := s.Parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.loadLink(getenv, tokenPath); err != nil {
		return Config{}, err
	}
	if c.Routes != "" {
		t, err := routes.Load(c.Routes, getenv)
		if err != nil {
			return Config{}, fmt.Errorf("config: LUTHIEN_ROUTES: %w", err)
		}
		c.RouteTable = t
	}
	return c, c.validate()
}

// HelpError is returned for -h: Usage lists every flag with its variable.
type HelpError = settings.HelpError

// checkControlPlane checks a LUTHIEN_CONTROL_PLANE value.
func checkControlPlane(target string) error {
	if target == InProcess {
		return nil
	}
	if _, _, err := net.SplitHostPort(ControlPlaneAddr(target)); err != nil {
		return fmt.Errorf("want %q, host:port, dns:///host:port or dns://dns-server/host:port", InProcess)
	}
	return nil
}

func (c Config) validate() error {
	var errs []error
	if c.DebugAddr != "" && !IsLoopback(c.DebugAddr) {
		errs = append(errs, fmt.Errorf("LUTHIEN_DEBUG_ADDR: the profiler listens on loopback only (127.0.0.1, ::1 or localhost), got %q", c.DebugAddr))
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
	if c.ControlPlane != InProcess && (c.PolicyConfig != "" || c.DatabaseURL != "" || c.RedisURL != "") {
		errs = append(errs, errors.New("LUTHIEN_POLICY_CONFIG, DATABASE_URL and REDIS_URL apply only to the in-process control plane; configure the standalone control plane instead"))
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
		slog.String("routes", c.Routes),
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

// loadLink reads the control plane token (from its variable or from the
// file at tokenPath, not both); any TLS file or name turns TLS on.
func (c *Config) loadLink(getenv func(string) string, tokenPath string) error {
	if c.ControlPlaneCA != "" || c.ControlPlaneCert != "" || c.ControlPlaneServerName != "" {
		c.ControlPlaneTLS = true
	}
	token, err := shared.ReadToken(getenv, tokenFile, tokenPath)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.ControlPlaneToken = token
	return nil
}

// SettingNames returns the environment variables Load reads, in the order
// it reads them: Load itself, run on no flags and an empty environment,
// records every name it asks for, so the list cannot drift from the
// settings table.
func SettingNames() ([]string, error) {
	names, err := settings.Names(func(getenv func(string) string) error {
		_, err := Load(nil, getenv)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return names, nil
}
