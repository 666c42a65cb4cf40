package llm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// headerRecorder is an endpoint that records the credentials of every
// request it gets and answers 500 with body.
type headerRecorder struct {
	*httptest.Server
	mu    sync.Mutex
	calls []http.Header
}

func newRecorder(t *testing.T, body string) *headerRecorder {
	t.Helper()
	h := &headerRecorder{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.calls = append(h.calls, r.Header.Clone())
		h.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *headerRecorder) requests() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// A judge endpoint that redirects gets an error back: the client follows
// no redirect, so neither the key (Authorization on the same host name,
// x-api-key anywhere) nor the judged content reaches the target, and
// nothing of the redirect's body or location is quoted.
func TestRedirectNotFollowed(t *testing.T) {
	for _, format := range []string{FormatOpenAI, FormatAnthropic} {
		for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(format+" "+http.StatusText(code), func(t *testing.T) {
				target := newRecorder(t, "INTERNAL-TARGET-BODY")
				redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Location", target.URL+"/internal/admin")
					w.WriteHeader(code)
					_, _ = w.Write([]byte("REDIRECT-BODY"))
				}))
				t.Cleanup(redirector.Close)
				c, err := New(Config{Model: "judge", APIBase: redirector.URL + "/v1", APIKey: "sk-secret", Format: format,
					MaxRetries: 2, RetryDelay: time.Millisecond}, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Complete(context.Background(), "s", "p", nil)
				if err == nil || !strings.Contains(err.Error(), "redirect") {
					t.Fatalf("error = %v, want a redirect error", err)
				}
				for _, leak := range []string{"REDIRECT-BODY", "INTERNAL-TARGET-BODY", "/internal/admin"} {
					if strings.Contains(err.Error(), leak) {
						t.Errorf("error quotes %q: %v", leak, err)
					}
				}
				if got := target.requests(); len(got) != 0 {
					t.Errorf("the redirect target got %d requests, with headers %v", len(got), got)
				}
			})
		}
	}
}

// The client never follows redirects, even with a caller's client that
// would.
func TestRedirectNotFollowedWithCallerClient(t *testing.T) {
	target := newRecorder(t, "")
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)
	follows := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	c, err := New(Config{Model: "judge", APIBase: redirector.URL, APIKey: "sk-secret"}, follows)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), "s", "p", nil); err == nil {
		t.Fatal("no error")
	}
	if len(target.requests()) != 0 {
		t.Error("the redirect target was called")
	}
	if follows.CheckRedirect == nil {
		t.Error("the caller's client was changed")
	}
}

// An error answer's body is quoted cut to MaxErrorBody bytes, at a
// character boundary, as valid UTF-8.
func TestErrorBodyTruncated(t *testing.T) {
	body := strings.Repeat("é", 5000) + "TAIL"
	srv := newRecorder(t, body)
	c, err := New(Config{Model: "judge", APIBase: srv.URL + "/v1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), "s", "p", nil)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "TAIL") || strings.Count(msg, "é")*2 > MaxErrorBody || !strings.Contains(msg, "éé") {
		t.Errorf("error quotes %d bytes of the body: %.100s...", strings.Count(msg, "é")*2, msg)
	}
	if !utf8.ValidString(msg) || len(msg) > MaxErrorBody+100 {
		t.Errorf("error of %d bytes, valid UTF-8 %v", len(msg), utf8.ValidString(msg))
	}
}

// Base URLs must be http or https with a host and no user information.
func TestBaseURLChecked(t *testing.T) {
	for _, base := range []string{"ftp://x/v1", "file:///etc/passwd", "/v1", "http://", "http://user:pw@host/v1", "unix:///tmp/s"} {
		if _, err := New(Config{Model: "judge", APIBase: base}, nil); err == nil {
			t.Errorf("New accepted base %q", base)
		}
	}
	for _, tt := range []struct{ url, origin string }{
		{"https://API.openai.com/v1", "https://api.openai.com:443"},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8080"},
		{"http://judge.internal", "http://judge.internal:80"},
		{"http://[::1]:9/v1", "http://[::1]:9"},
	} {
		u, err := ParseBase(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := Origin(u); got != tt.origin {
			t.Errorf("Origin(%s) = %s, want %s", tt.url, got, tt.origin)
		}
	}
}
