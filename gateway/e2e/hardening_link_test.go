package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/bench/fakeupstream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// linkPKI is the split mode's link material, made once per test binary: a
// throwaway CA, the control plane's certificate (127.0.0.1, localhost), a
// gateway client certificate, and the token, as files in binDir.
var linkPKI struct {
	once                                             sync.Once
	err                                              error
	token, tokenFile                                 string
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
	clientPair                                       tls.Certificate
}

func makeLinkPKI() error {
	dir := filepath.Join(binDir, "link")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	linkPKI.token = hex.EncodeToString(b[:])
	write := func(name, typ string, der []byte) (string, error) {
		path := filepath.Join(dir, name)
		data := []byte(linkPKI.token + "\n")
		if typ != "" {
			data = pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
		}
		return path, os.WriteFile(path, data, 0o600)
	}
	var err error
	if linkPKI.tokenFile, err = write("token", "", nil); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e link CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	linkPKI.pool = x509.NewCertPool()
	linkPKI.pool.AddCert(caCert)
	if linkPKI.ca, err = write("ca.pem", "CERTIFICATE", caDER); err != nil {
		return err
	}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", "", err
		}
		certFile, err := write(name+".pem", "CERTIFICATE", der)
		if err != nil {
			return "", "", err
		}
		keyFile, err := write(name+"-key.pem", "PRIVATE KEY", keyDER)
		return certFile, keyFile, err
	}
	if linkPKI.serverCert, linkPKI.serverKey, err = issue("controlplane", 2, x509.ExtKeyUsageServerAuth); err != nil {
		return err
	}
	if linkPKI.clientCert, linkPKI.clientKey, err = issue("gateway", 3, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	linkPKI.clientPair, err = tls.LoadX509KeyPair(linkPKI.clientCert, linkPKI.clientKey)
	return err
}

// splitLinkEnv returns the settings that link a split mode's control
// plane and gateway: mutual TLS and a token.
func splitLinkEnv(t *testing.T) (controlPlane, gateway []string) {
	t.Helper()
	linkPKI.once.Do(func() { linkPKI.err = makeLinkPKI() })
	if linkPKI.err != nil {
		t.Fatalf("link certificates: %v", linkPKI.err)
	}
	return []string{
			"LUTHIEN_GRPC_TLS_CERT=" + linkPKI.serverCert, "LUTHIEN_GRPC_TLS_KEY=" + linkPKI.serverKey,
			"LUTHIEN_GRPC_TLS_CLIENT_CA=" + linkPKI.ca, "LUTHIEN_CONTROL_PLANE_TOKEN=" + linkPKI.token,
		}, []string{
			"LUTHIEN_CONTROL_PLANE_CA=" + linkPKI.ca, "LUTHIEN_CONTROL_PLANE_CERT=" + linkPKI.clientCert,
			"LUTHIEN_CONTROL_PLANE_KEY=" + linkPKI.clientKey, "LUTHIEN_CONTROL_PLANE_TOKEN=" + linkPKI.token,
		}
}

// dialControlPlane connects to a split mode's control plane as a raw gRPC
// client with the link's CA and client certificate, and no token.
func dialControlPlane(t *testing.T, e *env) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(e.controlPlane, grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: linkPKI.pool, Certificates: []tls.Certificate{linkPKI.clientPair}})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// withToken returns ctx presenting the link's token.
func withToken(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+linkPKI.token)
}

// TestHardeningLinkNeedsTheToken checks the split mode's control plane: a
// client without the token is refused on every service, server
// reflection included, but answered by health; with the token it works;
// and the gateway, which has the token, serves.
func TestHardeningLinkNeedsTheToken(t *testing.T) {
	e := start(t, "split", options{})
	conn := dialControlPlane(t, e)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"SetPolicy", func(ctx context.Context) error {
			_, err := cpv1.NewPolicyAdminServiceClient(conn).SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}})
			return err
		}},
		{"Call", func(ctx context.Context) error {
			// A whole call, its record in end.
			_, err := linkCall(ctx, conn, &cpv1.CallStart{CallId: "link-call", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES,
				Body: []byte(anthropicBody(false, ""))}, &cpv1.CallEnd{Record: &cpv1.CallRecord{Summary: &cpv1.CallSummary{Status: 200}}})
			return err
		}},
		{"StreamActivity", func(ctx context.Context) error {
			// Accepted, the feed waits for events until the deadline.
			ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			st, err := cpv1.NewActivityServiceClient(conn).StreamActivity(ctx, &cpv1.StreamActivityRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			if status.Code(err) == codes.DeadlineExceeded {
				return nil
			}
			return err
		}},
		{"ServerReflectionInfo", func(ctx context.Context) error {
			st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = st.Recv()
			return err
		}},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := c.call(ctx); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s without the token: %v, want UNAUTHENTICATED", c.name, err)
		}
		if err := c.call(withToken(ctx)); err != nil {
			t.Errorf("%s with the token: %v", c.name, err)
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without the token: %v, %v; want SERVING", resp, err)
	}
	if resp, _ := e.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/ready: %d", resp.StatusCode)
	}
	if resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders); resp.StatusCode != http.StatusOK {
		t.Errorf("a call through the gateway: %d %s", resp.StatusCode, body)
	}
}

