package policy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Environment variables that decide which policy servers external
// policies may call and which tokens they may send.
const (
	// EnvExternalPolicyAddrs, when set, lists the only policy servers
	// external policies may call, comma-separated: "host:port" or "host"
	// (any port). Unset: loopback addresses only.
	EnvExternalPolicyAddrs = "LUTHIEN_EXTERNAL_POLICY_ADDRS"
	// EnvExternalPolicyTokenEnvs lists the variables token_env may name,
	// comma-separated; an entry ending in * allows every name with that
	// prefix. Default: DefaultExternalPolicyTokenEnvs.
	EnvExternalPolicyTokenEnvs = "LUTHIEN_EXTERNAL_POLICY_TOKEN_ENVS"
)

// DefaultExternalPolicyTokenEnvs is the default of
// LUTHIEN_EXTERNAL_POLICY_TOKEN_ENVS. It is not the judges' list: that
// one allows the provider keys, which must never be sent to a policy
// server as its token.
const DefaultExternalPolicyTokenEnvs = "LUTHIEN_EXTERNAL_POLICY_TOKEN,LUTHIEN_EXTERNAL_POLICY_TOKEN_*"

// externalTimeout is the deadline of each call to a policy server whose
// context has none (a stream's hooks, unless the policy's timeout is set).
const externalTimeout = 30 * time.Second

// externalMaxMessageBytes bounds one message to or from a policy server,
// as on the gateway's link: requests travel whole.
const externalMaxMessageBytes = 64 << 20

// ExternalAccess decides which policy servers external policies may call
// and which variables of the environment they may send as their token.
type ExternalAccess struct {
	// Addrs, when not empty, are the only servers external policies may
	// call: "host:port" or "host" (any port), lower case. Empty: loopback
	// addresses only.
	Addrs []string
	// TokenEnvs are the variables token_env may name; an entry ending in *
	// allows every name with that prefix.
	TokenEnvs []string
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
}

// ExternalAccessFromEnv reads the external policy settings from the
// environment (LUTHIEN_EXTERNAL_POLICY_ADDRS,
// LUTHIEN_EXTERNAL_POLICY_TOKEN_ENVS); getenv nil is os.Getenv. An invalid
// setting is an error naming the variable.
func ExternalAccessFromEnv(getenv func(string) string) (ExternalAccess, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	a := ExternalAccess{Getenv: getenv}
	var err error
	if a.TokenEnvs, err = envNameList(getenv, EnvExternalPolicyTokenEnvs, DefaultExternalPolicyTokenEnvs); err != nil {
		return ExternalAccess{}, err
	}
	if a.Addrs, err = hostList(getenv, EnvExternalPolicyAddrs); err != nil {
		return ExternalAccess{}, err
	}
	return a, nil
}

// addrAllowed reports whether external policies may call host:port.
func (a ExternalAccess) addrAllowed(host, port string) bool {
	if len(a.Addrs) == 0 {
		return isLoopback(host)
	}
	return slices.Contains(a.Addrs, host) || slices.Contains(a.Addrs, net.JoinHostPort(host, port))
}

// tokenEnvAllowed reports whether token_env may name the variable: the
// rule of the judges' api_key_env, over this list.
func (a ExternalAccess) tokenEnvAllowed(name string) bool {
	return JudgeAccess{KeyEnvs: a.TokenEnvs}.keyEnvAllowed(name)
}

// getenv reads a variable.
func (a ExternalAccess) getenv(name string) string {
	if a.Getenv == nil {
		return os.Getenv(name)
	}
	return a.Getenv(name)
}

// isLoopback reports whether host names this machine: localhost or a
// loopback IP address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// externalType describes the external policy. Its settings come from the
// environment access reads (ExternalAccessFromEnv); an invalid one fails
// every build of the class, naming the variable.
func externalType(access JudgeAccess) Type {
	ext, envErr := ExternalAccessFromEnv(access.Getenv)
	return Type{
		Class:       "external",
		Description: "Runs a policy served by another process (in any language) that implements PolicyService: its request, response and stream hooks, as one member of a chain.",
		ConfigSchema: `{"type":"object","additionalProperties":false,"required":["address"],"properties":{` +
			`"address":{"type":"string","description":"host:port of the policy server; LUTHIEN_EXTERNAL_POLICY_ADDRS must allow it (unset: loopback addresses only)"},` +
			`"token_env":{"type":"string","description":"name of the environment variable holding the bearer token sent as authorization: Bearer <token>, one LUTHIEN_EXTERNAL_POLICY_TOKEN_ENVS allows"},` +
			`"tls":{"type":"boolean","default":false,"description":"connect with TLS"},` +
			`"ca_file":{"type":"string","description":"PEM file of the CAs that sign the server's certificate (with tls); default the system's"},` +
			`"server_name":{"type":"string","description":"name the server's certificate must have (with tls); default the address's host"},` +
			`"insecure":{"type":"boolean","default":false,"description":"allow plaintext to an address other than loopback: requests, responses and the token travel in clear"},` +
			`"inspect_response":{"type":"boolean","default":true,"description":"false: only requests go to the server; responses skip it"}}}`,
		New: func(cfg map[string]any) (Policy, error) {
			if envErr != nil {
				return nil, fmt.Errorf("external policy settings: %w", envErr)
			}
			return newExternal(cfg, ext)
		},
	}
}

