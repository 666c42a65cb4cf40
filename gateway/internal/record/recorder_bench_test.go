package record

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// BenchmarkRecorder measures recording calls end to end: Submit (on the
// request path), conversion and batching on the recorder's goroutine, and
// RecordCalls over gRPC (bufconn) to a service that accepts them. Calls
// carry a request and a response body of about 1 KiB, unchanged.
func BenchmarkRecorder(b *testing.B) {
	s, client := serveSink(b, 64<<20)
	s.discard = true
	r := New(client, slog.New(slog.DiscardHandler), Options{})
	req := fmt.Appendf(nil, `{"model":"claude-bench","max_tokens":1024,"messages":[{"role":"user","content":%q}]}`, strings.Repeat("lorem ipsum ", 80))
	resp := fmt.Appendf(nil, `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":%q}],"stop_reason":"end_turn"}`, strings.Repeat("dolor sit ", 90))
	now := time.Now()
	b.ReportAllocs()
	n := int64(0)
	for b.Loop() {
		r.Submit(&Call{ID: "c", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Started: now, Finished: now,
			RequestReceived: req, RequestFinal: req, ResponseOriginal: resp, ResponseFinal: resp})
		n++
		if n%256 == 0 { // measure recording, not dropping: let the queue drain
			for r.Sent()+r.Dropped() < n {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.Close(ctx)
	if r.Dropped() != 0 {
		b.Fatalf("%d of %d calls dropped", r.Dropped(), n)
	}
}
