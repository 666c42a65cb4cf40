package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With -log-format json every line the gateway writes is a JSON object,
// and keys stay out of it: a client's provider key that upstream echoes
// into an error the gateway logs is redacted.
func TestJSONLogs(t *testing.T) {
	const key = "sk-" + "ant-api03-Zx8Qw1Lm5Rt7Yp3Nc6Vb9Gh2Jk4Df0Sa"
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		// An upstream nobody listens on: the call fails, and the failure
		// (with the request's URL) is logged.
		done <- run(ctx, []string{"-http-addr", "127.0.0.1:0", "-log-format", "json", "-anthropic-base-url", "http://127.0.0.1:1"},
			func(string) string { return "" }, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "gateway listening" {
				addr, _ = rec["addr"].(string)
			}
		}
	}
	if addr == "" {
		t.Fatalf("no JSON \"gateway listening\" line:\n%s", logs.String())
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/messages?key="+key,
		strings.NewReader(`{"model":"claude-fake","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("call to a dead upstream: %d, want 502", resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond)
	out := logs.String()
	if !strings.Contains(out, "upstream request failed") {
		t.Errorf("the failed call was not logged:\n%s", out)
	}
	if strings.Contains(out, key) {
		t.Errorf("the key reached the log:\n%s", out)
	}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not JSON: %v: %s", i+1, err, line)
		}
	}
}
