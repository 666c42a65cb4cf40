package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadPrecedence(t *testing.T) {
	c, err := Load([]string{"-http-addr", "127.0.0.1:1"}, env(map[string]string{
		"LUTHIEN_HTTP_ADDR": "127.0.0.1:2", "OPENAI_BASE_URL": "http://127.0.0.1:3/v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:1" {
		t.Errorf("flag should beat env: got %s", c.HTTPAddr)
	}
	if c.OpenAIBaseURL != "http://127.0.0.1:3/v1" {
		t.Errorf("env should beat default: got %s", c.OpenAIBaseURL)
	}
	if c.AnthropicBaseURL != "https://api.anthropic.com" || c.ControlPlane != InProcess {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(policy, []byte("policy:\n  class: noop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad addr", []string{"-http-addr", "nope"}, nil, "LUTHIEN_HTTP_ADDR"},
		{"bad debug addr", nil, map[string]string{"LUTHIEN_DEBUG_ADDR": "6060"}, "LUTHIEN_DEBUG_ADDR"},
		{"bad control plane", nil, map[string]string{"LUTHIEN_CONTROL_PLANE": "somewhere"}, "LUTHIEN_CONTROL_PLANE"},
		{"bad url", nil, map[string]string{"ANTHROPIC_BASE_URL": "ftp://x"}, "ANTHROPIC_BASE_URL"},
		{"bad timeout", nil, map[string]string{"LUTHIEN_POLICY_TIMEOUT": "soon"}, "LUTHIEN_POLICY_TIMEOUT"},
		{"policy file with remote control plane", nil, map[string]string{
			"LUTHIEN_CONTROL_PLANE": "127.0.0.1:9000", "LUTHIEN_POLICY_CONFIG": policy}, "in-process"},
		{"database with remote control plane", []string{"-control-plane", "dns:///cp:9000", "-database-url", "postgres://db/x"}, nil, "in-process"},
		{"missing policy file", nil, map[string]string{"LUTHIEN_POLICY_CONFIG": "absent.yaml"}, `-policy-config (LUTHIEN_POLICY_CONFIG) "absent.yaml"`},
		{"named port", []string{"-http-addr", "localhost:http"}, nil, `-http-addr (LUTHIEN_HTTP_ADDR) "localhost:http": want host:port: port "http" is not a number`},
		{"unknown flag", []string{"-nope"}, nil, "nope"},
		{"public listener without an admin key", []string{"-http-addr", "0.0.0.0:8000"}, nil, "LUTHIEN_ADMIN_API_KEY"},
		{"empty host listens everywhere", []string{"-http-addr", ":8000"}, nil, "LUTHIEN_ADMIN_API_KEY"},
		{"non-loopback profiler", []string{"-debug-addr", "0.0.0.0:6060"}, nil, "loopback only"},
		{"profiler on a host name", []string{"-debug-addr", "example.com:6060"}, nil, "loopback only"},
		{"admin key equal to the client key", nil, map[string]string{"LUTHIEN_ADMIN_API_KEY": "k1", "LUTHIEN_CLIENT_API_KEY": "k1"}, "must differ"},
		{"bad insecure flag", nil, map[string]string{"LUTHIEN_INSECURE_ADMIN": "yes please"}, "LUTHIEN_INSECURE_ADMIN"},
		{"bad session ttl", nil, map[string]string{"LUTHIEN_SESSION_TTL": "0s"}, "LUTHIEN_SESSION_TTL"},
		{"bad header timeout", nil, map[string]string{"LUTHIEN_UPSTREAM_HEADER_TIMEOUT": "soon"}, "LUTHIEN_UPSTREAM_HEADER_TIMEOUT"},
		{"zero header timeout", []string{"-upstream-header-timeout", "0s"}, nil, "LUTHIEN_UPSTREAM_HEADER_TIMEOUT"},
		{"negative idle timeout", nil, map[string]string{"LUTHIEN_UPSTREAM_IDLE_TIMEOUT": "-1s"}, "LUTHIEN_UPSTREAM_IDLE_TIMEOUT"},
		{"idle timeout without a unit", nil, map[string]string{"LUTHIEN_UPSTREAM_IDLE_TIMEOUT": "60"}, "LUTHIEN_UPSTREAM_IDLE_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestAdminSettings(t *testing.T) {
	for _, ok := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"public listener with an admin key", []string{"-http-addr", "0.0.0.0:8000"}, map[string]string{"LUTHIEN_ADMIN_API_KEY": "k"}},
		{"public listener, insecure on purpose", []string{"-http-addr", "0.0.0.0:8000"}, map[string]string{"LUTHIEN_INSECURE_ADMIN": "1"}},
		{"loopback v6", []string{"-http-addr", "[::1]:8000", "-debug-addr", "localhost:6060"}, nil},
	} {
		if _, err := Load(ok.args, env(ok.env)); err != nil {
			t.Errorf("%s: %v", ok.name, err)
		}
	}
	c, err := Load([]string{"-allowed-hosts", " gw.internal , ,other.example"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.AllowedHosts, "|") != "gw.internal|other.example" || c.SessionTTL.Hours() != 12 {
		t.Errorf("allowed hosts %q, session ttl %v", c.AllowedHosts, c.SessionTTL)
	}
}

func TestUpstreamTimeouts(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamHeaderTimeout != 2*time.Minute || c.UpstreamIdleTimeout != 60*time.Second {
		t.Errorf("defaults: header %v, idle %v; want 2m, 60s", c.UpstreamHeaderTimeout, c.UpstreamIdleTimeout)
	}
	c, err = Load([]string{"-upstream-idle-timeout", "5s"}, env(map[string]string{
		"LUTHIEN_UPSTREAM_HEADER_TIMEOUT": "10m", "LUTHIEN_UPSTREAM_IDLE_TIMEOUT": "90s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamHeaderTimeout != 10*time.Minute || c.UpstreamIdleTimeout != 5*time.Second {
		t.Errorf("got header %v, idle %v; want 10m from the environment, 5s from the flag", c.UpstreamHeaderTimeout, c.UpstreamIdleTimeout)
	}
	if s := c.LogValue().String(); !strings.Contains(s, "upstream_header_timeout=10m0s") || !strings.Contains(s, "upstream_idle_timeout=5s") {
		t.Errorf("timeouts not logged: %s", s)
	}
}

func TestLogValueRedactsSecrets(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"LUTHIEN_CLIENT_API_KEY": "sk-secret-1", "ANTHROPIC_API_KEY": "sk-ant-2",
		"LUTHIEN_ADMIN_API_KEY": "adm-secret-3", "LUTHIEN_SESSION_SECRET": "sess-secret-4"}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.LogValue().String()
	if strings.Contains(s, "sk-secret-1") || strings.Contains(s, "sk-ant-2") || strings.Contains(s, "adm-secret-3") || strings.Contains(s, "sess-secret-4") || !strings.Contains(s, "[redacted]") {
		t.Fatalf("secrets not redacted: %s", s)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	_, err := Load([]string{"-h"}, env(nil))
	var help *HelpError
	if !errors.As(err, &help) {
		t.Fatalf("got %v, want a HelpError", err)
	}
	for _, v := range []string{"LUTHIEN_HTTP_ADDR", "LUTHIEN_CONTROL_PLANE", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
		"LUTHIEN_CLIENT_API_KEY", "LUTHIEN_POLICY_CONFIG", "DATABASE_URL", "REDIS_URL", "LUTHIEN_DEBUG_ADDR",
		"LUTHIEN_UPSTREAM_HEADER_TIMEOUT", "LUTHIEN_UPSTREAM_IDLE_TIMEOUT"} {
		if !strings.Contains(help.Usage, "$"+v) {
			t.Errorf("usage does not mention %s:\n%s", v, help.Usage)
		}
	}
}
