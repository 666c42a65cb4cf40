package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"luthien.dev/bench/fakeupstream"
)

// waitCall polls the history API until the call is recorded with all the
// wanted event types.
func (e *env) waitCall(t *testing.T, callID string, types ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body := e.do(t, http.MethodGet, "/api/v1/calls/"+callID, "", nil)
		if resp.StatusCode == http.StatusOK {
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("call %s: %v: %s", callID, err, body)
			}
			have := map[string]bool{}
			events, _ := got["events"].([]any)
			for _, ev := range events {
				m, _ := ev.(map[string]any)
				have[m["event_type"].(string)] = true
			}
			missing := false
			for _, typ := range types {
				missing = missing || !have[typ]
			}
			if !missing {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s not recorded with events %v: last answer %d %s", callID, types, resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

var recordedTypes = []string{"request.received", "request.final", "response.original", "response.final"}

// Passed and blocked calls are recorded in both formats, with the embedded
// store and with PostgreSQL; a stream's original and final differ under
// all_caps.
func TestCallsRecorded(t *testing.T) {
	for _, store := range []struct {
		name string
		opts options
	}{{"memory", options{}}, {"postgres", options{database: true}}} {
		t.Run(store.name, func(t *testing.T) {
			forEachMode(t, store.opts, func(t *testing.T, e *env) {
				e.up.SetDefault(fakeupstream.Scenario{Text: "recorded answer", Chunks: 4})
				resp, _ := e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(false, ""), openaiHeaders)
				e.waitCall(t, resp.Header.Get("X-Call-ID"), recordedTypes...)

				e.setPolicy(t, "all_caps", nil)
				resp, _ = e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, `,"metadata":{"user_id":"user_x_account__session_rec-1"}`), anthropicHeaders)
				id := resp.Header.Get("X-Call-ID")
				call := e.waitCall(t, id, recordedTypes...)
				summary, _ := call["call"].(map[string]any)
				if summary["session_id"] != "rec-1" || summary["intervened"] != true || summary["stream"] != true {
					t.Errorf("summary: %v", summary)
				}
				_, body := e.do(t, http.MethodGet, "/api/v1/calls/"+id+"/diff", "", nil)
				var diff struct {
					Request, Response struct {
						Changed  bool
						Original map[string]any
						Final    map[string]any
					}
				}
				if err := json.Unmarshal(body, &diff); err != nil {
					t.Fatalf("diff: %v: %s", err, body)
				}
				if diff.Request.Changed || !diff.Response.Changed {
					t.Errorf("diff: request changed %v, response changed %v: %s", diff.Request.Changed, diff.Response.Changed, body)
				}
				orig, _ := json.Marshal(diff.Response.Original)
				fin, _ := json.Marshal(diff.Response.Final)
				if !strings.Contains(string(orig), "recorded answer") || !strings.Contains(string(fin), "RECORDED ANSWER") {
					t.Errorf("stream original/final not rebuilt: %s / %s", orig, fin)
				}

				// A call the gateway answers with an error is recorded too.
				e.up.Enqueue(fakeupstream.Scenario{Status: 429})
				resp, _ = e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
				call = e.waitCall(t, resp.Header.Get("X-Call-ID"), "request.received", "error")
				if s := call["call"].(map[string]any)["status"]; s != float64(429) {
					t.Errorf("error call status %v", s)
				}
				_, body = e.do(t, http.MethodGet, "/api/v1/calls?session_id=rec-1", "", nil)
				if !strings.Contains(string(body), id) || strings.Count(string(body), `"call_id"`) != 1 {
					t.Errorf("list by session: %s", body)
				}
			})
		})
	}
}

// Credentials sent by a client appear nowhere: not in the database, not in
// the API, not in the activity feed.
func TestRedaction(t *testing.T) {
	forEachMode(t, options{database: true}, func(t *testing.T, e *env) {
		const key = "sk-ant-api03-secretsecret123456"
		feed := e.subscribe(t, "")
		h := map[string]string{"x-api-key": key, "anthropic-version": "2023-06-01", "Authorization": "Bearer " + key}
		body := anthropicBody(false, `,"system":"my key is `+key+`"`)
		resp, _ := e.do(t, http.MethodPost, "/v1/messages", body, h)
		id := resp.Header.Get("X-Call-ID")
		e.waitCall(t, id, recordedTypes...)
		_, api := e.do(t, http.MethodGet, "/api/v1/calls/"+id, "", nil)
		if strings.Contains(string(api), key) {
			t.Errorf("key in the history API: %s", api)
		}
		seen := feed.collect(t, id, 4)
		if strings.Contains(seen, key) {
			t.Errorf("key in the activity feed: %s", seen)
		}
		conn, err := pgx.Connect(context.Background(), e.databaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		err = conn.QueryRow(context.Background(),
			`SELECT (SELECT count(*) FROM call_events WHERE payload::text LIKE '%'||$1||'%')
			      + (SELECT count(*) FROM calls WHERE calls::text LIKE '%'||$1||'%')`, key).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("key stored in %d rows", n)
		}
		var events int
		_ = conn.QueryRow(context.Background(), "SELECT count(*) FROM call_events WHERE call_id = $1", id).Scan(&events)
		// request.received and response.original; their finals, unchanged,
		// are the call row's flags.
		if events < 2 {
			t.Errorf("only %d events stored: the check saw nothing", events)
		}
	})
}

