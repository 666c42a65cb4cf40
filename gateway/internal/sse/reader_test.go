package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type got struct{ raw, name, data string }

func readAll(t *testing.T, r io.Reader) []got {
	t.Helper()
	rd := NewReader(r)
	var out []got
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, got{string(ev.Raw), string(ev.Name), string(ev.Data)})
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	tests := []struct {
		name string
		in   string
		want []got
	}{
		{"anthropic", "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_stop\ndata: {}\n\n",
			[]got{{"event: ping\ndata: {\"type\":\"ping\"}\n\n", "ping", `{"type":"ping"}`}, {"event: message_stop\ndata: {}\n\n", "message_stop", "{}"}}},
		{"openai", "data: {\"a\":1}\n\ndata: [DONE]\n\n",
			[]got{{"data: {\"a\":1}\n\n", "", `{"a":1}`}, {"data: [DONE]\n\n", "", "[DONE]"}}},
		{"crlf", "event: x\r\ndata: y\r\n\r\n", []got{{"event: x\r\ndata: y\r\n\r\n", "x", "y"}}},
		{"multiline data and no space", "data:a\ndata: b\n\n", []got{{"data:a\ndata: b\n\n", "", "a\nb"}}},
		{"comment", ": keep-alive\n\n", []got{{": keep-alive\n\n", "", ""}}},
		{"leading blank lines skipped", "\n\ndata: z\n\n", []got{{"data: z\n\n", "", "z"}}},
		{"unterminated tail", "data: a\n\ndata: b", []got{{"data: a\n\n", "", "a"}, {"data: b", "", "b"}}},
		{"long line", "event: big\ndata: " + long + "\n\n", []got{{"event: big\ndata: " + long + "\n\n", "big", long}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				out := readAll(t, r)
				if len(out) != len(tt.want) {
					t.Fatalf("got %d events %q, want %d", len(out), out, len(tt.want))
				}
				for i := range out {
					if out[i] != tt.want[i] {
						t.Errorf("event %d: got %q, want %q", i, out[i], tt.want[i])
					}
				}
			}
		})
	}
}

func TestReaderTooLarge(t *testing.T) {
	in := "data: " + strings.Repeat("y", MaxEventSize+10) + "\n\n"
	_, err := NewReader(strings.NewReader(in)).Next()
	if !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("got %v, want ErrEventTooLarge", err)
	}
}

// FuzzReader checks that concatenating every event's raw bytes gives back
// the input minus blank lines between events: nothing is lost or invented.
func FuzzReader(f *testing.F) {
	f.Add("event: a\ndata: b\n\n")
	f.Add("data: x\r\n\r\ndata: [DONE]\n\n")
	f.Add(": c\n\n\n\ndata: tail")
	f.Fuzz(func(t *testing.T, in string) {
		rd := NewReader(strings.NewReader(in))
		var buf bytes.Buffer
		for {
			ev, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			if len(ev.Raw) == 0 {
				t.Fatal("empty event")
			}
			buf.Write(ev.Raw)
		}
		strip := func(s string) string {
			return strings.NewReplacer("\r", "", "\n", "").Replace(s)
		}
		if strip(buf.String()) != strip(in) {
			t.Fatalf("raw bytes lost: in %q out %q", in, buf.String())
		}
	})
}
