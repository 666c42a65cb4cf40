package anthropic

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

// checkEncoded fails unless out is empty or one SSE event whose data is
// JSON.
func checkEncoded(t *testing.T, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	rd := sse.NewReader(bytes.NewReader(out))
	ev, err := rd.Next()
	if err != nil || !json.Valid(ev.Data) || !bytes.Equal(ev.Raw, out) {
		t.Fatalf("encoded %q is not one SSE event with JSON data (%v)", out, err)
	}
}

// FuzzDecode: the decoder never panics, every event it returns is set, and
// both encoders accept what it returns.
func FuzzDecode(f *testing.F) {
	dialecttest.AddGoldenSeeds(f)
	f.Add([]byte("data: null\n\n"))
	f.Add([]byte("data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":null}\n\n"))
	f.Add([]byte("data: {\"type\":\"content_block_delta\",\"delta\":null}\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := sse.NewReader(bytes.NewReader(in))
		dec := Dialect{}.NewDecoder()
		enc := Dialect{}.NewEncoder(dialect.Request{Stream: true})
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
				if err := enc.Event(&buf, e, ev.Raw); err != nil {
					t.Fatalf("encode %v: %v", e, err)
				}
				checkEncoded(t, buf.Bytes())
			}
			if err := enc.Raw(io.Discard, ev.Raw, evs); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseRequest: ParseRequest never panics, rejects with a 400, and
// accepts only requests with a model.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":1,"stream":true,"messages":[],"metadata":{"user_id":"user_3f2a9c_account__session_0f8e9a2b"}}`,
		`{"model":"m","max_tokens":1,"messages":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"session_id\":\"s\"}"}}`,
		`{"model":"m","max_tokens":1,"messages":{}}`,
		`{"model":"m",`,
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

func TestEncodeMultilineData(t *testing.T) {
	in := "event: foo\ndata: {\"type\":\"foo\",\ndata: \"x\":1}\n\n"
	ev, err := sse.NewReader(bytes.NewReader([]byte(in))).Next()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := Dialect{}.NewDecoder().Decode(ev)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (Dialect{}).NewEncoder(dialect.Request{}).Event(&buf, evs[0], nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != in {
		t.Errorf("got %q, want %q", buf.String(), in)
	}
}
