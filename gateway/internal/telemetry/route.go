package telemetry

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteName is the route label of a mux pattern: the pattern without its
// method ("GET /calls/{id}" is "/calls/{id}"), so that the label's values
// are the route table's, whatever paths clients send.
func RouteName(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return strings.TrimSpace(pattern[i+1:])
	}
	return pattern
}

// Route wraps h, the handler of one route, so that each request it
// answers is counted and timed under the route's name, the format a
// handler sets with SetFormat (FormatNone otherwise) and the status
// answered. A nil *Metrics returns h.
func (m *Metrics) Route(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	labels := prometheus.Labels{labelRoute: route}
	requests, durations := m.requests.MustCurryWith(labels), m.requestDuration.MustCurryWith(labels)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &routeWriter{ResponseWriter: w, format: FormatNone}
		h.ServeHTTP(rw, r)
		status := rw.status
		if status == 0 {
			status = http.StatusOK // what the server sends for a handler that wrote nothing
		}
		code := StatusLabel(status)
		requests.WithLabelValues(rw.format, code).Inc()
		durations.WithLabelValues(rw.format, code).Observe(time.Since(start).Seconds())
	})
}

// SetFormat labels the request that w answers with its client format
// (FormatOpenAI, FormatAnthropic); w is the writer a handler got, or any
// writer that wraps it (through Unwrap).
func SetFormat(w http.ResponseWriter, format string) {
	for w != nil {
		if rw, ok := w.(*routeWriter); ok {
			rw.format = format
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// routeWriter notes the status answered and the format of the request.
type routeWriter struct {
	http.ResponseWriter
	status int
	format string
}

func (w *routeWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *routeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer, for handlers that look for an
// http.Flusher rather than use http.ResponseController.
func (w *routeWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *routeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
