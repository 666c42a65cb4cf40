// Package e2e runs one end-to-end suite against both deployment modes: the
// control plane linked in-process over bufconn, and the two binaries as
// separate processes over TCP. Only the LLM provider is fake.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/app"
	"luthien.dev/gateway/internal/config"
	"luthien.dev/migrations/dbtest"
)

// binDir holds the binaries built for split mode.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "luthien-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		defer stopBrowser() // the browser tests' Chromium, if they started it
		for _, b := range []struct{ pkg, out string }{
			{"luthien.dev/gateway/cmd/gateway", "gateway"},
			{"luthien.dev/controlplane/cmd/controlplane", "controlplane"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building", b.pkg, ":", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// env is one running gateway with its fake upstream.
type env struct {
	mode string
	URL  string // the gateway's base URL
	up   *fakeupstream.Server
	// killControlPlane stops a separate control plane (split mode only).
	killControlPlane func()
	// databaseURL is the control plane's database, when it has one.
	databaseURL string
	// controlPlane is the separate control plane's address (split mode
	// only).
	controlPlane string
}

// options vary a gateway's configuration.
type options struct {
	clientKey    string
	providerKeys bool
	upstreamURL  string // overrides both upstreams
	// database gives the control plane a fresh PostgreSQL database.
	database bool
	// redis connects to the local Redis with a key and channel prefix of
	// this instance's own; redisPrefix instead names the prefix, for
	// instances that must see each other.
	redis       bool
	redisPrefix string
	// env adds settings for the control plane (in-process: the gateway).
	env map[string]string
	// gatewayEnv adds settings for the gateway.
	gatewayEnv map[string]string
	// up reuses a fake upstream instead of starting one.
	up *fakeupstream.Server
}

var modes = []string{"inprocess", "split"}

// forEachMode runs f against a fresh gateway in each deployment mode.
func forEachMode(t *testing.T, opts options, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			f(t, start(t, mode, opts))
		})
	}
}

func start(t *testing.T, mode string, opts options) *env {
	t.Helper()
	up := opts.up
	if up == nil {
		up = fakeupstream.New()
		t.Cleanup(up.Close)
	}
	e := &env{mode: mode, up: up, killControlPlane: func() {}}
	openaiURL, anthropicURL := up.OpenAIBaseURL(), up.AnthropicBaseURL()
	if opts.upstreamURL != "" {
		openaiURL, anthropicURL = opts.upstreamURL+"/v1", opts.upstreamURL
	}
	vars := map[string]string{
		"OPENAI_BASE_URL":        openaiURL,
		"ANTHROPIC_BASE_URL":     anthropicURL,
		"LUTHIEN_CLIENT_API_KEY": opts.clientKey,
		"LUTHIEN_HTTP_ADDR":      "127.0.0.1:0",
		"LUTHIEN_LOG_LEVEL":      "warn",
	}
	if opts.providerKeys {
		vars["OPENAI_API_KEY"], vars["ANTHROPIC_API_KEY"] = "sk-provider-openai", "sk-provider-anthropic"
	}
	for k, v := range opts.gatewayEnv {
		vars[k] = v
	}
	// Settings the control plane reads (in split mode from its own
	// environment).
	cpVars := map[string]string{}
	if opts.database {
		cpVars["DATABASE_URL"] = dbtest.NewDatabase(t)
		e.databaseURL = cpVars["DATABASE_URL"]
	}
	if opts.redis && opts.redisPrefix == "" {
		opts.redisPrefix = uniqueName("luthien-test-") + ":"
	}
	if opts.redisPrefix != "" {
		cpVars["REDIS_URL"] = "redis://127.0.0.1:6379/0"
		cpVars["LUTHIEN_REDIS_PREFIX"] = opts.redisPrefix
	}
	for k, v := range opts.env {
		cpVars[k] = v
	}
	switch mode {
	case "inprocess":
		for k, v := range cpVars {
			vars[k] = v
		}
		cfg, err := config.Load(nil, func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(func() { srv.Close(); a.Close() })
		e.URL = srv.URL
	case "split":
		// The link is mutual TLS with a token (hardening_link_test.go);
		// opts override its settings.
		cpLink, gwLink := splitLinkEnv(t)
		cpEnv := append([]string{"LUTHIEN_GRPC_ADDR=127.0.0.1:0", "LUTHIEN_LOG_LEVEL=info"}, cpLink...)
		for k, v := range cpVars {
			cpEnv = append(cpEnv, k+"="+v)
		}
		cp := startProcess(t, "controlplane", cpEnv)
		vars["LUTHIEN_CONTROL_PLANE"] = cp.addr
		vars["LUTHIEN_LOG_LEVEL"] = "info"
		envv := gwLink
		for k, v := range vars {
			if _, cpOnly := cpVars[k]; !cpOnly {
				envv = append(envv, k+"="+v)
			}
		}
		gw := startProcess(t, "gateway", envv)
		e.URL = "http://" + gw.addr
		e.killControlPlane = func() { _ = cp.cmd.Process.Kill(); _ = cp.cmd.Wait() }
		e.controlPlane = cp.addr
	}
	return e
}

type process struct {
	cmd  *exec.Cmd
	addr string
}

var addrRE = regexp.MustCompile(`listening.* addr=(\S+)`)

// startProcess runs a built binary and waits for its "listening" log line.
func startProcess(t *testing.T, name string, envv []string) *process {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = append(os.Environ(), envv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	found := make(chan string, 1)
	var logs bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			logs.WriteString(line + "\n")
		}
	}()
	select {
	case p.addr = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start listening; its log:\n%s", name, logs.String())
	}
	return p
}

// do sends a request to the gateway and returns the response with its body
// read.
func (e *env) do(t *testing.T, method, path string, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// setPolicy activates a policy through the gateway's REST admin API.
func (e *env) setPolicy(t *testing.T, class string, cfg map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"class": class, "config": cfg})
	resp, b := e.do(t, http.MethodPut, "/api/v1/policy", string(body), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set policy %s: %d %s", class, resp.StatusCode, b)
	}
}

// sseEvent is one parsed client-side SSE event.
type sseEvent struct {
	name string
	data string
}

// parseSSE splits a stream body into events.
func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		var ev sseEvent
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev.name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				ev.data = v
			}
		}
		out = append(out, ev)
	}
	return out
}

func (ev sseEvent) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
		t.Fatalf("event %q data is not JSON: %v: %s", ev.name, err, ev.data)
	}
	return m
}

func anthropicBody(stream bool, extra string) string {
	return fmt.Sprintf(`{"model":"claude-fake","max_tokens":256,"stream":%t,"messages":[{"role":"user","content":"hi"}]%s}`, stream, extra)
}

func openaiBody(stream bool, extra string) string {
	return fmt.Sprintf(`{"model":"gpt-fake","stream":%t,"messages":[{"role":"user","content":"hi"}]%s}`, stream, extra)
}

var anthropicHeaders = map[string]string{"Content-Type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-client-key"}
var openaiHeaders = map[string]string{"Content-Type": "application/json", "Authorization": "Bearer sk-client-key"}