// TestHardeningLinkRefusesTheGateway checks a gateway the control plane
// does not accept: with a wrong token, or (mutual TLS) without a client
// certificate, clients get 502 in their own format and /ready is 503.
func TestHardeningLinkRefusesTheGateway(t *testing.T) {
	for _, tt := range []struct {
		name       string
		gatewayEnv map[string]string
		wantIn     string
	}{
		{"wrong token", map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": "wrong-token-0123456789abcdef"}, "invalid control plane token"},
		{"no client certificate", map[string]string{"LUTHIEN_CONTROL_PLANE_CERT": "", "LUTHIEN_CONTROL_PLANE_KEY": ""}, "policy evaluation failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, "split", options{gatewayEnv: tt.gatewayEnv})
			if resp, body := e.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/ready: %d %s, want 503", resp.StatusCode, body)
			}
			resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"type":"error"`) || !strings.Contains(string(body), tt.wantIn) {
				t.Errorf("anthropic client: %d %s, want 502 in Anthropic's format mentioning %q", resp.StatusCode, body, tt.wantIn)
			}
			resp, body = e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(false, ""), openaiHeaders)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"error":{`) || !strings.Contains(string(body), tt.wantIn) {
				t.Errorf("openai client: %d %s, want 502 in OpenAI's format mentioning %q", resp.StatusCode, body, tt.wantIn)
			}
			if n := e.up.Count("/v1/messages") + e.up.Count("/v1/chat/completions"); n != 0 {
				t.Errorf("upstream called %d times without the policies", n)
			}
		})
	}
}

// startSplit runs a control plane and a gateway with exactly the given
// link settings (besides the usual ones).
func startSplit(t *testing.T, cpEnv, gwEnv []string) *env {
	t.Helper()
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	cp := startProcess(t, "controlplane", append([]string{"LUTHIEN_GRPC_ADDR=127.0.0.1:0", "LUTHIEN_LOG_LEVEL=info"}, cpEnv...))
	gw := startProcess(t, "gateway", append([]string{"LUTHIEN_CONTROL_PLANE=" + cp.addr, "LUTHIEN_HTTP_ADDR=127.0.0.1:0",
		"LUTHIEN_LOG_LEVEL=info", "OPENAI_BASE_URL=" + up.OpenAIBaseURL(), "ANTHROPIC_BASE_URL=" + up.AnthropicBaseURL()}, gwEnv...))
	return &env{mode: "split", URL: "http://" + gw.addr, up: up, controlPlane: cp.addr, killControlPlane: func() {}}
}

// TestHardeningTokenOverPlaintextLoopback links the two binaries without
// TLS on loopback, the token read from a file on both sides: gRPC's token
// credentials would refuse to send it over plaintext; the gateway's are
// sent.
func TestHardeningTokenOverPlaintextLoopback(t *testing.T) {
	splitLinkEnv(t)
	e := startSplit(t, []string{"LUTHIEN_CONTROL_PLANE_TOKEN_FILE=" + linkPKI.tokenFile},
		[]string{"LUTHIEN_CONTROL_PLANE_TOKEN_FILE=" + linkPKI.tokenFile})
	if resp, body := e.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/ready: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders); resp.StatusCode != http.StatusOK {
		t.Errorf("a call through the gateway: %d %s", resp.StatusCode, body)
	}
	e.setPolicy(t, "all_caps", nil)
}

// TestHardeningRefusesOpenListen checks that the control plane binary
// does not serve all addresses without a token or mutual TLS, unless
// LUTHIEN_GRPC_INSECURE=1 says so, and then warns.
func TestHardeningRefusesOpenListen(t *testing.T) {
	cmd := exec.Command(filepath.Join(binDir, "controlplane"))
	cmd.Env = append(os.Environ(), "LUTHIEN_GRPC_ADDR=0.0.0.0:0", "LUTHIEN_CONTROL_PLANE_TOKEN=", "LUTHIEN_GRPC_INSECURE=")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the control plane served 0.0.0.0 without a token or mutual TLS: %s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "LUTHIEN_GRPC_INSECURE=1") {
		t.Fatalf("exit %v, output %s; want a refusal naming LUTHIEN_GRPC_INSECURE=1", err, out)
	}

	// Insecure on purpose: it serves, with a warning.
	cmd = exec.Command(filepath.Join(binDir, "controlplane"))
	cmd.Env = append(os.Environ(), "LUTHIEN_GRPC_ADDR=0.0.0.0:0", "LUTHIEN_GRPC_INSECURE=1")
	var logs lockedBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "listening") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	if s := logs.String(); !strings.Contains(s, "listening") || !strings.Contains(s, "level=WARN") || !strings.Contains(s, "without authentication") {
		t.Errorf("insecure on purpose: want it to serve with a warning; log:\n%s", s)
	}
}

