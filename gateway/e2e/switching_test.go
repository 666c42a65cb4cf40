package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// switchPolicies are activated in turn by the switching tests.
var switchPolicies = []struct {
	class string
	cfg   map[string]any
}{
	{"noop", nil},
	{"all_caps", nil},
	{"string_replacement", map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}}},
	{"regex_block", map[string]any{"patterns": []any{"rm -rf"}}},
	{"sql_protection", nil},
	{"serial", map[string]any{"policies": []any{map[string]any{"class": "all_caps"}, map[string]any{"class": "debug_logging"}}}},
}

// loadResult checks one response of the load test without a *testing.T
// (it runs in worker goroutines): status 200 and a complete response.
func loadResult(resp *http.Response, body []byte, stream bool) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	s := string(body)
	switch {
	case stream && strings.Contains(s, "event: error"), stream && strings.Contains(s, `"error":{`):
		return fmt.Errorf("in-stream error: %s", s)
	case stream && !strings.Contains(s, "message_stop") && !strings.Contains(s, "[DONE]"):
		return fmt.Errorf("incomplete stream: %s", s)
	case !stream && !json.Valid(body):
		return fmt.Errorf("invalid JSON: %s", s)
	}
	return nil
}

// loadRequest is the i-th request of load worker w: both formats,
// streamed and not, in turn.
func loadRequest(e *env, w, i int) (req *http.Request, stream bool) {
	stream = (i+w)%2 == 0
	path, body, h := "/v1/messages", anthropicBody(stream, ""), anthropicHeaders
	if (i/2+w)%2 == 1 {
		path, body, h = "/v1/chat/completions", openaiBody(stream, ""), openaiHeaders
	}
	req, _ = http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	return req, stream
}

// Rapid policy switches under concurrent load produce no errors: every
// request in both formats, streamed or not, completes with 200.
func TestRuntimeSwitchUnderLoad(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.up.SetDefault(fakeupstream.Scenario{Text: "hello world from the load test", Chunks: 6,
			ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"ls"}`}}})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		var done atomic.Int64
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					req, stream := loadRequest(e, w, i)
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						b, rerr := io.ReadAll(resp.Body)
						resp.Body.Close()
						if err = rerr; err == nil {
							err = loadResult(resp, b, stream)
						}
					}
					done.Add(1)
					if err != nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
				}
			})
		}
		switches := 0
		deadline := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(deadline) || done.Load() < 40 {
			p := switchPolicies[switches%len(switchPolicies)]
			e.setPolicy(t, p.class, p.cfg)
			switches++
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		t.Logf("%d requests across %d policy switches", done.Load(), switches)
		if len(failures) > 0 {
			t.Errorf("%d of %d requests failed; first: %s", len(failures), done.Load(), failures[0])
		}
	})
}

// A switch applies to the next request, and a request in flight finishes
// under the policy it started with.
func TestSwitchKeepsInFlightPolicy(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "all_caps", nil)
		e.up.Enqueue(fakeupstream.Scenario{Text: "slow words arrive one by one here", Interval: 40 * time.Millisecond})
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/v1/messages", strings.NewReader(anthropicBody(true, "")))
		for k, v := range anthropicHeaders {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		e.setPolicy(t, "noop", nil) // while the stream is still running
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		evs := parseSSE(t, append(first, rest...))
		validateAnthropic(t, evs)
		if text, _ := anthropicContent(t, evs); text != "SLOW WORDS ARRIVE ONE BY ONE HERE" {
			t.Errorf("in-flight stream got %q: it did not finish under all_caps", text)
		}
		got := ask(t, e, "anthropic", true, fakeupstream.Scenario{Text: "next request"})
		if got.text != "next request" {
			t.Errorf("next request got %q, want noop's output", got.text)
		}
	})
}

// policyOf returns the class and revision a gateway's control plane runs.
func policyOf(t *testing.T, e *env) (class, revision string) {
	t.Helper()
	_, body := e.do(t, http.MethodGet, "/api/v1/policy", "", nil)
	var got struct {
		Active struct {
			Policy   struct{ Class string }
			Revision string
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("get policy: %v: %s", err, body)
	}
	return got.Active.Policy.Class, got.Active.Revision
}

// waitPolicy waits until e's control plane runs revision.
func waitPolicy(t *testing.T, e *env, revision string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if _, rev := policyOf(t, e); rev == revision {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("revision %s never reached the other control plane", revision)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A policy set on one control plane reaches another process sharing its
// database and Redis (or only its database: LISTEN/NOTIFY), which then
// applies it to its own gateway's requests.
func TestPolicyPropagation(t *testing.T) {
	for _, via := range []string{"redis", "postgres"} {
		t.Run(via, func(t *testing.T) {
			up := fakeupstream.New()
			t.Cleanup(up.Close)
			prefix := ""
			if via == "redis" {
				prefix = uniqueName("luthien-e2e-") + ":"
			}
			a := start(t, "split", options{database: true, redisPrefix: prefix, up: up})
			b := start(t, "split", options{env: map[string]string{"DATABASE_URL": a.databaseURL}, redisPrefix: prefix, up: up})
			for i, p := range []struct {
				class, want string
			}{{"all_caps", "PROPAGATED"}, {"noop", "propagated"}, {"all_caps", "PROPAGATED"}} {
				from, to := a, b
				if i == 1 {
					from, to = b, a
				}
				from.setPolicy(t, p.class, nil)
				_, rev := policyOf(t, from)
				t.Logf("%s reached the other control plane after %v", p.class, waitPolicy(t, to, rev))
				up.Enqueue(fakeupstream.Scenario{Text: "propagated"})
				if got := send(t, to, "openai", false); got.text != p.want {
					t.Errorf("after %s: got %q, want %q", p.class, got.text, p.want)
				}
			}
		})
	}
}

// The active policy survives a restart: a new control plane on the same
// database runs it, and its row wins over a policy file.
func TestPolicyPersistence(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	first := start(t, "split", options{database: true, up: up})
	first.setPolicy(t, "string_replacement", map[string]any{"replacements": []any{[]any{"old", "new"}}})
	_, rev := policyOf(t, first)
	first.killControlPlane()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			e := start(t, mode, options{up: up, env: map[string]string{
				"DATABASE_URL":          first.databaseURL,
				"LUTHIEN_POLICY_CONFIG": "../../config/policies/all_caps.yaml",
			}})
			if class, got := policyOf(t, e); class != "string_replacement" || got != rev {
				t.Errorf("after restart: %s %s, want string_replacement %s", class, got, rev)
			}
			if got := ask(t, e, "anthropic", false, fakeupstream.Scenario{Text: "old text"}); got.text != "new text" {
				t.Errorf("got %q", got.text)
			}
		})
	}
}
