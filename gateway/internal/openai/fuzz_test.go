package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/dialect/dialecttest"
	"luthien.dev/gateway/internal/sse"
)

// checkEncoded fails unless out is a series of SSE events whose data is
// JSON or [DONE].
func checkEncoded(t *testing.T, out []byte) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(out))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil || !(json.Valid(ev.Data) || string(ev.Data) == "[DONE]") {
			t.Fatalf("encoded %q is not SSE events with JSON data (%v)", out, err)
		}
	}
}

// FuzzDecode: the decoder never panics, every event it returns is set, and
// the encoder turns them into valid chunks.
func FuzzDecode(f *testing.F) {
	dialecttest.AddGoldenSeeds(f)
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0},{\"index\":1}]}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\",\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n"))
	f.Add([]byte("data: [DONE]\n\ndata: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := sse.NewReader(bytes.NewReader(in))
		dec := Dialect{}.NewDecoder()
		synthetic := Dialect{}.NewEncoder(dialect.Request{Stream: true, IncludeUsage: true})
		raw := Dialect{}.NewEncoder(dialect.Request{Stream: true, IncludeUsage: true})
		for {
			ev, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, sse.ErrEventTooLarge) {
					t.Fatal(err)
				}
				return
			}
			evs, err := dec.Decode(ev)
			if err != nil {
				continue
			}
			if len(evs) == 0 {
				t.Fatalf("no events for %q", ev.Raw)
			}
			for _, e := range evs {
				dialecttest.CheckEvent(t, e)
				var buf bytes.Buffer
				if err := synthetic.Event(&buf, e, ev.Raw); err != nil {
					t.Fatalf("encode %v: %v", e, err)
				}
				checkEncoded(t, buf.Bytes())
			}
			if err := raw.Raw(io.Discard, ev.Raw, evs); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseRequest: ParseRequest never panics, rejects with a 400, and
// accepts only requests with a model.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true},"user":"u"}`,
		`{"model":"m","messages":{}}`,
		`{"model":`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := Dialect{}.ParseRequest(body)
		if err != nil {
			var de *dialect.Error
			if !errors.As(err, &de) || de.Status != 400 {
				t.Fatalf("error %v is not a 400 *dialect.Error", err)
			}
			return
		}
		if req.Model == "" {
			t.Fatal("accepted a request without a model")
		}
	})
}
