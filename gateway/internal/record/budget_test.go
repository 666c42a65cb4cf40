package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Queued calls go in batches of at most MaxBatchBytes; a record larger
// than that goes alone; every call arrives, in order.
func TestBatchByteBudget(t *testing.T) {
	const budget = 1 << 20
	s, client := serveSink(t, gatewayMessageLimit)
	r := New(client, quiet(), Options{MaxBatchBytes: budget, MaxBodyBytes: -1})
	release := stall(t, s, r)
	want := []string{"first"}
	body := chatBody(300 << 10)
	for i := range 12 {
		want = append(want, fmt.Sprint("c", i))
		c := newCall(want[len(want)-1], body, smallBody)
		if i == 5 {
			c.RequestReceived = chatBody(3 << 20) // over the budget alone
			c.RequestFinal = c.RequestReceived
		}
		r.Submit(c)
	}
	release()
	waitFor(t, "every call sent", func() bool { return r.Sent() == int64(len(want)) })
	if got := s.received(); !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	calls, sizes := s.batchSizes()
	alone := false
	for i, size := range sizes {
		if size > budget {
			if calls[i] != 1 {
				t.Errorf("batch %d: %d calls in %d bytes, budget %d", i, calls[i], size, budget)
			}
			alone = true
		}
	}
	if !alone || len(calls) < 5 {
		t.Errorf("batches %v of sizes %v: want the large record alone and the others in batches under %d bytes", calls, sizes, budget)
	}
	closeRecorder(t, r)
}

// A batch the control plane refuses (over its gRPC message limit) is split
// in two and each half tried once more; the half refused again is dropped
// and counted, and later calls are delivered.
func TestRefusedBatchSplitThenDropped(t *testing.T) {
	s, client := serveSink(t, 2<<20) // a control plane taking messages of 2 MiB
	r := New(client, quiet(), Options{MaxBodyBytes: -1, Linger: time.Second, MaxBatch: 8})
	release := stall(t, s, r)
	for i := range 8 {
		c := newCall(fmt.Sprint("c", i), smallBody, smallBody)
		if i == 5 {
			c.RequestReceived = chatBody(3 << 20)
			c.RequestFinal = c.RequestReceived
		}
		r.Submit(c)
	}
	release()
	waitFor(t, "the batch sent or dropped", func() bool { return r.Sent()+r.Dropped() == 9 })
	r.Submit(newCall("after", smallBody, smallBody))
	waitFor(t, "the later call sent", func() bool { return r.Sent()+r.Dropped() == 10 })
	got := s.received()
	if want := []string{"first", "c0", "c1", "c2", "c3", "after"}; !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	if r.Dropped() != 4 || r.Sent() != 6 {
		t.Errorf("sent %d, dropped %d; want 6 and 4 (the half with the large call)", r.Sent(), r.Dropped())
	}
	closeRecorder(t, r)
}

// The queue holds at most MaxBytes of calls: the calls beyond are dropped
// and counted, and sent plus dropped is every call submitted.
func TestQueueDropsByBytes(t *testing.T) {
	const budget = 1 << 20
	s, client := serveSink(t, gatewayMessageLimit)
	r := New(client, quiet(), Options{MaxBytes: budget, MaxBodyBytes: -1})
	release := stall(t, s, r)
	body := chatBody(300 << 10) // with the response: about 300 KiB a call
	for i := range 10 {
		r.Submit(newCall(fmt.Sprint("c", i), body, smallBody))
		if q := r.QueuedBytes(); q > budget {
			t.Errorf("queue holds %d bytes, budget %d", q, budget)
		}
	}
	if r.Dropped() != 7 {
		t.Errorf("dropped %d of 10 calls, want 7 (three fit in 1 MiB)", r.Dropped())
	}
	release()
	waitFor(t, "every call sent or dropped", func() bool { return r.Sent()+r.Dropped() == 11 })
	if got := s.received(); !slices.Equal(got, []string{"first", "c0", "c1", "c2"}) {
		t.Errorf("received %v", got)
	}
	if q := r.QueuedBytes(); q != 0 {
		t.Errorf("%d bytes still counted in an empty queue", q)
	}
	closeRecorder(t, r)
}

