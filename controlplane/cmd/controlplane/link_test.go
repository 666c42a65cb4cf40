package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const testToken = "test-token-0123456789abcdef"

// pki is a throwaway CA with a server certificate (localhost, 127.0.0.1)
// and a client certificate, as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func TestLinkConfig(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		args      []string
		env       map[string]string
		wantToken string
		wantErrIn string
	}{
		{name: "token from the environment", env: map[string]string{envToken: testToken}, wantToken: testToken},
		{name: "token from a file, newline trimmed", args: []string{"-token-file", tokenFile}, wantToken: testToken},
		{name: "token file from the environment", env: map[string]string{envTokenFile: tokenFile}, wantToken: testToken},
		{name: "both token and file", env: map[string]string{envToken: testToken, envTokenFile: tokenFile}, wantErrIn: "both set"},
		{name: "empty token file", args: []string{"-token-file", empty}, wantErrIn: "is empty"},
		{name: "missing token file", args: []string{"-token-file", filepath.Join(dir, "absent")}, wantErrIn: "absent"},
		{name: "short token", env: map[string]string{envToken: "short"}, wantErrIn: "shorter than 16"},
		{name: "token with a space", env: map[string]string{envToken: "0123456789 abcdef"}, wantErrIn: "printable ASCII"},
		{name: "certificate without key", args: []string{"-grpc-tls-cert", p.serverCert}, wantErrIn: "go together"},
		{name: "client CA without TLS", env: map[string]string{envTLSClientCA: p.ca}, wantErrIn: "needs TLS"},
		{name: "bad insecure switch", env: map[string]string{envInsecure: "yes"}, wantErrIn: envInsecure},
		{name: "mutual TLS", env: map[string]string{envTLSCert: p.serverCert, envTLSKey: p.serverKey, envTLSClientCA: p.ca}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.args, func(k string) string { return tt.env[k] }, os.Stderr)
			if tt.wantErrIn != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrIn) {
					t.Fatalf("loadConfig error = %v, want one containing %q", err, tt.wantErrIn)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.token != tt.wantToken {
				t.Errorf("token %q, want %q", cfg.token, tt.wantToken)
			}
		})
	}
}

// TestRefusesOpenNonLoopback checks that the control plane does not
// serve an address other than loopback without a token or mutual TLS,
// unless told to.
func TestRefusesOpenNonLoopback(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		name      string
		args      []string
		env       map[string]string
		wantErrIn string // empty: it serves
	}{
		{name: "all addresses", args: []string{"-grpc-addr", "0.0.0.0:0"}, wantErrIn: envInsecure + "=1"},
		{name: "empty host", args: []string{"-grpc-addr", ":0"}, wantErrIn: "not a loopback address"},
		{name: "TLS alone authenticates nobody", args: []string{"-grpc-addr", "0.0.0.0:0"},
			env: map[string]string{envTLSCert: p.serverCert, envTLSKey: p.serverKey}, wantErrIn: "nothing authenticates callers"},
		{name: "insecure on purpose", args: []string{"-grpc-addr", "0.0.0.0:0"}, env: map[string]string{envInsecure: "1"}},
		{name: "token", args: []string{"-grpc-addr", "0.0.0.0:0"}, env: map[string]string{envToken: testToken}},
		{name: "mutual TLS", args: []string{"-grpc-addr", "0.0.0.0:0"},
			env: map[string]string{envTLSCert: p.serverCert, envTLSKey: p.serverKey, envTLSClientCA: p.ca}},
		{name: "loopback needs nothing", args: []string{"-grpc-addr", "127.0.0.1:0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, append(tt.args, "-log-level", "error"), func(k string) string { return tt.env[k] })
			}()
			select {
			case err := <-done:
				cancel()
				if tt.wantErrIn == "" || err == nil || !strings.Contains(err.Error(), tt.wantErrIn) {
					t.Fatalf("run returned %v, want an error containing %q", err, tt.wantErrIn)
				}
				return
			case <-time.After(300 * time.Millisecond): // serving
			}
			cancel()
			if err := <-done; err != nil || tt.wantErrIn != "" {
				t.Fatalf("run served and returned %v, want an error containing %q", err, tt.wantErrIn)
			}
		})
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// serve runs the binary's run on a free loopback port until the test ends
// and returns the address.
func serve(t *testing.T, env map[string]string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-grpc-addr", addr, "-log-level", "error"}, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-done:
			t.Fatalf("run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMutualTLS serves with TLS, a client CA and a token, and checks who
// gets through: a client with the CA, a certificate and the token does;
// one without a certificate, a plaintext one, and one without the token do
// not.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	addr := serve(t, map[string]string{envTLSCert: p.serverCert, envTLSKey: p.serverKey, envTLSClientCA: p.ca, envToken: testToken})
	clientCert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := credentials.NewTLS(&tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{clientCert}})
	withoutCert := credentials.NewTLS(&tls.Config{RootCAs: p.pool})
	bearer := metadata.Pairs("authorization", "Bearer "+testToken)
	for _, tt := range []struct {
		name  string
		creds credentials.TransportCredentials
		md    metadata.MD
		want  codes.Code
	}{
		{"certificate and token", withCert, bearer, codes.OK},
		{"certificate without token", withCert, nil, codes.Unauthenticated},
		{"no client certificate", withoutCert, bearer, codes.Unavailable},
		{"plaintext", insecure.NewCredentials(), bearer, codes.Unavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(tt.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if tt.md != nil {
				ctx = metadata.NewOutgoingContext(ctx, tt.md)
			}
			_, err = cpv1.NewPolicyAdminServiceClient(conn).GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("GetPolicy: %v, want %v", err, tt.want)
			}
			if tt.want == codes.Unauthenticated {
				// Health answers a caller without a token.
				if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					t.Errorf("health check without a token: %v", err)
				}
			}
		})
	}
}
