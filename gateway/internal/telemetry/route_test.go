package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRouteName(t *testing.T) {
	for pattern, want := range map[string]string{
		"GET /metrics":         "/metrics",
		"/v1/chat/completions": "/v1/chat/completions",
		"HEAD /{$}":            "/{$}",
		"GET /calls/{id}":      "/calls/{id}",
		"/":                    "/",
	} {
		if got := RouteName(pattern); got != want {
			t.Errorf("RouteName(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestStatusLabel(t *testing.T) {
	for code, want := range map[int]string{200: "200", 404: "404", 599: "599", 99: "other", 600: "other", 0: "other", -1: "other"} {
		if got := StatusLabel(code); got != want {
			t.Errorf("StatusLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

// wrapper wraps a writer the way the proxy's own writers do.
type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A route counts each request under its name, the format its handler
// set through any wrapping writer, and the status answered; a handler
// that writes nothing answered 200.
func TestRoute(t *testing.T) {
	m := NewMetrics(nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	h := m.Route("/v1/messages", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("do") {
		case "anthropic":
			SetFormat(wrapper{w}, FormatAnthropic)
			w.WriteHeader(http.StatusTeapot)
		case "write":
			_, _ = w.Write([]byte("ok"))
		}
		http.NewResponseController(w).Flush() // reaches the recorder
	}))
	for _, q := range []string{"anthropic", "write", "", "anthropic"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/messages?do="+q, nil))
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("/v1/messages", FormatAnthropic, "418")); got != 2 {
		t.Errorf("anthropic 418 = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("/v1/messages", FormatNone, "200")); got != 2 {
		t.Errorf("none 200 = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.requestDuration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
	var nilMetrics *Metrics
	inner := http.NotFoundHandler()
	if got := nilMetrics.Route("/x", inner); got == nil {
		t.Error("nil metrics lost the handler")
	}
	nilMetrics.ObserveCall(Call{})
	nilMetrics.UpstreamError(FormatOpenAI, UpstreamBrokeOff)
}

func TestUpstreamStatusKind(t *testing.T) {
	for code, want := range map[int]string{200: "", 204: "", 400: UpstreamClientError, 429: UpstreamRateLimited, 500: UpstreamServerError, 529: UpstreamServerError} {
		if got := UpstreamStatusKind(code); got != want {
			t.Errorf("UpstreamStatusKind(%d) = %q, want %q", code, got, want)
		}
	}
}
