package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The profiler answers on its own listener only, never on the proxy's,
// and only with the admin key when there is one; cmdline (which would show
// keys given as flags) is not served.
func TestProfilerListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-http-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-admin-api-key", "adm-flag-secret"},
			func(string) string { return "" }, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	addr := func(msg string) string {
		re := regexp.MustCompile(`msg="` + msg + `" addr=(\S+)`)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				return m[1]
			}
		}
		t.Fatalf("no %q in the logs:\n%s", msg, logs.String())
		return ""
	}
	get := func(url string, header ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	prof := "http://" + addr("profiler listening") + "/debug/pprof/"
	auth := []string{"Authorization", "Bearer adm-flag-secret"}
	if st, body := get(prof, auth...); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("profiler with the admin key: %d %.200s", st, body)
	}
	if st, _ := get(prof); st != http.StatusUnauthorized {
		t.Errorf("profiler without the admin key: %d, want 401", st)
	}
	if st, body := get(prof+"cmdline", auth...); st != http.StatusNotFound || strings.Contains(body, "adm-flag-secret") {
		t.Errorf("profiler cmdline: %d %.200s, want 404 without the flags", st, body)
	}
	if strings.Contains(logs.String(), "adm-flag-secret") {
		t.Error("the admin key given as a flag reached the log")
	}
	if st, _ := get("http://" + addr("gateway listening") + "/debug/pprof/"); st != http.StatusNotFound {
		t.Errorf("the proxy's port serves the profiler: %d", st)
	}
}