// external calls a policy server for each hook.
type external struct {
	address  string
	conn     *grpc.ClientConn // shared by policies with the same connection settings
	client   cpv1.PolicyServiceClient
	opts     []grpc.CallOption // the token, when there is one
	inspect  bool
	warnings []string
}

var _ Policy = (*external)(nil)

// newExternal builds an external policy from its configuration.
func newExternal(cfg map[string]any, access ExternalAccess) (*external, error) {
	s := newSettings(cfg)
	address := s.str("address", "")
	tokenEnv := s.str("token_env", "")
	useTLS := s.boolean("tls", false)
	caFile := s.str("ca_file", "")
	serverName := s.str("server_name", "")
	plaintext := s.boolean("insecure", false)
	p := &external{address: address, inspect: s.boolean("inspect_response", true)}
	if err := s.done(); err != nil {
		return nil, err
	}
	host, port, err := splitExternalAddress(address)
	if err != nil {
		return nil, &configError{Key: "address", Problem: err.Error()}
	}
	if !access.addrAllowed(host, port) {
		allowed := "loopback addresses only"
		if len(access.Addrs) > 0 {
			allowed = strings.Join(access.Addrs, ", ")
		}
		return nil, &configError{Key: "address", Problem: fmt.Sprintf("%q is not a policy server external policies may call (%s: %s)", address, EnvExternalPolicyAddrs, allowed)}
	}
	key := externalConnKey{target: net.JoinHostPort(host, port), tls: useTLS, serverName: serverName}
	switch {
	case !useTLS && caFile != "":
		return nil, &configError{Key: "ca_file", Problem: "needs tls: true"}
	case !useTLS && serverName != "":
		return nil, &configError{Key: "server_name", Problem: "needs tls: true"}
	case useTLS && plaintext:
		return nil, &configError{Key: "insecure", Problem: "insecure is for a connection without tls"}
	case !useTLS && !isLoopback(host) && !plaintext:
		return nil, &configError{Key: "tls", Problem: fmt.Sprintf("%s is not a loopback address: set tls: true, or insecure: true to send requests, responses and the token in clear", address)}
	case !useTLS && !isLoopback(host):
		p.warnings = append(p.warnings, fmt.Sprintf("insecure: requests, responses and the token travel in clear to %s", address))
	}
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, &configError{Key: "ca_file", Problem: fmt.Sprintf("cannot read %q", caFile)}
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &configError{Key: "ca_file", Problem: fmt.Sprintf("%q holds no PEM certificate", caFile)}
		}
		key.ca = sha256.Sum256(pem)
	}
	if tokenEnv != "" {
		if !access.tokenEnvAllowed(tokenEnv) {
			return nil, &configError{Key: "token_env", Problem: fmt.Sprintf("variable %q is not one external policies may use (%s: %s)", tokenEnv, EnvExternalPolicyTokenEnvs, strings.Join(access.TokenEnvs, ", "))}
		}
		token := access.getenv(tokenEnv)
		if token == "" {
			return nil, &configError{Key: "token_env", Problem: fmt.Sprintf("variable %q is not set", tokenEnv)}
		}
		p.opts = []grpc.CallOption{grpc.PerRPCCredentials(bearerToken(token))}
	}
	conn, err := externalConn(key, roots)
	if err != nil {
		return nil, &configError{Key: "address", Problem: err.Error()}
	}
	p.conn, p.client = conn, cpv1.NewPolicyServiceClient(conn)
	return p, nil
}

// splitExternalAddress checks a policy server's address, host:port, and
// returns its host in lower case and its port.
func splitExternalAddress(address string) (host, port string, err error) {
	if address == "" {
		return "", "", errors.New("required: the policy server's host:port")
	}
	host, port, err = net.SplitHostPort(address)
	if err != nil || host == "" || strings.ContainsAny(host, "/[]@ ") {
		return "", "", fmt.Errorf("want host:port, got %q", address)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", "", fmt.Errorf("port %q of %q is not a number from 1 to 65535", port, address)
	}
	return strings.ToLower(strings.TrimSuffix(host, ".")), port, nil
}

// externalConnKey is what makes two external policies' connections the
// same.
type externalConnKey struct {
	target     string
	tls        bool
	serverName string
	ca         [32]byte // SHA-256 of ca_file's content; zero: none
}

