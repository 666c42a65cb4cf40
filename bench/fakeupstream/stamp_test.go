package fakeupstream

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStamp checks the stamps of Scenario.Stamp: every text delta of a
// stream, in both APIs, ends with the time it was written, in order and
// inside the request's lifetime, and the response says when the request
// was read; without Stamp there is neither.
func TestStamp(t *testing.T) {
	s := New()
	defer s.Close()
	for _, tc := range []struct {
		path, body string
		text       func(ev sseEv) (string, bool)
	}{
		{"/v1/messages", anthropicStreamBody, func(ev sseEv) (string, bool) {
			if ev.Event != "content_block_delta" {
				return "", false
			}
			s, ok := get(decode(t, ev.Data), "delta", "text").(string)
			return s, ok
		}},
		{"/v1/chat/completions", openAIStreamBody, func(ev sseEv) (string, bool) {
			if ev.Data == "[DONE]" {
				return "", false
			}
			s, ok := get(decode(t, ev.Data), "choices", 0, "delta", "content").(string)
			return s, ok && s != ""
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			s.Enqueue(Scenario{Text: "one two three", Chunks: 3, Interval: 5 * time.Millisecond, Stamp: true})
			before := time.Now().UnixNano()
			r := post(t, s.URL+tc.path, tc.body)
			after := time.Now().UnixNano()
			recv, ok := ParseReceived(r.resp.Header)
			if !ok || recv < before || recv > after {
				t.Fatalf("%s %q: not within the request (%d to %d)", ReceivedHeader, r.resp.Header.Get(ReceivedHeader), before, after)
			}
			evs, _ := splitSSE(t, r.body)
			var got []string
			last := recv
			for _, ev := range evs {
				text, ok := tc.text(ev)
				if !ok {
					if strings.ContainsRune(ev.Data, StampSep) {
						t.Errorf("stamp in an event that is no text delta: %s", ev.Data)
					}
					continue
				}
				rest, ns, ok := CutStamp(text)
				if !ok {
					t.Fatalf("text delta %q without a stamp", text)
				}
				if ns < last || ns > after {
					t.Errorf("stamp %d of %q not between %d and %d", ns, rest, last, after)
				}
				if len(got) > 0 && ns-last < int64(4*time.Millisecond) {
					t.Errorf("stamps %d ns apart, written 5 ms apart", ns-last)
				}
				last = ns
				got = append(got, rest)
			}
			if len(got) != 3 || strings.Join(got, "") != "one two three" {
				t.Errorf("text deltas %q", got)
			}

			s.Enqueue(Scenario{Text: "one two three", Chunks: 3})
			r = post(t, s.URL+tc.path, tc.body)
			if h := r.resp.Header.Get(ReceivedHeader); h != "" {
				t.Errorf("%s %q without Stamp", ReceivedHeader, h)
			}
			if strings.ContainsRune(string(r.body), StampSep) {
				t.Errorf("stamps without Stamp:\n%s", r.body)
			}
		})
	}
}

func TestCutStamp(t *testing.T) {
	ns := int64(1764100000123456789)
	stamp := string(StampSep) + strconv.FormatInt(ns, 10)
	for _, tc := range []struct {
		in, rest string
		ns       int64
		ok       bool
	}{
		{" w001" + stamp, " w001", ns, true},
		{" W001" + stamp, " W001", ns, true},
		{stamp, "", ns, true},
		{" w001@0000000000000000042", " w001", 42, true},
		{" w001", " w001", 0, false},
		{" w001" + stamp[:len(stamp)-1], " w001" + stamp[:len(stamp)-1], 0, false},
		{" w001#" + stamp[1:], " w001#" + stamp[1:], 0, false},
		{" w001@17641000001234567x9", " w001@17641000001234567x9", 0, false},
	} {
		rest, got, ok := CutStamp(tc.in)
		if rest != tc.rest || got != tc.ns || ok != tc.ok {
			t.Errorf("CutStamp(%q) = %q, %d, %v; want %q, %d, %v", tc.in, rest, got, ok, tc.rest, tc.ns, tc.ok)
		}
	}
	b := []byte("xx" + string(stampHolder) + "yy")
	putStamp(b[3:3+StampDigits], 42)
	if string(b) != "xx@0000000000000000042yy" {
		t.Errorf("putStamp: %s", b)
	}
}
