package anthropic

import (
	"io"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const benchDelta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the quick brown fox\"}}\n\n"

func benchEvent(b *testing.B) sse.Event {
	ev, err := sse.NewReader(strings.NewReader(benchDelta)).Next()
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkDecode decodes one text delta event.
func BenchmarkDecode(b *testing.B) {
	ev := benchEvent(b)
	dec := Dialect{}.NewDecoder()
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Raw)))
	for b.Loop() {
		if _, err := dec.Decode(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeEvent encodes one text delta synthetically.
func BenchmarkEncodeEvent(b *testing.B) {
	ev := &cpv1.StreamEvent{Seq: 4, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: " the quick brown fox"}}}}}
	template := []byte(benchDelta)
	enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Event(io.Discard, ev, template); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRaw writes one upstream event unchanged.
func BenchmarkRaw(b *testing.B) {
	ev := benchEvent(b)
	evs, err := Dialect{}.NewDecoder().Decode(ev)
	if err != nil {
		b.Fatal(err)
	}
	enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Raw)))
	for b.Loop() {
		if err := enc.Raw(io.Discard, ev.Raw, evs); err != nil {
			b.Fatal(err)
		}
	}
}
