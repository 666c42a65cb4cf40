package record

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// chatBody is a chat request of exactly n bytes.
func chatBody(n int) []byte {
	head, tail := `{"model":"m","messages":[{"role":"user","content":"`, `"}]}`
	fill := max(n-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("lorem ipsum ", fill/12+1)[:fill] + tail)
}

var smallBody = chatBody(200)

// newCall is a finished call whose response no policy changed.
func newCall(id string, resp []byte) *Call {
	now := time.Now()
	return &Call{ID: id, Format: cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT, Status: 200, Started: now, Finished: now,
		ResponseOriginal: resp, ResponseFinal: resp}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stall holds the sink's gate and submits a first call, waiting until the
// recorder is ending it: the calls submitted next wait (with one worker,
// in the queue). release opens the gate.
func stall(t *testing.T, s *sink, r *Recorder) (release func()) {
	t.Helper()
	s.gate.Lock()
	r.Submit(newCall("first", smallBody), s.end())
	select {
	case <-s.arrived:
	case <-time.After(10 * time.Second):
		s.gate.Unlock()
		t.Fatal("the first call was never sent")
	}
	return s.gate.Unlock
}

func closeRecorder(t *testing.T, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.Close(ctx)
}

// Twenty 5 MB calls and six of 10 MiB, queued together behind a slow
// control plane, reach it (truncated) with the default options, and so
// does a call after them: nothing is dropped.
func TestLargeCallsNeverStopRecording(t *testing.T) {
	s := newSink()
	r := New(quiet(), Options{})
	release := stall(t, s, r)
	want := []string{"first"}
	five, ten := chatBody(5_000_000), chatBody(10<<20-1024)
	for i := range 20 {
		want = append(want, fmt.Sprint("five-", i))
		r.Submit(newCall(want[len(want)-1], five), s.end())
	}
	for i := range 6 {
		want = append(want, fmt.Sprint("ten-", i))
		r.Submit(newCall(want[len(want)-1], ten), s.end())
	}
	release()
	r.Submit(newCall("after", smallBody), s.end())
	want = append(want, "after")
	waitFor(t, "every call sent or dropped", func() bool { return r.Sent()+r.Dropped() >= int64(len(want)) })
	if r.Dropped() != 0 || r.Sent() != int64(len(want)) || s.ended() != 0 {
		t.Errorf("sent %d, dropped %d of %d calls; %d ended without a record", r.Sent(), r.Dropped(), len(want), s.ended())
	}
	slices.Sort(want)
	if got := s.received(); !slices.Equal(got, want) {
		t.Errorf("received %d calls %v, want %v", len(got), got, want)
	}
	closeRecorder(t, r)
}

// A body over the bound reaches the control plane as the truncation
// marker; what the whole bodies said (unchanged, usage) survives.
func TestSubmitTruncatesBodies(t *testing.T) {
	s := newSink()
	r := New(quiet(), Options{})
	resp := chatBody(2 << 20)
	changed := []byte(strings.ToUpper(string(resp)))
	c := newCall("big", resp)
	c.ResponseFinal = changed
	c.FinalMessage = &cpv1.Message{Usage: &cpv1.Usage{InputTokens: 7},
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: string(changed)}}}}}
	r.Submit(c, s.end())
	closeRecorder(t, r)
	rec := s.record("big")
	if rec == nil {
		t.Fatal("the call was not recorded")
	}
	if rec.GetResponseUnchanged() {
		t.Error("response unchanged, want changed")
	}
	if rec.GetSummary().GetUsage().GetInputTokens() != 7 {
		t.Errorf("usage %v", rec.GetSummary().GetUsage())
	}
	if rec.GetFinalResponse() != nil {
		t.Error("a canonical response larger than the bound was kept")
	}
	whole := map[string][]byte{"response.original": resp, "response.final": changed}
	for _, ev := range rec.GetEvents() {
		body, ok := whole[ev.GetEventType()]
		if !ok {
			t.Errorf("unexpected event %s", ev.GetEventType())
			continue
		}
		delete(whole, ev.GetEventType())
		checkMarker(t, ev.GetPayloadJson(), body, 1<<20) // the default bound
	}
	if len(whole) != 0 {
		t.Errorf("events missing: %v", whole)
	}
}

