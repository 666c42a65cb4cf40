package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"luthien.dev/controlplane/internal/cache"
	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/server"
)

// Environment variables read by the binary; a flag beats its variable.
const (
	envGRPCAddr     = "LUTHIEN_GRPC_ADDR"
	envPolicyConfig = "LUTHIEN_POLICY_CONFIG"
	envLogLevel     = "LUTHIEN_LOG_LEVEL"
	envDatabaseURL  = "DATABASE_URL"
	envRedisURL     = "REDIS_URL"
	envRedisPrefix  = "LUTHIEN_REDIS_PREFIX"
	envRetention    = "LUTHIEN_RETENTION_DAYS"
	envCacheTTL     = "LUTHIEN_CACHE_TTL"
	envCacheMode    = "LUTHIEN_CACHE_MODE"
	envStoreQueue   = "LUTHIEN_STORE_QUEUE"
	envTLSCert      = "LUTHIEN_GRPC_TLS_CERT"
	envTLSKey       = "LUTHIEN_GRPC_TLS_KEY"
	envTLSClientCA  = "LUTHIEN_GRPC_TLS_CLIENT_CA"
	envToken        = "LUTHIEN_CONTROL_PLANE_TOKEN"
	envTokenFile    = "LUTHIEN_CONTROL_PLANE_TOKEN_FILE"
	envInsecure     = "LUTHIEN_GRPC_INSECURE"
	envLogFormat    = "LUTHIEN_LOG_FORMAT"
	envMetricsAddr  = "LUTHIEN_METRICS_ADDR"
)

// config is the binary's configuration, loaded once at start-up.
type config struct {
	// grpcAddr is the address the gRPC server listens on.
	grpcAddr string
	// policyConfig is the policy configuration file; empty runs noop.
	policyConfig string
	// logLevel is the minimum level logged.
	logLevel slog.Level
	// logFormat is text or json.
	logFormat string
	// metricsAddr is where /metrics is served over HTTP; empty: nowhere
	// (metrics.go).
	metricsAddr string
	// databaseURL is the PostgreSQL database; empty: in-memory store.
	databaseURL string
	// redisURL is the Redis server; empty: in-process feed and cache.
	redisURL string
	// redisPrefix prefixes the Redis keys and channels.
	redisPrefix string
	// retentionDays purges older calls; 0 keeps everything.
	retentionDays int
	// cacheTTL is the response cache's TTL; 0 disables the cache.
	cacheTTL time.Duration
	// cacheMode says which requests are cacheable.
	cacheMode string
	// storeQueue is the write queue's capacity in events.
	storeQueue int
	// tlsCert and tlsKey are the PEM files of the server's certificate and
	// key; empty: plaintext.
	tlsCert, tlsKey string
	// tlsClientCA is the PEM file of the CAs that sign the gateways'
	// client certificates; set: mutual TLS, a client without a valid
	// certificate is refused.
	tlsClientCA string
	// token is the shared secret every call presents (see server.Config);
	// empty: none.
	token string
	// insecure allows a non-loopback listen address without caller
	// authentication.
	insecure bool
}

