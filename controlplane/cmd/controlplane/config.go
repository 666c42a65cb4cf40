package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/server"
	"luthien.dev/settings"
	"luthien.dev/settings/shared"
)

// Environment variables read by the binary's own settings and named by
// its messages; a flag beats its variable. The settings it shares with
// the gateway are declared in settings/shared.
const (
	envGRPCAddr    = "LUTHIEN_GRPC_ADDR"
	envTLSCert     = "LUTHIEN_GRPC_TLS_CERT"
	envTLSKey      = "LUTHIEN_GRPC_TLS_KEY"
	envTLSClientCA = "LUTHIEN_GRPC_TLS_CLIENT_CA"
	envToken       = shared.EnvToken
	envTokenFile   = shared.EnvTokenFile
	envInsecure    = "LUTHIEN_GRPC_INSECURE"
	envMetricsAddr = "LUTHIEN_METRICS_ADDR"
)

// Variables of shared settings the package names.
var (
	envDatabaseURL = shared.DatabaseURL.Env
	envLogFormat   = shared.LogFormat.Env
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
	// (telemetry.go).
	metricsAddr string
	// Persistence holds the store, Redis, cache and retention settings
	// (docs/PERSISTENCE.md).
	shared.Persistence
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

// The control plane's own settings; the shared ones are in
// settings/shared.
var (
	grpcAddr = settings.HostPort{Flag: "grpc-addr", Env: envGRPCAddr, Default: "127.0.0.1:9000",
		Usage: "gRPC listen address"}
	metricsAddr = settings.HostPort{Flag: "metrics-addr", Env: envMetricsAddr,
		Usage: "host:port serving Prometheus metrics at /metrics, with the gRPC port's TLS and token; empty: off"}
	grpcTLSCert = settings.String{Flag: "grpc-tls-cert", Env: envTLSCert,
		Usage: "PEM certificate (chain) the gRPC server presents; with -grpc-tls-key it serves TLS only"}
	grpcTLSKey = settings.String{Flag: "grpc-tls-key", Env: envTLSKey,
		Usage: "PEM private key of -grpc-tls-cert"}
	grpcTLSClientCA = settings.String{Flag: "grpc-tls-client-ca", Env: envTLSClientCA,
		Usage: "PEM CAs of the gateways' client certificates: mutual TLS, clients without one are refused"}
	// tokenFile keeps the flag it has always had, -token-file (the
	// gateway's is -control-plane-token-file).
	tokenFile = shared.TokenFile("token-file",
		"file holding the token every call must present as authorization: Bearer; or set "+envToken)
	grpcInsecure = settings.Bool{Flag: "grpc-insecure", Env: envInsecure,
		Usage: "1: serve a non-loopback address without a token or mutual TLS, open to anyone who reaches it"}
)

// loadConfig builds the configuration from flags, then environment
// variables (getenv; empty counts as unset), then defaults, and validates
// it. -h writes the usage to output.
func loadConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	var cfg config
	var tokenPath string
	s := settings.NewSet("controlplane")
	settings.Bind(s, &cfg.grpcAddr, grpcAddr)
	settings.Bind(s, &cfg.policyConfig, shared.PolicyConfig)
	settings.Bind(s, &cfg.logLevel, shared.LogLevel)
	cfg.Persistence.Bind(s)
	settings.Bind(s, &cfg.tlsCert, grpcTLSCert)
	settings.Bind(s, &cfg.tlsKey, grpcTLSKey)
	settings.Bind(s, &cfg.tlsClientCA, grpcTLSClientCA)
	settings.Bind(s, &tokenPath, tokenFile)
	settings.Bind(s, &cfg.insecure, grpcInsecure)
	settings.Bind(s, &cfg.logFormat, shared.LogFormat)
	settings.Bind(s, &cfg.metricsAddr, metricsAddr)
	if err := s.Parse(args, getenv); err != nil {
		if help := (*settings.HelpError)(nil); errors.As(err, &help) {
			fmt.Fprint(output, help.Usage, linkUsage, judgeUsage, tracingUsage)
		}
		return config{}, err
	}
	token, err := shared.ReadToken(getenv, tokenFile, tokenPath)
	if err != nil {
		return config{}, err
	}
	// The token is read and the insecure switch parsed by now: loadLink
	// gets nothing more to read, and checks the TLS settings.
	if err := cfg.loadLink(token, "", ""); err != nil {
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

// settingNames returns the environment variables the binary reads:
// loadConfig itself, run on no flags and an empty environment, records
// every name it asks for (so the list cannot drift from it), followed by
// the provider keys judges read when they call.
func settingNames() ([]string, error) {
	return settings.Names(func(getenv func(string) string) error {
		if _, err := loadConfig(nil, getenv, io.Discard); err != nil {
			return err
		}
		for _, name := range []string{policy.EnvJudgeAPIKey, policy.EnvOpenAIAPIKey, policy.EnvAnthropicAPIKey} {
			getenv(name)
		}
		for _, name := range server.TracingSettings {
			getenv(name)
		}
		return nil
	})
}
