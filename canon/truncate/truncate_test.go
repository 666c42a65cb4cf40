package truncate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// marker is the decoded marker.
type marker struct {
	Truncated map[string]int `json:"_luthien_truncated"`
	Head      string         `json:"head"`
}

// The marker: valid JSON of at most the bound, the original length, and
// the head cut on a UTF-8 boundary, as long as fits.
func TestBodyShape(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"ascii", strings.Repeat("abcdefgh", 100)},
		{"json escapes", strings.Repeat(`{"k":"a\"b\\c\n\t"}`, 40)},
		{"two-byte", strings.Repeat("é", 300)},
		{"three-byte", strings.Repeat("€", 300)},
		{"four-byte", strings.Repeat("😀", 300)},
		{"mixed", strings.Repeat("a€😀é\x01", 100)},
	} {
		for maxBytes := 120; maxBytes < 140; maxBytes++ {
			body := []byte(tc.body)
			got := Body(body, maxBytes)
			var m marker
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatalf("%s/%d: invalid JSON %v: %s", tc.name, maxBytes, err, got)
			}
			kept := m.Truncated["kept_bytes"]
			switch {
			case len(got) > maxBytes:
				t.Errorf("%s/%d: marker of %d bytes", tc.name, maxBytes, len(got))
			case m.Truncated["original_bytes"] != len(body):
				t.Errorf("%s/%d: original_bytes %d, want %d", tc.name, maxBytes, m.Truncated["original_bytes"], len(body))
			case kept == 0 || m.Head != string(body[:kept]) || !utf8.Valid(body[:kept]):
				t.Errorf("%s/%d: kept %d, head %q", tc.name, maxBytes, kept, m.Head)
			}
			// The head is as long as fits: the next character would not.
			room := 4 * maxBytes / 5
			head, n := AppendJSONHead(nil, body, room)
			_, next := utf8.DecodeRune(body[n:])
			escaped := mustJSON(t, string(body[n:n+next]))
			if len(head) > room || n < len(body) && len(head)+len(escaped)-2 <= room {
				t.Errorf("%s/%d: head of %d bytes for %d of room; the next %q would fit", tc.name, room, len(head), room, body[n:n+next])
			}
		}
	}
}

func mustJSON(t *testing.T, s string) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The marker of a body of the usual bound's size and more starts with
// Field and fits the bound.
func TestBodyLarge(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 2*DefaultMaxBytes) + `"}]}`)
	got := Body(body, DefaultMaxBytes)
	if len(got) > DefaultMaxBytes || len(got) < DefaultMaxBytes-64 {
		t.Errorf("marker of %d bytes for a bound of %d", len(got), DefaultMaxBytes)
	}
	if !bytes.HasPrefix(got, []byte(`{"`+Field+`":{"original_bytes":`+strconv.Itoa(len(body))+`,`)) {
		t.Errorf("marker starts %q", got[:80])
	}
	var m marker
	if err := json.Unmarshal(got, &m); err != nil || !strings.HasPrefix(string(body), m.Head) || m.Truncated["kept_bytes"] != len(m.Head) {
		t.Errorf("marker %q... (%v)", got[:80], err)
	}
}

// Bytes that are not UTF-8 are written as U+FFFD, counted in kept_bytes
// as the bytes they stand for.
func TestBodyInvalidUTF8(t *testing.T) {
	body := append(bytes.Repeat([]byte("ab\xffc"), 100), '}')
	got := Body(body, 200)
	var m marker
	if err := json.Unmarshal(got, &m); err != nil || !utf8.ValidString(m.Head) {
		t.Fatalf("marker %s (%v)", got, err)
	}
	if want := strings.ToValidUTF8(string(body[:m.Truncated["kept_bytes"]]), "\uFFFD"); m.Head != want {
		t.Errorf("head %q, want %q", m.Head, want)
	}
}

// For any body and bound, the marker is valid JSON within the bound and
// its head is the start of the body.
func FuzzBody(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"héllo \"x\""}]}`), 150)
	f.Add([]byte("\x00\x01\xff€😀"), 110)
	f.Fuzz(func(t *testing.T, body []byte, maxBytes int) {
		maxBytes = 100 + abs(maxBytes)%4096
		got := Body(body, maxBytes)
		if len(got) > maxBytes {
			t.Fatalf("marker of %d bytes, bound %d", len(got), maxBytes)
		}
		var m marker
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatalf("invalid JSON %v: %q", err, got)
		}
		kept := m.Truncated["kept_bytes"]
		if m.Truncated["original_bytes"] != len(body) || kept > len(body) ||
			m.Head != strings.ToValidUTF8(string(body[:kept]), "\uFFFD") && m.Head != string([]rune(string(body[:kept]))) {
			t.Fatalf("marker %s of body %q", got, body)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
