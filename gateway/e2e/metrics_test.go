package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"luthien.dev/bench/fakeupstream"
)

// metrics is one scrape of a /metrics endpoint.
type metrics map[string]*dto.MetricFamily

// scrape reads a /metrics endpoint with client, sending header.
func scrape(t *testing.T, client *http.Client, url string, header map[string]string) metrics {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the Prometheus text format: %v", url, err)
	}
	return fams
}

// series returns the series of name whose labels include want.
func (m metrics) series(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	fam := m[name]
	if fam == nil {
		return nil
	}
next:
	for _, s := range fam.GetMetric() {
		got := map[string]string{}
		for _, l := range s.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// value adds up the values of the series of name whose labels include
// want: counters and gauges, and the count of histograms (the sum with
// sum set).
func (m metrics) value(name string, want map[string]string, sum bool) float64 {
	total := 0.0
	for _, s := range m.series(name, want) {
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Histogram != nil && sum:
			total += s.GetHistogram().GetSampleSum()
		case s.Histogram != nil:
			total += float64(s.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// labelValues returns every value label takes in name's series.
func (m metrics) labelValues(name, label string) map[string]bool {
	out := map[string]bool{}
	for _, s := range m.series(name, nil) {
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] = true
			}
		}
	}
	return out
}

// expect checks the value of name's series whose labels include want.
func (m metrics) expect(t *testing.T, name string, want map[string]string, value float64) {
	t.Helper()
	if got := m.value(name, want, false); got != value {
		t.Errorf("%s%v = %v, want %v", name, want, got, value)
	}
}

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// controlPlaneMetricsClient reaches a split mode's metrics listener,
// which has the gRPC port's mutual TLS.
func controlPlaneMetricsClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: linkPKI.pool, Certificates: []tls.Certificate{linkPKI.clientPair}}}}
}

