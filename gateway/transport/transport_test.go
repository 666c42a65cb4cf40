package transport

import (
	"net/http"
	"testing"
	"time"
)

// TestNew checks the settings the gateway and the benchmark's floor proxy
// both rely on.
func TestNew(t *testing.T) {
	got := New(time.Minute)
	if got == http.DefaultTransport {
		t.Fatal("New returned the shared default transport")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"MaxIdleConns", got.MaxIdleConns, 1024},
		{"MaxIdleConnsPerHost", got.MaxIdleConnsPerHost, 512},
		{"IdleConnTimeout", got.IdleConnTimeout, 90 * time.Second},
		{"DisableCompression", got.DisableCompression, true},
		{"ResponseHeaderTimeout", got.ResponseHeaderTimeout, time.Minute},
		{"Proxy from the environment", got.Proxy != nil, true},
		{"ForceAttemptHTTP2", got.ForceAttemptHTTP2, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if New(0).ResponseHeaderTimeout != 0 {
		t.Error("New(0) set a response-header timeout")
	}
}
