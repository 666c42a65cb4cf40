package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"luthien.dev/gateway/internal/anthropic"
	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
)

// FuzzStream: translating any upstream bytes, in either direction, never
// panics and writes only SSE events with JSON data (or [DONE]); an OpenAI
// upstream stream that completes gives a valid Anthropic stream.
func FuzzStream(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.sse"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, s := range []*Stream{NewAnthropicToChatStream(dialect.Request{IncludeUsage: true}), NewChatToAnthropicStream()} {
			var out bytes.Buffer
			rd := sse.NewReader(bytes.NewReader(in))
			failed := false
			for {
				ev, err := rd.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, sse.ErrEventTooLarge) {
						t.Fatal(err)
					}
					break
				}
				if err := s.Event(&out, ev); err != nil {
					failed = true
					break
				}
			}
			if !failed {
				if err := s.Finish(&out); err != nil {
					t.Fatal(err)
				}
			}
			checkSSE(t, out.Bytes())
			if !s.toChat && !failed {
				evs := decodeAll(t, anthropic.Dialect{}, out.Bytes())
				if err := checkInvariants(evs); err != nil {
					t.Fatalf("invalid Anthropic stream: %v\n%s", err, out.Bytes())
				}
			}
		}
	})
}

// checkSSE fails unless out is a series of SSE events whose data is JSON
// or [DONE].
func checkSSE(t *testing.T, out []byte) {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(out))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil || !(json.Valid(ev.Data) || string(ev.Data) == "[DONE]") {
			t.Fatalf("output %q is not SSE events with JSON data (%v)", out, err)
		}
	}
}
