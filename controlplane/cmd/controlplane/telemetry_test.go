package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// The metrics listener serves /metrics in the Prometheus text format,
// only with the control plane's token when it has one.
func TestMetricsListener(t *testing.T) {
	const token = "metrics-token-0123456789"
	for _, tc := range []struct {
		name, token string
		header      string
		want        int
	}{
		{"no token set", "", "", http.StatusOK},
		{"anonymous", token, "", http.StatusUnauthorized},
		{"wrong token", token, "Bearer not-the-token-at-all", http.StatusUnauthorized},
		{"token", token, "Bearer " + token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config{metricsAddr: "127.0.0.1:0", token: tc.token}
			tel, err := startTelemetry(t.Context(), cfg, func(string) string { return "" }, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer tel.close()
			go func() { _ = tel.serve() }()
			req, _ := http.NewRequest(http.MethodGet, "http://"+tel.lis.Addr().String()+"/metrics", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if served := strings.Contains(string(body), "go_goroutines"); served != (tc.want == http.StatusOK) {
				t.Errorf("metrics served = %v with status %d", served, resp.StatusCode)
			}
		})
	}
}

// Without -metrics-addr nothing listens; a non-loopback metrics address
// needs something that authenticates callers, as the gRPC port does.
func TestMetricsExposure(t *testing.T) {
	tel, err := startTelemetry(t.Context(), config{}, func(string) string { return "" }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if tel.srv != nil {
		t.Error("metrics served without -metrics-addr")
	}
	if err := tel.serve(); err != nil {
		t.Errorf("serve without a listener: %v", err)
	}
	tel.close()

	for _, tc := range []struct {
		cfg  config
		open bool
	}{
		{config{metricsAddr: "0.0.0.0:9464"}, false},
		{config{metricsAddr: "0.0.0.0:9464", token: "t"}, true},
		{config{metricsAddr: "0.0.0.0:9464", tlsClientCA: "ca.pem"}, true},
		{config{metricsAddr: "0.0.0.0:9464", insecure: true}, true},
		{config{metricsAddr: "[::1]:9464"}, true},
	} {
		err := tc.cfg.checkMetricsExposure()
		if (err == nil) != tc.open {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
		if err != nil && !strings.Contains(err.Error(), envMetricsAddr) {
			t.Errorf("error does not name %s: %v", envMetricsAddr, err)
		}
	}
}

func TestTelemetrySettings(t *testing.T) {
	cfg, err := loadConfig([]string{"-log-format", "json", "-metrics-addr", "127.0.0.1:9464"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.logFormat != "json" || cfg.metricsAddr != "127.0.0.1:9464" {
		t.Errorf("config = %+v", cfg)
	}
	for _, env := range []map[string]string{{envLogFormat: "yaml"}, {envMetricsAddr: "9464"}} {
		if _, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}