// checkMarker checks that payload is the truncation marker of body, within
// maxBytes.
func checkMarker(t *testing.T, payload, body []byte, maxBytes int) {
	t.Helper()
	var m struct {
		Truncated *struct {
			OriginalBytes int `json:"original_bytes"`
			KeptBytes     int `json:"kept_bytes"`
		} `json:"_luthien_truncated"`
		Head *string `json:"head"`
	}
	if err := json.Unmarshal(payload, &m); err != nil || m.Truncated == nil || m.Head == nil {
		t.Fatalf("not a truncation marker (%v): %.200s", err, payload)
	}
	if len(payload) > maxBytes {
		t.Errorf("marker of %d bytes, bound %d", len(payload), maxBytes)
	}
	if m.Truncated.OriginalBytes != len(body) || m.Truncated.KeptBytes > len(body) || *m.Head != string(body[:m.Truncated.KeptBytes]) {
		t.Errorf("marker says %d bytes, %d kept, head of %d bytes; body of %d bytes",
			m.Truncated.OriginalBytes, m.Truncated.KeptBytes, len(*m.Head), len(body))
	}
	if m.Truncated.KeptBytes < maxBytes/2 {
		t.Errorf("only %d bytes kept of a bound of %d", m.Truncated.KeptBytes, maxBytes)
	}
}

// A record that cannot be marshalled as it is (a session id that is not
// UTF-8, from a client's header) is repaired, and never holds up the calls
// after it.
func TestInvalidUTF8NeverStopsRecording(t *testing.T) {
	s := newSink()
	r := New(quiet(), Options{})
	bad := newCall("bad", smallBody)
	bad.SessionID = "s\xff\xfe"
	bad.Error = "upstream said \xc3"
	r.Submit(bad, s.end())
	r.Submit(newCall("after", smallBody), s.end())
	waitFor(t, "both calls sent or dropped", func() bool { return r.Sent()+r.Dropped() >= 2 })
	if got := s.received(); !slices.Equal(got, []string{"after", "bad"}) {
		t.Fatalf("received %v", got)
	}
	if sid := s.record("bad").GetSummary().GetSessionId(); sid != "s\uFFFD" {
		t.Errorf("session id %q", sid)
	}
	closeRecorder(t, r)
}

// A record whose link broke is counted as dropped, never as sent; a
// recorder closed with no time left ends the calls still queued without
// their records, and counts them.
func TestFailedAndAbandonedEndsCounted(t *testing.T) {
	s := newSink()
	s.fail = true
	r := New(quiet(), Options{Workers: 1})
	for i := range 3 {
		r.Submit(newCall(fmt.Sprint("c", i), smallBody), s.end())
	}
	waitFor(t, "every call ended", func() bool { return r.Sent()+r.Dropped() == 3 })
	if r.Sent() != 0 || r.Dropped() != 3 {
		t.Errorf("sent %d, dropped %d of 3 calls whose link broke", r.Sent(), r.Dropped())
	}

	s = newSink()
	r = New(quiet(), Options{Workers: 1})
	release := stall(t, s, r)
	for i := range 5 {
		r.Submit(newCall(fmt.Sprint("q", i), smallBody), s.end())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { r.Close(ctx); close(done) }()
	time.Sleep(20 * time.Millisecond)
	release()
	<-done
	if got := s.received(); !slices.Equal(got, []string{"first"}) {
		t.Errorf("received %v, want only the call being ended when Close gave up", got)
	}
	if s.ended() != 5 || r.Dropped() != 5 || r.Sent() != 1 {
		t.Errorf("%d calls ended without a record, %d dropped, %d sent; want 5, 5, 1", s.ended(), r.Dropped(), r.Sent())
	}
}

// A call submitted while, or after, the recorder closes is ended without
// its record and counted: never a send on a closed queue.
func TestSubmitDuringClose(t *testing.T) {
	s := newSink()
	r := New(quiet(), Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r.Submit(newCall(fmt.Sprint(w, "-", i), smallBody), s.end())
			}
		})
	}
	closeRecorder(t, r)
	wg.Wait()
	if got := r.Sent() + r.Dropped(); got != 800 {
		t.Errorf("sent %d + dropped %d = %d of 800 calls", r.Sent(), r.Dropped(), got)
	}
	if int64(len(s.received())) != r.Sent() || int64(s.ended()) != r.Dropped() {
		t.Errorf("%d records received for %d sent, %d calls ended bare for %d dropped", len(s.received()), r.Sent(), s.ended(), r.Dropped())
	}
}
