package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"luthien.dev/controlplane/server"
	"luthien.dev/settings/shared"
	"luthien.dev/settings/shared/sharedtest"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("policy:\n  class: noop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// def is the default configuration with the given changes.
	def := func(change func(*config)) config {
		c := config{grpcAddr: "127.0.0.1:9000", logLevel: slog.LevelInfo, logFormat: "text", Persistence: shared.Persistence{
			RedisPrefix: "luthien:", CacheTTL: time.Hour, CacheMode: "temperature0", QueueCapacity: 10000}}
		if change != nil {
			change(&c)
		}
		return c
	}
	envPolicyConfig, envLogLevel := shared.PolicyConfig.Env, shared.LogLevel.Env
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		want      config
		wantErrIn string
	}{
		{
			name: "defaults",
			want: def(nil),
		},
		{
			name: "environment beats defaults",
			env:  map[string]string{envGRPCAddr: ":9100", envPolicyConfig: policyFile, envLogLevel: "DEBUG"},
			want: def(func(c *config) { c.grpcAddr, c.policyConfig, c.logLevel = ":9100", policyFile, slog.LevelDebug }),
		},
		{
			name: "flags beat environment",
			args: []string{"-grpc-addr", "0.0.0.0:9200", "-log-level", "warn", "-policy-config", policyFile},
			env:  map[string]string{envGRPCAddr: ":9100", envPolicyConfig: filepath.Join(dir, "absent.yaml"), envLogLevel: "debug"},
			want: def(func(c *config) { c.grpcAddr, c.policyConfig, c.logLevel = "0.0.0.0:9200", policyFile, slog.LevelWarn }),
		},
		{
			name: "empty environment counts as unset",
			env:  map[string]string{envGRPCAddr: "", envLogLevel: ""},
			want: def(nil),
		},
		{
			name: "own switches and files",
			args: []string{"-grpc-insecure", "1", "-metrics-addr", "127.0.0.1:9464"},
			env:  map[string]string{envInsecure: "0", envMetricsAddr: "127.0.0.1:1"},
			want: def(func(c *config) { c.insecure, c.metricsAddr = true, "127.0.0.1:9464" }),
		},
		{name: "missing policy file", args: []string{"-policy-config", filepath.Join(dir, "absent.yaml")}, wantErrIn: "absent.yaml"},
		{name: "policy path is a directory", env: map[string]string{envPolicyConfig: dir}, wantErrIn: "not a regular file"},
		{name: "address without port", args: []string{"-grpc-addr", "localhost"}, wantErrIn: "-grpc-addr"},
		{name: "address with a bad port", env: map[string]string{envGRPCAddr: "localhost:http"}, wantErrIn: "not a number"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErrIn: `-log-level (LUTHIEN_LOG_LEVEL) "loud"`},
		{name: "unknown flag", args: []string{"-port", "1"}, wantErrIn: "flag provided but not defined"},
		{name: "positional argument", args: []string{"serve"}, wantErrIn: `unexpected argument "serve"`},
		{name: "negative retention", args: []string{"-retention-days", "-1"}, wantErrIn: "-retention-days"},
		{name: "bad cache ttl", env: map[string]string{"LUTHIEN_CACHE_TTL": "soon"}, wantErrIn: "LUTHIEN_CACHE_TTL"},
		{name: "bad cache mode", args: []string{"-cache-mode", "sometimes"}, wantErrIn: "-cache-mode"},
		{name: "bad queue capacity", env: map[string]string{"LUTHIEN_STORE_QUEUE": "0"}, wantErrIn: "LUTHIEN_STORE_QUEUE"},
		{name: "bad metrics address", env: map[string]string{envMetricsAddr: "9464"}, wantErrIn: `-metrics-addr (LUTHIEN_METRICS_ADDR) "9464"`},
		{name: "judge settings", env: map[string]string{"LUTHIEN_JUDGE_HOSTS": "judge.internal:8443, api.openai.com",
			"LUTHIEN_JUDGE_KEY_ENVS": "LUTHIEN_JUDGE_*", "OPENAI_BASE_URL": "https://proxy.internal/v1"}, want: def(nil)},
		{name: "bad judge hosts", env: map[string]string{"LUTHIEN_JUDGE_HOSTS": "https://judge.internal/"}, wantErrIn: "LUTHIEN_JUDGE_HOSTS"},
		{name: "bad judge key variables", env: map[string]string{"LUTHIEN_JUDGE_KEY_ENVS": "OPENAI-KEY"}, wantErrIn: "LUTHIEN_JUDGE_KEY_ENVS"},
		{name: "bad provider base", env: map[string]string{"OPENAI_BASE_URL": "ftp://x"}, wantErrIn: "OPENAI_BASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(name string) string { return tt.env[name] }
			got, err := loadConfig(tt.args, getenv, io.Discard)
			if tt.wantErrIn != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrIn) {
					t.Fatalf("loadConfig error = %v, want one containing %q", err, tt.wantErrIn)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if got != tt.want {
				t.Errorf("loadConfig = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSharedSettings runs the cases every binary runs on the settings it
// shares with the gateway: the same flags and environment give the same
// values and the same errors here as in the gateway.
func TestSharedSettings(t *testing.T) {
	sharedtest.Run(t, func(args []string, getenv func(string) string) (sharedtest.Values, error) {
		c, err := loadConfig(args, getenv, io.Discard)
		return sharedtest.Values{Persistence: c.Persistence, PolicyConfig: c.policyConfig, LogLevel: c.logLevel,
			LogFormat: c.logFormat, Token: c.token}, err
	})
}

// TestSharedDefaultsAreTheServers checks that the shared defaults are the
// ones the server applies to a zero server.Config, so that a gateway and
// a control plane configured alike behave alike.
func TestSharedDefaultsAreTheServers(t *testing.T) {
	if shared.DefaultRedisPrefix != server.DefaultRedisPrefix || shared.DefaultCacheTTL != server.DefaultCacheTTL ||
		shared.DefaultQueueCapacity != server.DefaultQueueCapacity {
		t.Errorf("shared defaults %q, %v, %d; the server's %q, %v, %d", shared.DefaultRedisPrefix, shared.DefaultCacheTTL,
			shared.DefaultQueueCapacity, server.DefaultRedisPrefix, server.DefaultCacheTTL, server.DefaultQueueCapacity)
	}
	if err := server.CheckLogFormat(shared.LogFormat.Default); err != nil {
		t.Error(err)
	}
	for _, v := range shared.LogFormat.Values {
		if err := server.CheckLogFormat(v); err != nil {
			t.Error(err)
		}
	}
}

func TestSettingNames(t *testing.T) {
	names, err := settingNames()
	if err != nil {
		t.Fatal(err)
	}
	sharedtest.CheckNames(t, names)
	for _, n := range []string{envGRPCAddr, envMetricsAddr, "LUTHIEN_JUDGE_HOSTS", "OPENAI_API_KEY"} {
		if !slices.Contains(names, n) {
			t.Errorf("names lack %s: %v", n, names)
		}
	}
	if slices.Contains(names, "LUTHIEN_HTTP_ADDR") {
		t.Error("the control plane lists the gateway's LUTHIEN_HTTP_ADDR")
	}
}

// TestHelp checks that -h writes every flag with its variable, then the
// settings without a flag, and never a value from the environment.
func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := loadConfig([]string{"-h"}, func(name string) string {
		if name == envDatabaseURL {
			return "postgres://luthien:s3cret@db/x"
		}
		return ""
	}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-token-file string", "($LUTHIEN_CONTROL_PLANE_TOKEN_FILE)", "-store-queue int", `(default "10000")`,
		"Link settings without a flag", "LUTHIEN_JUDGE_HOSTS", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Error("usage shows a value from the environment")
	}
}

// TestRunStops serves on a free port and checks that cancelling the
// context shuts the server down cleanly.
func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-grpc-addr", "127.0.0.1:0", "-log-level", "error"}, func(string) string { return "" })
	}()
	time.Sleep(100 * time.Millisecond) // let it listen; an earlier cancel must work too
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunInvalidPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("policy:\n  class: shouting\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"-grpc-addr", "127.0.0.1:0", "-policy-config", path}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), `unknown policy class "shouting"`) {
		t.Fatalf("run error = %v, want an unknown class error", err)
	}
}
