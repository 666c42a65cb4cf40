package llm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// judgeServer answers with the given statuses and texts in turn (the last
// repeats) in the format of the path it is called on, and records the
// requests.
func judgeServer(t *testing.T, statuses []int, texts []string, delay time.Duration) (*httptest.Server, *atomic.Int32, chan *http.Request) {
	t.Helper()
	var n atomic.Int32
	reqs := make(chan *http.Request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		select {
		case reqs <- r:
		default:
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		st := statuses[min(i, len(statuses)-1)]
		text := texts[min(i, len(texts)-1)]
		if st != 200 {
			w.WriteHeader(st)
			_, _ = w.Write([]byte(`{"error":"nope"}`))
			return
		}
		var out any
		if strings.HasSuffix(r.URL.Path, "/v1/messages") {
			out = map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}
		} else {
			out = map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": text}}}}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv, &n, reqs
}

func TestComplete(t *testing.T) {
	accept := func(text string) error {
		var v struct{ P float64 }
		return DecodeJSON(text, &v)
	}
	tests := []struct {
		name      string
		format    string
		statuses  []int
		texts     []string
		retries   int
		wantCalls int32
		wantErr   string
	}{
		{name: "openai", format: FormatOpenAI, statuses: []int{200}, texts: []string{`{"p":0.5}`}, wantCalls: 1},
		{name: "anthropic fenced", format: FormatAnthropic, statuses: []int{200}, texts: []string{"```json\n{\"p\":0.5}\n```"}, wantCalls: 1},
		{name: "retry on 500 and 429", format: FormatOpenAI, statuses: []int{500, 429, 200}, texts: []string{`{"p":1}`}, retries: 2, wantCalls: 3},
		{name: "no retry on 400", format: FormatOpenAI, statuses: []int{400}, texts: []string{""}, retries: 2, wantCalls: 1, wantErr: "answered 400"},
		{name: "retry unparsable answers", format: FormatAnthropic, statuses: []int{200}, texts: []string{"sure!", `{"p":0}`}, retries: 1, wantCalls: 2},
		{name: "retries spent", format: FormatOpenAI, statuses: []int{503}, texts: []string{""}, retries: 1, wantCalls: 2, wantErr: "answered 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n, reqs := judgeServer(t, tt.statuses, tt.texts, 0)
			base := srv.URL + "/v1"
			c, err := New(Config{Model: "judge", APIBase: base, APIKey: "sk-judge", Format: tt.format, MaxRetries: tt.retries, RetryDelay: time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Complete(context.Background(), "sys", "prompt", accept)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Complete error = %v, want %q", err, tt.wantErr)
			}
			if got := n.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			r := <-reqs
			if tt.format == FormatAnthropic && (r.Header.Get("x-api-key") != "sk-judge" || r.URL.Path != "/v1/messages") {
				t.Errorf("anthropic request: %s %v", r.URL.Path, r.Header)
			}
			if tt.format == FormatOpenAI && (r.Header.Get("Authorization") != "Bearer sk-judge" || r.URL.Path != "/v1/chat/completions") {
				t.Errorf("openai request: %s %v", r.URL.Path, r.Header)
			}
		})
	}
}

// Each attempt has its own deadline, and the caller's context bounds all.
func TestCompleteDeadlines(t *testing.T) {
	srv, n, _ := judgeServer(t, []int{200}, []string{`{}`}, 5*time.Second)
	c, err := New(Config{Model: "judge", APIBase: srv.URL + "/v1", Timeout: 50 * time.Millisecond, MaxRetries: 1, RetryDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), "s", "p", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want a deadline", err)
	}
	if n.Load() != 2 {
		t.Errorf("%d attempts, want 2", n.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	c2, _ := New(Config{Model: "judge", APIBase: srv.URL + "/v1", MaxRetries: 5, RetryDelay: time.Hour}, nil)
	if _, err := c2.Complete(ctx, "s", "p", nil); err == nil {
		t.Error("no error past the caller's deadline")
	}
}

func TestDefaults(t *testing.T) {
	for _, tt := range []struct{ model, base, format, url string }{
		{"gpt-4o-mini", "", FormatOpenAI, "https://api.openai.com/v1/chat/completions"},
		{"claude-haiku", "", FormatAnthropic, "https://api.anthropic.com/v1/messages"},
		{"any", "http://x/anthropic/v1", FormatAnthropic, "http://x/anthropic/v1/messages"},
	} {
		c, err := New(Config{Model: tt.model, APIBase: tt.base}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Config().Format != tt.format || c.url != tt.url {
			t.Errorf("%s %s: format %s url %s", tt.model, tt.base, c.Config().Format, c.url)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("no error without a model")
	}
}

func TestDecodeJSON(t *testing.T) {
	var v struct{ A int }
	for _, in := range []string{`{"a":1}`, "```\n{\"a\":1}\n```", "Here you go: {\"a\":1} hope it helps"} {
		v.A = 0
		if err := DecodeJSON(in, &v); err != nil || v.A != 1 {
			t.Errorf("DecodeJSON(%q) = %v, %d", in, err, v.A)
		}
	}
	if err := DecodeJSON("no json here", &v); err == nil {
		t.Error("no error for text without JSON")
	}
}
