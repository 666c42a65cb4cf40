package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("policy:\n  class: noop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// def is the default configuration with the given changes.
	def := func(change func(*config)) config {
		c := config{grpcAddr: "127.0.0.1:9000", logLevel: slog.LevelInfo, redisPrefix: "luthien:",
			cacheTTL: time.Hour, cacheMode: "temperature0", storeQueue: 10000, logFormat: "text"}
		if change != nil {
			change(&c)
		}
		return c
	}
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
		{name: "missing policy file", args: []string{"-policy-config", filepath.Join(dir, "absent.yaml")}, wantErrIn: "absent.yaml"},
		{name: "policy path is a directory", env: map[string]string{envPolicyConfig: dir}, wantErrIn: "not a regular file"},
		{name: "address without port", args: []string{"-grpc-addr", "localhost"}, wantErrIn: "-grpc-addr"},
		{name: "address with a bad port", env: map[string]string{envGRPCAddr: "localhost:http"}, wantErrIn: "not a number"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErrIn: `-log-level (LUTHIEN_LOG_LEVEL) "loud"`},
		{name: "unknown flag", args: []string{"-port", "1"}, wantErrIn: "flag provided but not defined"},
		{name: "positional argument", args: []string{"serve"}, wantErrIn: `unexpected argument "serve"`},
		{
			name: "recording settings from the environment",
			env: map[string]string{envDatabaseURL: "postgres://db/x", envRedisURL: "redis://r:6379/0", envRedisPrefix: "t:",
				envRetention: "30", envCacheTTL: "0", envCacheMode: "all", envStoreQueue: "50"},
			want: def(func(c *config) {
				c.databaseURL, c.redisURL, c.redisPrefix = "postgres://db/x", "redis://r:6379/0", "t:"
				c.retentionDays, c.cacheTTL, c.cacheMode, c.storeQueue = 30, 0, "all", 50
			}),
		},
		{
			name: "recording flags beat the environment",
			args: []string{"-database-url", "postgres://flag/x", "-retention-days", "7", "-cache-ttl", "5m", "-cache-mode", "off", "-store-queue", "9"},
			env:  map[string]string{envDatabaseURL: "postgres://env/x", envRetention: "30", envCacheTTL: "1h", envCacheMode: "all", envStoreQueue: "50"},
			want: def(func(c *config) {
				c.databaseURL, c.retentionDays, c.cacheTTL, c.cacheMode, c.storeQueue = "postgres://flag/x", 7, 5*time.Minute, "off", 9
			}),
		},
		{name: "negative retention", args: []string{"-retention-days", "-1"}, wantErrIn: "-retention-days"},
		{name: "bad cache ttl", env: map[string]string{envCacheTTL: "soon"}, wantErrIn: "LUTHIEN_CACHE_TTL"},
		{name: "bad cache mode", args: []string{"-cache-mode", "sometimes"}, wantErrIn: "-cache-mode"},
		{name: "bad queue capacity", env: map[string]string{envStoreQueue: "0"}, wantErrIn: "LUTHIEN_STORE_QUEUE"},
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
