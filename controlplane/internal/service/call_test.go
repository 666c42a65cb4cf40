package service

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	"luthien.dev/controlplane/internal/cache"
	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// wordCounter keeps per-call state: it counts the words of the request in
// the request phase and annotates the response with that count.
type wordCounter struct {
	fakePolicy
	words int // the call's; 0 on the shared policy
}

// ForCall implements policy.PerCall.
func (p *wordCounter) ForCall(*policy.Call) policy.Policy {
	return &wordCounter{fakePolicy: fakePolicy{name: "words"}}
}

func (p *wordCounter) OnRequest(_ context.Context, call *policy.Call) (policy.RequestResult, error) {
	p.words = len(strings.Fields(string(call.Request)))
	return policy.RequestResult{}, nil
}

func (p *wordCounter) OnResponse(_ context.Context, _ *policy.Call, msg *cpv1.Message) (*cpv1.Message, error) {
	out := &cpv1.Message{Id: msg.GetId(), StopReason: msg.GetStopReason(), Content: append([]*cpv1.ContentBlock{}, msg.GetContent()...)}
	out.Content = append(out.Content, &cpv1.ContentBlock{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: fmt.Sprintf("[the request had %d words]", p.words)}}})
	return out, nil
}

// A policy's state lives from a call's request to its response, one
// object per call: calls running side by side each see their own.
func TestCallKeepsPolicyStatePerCall(t *testing.T) {
	calls := cpv1.NewCallServiceClient(serveConn(t, &wordCounter{fakePolicy: fakePolicy{name: "words"}}))
	var wg sync.WaitGroup
	for n := 1; n <= 8; n++ {
		wg.Go(func() {
			stream, err := calls.Call(testContext(t))
			if err != nil {
				t.Error(err)
				return
			}
			body := strings.TrimSpace(strings.Repeat("word ", n))
			if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: &cpv1.CallStart{
				CallId: fmt.Sprint("call-", n), Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Body: []byte(body)}}}); err != nil {
				t.Error(err)
				return
			}
			if resp, err := stream.Recv(); err != nil || resp.GetDecision().GetInspect() != cpv1.Inspect_INSPECT_RESPONSE {
				t.Errorf("decision %v, %v", resp, err)
				return
			}
			msg := &cpv1.Message{Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "answer"}}}}}
			if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Response{Response: msg}}); err != nil {
				t.Error(err)
				return
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Error(err)
				return
			}
			content := resp.GetResponse().GetResponse().GetContent()
			if want := fmt.Sprintf("[the request had %d words]", n); len(content) != 2 || content[1].GetText().GetText() != want {
				t.Errorf("call %d: final response %v, want the annotation %q", n, content, want)
			}
		})
	}
	wg.Wait()
}

// Only a policy with per-call state gets a new object per call.
func TestForCallKeepsPlainPolicies(t *testing.T) {
	shared := &wordCounter{fakePolicy: fakePolicy{name: "words"}}
	call := &policy.Call{ID: "c"}
	if got := policy.ForCall(shared, call); got == policy.Policy(shared) {
		t.Error("a per-call policy served the call itself")
	}
	plain := &fakePolicy{name: "plain"}
	if got := policy.ForCall(plain, call); got != policy.Policy(plain) {
		t.Error("a policy without per-call state was replaced")
	}
}

// upper upper-cases a message's text blocks.
func upper(msg *cpv1.Message) (*cpv1.Message, error) {
	out := proto.CloneOf(msg)
	for _, b := range out.GetContent() {
		if t := b.GetText(); t != nil {
			t.Text = strings.ToUpper(t.GetText())
		}
	}
	return out, nil
}

// callOnce runs a whole-response call: start, decision, the response when
// the decision asks for it (inspected or for the cache), end. It returns
// the decision.
func callOnce(t *testing.T, calls cpv1.CallServiceClient, body string, upstream *cpv1.Message) *cpv1.CallDecision {
	t.Helper()
	return callWith(t, calls, body, upstream, nil)
}

// callWith is callOnce; with events, the call is streamed and sends them
// when the decision inspects the stream.
func callWith(t *testing.T, calls cpv1.CallServiceClient, body string, upstream *cpv1.Message, events []*cpv1.StreamEvent) *cpv1.CallDecision {
	t.Helper()
	return callRecorded(t, calls, body, upstream, events, nil)
}

// callRecorded is callWith sending rec (nil: none) in end.
func callRecorded(t *testing.T, calls cpv1.CallServiceClient, body string, upstream *cpv1.Message, events []*cpv1.StreamEvent, rec *cpv1.CallRecord) *cpv1.CallDecision {
	t.Helper()
	stream, err := calls.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	meta := &cpv1.RequestMetadata{CredentialSha256: "c0ffee"}
	if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: &cpv1.CallStart{
		CallId: "call", Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Body: []byte(body), Metadata: meta, Stream: events != nil}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	dec := resp.GetDecision()
	end := &cpv1.CallEnd{HttpStatus: 200, Record: rec}
	switch {
	case dec.GetInspect() == cpv1.Inspect_INSPECT_STREAM:
		if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Events{Events: &cpv1.CallEvents{Events: events}}}); err != nil {
			t.Fatal(err)
		}
	case dec.GetInspect() == cpv1.Inspect_INSPECT_RESPONSE:
		if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_Response{Response: upstream}}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	case dec.GetWantsResponse():
		end.Response = upstream
	}
	if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: end}}); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("got %v; want done", err)
		}
		if resp.GetDone() != nil {
			return dec
		}
	}
}

