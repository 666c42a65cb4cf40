// Package transport is the gateway's upstream HTTP transport. It is its
// own package, outside internal, so that the benchmark's floor proxy
// (luthien.dev/bench/floor) forwards on the same connection settings as
// the gateway it is compared with.
package transport

import (
	"net/http"
	"time"
)

// Connection pool and idle settings of New.
const (
	// MaxIdleConns bounds the idle keep-alive connections over all hosts.
	MaxIdleConns = 1024
	// MaxIdleConnsPerHost bounds them per upstream host: hundreds of
	// concurrent streams to one provider reuse their connections.
	MaxIdleConnsPerHost = 512
	// IdleConnTimeout closes a keep-alive connection unused this long.
	IdleConnTimeout = 90 * time.Second
)

// New returns the upstream transport: keep-alive connections for hundreds
// of concurrent streams, no transparent compression (streams must be
// parsed and relayed as they arrive), no overall timeout (a long
// generation is not an error; the client's disconnect cancels it), and
// headerTimeout for response headers (zero: no limit).
func New(headerTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = MaxIdleConns
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.IdleConnTimeout = IdleConnTimeout
	t.DisableCompression = true
	t.ResponseHeaderTimeout = headerTimeout
	return t
}
