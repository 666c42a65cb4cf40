package main

import (
	"context"
	"fmt"
	"time"

	"luthien.dev/gateway/internal/app"
)

// tracingUsage documents the tracing settings: the standard OpenTelemetry
// variables, without flags.
const tracingUsage = `
Tracing settings (environment only; see README.md, "Metrics and tracing"):
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT
    	OTLP endpoint of the traces (the second gets /v1/traces added over HTTP); unset: tracing off
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL
    	http/protobuf (default) or grpc; the other OTEL_* variables (headers, sampler, service name) apply as usual
`

// tracing returns the gateway's options with the tracer provider the
// standard OTEL_* variables ask for (none when they ask for nothing), and
// the function that exports the last spans at exit.
func tracing(ctx context.Context, getenv func(string) string) (app.Options, func(), error) {
	tp, err := app.NewTracerProvider(ctx, getenv)
	if err != nil {
		return app.Options{}, nil, fmt.Errorf("tracing: %w", err)
	}
	if tp == nil {
		return app.Options{}, func() {}, nil
	}
	return app.Options{TracerProvider: tp}, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}, nil
}
