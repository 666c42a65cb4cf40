package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/dbtest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// BenchmarkPostgresWrite measures the write path into PostgreSQL: calls of
// five events (request and response bodies of about 1 KiB each) through
// the Queue, flushed at the end. It reports events per second.
//
//	go test -run '^$' -bench PostgresWrite -benchtime 20000x ./internal/store
func BenchmarkPostgresWrite(b *testing.B) {
	for _, writers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchmarkWrite(b, writers) })
	}
}

func benchmarkWrite(b *testing.B, writers int) {
	pool := newPool(b, dbtest.NewDatabase(b))
	q := NewQueue(NewPostgres(pool), QueueOptions{Capacity: 1 << 22, Writers: writers})
	body := fmt.Appendf(nil, `{"model":"claude","messages":[{"role":"user","content":%q}]}`, strings.Repeat("lorem ipsum ", 80))
	types := []string{"request.received", "request.final", "response.original", "response.final", "policy.bench.decided"}
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		now := timestamppb.Now()
		events := make([]Event, len(types))
		for j, typ := range types {
			events[j] = Event{Key: typ, Event: &cpv1.CallEvent{CallId: id, SessionId: "s", EventType: typ, Time: now, PayloadJson: body}}
		}
		call := &Call{Summary: &cpv1.CallSummary{CallId: id, SessionId: "s", Model: "claude", Status: 200, StartedAt: now},
			Text: "lorem ipsum dolor sit amet", Preview: "lorem"}
		for !q.Enqueue(call, events) {
			time.Sleep(time.Millisecond) // the benchmark measures throughput, not drops
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(q.Written())/elapsed.Seconds(), "events/s")
}

// benchBodies are request bodies of the shapes the record path redacts:
// a short chat request, a coding agent's long request (prose, code,
// identifiers and hashes; with and without credentials) and a request
// carrying an image as base64.
func benchBodies() []struct {
	name string
	body []byte
} {
	agent := agentBody(64<<10, "")
	leaky := agentBody(64<<10, "here: sk-ant-api03-"+strings.Repeat("Q9x", 30)+" and AKIAIOSFODNN7EXAMPLE")
	return []struct {
		name string
		body []byte
	}{
		{"chat-1KiB", fmt.Appendf(nil, `{"model":"claude","max_tokens":1024,"messages":[{"role":"user","content":%q}]}`, strings.Repeat("lorem ipsum ", 80))},
		{"agent-64KiB", agent},
		{"agent-64KiB-credentials", leaky},
		{"image-256KiB", imageBody(192 << 10)},
	}
}

// agentText is a paragraph of what a coding agent sends: prose that talks
// about keys and tokens, code, identifiers and hashes, and no credential.
const agentText = `The key point is that the handler reads the token budget (max_tokens) before it
calls the model; the bearer of the request is the session, and the monkey patch in the
keyboard layout test is unrelated. Task-management and risk-assessment code stays as is.
func (c *Cache) Get(key string) ([]byte, bool) { v, ok := c.items[key]; return v, ok }
const apiKeyHeader = "x-api-key" // the header name, not a key
request 3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b, commit 9fceb02d0ae598e95dc970b74767f19372d61af8,
sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.
{"tool_use_id":"toolu_01A09q90qw90lq917835lq9","content":"ok: 12 files changed\n"}
`

// agentBody is a request of about n bytes of agentText in messages, with
// extra (when not empty) in the last message.
func agentBody(n int, extra string) []byte {
	var msgs []string
	for size := 0; size < n; size += len(agentText) {
		msgs = append(msgs, fmt.Sprintf(`{"role":"user","content":[{"type":"text","text":%q}]}`, agentText))
	}
	if extra != "" {
		msgs = append(msgs, fmt.Sprintf(`{"role":"user","content":%q}`, extra))
	}
	return fmt.Appendf(nil, `{"model":"claude","max_tokens":4096,"system":"You are a coding agent.","messages":[%s]}`,
		strings.Join(msgs, ","))
}

// imageBody is a request with n bytes of pseudo-random image data in
// base64.
func imageBody(n int) []byte {
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return fmt.Appendf(nil, `{"model":"claude","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":%q}},{"type":"text","text":"What is in this picture?"}]}]}`,
		base64.StdEncoding.EncodeToString(data))
}

// BenchmarkRedactJSON measures redaction of request bodies, which runs on
// every recorded body.
//
//	go test -run '^$' -bench RedactJSON ./internal/store
func BenchmarkRedactJSON(b *testing.B) {
	for _, bb := range benchBodies() {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				RedactJSON(bb.body)
			}
		})
	}
}

// BenchmarkTakePayload measures what the record path does to each event's
// payload before it is queued and published.
func BenchmarkTakePayload(b *testing.B) {
	for _, bb := range benchBodies() {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				TakePayload(&cpv1.CallEvent{PayloadJson: bb.body})
			}
		})
	}
}