// The truncation marker: valid JSON of at most the bound, the original
// length, and the head cut on a UTF-8 boundary, as long as fits.
func TestTruncatedBodyShape(t *testing.T) {
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
			got := truncatedBody(body, maxBytes)
			var m struct {
				Truncated map[string]int `json:"_luthien_truncated"`
				Head      string         `json:"head"`
			}
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
			head, n := appendJSONHead(nil, body, room)
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

// Bytes that are not UTF-8 are written as U+FFFD, counted in kept_bytes
// as the bytes they stand for.
func TestTruncatedBodyInvalidUTF8(t *testing.T) {
	body := append(bytes.Repeat([]byte("ab\xffc"), 100), '}')
	got := truncatedBody(body, 200)
	var m struct {
		Truncated map[string]int `json:"_luthien_truncated"`
		Head      string         `json:"head"`
	}
	if err := json.Unmarshal(got, &m); err != nil || !utf8.ValidString(m.Head) {
		t.Fatalf("marker %s (%v)", got, err)
	}
	if want := strings.ToValidUTF8(string(body[:m.Truncated["kept_bytes"]]), "\uFFFD"); m.Head != want {
		t.Errorf("head %q, want %q", m.Head, want)
	}
}

// For any body and bound, the marker is valid JSON within the bound and
// its head is the start of the body.
func FuzzTruncatedBody(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"héllo \"x\""}]}`), 150)
	f.Add([]byte("\x00\x01\xff€😀"), 110)
	f.Fuzz(func(t *testing.T, body []byte, maxBytes int) {
		maxBytes = 100 + abs(maxBytes)%4096
		got := truncatedBody(body, maxBytes)
		if len(got) > maxBytes {
			t.Fatalf("marker of %d bytes, bound %d", len(got), maxBytes)
		}
		var m struct {
			Truncated map[string]int `json:"_luthien_truncated"`
			Head      string         `json:"head"`
		}
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

// wireSize bounds the protobuf size of records of every shape.
func TestWireSizeBoundsProtoSize(t *testing.T) {
	now := time.Now()
	streamed := newCall("streamed", chatBody(2000), []byte(`{"content":[{"type":"text","text":"HELLO"}]}`))
	streamed.ResponseOriginal = []byte(`{"content":[{"type":"text","text":"hello"}]}`)
	streamed.Stream, streamed.Intervened, streamed.FirstByte = true, true, now
	streamed.FinalMessage = &cpv1.Message{Id: "msg_1", Model: "m", StopReason: "end_turn", Usage: &cpv1.Usage{InputTokens: 1 << 40, OutputTokens: 1 << 40},
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "HELLO"}}}}}
	streamed.Timeline.Begin(now)
	for range 300 {
		streamed.Timeline.Add(&cpv1.StreamEvent{}, FromUpstream)
	}
	failed := newCall("failed", smallBody, nil)
	failed.Error, failed.Status, failed.SessionID, failed.UserID = strings.Repeat("upstream broke off ", 50), 502, "s", "u"
	cached := newCall("cached", smallBody, smallBody)
	cached.CacheFillToken = strings.Repeat("t", 64)
	canonicalOnly := newCall("canonical", smallBody, nil)
	canonicalOnly.FinalMessage = streamed.FinalMessage
	for _, c := range []*Call{newCall("plain", smallBody, smallBody), streamed, failed, cached, canonicalOnly, {ID: "empty"}} {
		rec := c.Record()
		if est, size := wireSize(c, rec), proto.Size(rec); est < size {
			t.Errorf("%s: wireSize %d < proto.Size %d", c.ID, est, size)
		}
	}
}
