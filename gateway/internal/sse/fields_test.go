package sse

import (
	"strings"
	"testing"
)

func TestDataOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"event: x\ndata: {\"a\":1}\n\n", `{"a":1}`},
		{"data:{}\r\n\r\n", `{}`},
		{"data: first\ndata: second\n\n", "first"},
		{": data: no\ndata: yes\n\n", "yes"},
		{"datum: x\n\n", ""},
		{"event: x\n\n", ""},
		{"", ""},
		{"data: tail", "tail"},
	}
	for _, tt := range tests {
		if got := string(DataOf([]byte(tt.in))); got != tt.want {
			t.Errorf("DataOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestReaderName: the event name stays right when the buffer grows after
// the name was read, and a comment that looks like a field is no field.
func TestReaderName(t *testing.T) {
	long := strings.Repeat("x", 40<<10)
	in := "event: first\ndata: " + long + "\n\n" +
		"data: " + long + "\nevent: after\n\n" +
		": event: no\ndata: 1\n\n" +
		"event:\ndata: 2\n\n"
	want := []got{
		{"event: first\ndata: " + long + "\n\n", "first", long},
		{"data: " + long + "\nevent: after\n\n", "after", long},
		{": event: no\ndata: 1\n\n", "", "1"},
		{"event:\ndata: 2\n\n", "", "2"},
	}
	out := readAll(t, strings.NewReader(in))
	if len(out) != len(want) {
		t.Fatalf("got %d events, want %d", len(out), len(want))
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("event %d: got name %q data %d bytes, want name %q data %d bytes", i, out[i].name, len(out[i].data), want[i].name, len(want[i].data))
		}
	}
}
