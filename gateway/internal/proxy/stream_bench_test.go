package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/record"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// benchDeltas is the number of text deltas of the benchmarks' streams.
const benchDeltas = 200

// discardWriter is a client that takes every byte and every flush.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// benchStream returns a stream of the fake upstream in d's format, with
// benchDeltas text deltas.
func benchStream(b *testing.B, d dialect.Dialect) []byte {
	b.Helper()
	up := fakeupstream.New()
	defer up.Close()
	up.SetRecording(false)
	up.SetDefault(fakeupstream.Scenario{Text: strings.Repeat("word ", benchDeltas), Chunks: benchDeltas})
	url, body := up.AnthropicBaseURL()+"/v1/messages", `{"model":"claude-bench","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		url, body = up.OpenAIBaseURL()+"/chat/completions", `{"model":"gpt-bench","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("fake upstream: %d %v", resp.StatusCode, err)
	}
	return raw
}

var benchDialects = []dialect.Dialect{anthropic.Dialect{}, openai.Dialect{}}

func dialectName(d dialect.Dialect) string {
	if d.Format() == cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT {
		return "openai"
	}
	return "anthropic"
}

// BenchmarkRelayStream measures relaying one whole stream no policy
// inspects (relayStream): reading, decoding for the record, writing and
// flushing each event, rebuilding the messages.
func BenchmarkRelayStream(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(dialectName(d), func(b *testing.B) {
			stream := benchStream(b, d)
			p := &Proxy{log: slog.New(slog.DiscardHandler)}
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			req := dialect.Request{Stream: true, IncludeUsage: true}
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				c := &call{id: "bench", d: d, req: req, trace: &record.Call{Started: time.Now(), Stream: true}}
				resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}},
					Body: io.NopCloser(bytes.NewReader(stream))}
				p.relayStream(&discardWriter{h: http.Header{}}, r, c, resp)
			}
		})
	}
}

// BenchmarkStreamWriter measures writing one whole policed stream to the
// client (clientWriter), one output batch per upstream event: every event
// passed through, or every text delta changed by the policy.
func BenchmarkStreamWriter(b *testing.B) {
	for _, d := range benchDialects {
		stream := benchStream(b, d)
		table := &eventTable{}
		dec := d.NewDecoder()
		rd := sse.NewReader(bytes.NewReader(stream))
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			evs, err := dec.Decode(ev)
			if err != nil {
				b.Fatal(err)
			}
			table.add(bytes.Clone(ev.Raw), evs)
		}
		batches := func(change bool) [][]*cpv1.StreamOutput {
			var out [][]*cpv1.StreamOutput
			for _, u := range table.bySeq {
				if len(out) > 0 && out[len(out)-1][0].GetPassthroughSeq() == u.first {
					continue // already batched
				}
				var batch []*cpv1.StreamOutput
				for i, ev := range u.evs {
					seq := u.first + uint64(i)
					if t := ev.GetContentBlockDelta().GetText(); change && t != nil {
						batch = append(batch, emit(&cpv1.StreamEvent{Seq: seq, Event: &cpv1.StreamEvent_ContentBlockDelta{
							ContentBlockDelta: &cpv1.ContentBlockDelta{Index: ev.GetContentBlockDelta().GetIndex(),
								Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: strings.ToUpper(t.GetText())}}}}}))
						continue
					}
					batch = append(batch, pass(seq))
				}
				out = append(out, batch)
			}
			return out
		}
		for _, variant := range []struct {
			name   string
			change bool
		}{{"passthrough", false}, {"changed", true}} {
			b.Run(dialectName(d)+"/"+variant.name, func(b *testing.B) {
				outs := batches(variant.change)
				req := dialect.Request{Stream: true, IncludeUsage: true}
				b.ReportAllocs()
				b.SetBytes(int64(len(stream)))
				for b.Loop() {
					trace := &record.Call{Started: time.Now(), Stream: true}
					trace.Timeline.Begin(trace.Started)
					cw := &clientWriter{w: &discardWriter{h: http.Header{}}, upstream: http.Header{}, enc: d.NewEncoder(req),
						table: table, rec: &streamRecord{}, tl: &trace.Timeline}
					for _, batch := range outs {
						for _, o := range batch {
							if err := cw.output(o); err != nil {
								b.Fatal(err)
							}
						}
						if err := cw.flushBatch(); err != nil {
							b.Fatal(err)
						}
					}
					if err := cw.finish(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
