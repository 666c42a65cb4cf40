package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"luthien.dev/gateway/internal/telemetry"
)

// sample adds up the values (histogram counts) of the series of name in
// reg whose labels include want.
func sample(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

// Each way an exchange with upstream fails is counted once under its
// kind, and the exchange's duration carries it as its error type.
func TestUpstreamErrorKinds(t *testing.T) {
	silentAfter := func(write func(w http.ResponseWriter)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			write(w)
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}
	}
	tests := []struct {
		name     string
		upstream http.Handler
		dead     bool // upstream URL where nothing listens
		stream   bool
		inspect  bool
		kind     string
		status   int
	}{
		{name: "unreachable", dead: true, kind: telemetry.UpstreamUnreachable, status: http.StatusBadGateway},
		{name: "no headers in time", upstream: silentAfter(func(http.ResponseWriter) {}), kind: telemetry.UpstreamHeaderTimeout, status: http.StatusGatewayTimeout},
		{name: "silent stream", stream: true, upstream: silentAfter(func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"))
			w.(http.Flusher).Flush()
		}), kind: telemetry.UpstreamIdleTimeout, status: http.StatusOK},
		{name: "silent stream under a policy", stream: true, inspect: true, upstream: silentAfter(func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"))
			w.(http.Flusher).Flush()
		}), kind: telemetry.UpstreamIdleTimeout, status: http.StatusOK},
		{name: "body cut short", upstream: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte(`{"id":"c","choices":[`))
		}), kind: telemetry.UpstreamBrokeOff, status: http.StatusOK},
		{name: "server error", upstream: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error":{"message":"down"}}`, http.StatusServiceUnavailable)
		}), kind: telemetry.UpstreamServerError, status: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := telemetry.NewMetrics(nil)
			reg := prometheus.NewRegistry()
			reg.MustRegister(m.Collectors()...)
			cfg := Config{Metrics: m, UpstreamHeaderTimeout: 100 * time.Millisecond, UpstreamIdleTimeout: 100 * time.Millisecond}
			if tt.dead {
				cfg.OpenAIBaseURL = "http://127.0.0.1:1/v1"
			}
			upstream := tt.upstream
			if upstream == nil {
				upstream = http.NotFoundHandler()
			}
			g := startGateway(t, cfg, &passPolicy{inspect: tt.inspect}, upstream)
			resp, _, _ := g.post(t, formats[1], tt.stream)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			g.recs.next(t) // the call is over
			errs := map[string]string{"gen_ai_provider_name": "openai"}
			if got := sample(t, reg, "luthien_gateway_upstream_errors_total", errs); got != 1 {
				t.Errorf("%v upstream errors, want 1", got)
			}
			errs["kind"] = tt.kind
			if got := sample(t, reg, "luthien_gateway_upstream_errors_total", errs); got != 1 {
				t.Errorf("%v upstream errors of kind %s, want 1", got, tt.kind)
			}
			if got := sample(t, reg, "gen_ai_client_operation_duration_seconds", map[string]string{"error_type": tt.kind, "gen_ai_request_model": "other"}); got != 1 {
				t.Errorf("%v exchanges with error_type %s, want 1", got, tt.kind)
			}
		})
	}
}