// feed is a client of the gateway's activity SSE endpoint.
type feed struct {
	lines chan string
}

func (e *env) subscribe(t *testing.T, query string) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/activity/stream"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("activity stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	f := &feed{lines: make(chan string, 1024)}
	connected := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		first := true
		for sc.Scan() {
			if first {
				close(connected)
				first = false
			}
			f.lines <- sc.Text()
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("activity stream sent nothing")
	}
	return f
}

// collect reads the feed until n events of callID arrived and returns
// everything read.
func (f *feed) collect(t *testing.T, callID string, n int) string {
	t.Helper()
	var all strings.Builder
	got := 0
	deadline := time.After(15 * time.Second)
	for got < n {
		select {
		case line := <-f.lines:
			all.WriteString(line + "\n")
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, callID) {
				got++
			}
		case <-deadline:
			t.Fatalf("activity feed: %d of %d events of %s; read:\n%s", got, n, callID, all.String())
		}
	}
	return all.String()
}

// Two gateways (each with its own control plane) sharing Redis share one
// activity feed.
func TestActivityAcrossInstances(t *testing.T) {
	prefix := uniqueName("luthien-test-") + ":"
	a := start(t, "split", options{redisPrefix: prefix})
	b := start(t, "split", options{redisPrefix: prefix, up: a.up})
	fa := a.subscribe(t, "?type=request.,response.")
	resp, _ := b.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, ""), anthropicHeaders)
	id := resp.Header.Get("X-Call-ID")
	seen := fa.collect(t, id, 2)
	if !strings.Contains(seen, "request.received") {
		t.Errorf("feed of A lacks B's request: %s", seen)
	}
	if strings.Contains(seen, `"error"`) {
		t.Errorf("type filter let other events through: %s", seen)
	}
}

// An identical temperature-0 request is answered from the cache, also as a
// replayed stream; no-cache bypasses it.
func TestResponseCache(t *testing.T) {
	forEachMode(t, options{redis: true}, func(t *testing.T, e *env) {
		e.up.SetDefault(fakeupstream.Scenario{Text: "cached words here", Chunks: 3})
		body := anthropicBody(false, `,"temperature":0`)
		resp, first := e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
		e.waitCall(t, resp.Header.Get("X-Call-ID"), recordedTypes...)
		var second []byte
		deadline := time.Now().Add(10 * time.Second)
		for e.up.Count("/v1/messages") == 1 && time.Now().Before(deadline) {
			_, second = e.do(t, http.MethodPost, "/v1/messages", body, anthropicHeaders)
			if e.up.Count("/v1/messages") == 1 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n := e.up.Count("/v1/messages"); n != 1 {
			t.Fatalf("upstream called %d times, want 1 (second request not cached)", n)
		}
		if !strings.Contains(string(second), "cached words here") {
			t.Errorf("cached answer: %s (first was %s)", second, first)
		}
		// Streaming client, same request: a valid replayed stream.
		_, sbody := e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, `,"temperature":0`), anthropicHeaders)
		evs := parseSSE(t, sbody)
		validateAnthropic(t, evs)
		if text, _ := anthropicContent(t, evs); text != "cached words here" || e.up.Count("/v1/messages") != 1 {
			t.Errorf("stream replay: text %q, upstream calls %d", text, e.up.Count("/v1/messages"))
		}
		// no-cache goes upstream.
		h := map[string]string{"Cache-Control": "no-cache"}
		for k, v := range anthropicHeaders {
			h[k] = v
		}
		e.do(t, http.MethodPost, "/v1/messages", body, h)
		if n := e.up.Count("/v1/messages"); n != 2 {
			t.Errorf("no-cache: upstream called %d times, want 2", n)
		}
		// A request at another temperature is not cached.
		e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, `,"temperature":0.7`), anthropicHeaders)
		e.do(t, http.MethodPost, "/v1/messages", anthropicBody(false, `,"temperature":0.7`), anthropicHeaders)
		if n := e.up.Count("/v1/messages"); n != 4 {
			t.Errorf("temperature 0.7: upstream called %d times in all, want 4", n)
		}
	})
}

// The activity feed keeps an idle connection alive with heartbeats.
func TestActivityHeartbeat(t *testing.T) {
	forEachMode(t, options{gatewayEnv: map[string]string{"LUTHIEN_ACTIVITY_HEARTBEAT": "50ms"}}, func(t *testing.T, e *env) {
		f := e.subscribe(t, "")
		deadline := time.After(10 * time.Second)
		for beats := 0; beats < 2; {
			select {
			case line := <-f.lines:
				if line == ": heartbeat" {
					beats++
				}
			case <-deadline:
				t.Fatal("no heartbeats on an idle activity feed")
			}
		}
	})
}
