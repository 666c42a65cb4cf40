package activity

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// BenchmarkPublish measures publishing one event with a body of about
// 1 KiB to four subscribers that keep up (an in-process hub).
func BenchmarkPublish(b *testing.B) {
	h := NewLocal(nil)
	defer h.Close()
	payload := fmt.Appendf(nil, `{"model":"claude","messages":[{"role":"user","content":%q}]}`, strings.Repeat("lorem ipsum ", 80))
	var wg sync.WaitGroup
	for range 4 {
		s, err := h.Subscribe(Filter{}, 1024)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for range s.C() {
			}
		})
	}
	ev := &cpv1.CallEvent{CallId: "c1", SessionId: "s", EventType: "request.received", PayloadJson: payload}
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(ev)
	}
	b.StopTimer()
	h.Close()
	wg.Wait()
}
