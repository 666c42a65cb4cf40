package policy

import (
	"context"
	"testing"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// BenchmarkAllCapsOnEvent measures all_caps's step on one text delta
// (uppercase, clone the event), without the transport around it.
func BenchmarkAllCapsOnEvent(b *testing.B) {
	ctx := context.Background()
	s := allCaps{}.NewStream(ctx, &Call{ID: "bench"})
	ev := &cpv1.StreamEvent{Seq: 7, Event: &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: &cpv1.ContentBlockDelta{
		Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: " w042"}}}}}
	b.ReportAllocs()
	for b.Loop() {
		emit, err := s.OnEvent(ctx, ev)
		if err != nil || len(emit.Events) != 1 || emit.Events[0].GetContentBlockDelta().GetText().GetText() != " W042" {
			b.Fatalf("OnEvent = %v, %v", emit, err)
		}
	}
}