// externalConnectParams retry a lost connection within 2 s at most, not
// gRPC's default of 2 min: calls fail fast while it is down (on_error
// decides), so a restarted policy server must be found again soon.
var externalConnectParams = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// externalConns holds one client connection per distinct connection
// setting for the life of the process. Policies have no close hook: a
// re-activated policy reuses its connection instead of leaking one per
// activation, so there are at most as many as distinct settings were
// activated.
var externalConns = struct {
	sync.Mutex
	m map[externalConnKey]*grpc.ClientConn
}{m: map[externalConnKey]*grpc.ClientConn{}}

// externalConn returns the connection of key, creating it (without
// connecting: that happens on first use) when there is none.
func externalConn(key externalConnKey, roots *x509.CertPool) (*grpc.ClientConn, error) {
	externalConns.Lock()
	defer externalConns.Unlock()
	if conn, ok := externalConns.m[key]; ok {
		return conn, nil
	}
	creds := insecure.NewCredentials()
	if key.tls {
		creds = grpccreds.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: key.serverName})
	}
	conn, err := grpc.NewClient("dns:///"+key.target, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(externalMaxMessageBytes), grpc.MaxCallSendMsgSize(externalMaxMessageBytes)),
		grpc.WithConnectParams(externalConnectParams))
	if err != nil {
		return nil, fmt.Errorf("policy server client: %w", err)
	}
	externalConns.m[key] = conn
	return conn, nil
}

// bearerToken sends a policy server's token with every call. Build
// refuses plaintext beyond loopback unless the configuration says
// insecure, so the transport is not checked again here.
type bearerToken string

// GetRequestMetadata implements grpccreds.PerRPCCredentials.
func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity implements grpccreds.PerRPCCredentials.
func (bearerToken) RequireTransportSecurity() bool { return false }

// Warnings implements Warner: a connection in clear beyond loopback.
func (p *external) Warnings() []string { return p.warnings }

// Name implements Policy.
func (p *external) Name() string { return "external" }

// InspectsResponse reports the inspect_response setting.
func (p *external) InspectsResponse() bool { return p.inspect }

// externalCallContext bounds one call to the server: the caller's
// deadline, or externalTimeout when it has none.
func externalCallContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, externalTimeout)
}

// remoteError wraps a policy server's failure.
func (p *external) remoteError(method string, err error) error {
	return fmt.Errorf("policy server %s: %s: %w", p.address, method, err)
}

// OnRequest asks the server: continue (with its body, if it changed
// one), respond or reject. Its policy_revision and cache fields are
// ignored: revisions and the cache are this control plane's.
func (p *external) OnRequest(ctx context.Context, call *Call) (RequestResult, error) {
	cctx, cancel := externalCallContext(ctx)
	defer cancel()
	resp, err := p.client.ApplyRequestPolicies(cctx, &cpv1.ApplyRequestPoliciesRequest{
		CallId: call.ID, Format: call.Format, Body: call.Request, Metadata: call.Metadata,
	}, p.opts...)
	if err != nil {
		return RequestResult{}, p.remoteError("ApplyRequestPolicies", err)
	}
	switch out := resp.GetOutcome().(type) {
	case *cpv1.ApplyRequestPoliciesResponse_Continue:
		if body := out.Continue.Body; body != nil {
			if len(body) == 0 {
				return RequestResult{}, p.remoteError("ApplyRequestPolicies", errors.New("continue with an empty body"))
			}
			return RequestResult{Body: body}, nil
		}
		return RequestResult{}, nil
	case *cpv1.ApplyRequestPoliciesResponse_Respond:
		if out.Respond.GetMessage() == nil {
			return RequestResult{}, p.remoteError("ApplyRequestPolicies", errors.New("respond without a message"))
		}
		call.Record(ctx, "policy.external.responded", map[string]any{"address": p.address})
		return RequestResult{Respond: out.Respond.GetMessage()}, nil
	case *cpv1.ApplyRequestPoliciesResponse_Reject:
		if out.Reject == nil {
			return RequestResult{}, p.remoteError("ApplyRequestPolicies", errors.New("empty reject"))
		}
		call.Record(ctx, "policy.external.rejected", map[string]any{
			"address": p.address, "http_status": out.Reject.GetHttpStatus(), "message": out.Reject.GetMessage(),
		})
		return RequestResult{Reject: out.Reject}, nil
	default:
		return RequestResult{}, p.remoteError("ApplyRequestPolicies", errors.New("answered no outcome"))
	}
}

// OnResponse asks the server for the final response; an answer without
// one means unchanged.
func (p *external) OnResponse(ctx context.Context, call *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	if !p.inspect {
		return msg, nil
	}
	ctx, cancel := externalCallContext(ctx)
	defer cancel()
	resp, err := p.client.ApplyResponsePolicy(ctx, &cpv1.ApplyResponsePolicyRequest{
		CallId: call.ID, Format: call.Format, Request: call.Request, Metadata: call.Metadata, Response: msg,
	}, p.opts...)
	if err != nil {
		return nil, p.remoteError("ApplyResponsePolicy", err)
	}
	if resp.Response == nil {
		return msg, nil
	}
	return resp.Response, nil
}
