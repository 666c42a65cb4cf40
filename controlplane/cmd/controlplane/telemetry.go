package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"luthien.dev/controlplane/server"
)

// serviceName is the control plane's OpenTelemetry service.name, unless
// OTEL_SERVICE_NAME says otherwise.
const serviceName = "luthien-controlplane"

// tracingUsage documents the tracing settings, the standard OpenTelemetry
// variables (no flags).
const tracingUsage = `
Tracing settings (environment only; see README.md, "Metrics and tracing"):
  ` + server.EnvOTLPTracesEndpoint + `, ` + server.EnvOTLPEndpoint + `
    	OTLP endpoint of the traces (the second gets /v1/traces added over HTTP); unset: tracing off
  ` + server.EnvOTLPTracesProtocol + `, ` + server.EnvOTLPProtocol + `
    	http/protobuf (default) or grpc; the other OTEL_* variables (headers, sampler, service name) apply as usual
`

// telemetry is what the binary reports about itself: its metrics (served
// at /metrics on their own listener when -metrics-addr is set) and its
// traces (exported over OTLP when the OTEL_* variables say so).
//
// The control plane has no HTTP surface besides this one: the REST API
// is the gateway's. Metrics therefore get a listener of their own, off by
// default, because a default port would collide when several control
// planes share a machine (and a scraper on another host could not reach
// loopback anyway). It is guarded like the gRPC port: the same TLS
// (mutual when a client CA is set), the same token as a bearer token, and
// the same refusal to serve a non-loopback address with nothing that
// authenticates callers unless LUTHIEN_GRPC_INSECURE=1.
type telemetry struct {
	registry *prometheus.Registry
	tracing  *sdktrace.TracerProvider // nil: tracing off
	srv      *http.Server             // nil: metrics not served
	lis      net.Listener
}

// startTelemetry builds the registry (with the Go runtime's and the
// process's collectors), the tracer provider, and the metrics listener.
func startTelemetry(ctx context.Context, cfg config, getenv func(string) string, tlsCfg *tls.Config, logger *slog.Logger) (*telemetry, error) {
	if err := cfg.checkMetricsExposure(); err != nil {
		return nil, err
	}
	t := &telemetry{registry: prometheus.NewRegistry()}
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tp, err := server.NewTracerProvider(ctx, getenv, serviceName)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	t.tracing = tp
	if cfg.metricsAddr == "" {
		return t, nil
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.metricsAddr)
	if err != nil {
		t.close()
		return nil, fmt.Errorf("listen on the metrics address: %w", err)
	}
	if tlsCfg != nil {
		lis = tls.NewListener(lis, tlsCfg)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", requireToken(cfg.token, promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})))
	t.srv, t.lis = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, lis
	// Not "listening": the tests find the gRPC address by that word.
	logger.Info("metrics served", "addr", lis.Addr().String(), "path", "/metrics", "tls", tlsCfg != nil, "token", cfg.token != "")
	return t, nil
}

// tracerProvider is the provider for server.Config: nil when tracing is
// off (a nil *sdktrace.TracerProvider would not be a nil interface).
func (t *telemetry) tracerProvider() trace.TracerProvider {
	if t.tracing == nil {
		return nil
	}
	return t.tracing
}

// serve serves the metrics until stop; it returns at once when they are
// not served.
func (t *telemetry) serve() error {
	if t.srv == nil {
		return nil
	}
	if err := t.srv.Serve(t.lis); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// stop closes the metrics listener.
func (t *telemetry) stop() {
	if t.srv != nil {
		_ = t.srv.Close()
	}
}

// close stops serving metrics and exports the spans not yet exported.
func (t *telemetry) close() {
	t.stop()
	if t.tracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.tracing.Shutdown(ctx)
	}
}

// checkMetricsExposure applies the gRPC port's rule to the metrics
// listener: not on a non-loopback address without a token or mutual TLS,
// unless insecure.
func (c *config) checkMetricsExposure() error {
	if c.metricsAddr == "" || isLoopback(c.metricsAddr) || c.token != "" || c.tlsClientCA != "" || c.insecure {
		return nil
	}
	return fmt.Errorf("-metrics-addr (%s) %q is not a loopback address, and nothing authenticates callers: "+
		"set %s (or %s), or mutual TLS (%s); or set %s=1 to serve it open",
		envMetricsAddr, c.metricsAddr, envToken, envTokenFile, envTLSClientCA, envInsecure)
}

// requireToken lets a request through only with `Authorization: Bearer
// <token>` (compared in constant time); an empty token lets everyone
// through.
func requireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="luthien-controlplane"`)
			http.Error(w, "unauthorized: send the control plane token as Authorization: Bearer", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
