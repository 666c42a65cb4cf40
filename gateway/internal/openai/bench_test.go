package openai

import (
	"io"
	"strings"
	"testing"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const (
	benchStart = `data: {"id":"chatcmpl-CVWxz8nP0mOTHgvGAGmj3w2Yzt3F1","object":"chat.completion.chunk","created":1761500000,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_cbf1785567","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	benchDelta = `data: {"id":"chatcmpl-CVWxz8nP0mOTHgvGAGmj3w2Yzt3F1","object":"chat.completion.chunk","created":1761500000,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_cbf1785567","choices":[{"index":0,"delta":{"content":" the quick brown fox"},"logprobs":null,"finish_reason":null}]}` + "\n\n"
)

func benchEvent(b *testing.B, s string) sse.Event {
	ev, err := sse.NewReader(strings.NewReader(s)).Next()
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkDecode decodes one content chunk in the middle of a text block.
func BenchmarkDecode(b *testing.B) {
	start, ev := benchEvent(b, benchStart), benchEvent(b, benchDelta)
	dec := Dialect{}.NewDecoder()
	for _, e := range []sse.Event{start, ev} {
		if _, err := dec.Decode(e); err != nil {
			b.Fatal(err)
		}
	}
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
	enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
	ms := &cpv1.StreamEvent{Seq: 1, Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "x", Model: "m"}}}
	if err := enc.Event(io.Discard, ms, []byte(benchStart)); err != nil {
		b.Fatal(err)
	}
	ev := &cpv1.StreamEvent{Seq: 4, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: " the quick brown fox"}}}}}
	template := []byte(benchDelta)
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Event(io.Discard, ev, template); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRaw writes one upstream chunk unchanged.
func BenchmarkRaw(b *testing.B) {
	start, ev := benchEvent(b, benchStart), benchEvent(b, benchDelta)
	dec := Dialect{}.NewDecoder()
	if _, err := dec.Decode(start); err != nil {
		b.Fatal(err)
	}
	evs, err := dec.Decode(ev)
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