// loadConfig builds the configuration from flags, then environment
// variables (getenv; empty counts as unset), then defaults, and validates
// it. Usage and flag errors are written to output.
func loadConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	grpcAddr := envOr(getenv, envGRPCAddr, "127.0.0.1:9000")
	policyConfig := envOr(getenv, envPolicyConfig, "")
	logLevel := envOr(getenv, envLogLevel, "info")
	databaseURL := envOr(getenv, envDatabaseURL, "")
	redisURL := envOr(getenv, envRedisURL, "")
	redisPrefix := envOr(getenv, envRedisPrefix, server.DefaultRedisPrefix)
	retention := envOr(getenv, envRetention, "0")
	cacheTTL := envOr(getenv, envCacheTTL, server.DefaultCacheTTL.String())
	cacheMode := envOr(getenv, envCacheMode, string(cache.ModeTemperature0))
	storeQueue := envOr(getenv, envStoreQueue, strconv.Itoa(server.DefaultQueueCapacity))
	tlsCert := envOr(getenv, envTLSCert, "")
	tlsKey := envOr(getenv, envTLSKey, "")
	tlsClientCA := envOr(getenv, envTLSClientCA, "")
	tokenFile := envOr(getenv, envTokenFile, "")
	insecure := envOr(getenv, envInsecure, "")
	logFormat := envOr(getenv, envLogFormat, server.LogText)
	metricsAddr := envOr(getenv, envMetricsAddr, "")

	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&grpcAddr, "grpc-addr", grpcAddr, "gRPC listen address, host:port (env "+envGRPCAddr+")")
	fs.StringVar(&policyConfig, "policy-config", policyConfig, "policy configuration file (YAML); empty runs noop (env "+envPolicyConfig+")")
	fs.StringVar(&logLevel, "log-level", logLevel, "log level: debug, info, warn or error (env "+envLogLevel+")")
	fs.StringVar(&logFormat, "log-format", logFormat, "log format: text or json (env "+envLogFormat+")")
	fs.StringVar(&metricsAddr, "metrics-addr", metricsAddr, "host:port serving Prometheus metrics at /metrics, with the gRPC port's TLS and token; empty: off (env "+envMetricsAddr+")")
	fs.StringVar(&databaseURL, "database-url", databaseURL, "PostgreSQL URL; empty keeps calls in memory (env "+envDatabaseURL+")")
	fs.StringVar(&redisURL, "redis-url", redisURL, "Redis URL for the shared activity feed and response cache; empty keeps them in-process (env "+envRedisURL+")")
	fs.StringVar(&redisPrefix, "redis-prefix", redisPrefix, "prefix of Redis keys and channels (env "+envRedisPrefix+")")
	fs.StringVar(&retention, "retention-days", retention, "purge calls older than this many days; 0 keeps them (env "+envRetention+")")
	fs.StringVar(&cacheTTL, "cache-ttl", cacheTTL, "response cache TTL, e.g. 1h; 0 disables the cache (env "+envCacheTTL+")")
	fs.StringVar(&cacheMode, "cache-mode", cacheMode, "cacheable requests: temperature0, all or off (env "+envCacheMode+")")
	fs.StringVar(&storeQueue, "store-queue", storeQueue, "write queue capacity in events (env "+envStoreQueue+")")
	fs.StringVar(&tlsCert, "grpc-tls-cert", tlsCert, "PEM certificate (chain) the gRPC server presents; with -grpc-tls-key it serves TLS only (env "+envTLSCert+")")
	fs.StringVar(&tlsKey, "grpc-tls-key", tlsKey, "PEM private key of -grpc-tls-cert (env "+envTLSKey+")")
	fs.StringVar(&tlsClientCA, "grpc-tls-client-ca", tlsClientCA, "PEM CAs of the gateways' client certificates: mutual TLS, clients without one are refused (env "+envTLSClientCA+")")
	fs.StringVar(&tokenFile, "token-file", tokenFile, "file holding the token every call must present as authorization: Bearer; or set "+envToken+" (env "+envTokenFile+")")
	fs.StringVar(&insecure, "grpc-insecure", insecure, "1: serve a non-loopback address without a token or mutual TLS, open to anyone who reaches it (env "+envInsecure+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of controlplane:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), linkUsage)
		fmt.Fprint(fs.Output(), judgeUsage)
		fmt.Fprint(fs.Output(), tracingUsage)
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	cfg := config{grpcAddr: grpcAddr, policyConfig: policyConfig, databaseURL: databaseURL, redisURL: redisURL,
		redisPrefix: redisPrefix, cacheMode: cacheMode, tlsCert: tlsCert, tlsKey: tlsKey, tlsClientCA: tlsClientCA,
		logFormat: logFormat, metricsAddr: metricsAddr}
	var err error
	if cfg.retentionDays, err = strconv.Atoi(retention); err != nil || cfg.retentionDays < 0 {
		return config{}, fmt.Errorf("invalid -retention-days (%s) %q: want a whole number of days, 0 or more", envRetention, retention)
	}
	if cfg.cacheTTL, err = time.ParseDuration(cacheTTL); err != nil || cfg.cacheTTL < 0 {
		return config{}, fmt.Errorf("invalid -cache-ttl (%s) %q: want a duration such as 30m or 1h, or 0", envCacheTTL, cacheTTL)
	}
	if _, err := cache.ParseMode(cacheMode); err != nil {
		return config{}, fmt.Errorf("invalid -cache-mode (%s): %w", envCacheMode, err)
	}
	if cfg.storeQueue, err = strconv.Atoi(storeQueue); err != nil || cfg.storeQueue <= 0 {
		return config{}, fmt.Errorf("invalid -store-queue (%s) %q: want a positive number of events", envStoreQueue, storeQueue)
	}
	if err := validateAddr(grpcAddr); err != nil {
		return config{}, fmt.Errorf("invalid -grpc-addr (%s) %q: %w", envGRPCAddr, grpcAddr, err)
	}
	if err := server.CheckLogFormat(logFormat); err != nil {
		return config{}, fmt.Errorf("invalid -log-format (%s): %w", envLogFormat, err)
	}
	if metricsAddr != "" {
		if err := validateAddr(metricsAddr); err != nil {
			return config{}, fmt.Errorf("invalid -metrics-addr (%s) %q: %w", envMetricsAddr, metricsAddr, err)
		}
	}
	if err := cfg.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return config{}, fmt.Errorf("invalid -log-level (%s) %q: want debug, info, warn or error", envLogLevel, logLevel)
	}
	if policyConfig != "" {
		if err := validateFile(policyConfig); err != nil {
			return config{}, fmt.Errorf("invalid -policy-config (%s): %w", envPolicyConfig, err)
		}
	}
	if err := cfg.loadLink(getenv(envToken), tokenFile, insecure); err != nil {
		return config{}, err
	}
	// The judge settings are read from the environment where the policies
	// are built (policy.Builtin); checked here so that a bad one stops
	// the binary before it listens.
	if _, err := policy.JudgeAccessFromEnv(getenv); err != nil {
		return config{}, fmt.Errorf("invalid judge setting %w", err)
	}
	if _, err := policy.ExternalAccessFromEnv(getenv); err != nil {
		return config{}, fmt.Errorf("invalid external policy setting %w", err)
	}
	return cfg, nil
}

