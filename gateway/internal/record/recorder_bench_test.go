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

// BenchmarkRecorder measures recording calls: Submit (on the request
// path), then, on the recorder's workers, conversion and marshalling of
// each record as its link would send it. Calls carry a response body of
// about 1 KiB, unchanged.
func BenchmarkRecorder(b *testing.B) {
	s := newSink()
	s.discard = true
	r := New(slog.New(slog.DiscardHandler), Options{})
	resp := fmt.Appendf(nil, `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":%q}],"stop_reason":"end_turn"}`, strings.Repeat("dolor sit ", 90))
	now := time.Now()
	b.ReportAllocs()
	n := int64(0)
	for b.Loop() {
		r.Submit(&Call{ID: "c", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Started: now, Finished: now,
			ResponseOriginal: resp, ResponseFinal: resp}, s.end())
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