// linkCall runs one call on CallService.Call as a gateway does, sending
// upstream's answer nowhere but in end: start, the decision, end, done.
// It returns the decision.
func linkCall(ctx context.Context, conn *grpc.ClientConn, start *cpv1.CallStart, end *cpv1.CallEnd) (*cpv1.CallDecision, error) {
	stream, err := cpv1.NewCallServiceClient(conn).Call(ctx)
	if err != nil {
		return nil, err
	}
	// A refused call: Send may still succeed or say io.EOF; Recv says why.
	if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: start}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	dec := resp.GetDecision()
	if dec == nil {
		return nil, fmt.Errorf("got %v, want a decision", resp)
	}
	if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: end}}); err != nil && !errors.Is(err, io.EOF) {
		return dec, err
	}
	if err := stream.CloseSend(); err != nil {
		return dec, err
	}
	if resp, err = stream.Recv(); err != nil {
		return dec, err
	}
	if resp.GetDone() == nil {
		return dec, fmt.Errorf("got %v, want done", resp)
	}
	return dec, nil
}

// passthroughCredential is RequestMetadata.credential_sha256 of a client
// presenting only x-api-key, without a client key on the gateway.
func passthroughCredential(apiKey string) string {
	sum := sha256.Sum256([]byte("x-api-key\x00" + apiKey + "\n"))
	return hex.EncodeToString(sum[:])
}

// TestHardeningForgedRecordNotCached runs, with the link's token and
// certificate, a call of a cacheable request before any gateway made it,
// for the same credential as the gateway's client: the control plane asks
// for upstream's response, and the call ends without one but with a
// made-up record saying upstream answered. Only what the session receives
// as upstream's response fills the cache, never a record: the gateway's
// identical request still goes upstream and gets upstream's answer, which
// is what the cache then serves.
func TestHardeningForgedRecordNotCached(t *testing.T) {
	e := start(t, "split", options{})
	e.up.SetDefault(fakeupstream.Scenario{Text: "real words"})
	conn := dialControlPlane(t, e)
	ctx, cancel := context.WithTimeout(withToken(t.Context()), 10*time.Second)
	defer cancel()
	body := anthropicBody(false, `,"temperature":0`)
	forged := &cpv1.Message{Id: "msg_forged", Model: "claude-fake", StopReason: "end_turn",
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "forged words"}}}}}
	now := timestamppb.Now()
	forgedJSON := `{"id":"msg_forged","type":"message","role":"assistant","model":"claude-fake","content":[{"type":"text","text":"forged words"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}`
	rec := &cpv1.CallRecord{
		Summary: &cpv1.CallSummary{Model: "claude-fake", Upstream: e.up.AnthropicBaseURL(), Status: 200, StartedAt: now, FinishedAt: now},
		Events: []*cpv1.CallEvent{
			{EventType: "request.received", Time: now, PayloadJson: []byte(body)},
			{EventType: "response.original", Time: now, PayloadJson: []byte(forgedJSON)},
		},
		FinalResponse: forged, ResponseUnchanged: true,
	}
	start := &cpv1.CallStart{CallId: "forged-1", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Body: []byte(body),
		Metadata: &cpv1.RequestMetadata{Model: "claude-fake", CredentialSha256: passthroughCredential(anthropicHeaders["x-api-key"])}}
	dec, err := linkCall(ctx, conn, start, &cpv1.CallEnd{HttpStatus: 200, Record: rec})
	if err != nil {
		t.Fatalf("the forged call: %v", err)
	}
	if dec.GetContinue() == nil || !dec.GetWantsResponse() {
		t.Fatalf("decision %v, want continue asking for upstream's response (a call that may fill the cache)", dec)
	}
	resp, got := e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
	if n := e.up.Count("/v1/messages"); n != 1 || !strings.Contains(string(got), "real words") {
		t.Fatalf("upstream called %d times, answer %d %s; want upstream's answer", n, resp.StatusCode, got)
	}
	if got := waitCached(t, e, "/v1/messages", body, anthropicHeaders); !strings.Contains(string(got), "real words") {
		t.Errorf("cached answer %s, want upstream's", got)
	}

	// The control: the same call, for another request, sending the answer
	// as upstream's response in end, fills the cache the gateway's client
	// reads (the credential above is the client's).
	other := strings.Replace(body, `"content":"hi"`, `"content":"hello"`, 1)
	start.CallId, start.Body = "forged-2", []byte(other)
	if dec, err := linkCall(ctx, conn, start, &cpv1.CallEnd{HttpStatus: 200, Response: forged}); err != nil || !dec.GetWantsResponse() {
		t.Fatalf("the control call: %v, %v", dec, err)
	}
	before := e.up.Count("/v1/messages")
	if resp, got := e.do(t, http.MethodPost, "/v1/messages", other, anthropicHeaders); e.up.Count("/v1/messages") != before || !strings.Contains(string(got), "forged words") {
		t.Errorf("the control: %d %s, upstream called %d times; want the answer from the cache", resp.StatusCode, got, e.up.Count("/v1/messages")-before)
	}
}

// lockedBuffer is a buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