// The session fills the cache from the response it received, with no
// record involved, and a hit answers the next identical call after the
// response phase of the active policy.
func TestCallFillsTheCacheFromTheSession(t *testing.T) {
	const body = `{"model":"m","max_tokens":5,"temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	upstream := &cpv1.Message{Id: "msg_1", StopReason: "end_turn",
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "hello"}}}}}
	for _, tt := range []struct {
		name     string
		p        policy.Policy
		streamed bool
		inspec   cpv1.Inspect
		want     string
	}{
		{"inspected: the response message fills", &fakePolicy{name: "upper", onResponse: upper}, false, cpv1.Inspect_INSPECT_RESPONSE, "HELLO"},
		{"not inspected: the response in end fills", &fakePolicy{name: "plain", ignoresResponses: true}, false, cpv1.Inspect_INSPECT_NONE, "hello"},
		{"streamed: the events fill", &fakePolicy{name: "stream"}, true, cpv1.Inspect_INSPECT_STREAM, "hello"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := NewResponseCache(cache.NewLRU(16, time.Minute, cache.ModeTemperature0, nil), nil, slog.New(slog.DiscardHandler))
			calls := cpv1.NewCallServiceClient(serveCached(t, tt.p, rc))
			var events []*cpv1.StreamEvent
			if tt.streamed {
				events = canon.Events(upstream)
				for i, ev := range events {
					ev.Seq = uint64(i + 1)
				}
			}
			first := callWith(t, calls, body, upstream, events)
			if first.GetContinue() == nil || first.GetInspect() != tt.inspec || first.GetWantsResponse() != (tt.inspec == cpv1.Inspect_INSPECT_NONE) {
				t.Fatalf("first decision %v", first)
			}
			second := callOnce(t, calls, body, nil)
			msg := second.GetRespond().GetMessage()
			if msg == nil {
				t.Fatalf("second decision %v, want an answer from the cache", second)
			}
			if got := msg.GetContent()[0].GetText().GetText(); got != tt.want {
				t.Errorf("cached answer %q, want %q", got, tt.want)
			}
			// Another request is not answered from it.
			other := callOnce(t, calls, strings.Replace(body, `"hi"`, `"other"`, 1), upstream)
			if other.GetContinue() == nil {
				t.Errorf("another request was answered: %v", other)
			}
		})
	}
}

// droppingQueue is a store queue that is always full: it keeps what it is
// offered, for the test, and takes nothing.
type droppingQueue struct {
	mu      sync.Mutex
	offered []*store.Call
	events  [][]store.Event
}

func (q *droppingQueue) Enqueue(call *store.Call, events []store.Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.offered = append(q.offered, call)
	q.events = append(q.events, events)
	return false
}

func (q *droppingQueue) records() ([]*store.Call, [][]store.Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.offered), slices.Clone(q.events)
}

// publishedFeed keeps what is published.
type publishedFeed struct {
	mu     sync.Mutex
	events []*cpv1.CallEvent
}

func (f *publishedFeed) Publish(ev *cpv1.CallEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
}

// The cache does not depend on the record: a call whose record the
// store's full queue drops still fills it, the record is offered to the
// queue once, and its events are published all the same.
func TestCallFillsTheCacheWhenTheQueueDrops(t *testing.T) {
	const body = `{"model":"m","max_tokens":5,"temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	upstream := &cpv1.Message{Id: "msg_1", StopReason: "end_turn",
		Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "hello"}}}}}
	rc := NewResponseCache(cache.NewLRU(16, time.Minute, cache.ModeTemperature0, nil), nil, slog.New(slog.DiscardHandler))
	queue, feed := &droppingQueue{}, &publishedFeed{}
	calls := cpv1.NewCallServiceClient(serveRecorded(t, &fakePolicy{name: "plain", ignoresResponses: true}, rc, queue, feed))
	rec := &cpv1.CallRecord{Summary: &cpv1.CallSummary{Status: 200, Upstream: "http://upstream.test"}}
	first := callRecorded(t, calls, body, upstream, nil, rec)
	if first.GetContinue() == nil || !first.GetWantsResponse() || first.GetCached() {
		t.Fatalf("first decision %v, want continue asking for the response", first)
	}
	offered, events := queue.records()
	if len(offered) != 1 || offered[0].Summary.GetCallId() != "call" || len(events[0]) != 2 ||
		events[0][0].Event.GetEventType() != "request.received" || string(events[0][0].Event.GetPayloadJson()) != body ||
		events[0][1].Event.GetEventType() != "request.final" || !events[0][1].Copy {
		t.Fatalf("queue offered %v with %v, want the call's record with its request", offered, events)
	}
	feed.mu.Lock()
	published := len(feed.events)
	feed.mu.Unlock()
	if published != 2 {
		t.Errorf("%d events published, want the record's 2", published)
	}
	second := callOnce(t, calls, body, nil)
	if !second.GetCached() || second.GetRespond().GetMessage().GetContent()[0].GetText().GetText() != "hello" {
		t.Fatalf("second decision %v, want the cached answer", second)
	}
}
