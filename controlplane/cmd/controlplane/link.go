package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
)

// minTokenLen is the shortest token accepted: a shared secret that can be
// guessed protects nothing.
const minTokenLen = 16

// linkUsage documents the setting that has no flag: a token given on the
// command line would show in every process listing.
const linkUsage = `
Link settings without a flag (see README.md, "Split deployment"):
  ` + envToken + `
    	the token every call must present as authorization: Bearer <token> (or -token-file); health checks without one are answered
`

// loadLink reads the token (from its variable or from tokenFile, not
// both) and the insecure switch, and checks the link settings: TLS needs
// a certificate and its key, mutual TLS needs TLS.
func (c *config) loadLink(token, tokenFile, insecure string) error {
	switch insecure {
	case "", "0", "false":
	case "1", "true":
		c.insecure = true
	default:
		return fmt.Errorf("invalid -grpc-insecure (%s) %q: want 1 or 0", envInsecure, insecure)
	}
	switch {
	case token != "" && tokenFile != "":
		return fmt.Errorf("%s and -token-file (%s) are both set: set one", envToken, envTokenFile)
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("invalid -token-file (%s): %w", envTokenFile, err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("invalid -token-file (%s): %s is empty", envTokenFile, tokenFile)
		}
	}
	if err := checkToken(token); err != nil {
		return fmt.Errorf("invalid control plane token (%s or %s): %w", envToken, envTokenFile, err)
	}
	c.token = token
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return fmt.Errorf("-grpc-tls-cert (%s) and -grpc-tls-key (%s) go together: set both or neither", envTLSCert, envTLSKey)
	}
	if c.tlsClientCA != "" && c.tlsCert == "" {
		return fmt.Errorf("-grpc-tls-client-ca (%s) needs TLS: set -grpc-tls-cert and -grpc-tls-key too", envTLSClientCA)
	}
	return nil
}

// checkExposure refuses to serve a listen address other than loopback
// without a way to authenticate callers (a token or mutual TLS), unless
// insecure says to serve it open. TLS alone is not enough: it hides the
// traffic but lets anyone call.
func (c *config) checkExposure() error {
	if isLoopback(c.grpcAddr) || c.token != "" || c.tlsClientCA != "" || c.insecure {
		return nil
	}
	return fmt.Errorf("-grpc-addr (%s) %q is not a loopback address, and nothing authenticates callers: "+
		"set %s (or %s), ideally with TLS (%s, %s), or mutual TLS (%s); or set %s=1 to serve it open",
		envGRPCAddr, c.grpcAddr, envToken, envTokenFile, envTLSCert, envTLSKey, envTLSClientCA, envInsecure)
}

// checkToken checks a token's length and characters (printable ASCII
// without spaces, as a gRPC metadata value carries it unchanged).
func checkToken(token string) error {
	if token == "" {
		return nil
	}
	if len(token) < minTokenLen {
		return fmt.Errorf("shorter than %d characters (e.g. openssl rand -hex 32)", minTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return errors.New("only printable ASCII characters without spaces are allowed")
		}
	}
	return nil
}

// isLoopback reports whether a host:port listens on loopback only; an
// empty host or an unspecified address (0.0.0.0, ::) listens everywhere.
func isLoopback(hostport string) bool {
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

// serverTLS returns the TLS configuration of the listener, nil for
// plaintext. With a client CA it requires and verifies a client
// certificate.
func (c *config) serverTLS() (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate (%s, %s): %w", envTLSCert, envTLSKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsClientCA != "" {
		pem, err := os.ReadFile(c.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA (%s): %w", envTLSClientCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA (%s): no PEM certificate in %s", envTLSClientCA, c.tlsClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// warnLink logs what the link settings leave exposed on a non-loopback
// address: everything (insecure on purpose), or the token (in clear
// without TLS).
func (c *config) warnLink(logger *slog.Logger) {
	if isLoopback(c.grpcAddr) {
		return
	}
	switch {
	case c.token == "" && c.tlsClientCA == "":
		logger.Warn("the control plane serves a non-loopback address without authentication ("+envInsecure+"=1): "+
			"anyone who reaches it can change the policy, forge call records and read the activity feed", "addr", c.grpcAddr)
	case c.token != "" && c.tlsCert == "":
		logger.Warn("the control plane token travels in clear on a non-loopback address: anyone on the path can read it; set "+
			envTLSCert+" and "+envTLSKey, "addr", c.grpcAddr)
	}
}
