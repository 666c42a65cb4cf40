package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
)

// syncBuffer collects a process's output for the test's messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs a binary with only env as its environment until the test
// ends, and returns its output.
func start(t *testing.T, bin Binary, env ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binaries[bin])
	cmd.Env = env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return out
}

// eventually retries f every 50 ms for up to 20 s, until it succeeds.
func eventually(t *testing.T, what string, out *syncBuffer, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Errorf("%s: %v\noutput:\n%s", what, err, out.String())
}

// probes returns the probes of every container of bin in the rendered
// base.
func probes(t *testing.T, bin Binary) []*corev1.Probe {
	t.Helper()
	out, err := Render(filepath.Join(k8sDir(), "base"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	var ps []*corev1.Probe
	for _, d := range o.Deployments {
		for _, ct := range d.Spec.Template.Spec.Containers {
			if imageBinary(ct.Image) == bin {
				for _, p := range []*corev1.Probe{ct.ReadinessProbe, ct.LivenessProbe, ct.StartupProbe} {
					if p != nil {
						ps = append(ps, p)
					}
				}
			}
		}
	}
	if len(ps) == 0 {
		t.Fatalf("no probes of the %s", bin)
	}
	return ps
}

// TestProbesAnswer starts the gateway and checks that every HTTP probe of
// its Deployment answers 200 (a path it does not serve would fail the
// pod).
func TestProbesAnswer(t *testing.T) {
	addr := freeAddr(t)
	out := start(t, Gateway, "LUTHIEN_HTTP_ADDR="+addr)
	for _, p := range probes(t, Gateway) {
		if p.HTTPGet == nil {
			t.Errorf("gateway probe %+v is not an HTTP GET", p.ProbeHandler)
			continue
		}
		url := "http://" + addr + p.HTTPGet.Path
		client := &http.Client{Timeout: time.Duration(max(p.TimeoutSeconds, 1)) * time.Second}
		eventually(t, "GET "+url, out, func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &statusError{resp.StatusCode}
			}
			return nil
		})
	}
}

// statusError is an HTTP status other than 200.
type statusError struct{ code int }

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.code) }

// TestGRPCProbesAnswer starts a control plane with a token and checks
// that every gRPC probe of its Deployment, and the health check of
// docker-compose.yml, is answered SERVING without the token, as the
// kubelet and grpc_health_probe ask.
func TestGRPCProbesAnswer(t *testing.T) {
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	out := start(t, ControlPlane, "LUTHIEN_GRPC_ADDR="+addr, "LUTHIEN_CONTROL_PLANE_TOKEN="+hex.EncodeToString(token))
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func(service string) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				return err
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return &statusError{int(resp.GetStatus())}
			}
			return nil
		}
	}
	for _, p := range probes(t, ControlPlane) {
		if p.GRPC == nil {
			t.Errorf("control plane probe %+v is not a gRPC probe", p.ProbeHandler)
			continue
		}
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		eventually(t, "gRPC health of "+strconv.Quote(service), out, check(service))
	}

	_, content, env := composeFile(t)
	hc := loadCompose(t, content, env).Services["controlplane"].HealthCheck
	if hc == nil || len(hc.Test) < 2 {
		t.Fatalf("the compose control plane's health check: %+v", hc)
	}
	for _, arg := range hc.Test[2:] {
		if flagValue([]string{arg}, "addr") == "" && flagValue([]string{arg}, "service") == "" {
			t.Errorf("health check argument %q: this test checks -addr and -service only", arg)
		}
	}
	eventually(t, "the compose health check", out, check(flagValue(hc.Test[2:], "service")))
}
