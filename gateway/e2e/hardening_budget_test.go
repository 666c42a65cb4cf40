package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/htmltest"
)

// bigBody is a chat request of exactly n bytes.
func bigBody(t *testing.T, n int) string {
	t.Helper()
	head, tail := `{"model":"gpt-fake","stream":false,"messages":[{"role":"user","content":"`, `"}]}`
	fill := n - len(head) - len(tail)
	if fill < 0 {
		t.Fatalf("body of %d bytes is too small", n)
	}
	return head + strings.Repeat("lorem ipsum ", fill/12+1)[:fill] + tail
}

// recorderCounters reads the gateway's recorder counters from /metrics.
func (e *env) recorderCounters(t *testing.T) (sent, dropped int64) {
	t.Helper()
	resp, body := e.do(t, http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	read := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics lacks %s:\n%s", name, body)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	return read("luthien_gateway_records_sent_total"), read("luthien_gateway_records_dropped_total")
}

// Requests near the gateway's body limit, one after another and several
// at once, never stop recording: every call is recorded (its large bodies
// truncated, as the call page says), a small call after them too, and the
// gateway's counters add up to the calls made.
func TestBudgetLargeRequestsKeepRecording(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.up.SetRecording(false) // the fake provider need not keep 160 MB of requests
		e.up.SetDefault(fakeupstream.Scenario{Text: "fine"})
		var ids []string
		post := func(body string) string {
			resp, b := e.do(t, http.MethodPost, "/v1/chat/completions", body, openaiHeaders)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("request of %d bytes: %d %.200s", len(body), resp.StatusCode, b)
			}
			return resp.Header.Get("X-Call-ID")
		}
		const fiveMB = 5_000_000
		five := bigBody(t, fiveMB)
		for range 20 {
			ids = append(ids, post(five))
		}
		const nearLimit = 10<<20 - 1024 // the gateway accepts up to 10 MiB
		ten := bigBody(t, nearLimit)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				id := post(ten)
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			})
		}
		wg.Wait()
		resp, _ := e.do(t, http.MethodPost, "/v1/chat/completions", openaiBody(false, ""), openaiHeaders)
		small := resp.Header.Get("X-Call-ID")
		ids = append(ids, small)

		// The counters catch up with every call, and none was lost.
		deadline := time.Now().Add(60 * time.Second)
		var sent, dropped int64
		for {
			sent, dropped = e.recorderCounters(t)
			if sent+dropped >= int64(len(ids)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if sent != int64(len(ids)) || dropped != 0 {
			t.Fatalf("recorder: %d sent, %d dropped of %d calls; want every call sent", sent, dropped, len(ids))
		}
		e.waitCall(t, small, recordedTypes...)
		_, list := e.do(t, http.MethodGet, "/api/v1/calls?page_size=50", "", nil)
		for _, id := range ids {
			if !strings.Contains(string(list), id) {
				t.Errorf("call %s not in the history", id)
			}
		}

		// A large body is kept truncated, and says so.
		call := e.waitCall(t, ids[0], "request.received")
		var marker struct {
			Truncated struct {
				OriginalBytes int `json:"original_bytes"`
				KeptBytes     int `json:"kept_bytes"`
			} `json:"_luthien_truncated"`
			Head string `json:"head"`
		}
		for _, ev := range call["events"].([]any) {
			m := ev.(map[string]any)
			if m["event_type"] == "request.received" {
				b, _ := json.Marshal(m["payload"])
				if err := json.Unmarshal(b, &marker); err != nil {
					t.Fatal(err)
				}
			}
		}
		if marker.Truncated.OriginalBytes != fiveMB || marker.Truncated.KeptBytes == 0 ||
			marker.Truncated.KeptBytes > 1<<20 || !strings.HasPrefix(five, marker.Head) {
			t.Errorf("request.received of a 5 MB body: %+v, head of %d bytes", marker.Truncated, len(marker.Head))
		}
		_, doc := ucGet(t, e, "/calls/"+ids[0], http.StatusOK)
		note := htmltest.First(ucByID(t, doc, "request-diff"), ucClass("truncated"))
		want := fmt.Sprintf("truncated: %d bytes, first %d kept", fiveMB, marker.Truncated.KeptBytes)
		if note == nil || !strings.Contains(htmltest.Text(note), want) {
			t.Errorf("the call page does not say %q", want)
		}
	})
}

// The control plane serves at most 64 activity subscribers: the next one
// is refused with a 503 and a JSON error, and a place freed is taken again.
func TestBudgetActivitySubscribersCapped(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		const maxSubscribers = 64
		cancels := make([]context.CancelFunc, 0, maxSubscribers)
		for range maxSubscribers {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			cancels = append(cancels, cancel)
			openFeed(ctx, t, e, http.StatusOK)
		}
		body := openFeed(context.Background(), t, e, http.StatusServiceUnavailable)
		var got struct{ Error string }
		if err := json.Unmarshal([]byte(body), &got); err != nil || !strings.Contains(got.Error, "too many activity subscribers") {
			t.Errorf("refusal body %q (%v)", body, err)
		}
		cancels[0]()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			if status := tryFeed(ctx, t, e); status == http.StatusOK {
				break
			}
			cancel()
			if time.Now().After(deadline) {
				t.Fatal("a freed subscriber place was not taken again")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// openFeed opens the activity stream and checks its status; an SSE stream
// is left open (until ctx ends) once its first line arrived; any other
// answer's body is returned.
func openFeed(ctx context.Context, t *testing.T, e *env, want int) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/activity/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		resp.Body.Close()
		t.Fatalf("activity stream: %d, want %d", resp.StatusCode, want)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return b.String()
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != ": connected\n" {
		t.Fatalf("activity stream's first line %q (%v)", line, err)
	}
	go func() { <-ctx.Done(); resp.Body.Close() }()
	return ""
}

// tryFeed opens the activity stream and returns its status; an open stream
// stays open until ctx ends.
func tryFeed(ctx context.Context, t *testing.T, e *env) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/activity/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-ctx.Done(); resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
	}
	return resp.StatusCode
}