// Real calls through the gateway move its metrics with the right labels:
// requests by route, format and status; the GenAI metrics by provider and
// bounded model; tokens from upstream's usage; upstream errors by kind;
// the link's gRPC client metrics; the call records sent. The control
// plane's own (policy decisions, gRPC server) are on the gateway's
// /metrics in-process and on the control plane's metrics listener split.
func TestMetricsAfterCalls(t *testing.T) {
	cpMetrics := freeAddr(t)
	opts := options{
		env:        map[string]string{"LUTHIEN_METRICS_ADDR": cpMetrics},
		gatewayEnv: map[string]string{"LUTHIEN_METRICS_MODELS": "gpt-fake, claude-*"},
	}
	forEachMode(t, opts, func(t *testing.T, e *env) {
		e.up.SetDefault(fakeupstream.Scenario{Text: "four words right here", Usage: &fakeupstream.Usage{InputTokens: 11, OutputTokens: 7}})
		call := func(path, body string, header map[string]string, want int) {
			t.Helper()
			if resp, b := e.do(t, http.MethodPost, path, body, header); resp.StatusCode != want {
				t.Fatalf("POST %s: %d, want %d: %s", path, resp.StatusCode, want, b)
			}
		}
		call("/v1/chat/completions", openaiBody(false, ""), openaiHeaders, http.StatusOK)
		call("/v1/messages", anthropicBody(true, ""), anthropicHeaders, http.StatusOK)
		e.up.Enqueue(fakeupstream.Scenario{Status: http.StatusTooManyRequests})
		call("/v1/chat/completions", openaiBody(false, ""), openaiHeaders, http.StatusTooManyRequests)
		if resp, _ := e.do(t, http.MethodGet, "/v1/nothing/here", "", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /v1/nothing/here: %d, want 404", resp.StatusCode)
		}

		// A call's stream ends once its record is sent, after the client
		// has its answer.
		callService := "luthien.controlplane.v1.CallService"
		handled := map[string]string{"grpc_service": callService, "grpc_method": "Call", "grpc_code": "OK"}
		var m metrics
		deadline := time.Now().Add(10 * time.Second)
		for {
			m = scrape(t, http.DefaultClient, e.URL+"/metrics", nil)
			if m.value("luthien_gateway_records_sent_total", nil, false) >= 3 && m.value("grpc_client_handled_total", handled, false) >= 3 ||
				time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		m.expect(t, "luthien_gateway_records_sent_total", nil, 3)
		m.expect(t, "luthien_gateway_records_dropped_total", nil, 0)
		if m["luthien_gateway_record_queue_depth"] == nil {
			t.Error("no luthien_gateway_record_queue_depth")
		}

		req := "luthien_gateway_requests_total"
		m.expect(t, req, map[string]string{"route": "/v1/chat/completions", "format": "openai", "status": "200"}, 1)
		m.expect(t, req, map[string]string{"route": "/v1/chat/completions", "format": "openai", "status": "429"}, 1)
		m.expect(t, req, map[string]string{"route": "/v1/messages", "format": "anthropic", "status": "200"}, 1)
		m.expect(t, req, map[string]string{"route": "/", "status": "404"}, 1)
		m.expect(t, "luthien_gateway_request_duration_seconds", map[string]string{"route": "/v1/messages", "format": "anthropic", "status": "200"}, 1)

		openai := map[string]string{"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-fake"}
		anthropic := map[string]string{"gen_ai_operation_name": "chat", "gen_ai_provider_name": "anthropic", "gen_ai_request_model": "claude-*"}
		with := func(base map[string]string, k, v string) map[string]string {
			out := map[string]string{k: v}
			for bk, bv := range base {
				out[bk] = bv
			}
			return out
		}
		m.expect(t, "gen_ai_server_request_duration_seconds", with(openai, "error_type", ""), 1)
		m.expect(t, "gen_ai_server_request_duration_seconds", with(openai, "error_type", "429"), 1)
		m.expect(t, "gen_ai_client_operation_duration_seconds", with(openai, "error_type", ""), 1)
		m.expect(t, "gen_ai_client_operation_duration_seconds", with(openai, "error_type", "status_429"), 1)
		m.expect(t, "gen_ai_client_operation_duration_seconds", with(anthropic, "error_type", ""), 1)
		m.expect(t, "gen_ai_server_time_to_first_token_seconds", anthropic, 1)
		m.expect(t, "gen_ai_server_time_to_first_token_seconds", openai, 0) // not streamed
		for _, labels := range []map[string]string{openai, anthropic} {
			m.expect(t, "gen_ai_client_token_usage", with(labels, "gen_ai_token_type", "input"), 1)
			if got := m.value("gen_ai_client_token_usage", with(labels, "gen_ai_token_type", "input"), true); got != 11 {
				t.Errorf("input tokens of %v = %v, want 11", labels, got)
			}
			if got := m.value("gen_ai_client_token_usage", with(labels, "gen_ai_token_type", "output"), true); got != 7 {
				t.Errorf("output tokens of %v = %v, want 7", labels, got)
			}
		}
		m.expect(t, "luthien_gateway_upstream_errors_total", map[string]string{"gen_ai_provider_name": "openai", "kind": "status_429"}, 1)
		m.expect(t, "luthien_gateway_upstream_errors_total", map[string]string{"gen_ai_provider_name": "anthropic"}, 0)

		m.expect(t, "grpc_client_handled_total", handled, 3)

		// The control plane's metrics: on the same registry in-process, on
		// the metrics listener (mutual TLS and the token) split.
		cp := m
		if e.mode == "split" {
			url := "https://" + cpMetrics + "/metrics"
			cp = scrape(t, controlPlaneMetricsClient(), url, map[string]string{"Authorization": "Bearer " + linkPKI.token})
			if cp["luthien_gateway_requests_total"] != nil {
				t.Error("the control plane serves the gateway's metrics")
			}
		}
		cp.expect(t, "luthien_policy_decisions_total", map[string]string{"class": "noop", "phase": "request", "outcome": "continue"}, 3)
		cp.expect(t, "luthien_policy_duration_seconds", map[string]string{"class": "noop", "phase": "request"}, 3)
		cp.expect(t, "grpc_server_handled_total", handled, 3)
		if cp.value("luthien_store_events_written_total", nil, false) < 3 {
			// Each call is at least its request.received event.
			deadline := time.Now().Add(10 * time.Second)
			for cp.value("luthien_store_events_written_total", nil, false) < 3 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				if e.mode == "split" {
					cp = scrape(t, controlPlaneMetricsClient(), "https://"+cpMetrics+"/metrics", map[string]string{"Authorization": "Bearer " + linkPKI.token})
				} else {
					cp = scrape(t, http.DefaultClient, e.URL+"/metrics", nil)
				}
			}
			if got := cp.value("luthien_store_events_written_total", nil, false); got < 3 {
				t.Errorf("luthien_store_events_written_total = %v, want at least 3", got)
			}
		}
		for _, name := range []string{"luthien_store_queue_depth", "luthien_store_events_dropped_total", "luthien_cache_lookups_total"} {
			if cp[name] == nil {
				t.Errorf("the control plane's metrics lack %s", name)
			}
		}
	})
}