// judgeUsage documents the judge settings, which have no flags: they are
// read from the environment by every control plane, in-process ones
// included.
const judgeUsage = `
Judge settings (environment only; see docs/POLICIES.md):
  ` + policy.EnvJudgeKeyEnvs + `
    	variables a judge's api_key_env may name, comma-separated; NAME* allows a prefix (default "` + policy.DefaultJudgeKeyEnvs + `")
  ` + policy.EnvJudgeHosts + `
    	when set, the only hosts judges may call, comma-separated host or host:port (default: any)
  ` + policy.EnvOpenAIBaseURL + `, ` + policy.EnvAnthropicBaseURL + `
    	the providers' endpoints besides the public ones: a judge there without a key of its own gets
    	$` + policy.EnvJudgeAPIKey + `, else $` + policy.EnvOpenAIAPIKey + ` / $` + policy.EnvAnthropicAPIKey + ` (never a judge elsewhere)

External policy settings (environment only; see docs/POLICIES.md, "external"):
  ` + policy.EnvExternalPolicyAddrs + `
    	the policy servers an external policy may call, comma-separated host or host:port (default: loopback only)
  ` + policy.EnvExternalPolicyTokenEnvs + `
    	variables an external policy's token_env may name; NAME* allows a prefix (default "` + policy.DefaultExternalPolicyTokenEnvs + `")
`

// envOr returns the variable's value, or def when it is unset or empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// validateAddr checks a host:port listen address.
func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// validateFile checks that path names a regular file.
func validateFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return errors.New(path + " is not a regular file")
	}
	return nil
}

// settingNames returns the environment variables the binary reads:
// loadConfig itself, run on no flags and an empty environment, records
// every name it asks for (so the list cannot drift from it), followed by
// the provider keys judges read when they call.
func settingNames() ([]string, error) {
	var names []string
	seen := map[string]bool{}
	record := func(name string) string {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return ""
	}
	if _, err := loadConfig(nil, record, io.Discard); err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	for _, name := range []string{policy.EnvJudgeAPIKey, policy.EnvOpenAIAPIKey, policy.EnvAnthropicAPIKey} {
		record(name)
	}
	return names, nil
}
