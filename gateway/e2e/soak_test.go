package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"luthien.dev/bench/fakeupstream"
)

// soakDuration is how long TestSoak drives the gateway: 10s in the test
// suite, longer with LUTHIEN_SOAK_DURATION (make soak).
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("LUTHIEN_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LUTHIEN_SOAK_DURATION: %v", err)
		}
		return d
	}
	return 10 * time.Second
}

// TestSoak drives an in-process gateway with a mix of whole and streamed
// calls in both formats, clients that abort mid-stream, slow readers and
// bodies near the 10 MiB limit, under a stream policy. Afterwards the
// gateway's goroutines and heap return to their baseline, and every call
// a client received whole is in the database or counted as dropped.
func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	up.SetDefault(fakeupstream.Scenario{Text: strings.Repeat("soak words go by ", 20), Interval: time.Millisecond})
	up.SetRecording(false) // the fake keeps no bodies: the heap measured is the gateway's
	e := start(t, "inprocess", options{database: true, up: up})
	e.setPolicy(t, "all_caps", map[string]any{})

	// A first call warms every pool, so that the baseline holds them.
	e.do(t, http.MethodPost, "/v1/messages", anthropicBody(true, ""), anthropicHeaders)
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var baseHeap runtime.MemStats
	runtime.ReadMemStats(&baseHeap)

	big := `,"system":"` + strings.Repeat("x", 10<<20-4096) + `"`
	var completed sync.Map // call id → true, for calls a client received whole
	var nCompleted, nAborted, nBig, nSlow, nFailed atomic.Int64
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed*7+1))
			for ctx.Err() == nil {
				anthropic, stream := rng.IntN(2) == 0, rng.IntN(3) > 0
				body, header, path := openaiBody(stream, ""), openaiHeaders, "/v1/chat/completions"
				if anthropic {
					body, header, path = anthropicBody(stream, ""), anthropicHeaders, "/v1/messages"
				}
				kind := rng.IntN(20)
				if kind == 0 {
					body = strings.Replace(body, `"stream"`, big[1:]+`,"stream"`, 1)
					nBig.Add(1)
				}
				rctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(rctx, http.MethodPost, e.URL+path, strings.NewReader(body))
				for k, v := range header {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					cancel()
					nFailed.Add(1)
					continue
				}
				id := resp.Header.Get("X-Call-ID")
				whole := false
				switch {
				case stream && kind >= 1 && kind <= 4: // the client goes away mid-stream
					_, _ = io.CopyN(io.Discard, resp.Body, int64(rng.IntN(400)))
					cancel()
					nAborted.Add(1)
				case stream && kind >= 5 && kind <= 7: // a slow reader
					rd := bufio.NewReaderSize(resp.Body, 64)
					buf := make([]byte, 64)
					var err error
					for err == nil {
						_, err = rd.Read(buf)
						time.Sleep(time.Millisecond)
					}
					whole = err == io.EOF
					nSlow.Add(1)
				default:
					_, err := io.Copy(io.Discard, resp.Body)
					whole = err == nil
				}
				resp.Body.Close()
				cancel()
				if whole && resp.StatusCode == http.StatusOK && id != "" {
					completed.Store(id, true)
					nCompleted.Add(1)
				} else if !whole && resp.StatusCode != http.StatusOK {
					nFailed.Add(1)
				}
			}
		}(uint64(w + 1))
	}
	wg.Wait()
	t.Logf("%s: %d whole, %d aborted, %d slow readers, %d near-limit bodies, %d failed",
		duration, nCompleted.Load(), nAborted.Load(), nSlow.Load(), nBig.Load(), nFailed.Load())
	if nCompleted.Load() == 0 {
		t.Fatal("no call completed")
	}

	// Every completed call is stored or counted as dropped.
	dropped := func() int64 {
		_, b := e.do(t, http.MethodGet, "/metrics", "", nil)
		m := regexp.MustCompile(`luthien_gateway_records_dropped_total (\d+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no dropped counter in /metrics: %s", b)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	conn, err := pgx.Connect(context.Background(), e.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		stored := map[string]bool{}
		rows, err := conn.Query(context.Background(), `SELECT call_id FROM calls`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			stored[id] = true
		}
		rows.Close()
		missing = missing[:0]
		completed.Range(func(k, _ any) bool {
			if !stored[k.(string)] {
				missing = append(missing, k.(string))
			}
			return true
		})
		if int64(len(missing)) <= dropped() || time.Now().After(deadline) {
			break
		}
	}
	if d := dropped(); int64(len(missing)) > d {
		t.Errorf("%d completed calls are neither stored nor counted as dropped (%d dropped), e.g. %v",
			len(missing), d, missing[:min(3, len(missing))])
	}

	// Goroutines and heap come back to the baseline. Kept-alive idle
	// connections may remain in the pools (the gateway's to upstream and
	// the servers' ends of them: three goroutines each, one connection per
	// worker at most); a leak per call would be hundreds.
	const pooled = 8 * 4
	var goroutines int
	var heap runtime.MemStats
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		http.DefaultClient.CloseIdleConnections()
		runtime.GC()
		goroutines = runtime.NumGoroutine()
		runtime.ReadMemStats(&heap)
		if goroutines <= baseGoroutines+pooled && heap.HeapAlloc <= baseHeap.HeapAlloc+64<<20 || time.Now().After(deadline) {
			break
		}
	}
	if goroutines > baseGoroutines+pooled {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines: %d after the soak, %d before\n%s", goroutines, baseGoroutines, buf[:min(n, 20000)])
	}
	if heap.HeapAlloc > baseHeap.HeapAlloc+64<<20 {
		t.Errorf("heap: %s after the soak, %s before", mib(heap.HeapAlloc), mib(baseHeap.HeapAlloc))
	}
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
