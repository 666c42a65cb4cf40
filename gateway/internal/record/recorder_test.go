package record

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// gatewayMessageLimit is the gateway's gRPC message limit
// (app.MaxMessageBytes).
const gatewayMessageLimit = 64 << 20

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// chatBody is a chat request of exactly n bytes.
func chatBody(n int) []byte {
	head, tail := `{"model":"m","messages":[{"role":"user","content":"`, `"}]}`
	fill := max(n-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("lorem ipsum ", fill/12+1)[:fill] + tail)
}

var smallBody = chatBody(200)

// newCall is a finished call whose bodies no policy changed.
func newCall(id string, req, resp []byte) *Call {
	now := time.Now()
	return &Call{ID: id, Format: cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT, Status: 200, Started: now, Finished: now,
		RequestReceived: req, RequestFinal: req, ResponseOriginal: resp, ResponseFinal: resp}
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
// recorder is sending it: the calls submitted next wait in the queue.
// release opens the gate.
func stall(t *testing.T, s *sink, r *Recorder) (release func()) {
	t.Helper()
	s.gate.Lock()
	r.Submit(newCall("first", smallBody, smallBody))
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
// control plane, reach it whole with the default options, and so does a
// call after them: no batch exceeds the gRPC message limit, nothing is
// dropped.
func TestLargeCallsNeverStopRecording(t *testing.T) {
	s, client := serveSink(t, gatewayMessageLimit)
	r := New(client, quiet(), Options{})
	release := stall(t, s, r)
	want := []string{"first"}
	five, ten := chatBody(5_000_000), chatBody(10<<20-1024)
	for i := range 20 {
		want = append(want, fmt.Sprint("five-", i))
		r.Submit(newCall(want[len(want)-1], five, smallBody))
	}
	for i := range 6 {
		want = append(want, fmt.Sprint("ten-", i))
		r.Submit(newCall(want[len(want)-1], ten, smallBody))
	}
	release()
	r.Submit(newCall("after", smallBody, smallBody))
	want = append(want, "after")
	waitFor(t, "every call sent or dropped", func() bool { return r.Sent()+r.Dropped() >= int64(len(want)) })
	if r.Dropped() != 0 || r.Sent() != int64(len(want)) {
		t.Errorf("sent %d, dropped %d of %d calls", r.Sent(), r.Dropped(), len(want))
	}
	if got := s.received(); !slices.Equal(got, want) {
		t.Errorf("received %d calls %v, want %v", len(got), got, want)
	}
	closeRecorder(t, r)
}

// A body over the bound reaches the control plane as the truncation
// marker; what the whole bodies said (unchanged, usage) survives.
func TestSubmitTruncatesBodies(t *testing.T) {
	s, client := serveSink(t, gatewayMessageLimit)
	r := New(client, quiet(), Options{})
	req := chatBody(3 << 20)
	resp := chatBody(2 << 20)
	changed := []byte(strings.ToUpper(string(resp)))
	c := newCall("big", req, resp)
	c.ResponseFinal = changed
	c.FinalMessage = &cpv1.Message{Usage: &cpv1.Usage{InputTokens: 7},
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: string(changed)}}}}}
	c.CacheFillToken = "token"
	r.Submit(c)
	closeRecorder(t, r)
	rec := s.record("big")
	if rec == nil {
		t.Fatal("the call was not recorded")
	}
	if !rec.GetRequestUnchanged() || rec.GetResponseUnchanged() {
		t.Errorf("request unchanged %v, response unchanged %v; want true, false", rec.GetRequestUnchanged(), rec.GetResponseUnchanged())
	}
	if rec.GetSummary().GetUsage().GetInputTokens() != 7 {
		t.Errorf("usage %v", rec.GetSummary().GetUsage())
	}
	if rec.GetFinalResponse() != nil || rec.GetCacheFillToken() != "" || rec.GetFinalRequest() != nil {
		t.Errorf("a response not kept whole is offered to the cache: final response %v, token %q, final request of %d bytes",
			rec.GetFinalResponse() != nil, rec.GetCacheFillToken(), len(rec.GetFinalRequest()))
	}
	whole := map[string][]byte{"request.received": req, "response.original": resp, "response.final": changed}
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
	s, client := serveSink(t, gatewayMessageLimit)
	r := New(client, quiet(), Options{})
	bad := newCall("bad", smallBody, smallBody)
	bad.SessionID = "s\xff\xfe"
	bad.Error = "upstream said \xc3"
	r.Submit(bad)
	r.Submit(newCall("after", smallBody, smallBody))
	waitFor(t, "both calls sent or dropped", func() bool { return r.Sent()+r.Dropped() >= 2 })
	if got := s.received(); !slices.Equal(got, []string{"bad", "after"}) {
		t.Fatalf("received %v", got)
	}
	if sid := s.record("bad").GetSummary().GetSessionId(); sid != "s\uFFFD" {
		t.Errorf("session id %q", sid)
	}
	closeRecorder(t, r)
}