// The policies' decisions are counted by class, phase and outcome, and
// the response cache's lookups by result.
func TestMetricsPolicyAndCache(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.up.SetDefault(fakeupstream.Scenario{Text: "quiet words"})
	e.setPolicy(t, "all_caps", map[string]any{})
	hello := strings.Replace(openaiBody(false, `,"temperature":0`), `"content":"hi"`, `"content":"hello"`, 1)
	for i, body := range []string{openaiBody(true, `,"temperature":0`), hello, hello} {
		if resp, b := e.do(t, http.MethodPost, "/v1/chat/completions", body, openaiHeaders); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, b)
		}
		// The record of a call fills the cache before it counts as sent.
		deadline := time.Now().Add(10 * time.Second)
		for scrape(t, http.DefaultClient, e.URL+"/metrics", nil).value("luthien_gateway_records_sent_total", nil, false) < float64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("the record of call %d was not sent", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m := scrape(t, http.DefaultClient, e.URL+"/metrics", nil)
	m.expect(t, "luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "request", "outcome": "continue"}, 3)
	m.expect(t, "luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "response", "outcome": "modify"}, 1)
	m.expect(t, "luthien_policy_decisions_total", map[string]string{"class": "all_caps", "phase": "stream", "outcome": "modify"}, 1)
	if got := m.value("luthien_policy_duration_seconds", map[string]string{"class": "all_caps", "phase": "stream_event"}, false); got == 0 {
		t.Error("no stream_event latency observed")
	}
	m.expect(t, "luthien_cache_lookups_total", map[string]string{"result": "miss"}, 2)
	m.expect(t, "luthien_cache_lookups_total", map[string]string{"result": "hit"}, 1)
}

// A flood of distinct models and paths adds no label values: models take
// "other" (or their allowlist entry), paths their route's pattern.
func TestMetricsLabelsStayBounded(t *testing.T) {
	e := start(t, "inprocess", options{gatewayEnv: map[string]string{"LUTHIEN_METRICS_MODELS": "gpt-fake,claude-*"}})
	e.up.SetDefault(fakeupstream.Scenario{Text: "ok"})
	const n = 60
	for i := range n {
		model := fmt.Sprintf("model-%d-%d", i, time.Now().UnixNano())
		body := strings.Replace(openaiBody(false, ""), "gpt-fake", model, 1)
		if resp, b := e.do(t, http.MethodPost, "/v1/chat/completions", body, openaiHeaders); resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, b)
		}
		body = strings.Replace(anthropicBody(false, ""), "claude-fake", "claude-"+model, 1)
		if resp, b := e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders); resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, b)
		}
		e.do(t, http.MethodGet, fmt.Sprintf("/v1/unknown-%d", i), "", nil)
		e.do(t, http.MethodGet, fmt.Sprintf("/calls/%d-no-such-call", i), "", nil)
		e.do(t, http.MethodGet, fmt.Sprintf("/ui/static/none-%d.js", i), "", nil)
	}
	m := scrape(t, http.DefaultClient, e.URL+"/metrics", nil)
	for _, name := range []string{"gen_ai_server_request_duration_seconds", "gen_ai_client_operation_duration_seconds", "gen_ai_client_token_usage"} {
		got := m.labelValues(name, "gen_ai_request_model")
		if len(got) != 2 || !got["other"] || !got["claude-*"] {
			t.Errorf("%s model labels = %v, want other and claude-*", name, got)
		}
	}
	m.expect(t, "gen_ai_server_request_duration_seconds", map[string]string{"gen_ai_request_model": "other"}, n)
	routes := m.labelValues("luthien_gateway_requests_total", "route")
	for route := range routes {
		if strings.Contains(route, "unknown-") || strings.Contains(route, "no-such-call") || strings.Contains(route, "none-") {
			t.Errorf("route label %q holds a path", route)
		}
	}
	if len(routes) > 8 {
		t.Errorf("%d route labels after %d distinct paths: %v", len(routes), 3*n, routes)
	}
	for name, fam := range m {
		for _, s := range fam.GetMetric() {
			for _, l := range s.GetLabel() {
				if strings.Contains(l.GetValue(), "model-") || strings.Contains(l.GetValue(), "unknown-") {
					t.Errorf("%s has label %s=%q from a request", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// With an admin key, /metrics refuses anonymous scrapes and answers the
// key; the split control plane's metrics listener wants its token.
func TestMetricsNeedTheAdminKey(t *testing.T) {
	cpMetrics := freeAddr(t)
	const adminKey = "adm-metrics-secret-key"
	forEachMode(t, options{env: map[string]string{"LUTHIEN_METRICS_ADDR": cpMetrics},
		gatewayEnv: map[string]string{"LUTHIEN_ADMIN_API_KEY": adminKey}}, func(t *testing.T, e *env) {
		resp, body := e.do(t, http.MethodGet, "/metrics", "", nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous /metrics: %d, want 401", resp.StatusCode)
		}
		if strings.Contains(string(body), "luthien_gateway") {
			t.Errorf("anonymous /metrics shows metrics: %s", body)
		}
		resp, _ = e.do(t, http.MethodGet, "/metrics", "", map[string]string{"Authorization": "Bearer wrong-key"})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/metrics with a wrong key: %d, want 401", resp.StatusCode)
		}
		m := scrape(t, http.DefaultClient, e.URL+"/metrics", map[string]string{"Authorization": "Bearer " + adminKey})
		if m["luthien_gateway_records_sent_total"] == nil {
			t.Error("/metrics with the admin key lacks the gateway's metrics")
		}
		if e.mode != "split" {
			return
		}
		client := controlPlaneMetricsClient()
		for _, auth := range []string{"", "Bearer " + adminKey} {
			req, _ := http.NewRequest(http.MethodGet, "https://"+cpMetrics+"/metrics", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("control plane /metrics with %q: %d, want 401", auth, resp.StatusCode)
			}
		}
		scrape(t, client, "https://"+cpMetrics+"/metrics", map[string]string{"Authorization": "Bearer " + linkPKI.token})
	})
}
