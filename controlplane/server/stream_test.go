package server

import (
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// streamEvents is a streamed response with a text block and a tool call.
func streamEvents() []*cpv1.StreamEvent {
	delta := func(index uint32, d *cpv1.ContentBlockDelta) *cpv1.StreamEvent_ContentBlockDelta {
		d.Index = index
		return &cpv1.StreamEvent_ContentBlockDelta{ContentBlockDelta: d}
	}
	text := func(s string) *cpv1.ContentBlockDelta {
		return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_Text{Text: &cpv1.TextDelta{Text: s}}}
	}
	inputJSON := func(s string) *cpv1.ContentBlockDelta {
		return &cpv1.ContentBlockDelta{Delta: &cpv1.ContentBlockDelta_InputJson{InputJson: &cpv1.InputJSONDelta{PartialJson: s}}}
	}
	events := []*cpv1.StreamEvent{
		{Event: &cpv1.StreamEvent_MessageStart{MessageStart: &cpv1.MessageStart{Id: "msg_1", Model: "claude"}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 0, Block: textBlock("")}}},
		{Event: delta(0, text("Hello, "))},
		{Event: delta(0, text("straße é 🎉"))},
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 0}}},
		{Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Index: 1, Block: toolUseBlock("toolu_1", "bash", "")}}},
		{Event: delta(1, inputJSON(`{"command":`))},
		{Event: delta(1, inputJSON(`"ls -la"}`))},
		{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{Index: 1}}},
		{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "tool_use", Usage: &cpv1.Usage{OutputTokens: 9}}}},
		{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}},
	}
	for i, ev := range events {
		ev.Seq = uint64(i + 1)
	}
	return events
}

func eventMsg(ev *cpv1.StreamEvent) *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Event{Event: ev}}
}

func startMsg(revision string) *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{
		CallId: "call-1", Format: anthropic, Request: []byte(`{"stream":true}`), PolicyRevision: revision,
	}}}
}

func endMsg() *cpv1.StreamChunkPolicyRequest {
	return &cpv1.StreamChunkPolicyRequest{Msg: &cpv1.StreamChunkPolicyRequest_End{End: &cpv1.StreamEnd{}}}
}

// uppercased maps input seq to expected text for the all_caps stream.
var uppercased = map[uint64]string{3: "HELLO, ", 4: "STRASSE É 🎉"}

// checkBatch checks that resp is one output for input under all_caps (or
// a passthrough when caps is false).
func checkBatch(t *testing.T, input *cpv1.StreamEvent, resp *cpv1.StreamChunkPolicyResponse, caps bool) {
	t.Helper()
	if len(resp.GetOutputs()) != 1 || resp.GetEndStream() {
		t.Fatalf("seq %d: got %v, want one output", input.GetSeq(), resp)
	}
	out := resp.GetOutputs()[0]
	want, changed := uppercased[input.GetSeq()]
	if !caps || !changed {
		if got, ok := out.GetOutput().(*cpv1.StreamOutput_PassthroughSeq); !ok || got.PassthroughSeq != input.GetSeq() {
			t.Errorf("seq %d: got %v, want passthrough_seq %d", input.GetSeq(), out, input.GetSeq())
		}
		return
	}
	ev := out.GetEvent()
	if ev == nil {
		t.Fatalf("seq %d: got %v, want an event", input.GetSeq(), out)
	}
	if ev.GetSeq() != input.GetSeq() {
		t.Errorf("seq %d: output seq %d", input.GetSeq(), ev.GetSeq())
	}
	if got := ev.GetContentBlockDelta().GetText().GetText(); got != want {
		t.Errorf("seq %d: text %q, want %q", input.GetSeq(), got, want)
	}
}

func TestStreamChunkPolicy(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		caps      bool
		halfClose bool // close the send side instead of sending end
	}{
		{name: "all_caps, end message", config: allCapsConfig, caps: true},
		{name: "all_caps, half-close", config: allCapsConfig, caps: true, halfClose: true},
		{name: "noop passes everything through", config: noopConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, tt.config)
			stream, err := ts.policy.StreamChunkPolicy(testContext(t))
			if err != nil {
				t.Fatalf("StreamChunkPolicy: %v", err)
			}
			if err := stream.Send(startMsg("")); err != nil {
				t.Fatalf("send start: %v", err)
			}
			events := streamEvents()
			for _, ev := range events {
				if err := stream.Send(eventMsg(ev)); err != nil {
					t.Fatalf("send seq %d: %v", ev.GetSeq(), err)
				}
			}
			if tt.halfClose {
				err = stream.CloseSend()
			} else {
				err = stream.Send(endMsg())
			}
			if err != nil {
				t.Fatalf("end: %v", err)
			}
			for _, ev := range events {
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("recv for seq %d: %v", ev.GetSeq(), err)
				}
				checkBatch(t, ev, resp, tt.caps)
			}
			if resp, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last batch: %v, %v; want io.EOF", resp, err)
			}
		})
	}
}

func TestStreamChunkPolicyInvalid(t *testing.T) {
	ev := streamEvents()[0]
	tests := []struct {
		name string
		msgs []*cpv1.StreamChunkPolicyRequest
	}{
		{name: "event before start", msgs: []*cpv1.StreamChunkPolicyRequest{eventMsg(ev)}},
		{name: "end before start", msgs: []*cpv1.StreamChunkPolicyRequest{endMsg()}},
		{name: "closed before start"},
		{name: "empty message", msgs: []*cpv1.StreamChunkPolicyRequest{{}}},
		{
			name: "start without call_id",
			msgs: []*cpv1.StreamChunkPolicyRequest{{Msg: &cpv1.StreamChunkPolicyRequest_Start{Start: &cpv1.StreamStart{Format: anthropic}}}},
		},
		{name: "start twice", msgs: []*cpv1.StreamChunkPolicyRequest{startMsg(""), startMsg("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, allCapsConfig)
			stream, err := ts.policy.StreamChunkPolicy(testContext(t))
			if err != nil {
				t.Fatalf("StreamChunkPolicy: %v", err)
			}
			for _, msg := range tt.msgs {
				if err := stream.Send(msg); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatalf("CloseSend: %v", err)
			}
			_, err = stream.Recv()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Recv: code %v (%v), want InvalidArgument", status.Code(err), err)
			}
		})
	}
}

// TestRevisionPinning checks that a call started under revision A finishes
// under A after SetPolicy switches to B.
func TestRevisionPinning(t *testing.T) {
	ts := start(t, allCapsConfig)
	ctx := testContext(t)
	reqA, err := ts.policy.ApplyRequestPolicies(ctx, &cpv1.ApplyRequestPoliciesRequest{CallId: "c1", Format: anthropic})
	if err != nil {
		t.Fatalf("ApplyRequestPolicies: %v", err)
	}
	revA := reqA.GetPolicyRevision()

	events := streamEvents()
	stream, err := ts.policy.StreamChunkPolicy(ctx)
	if err != nil {
		t.Fatalf("StreamChunkPolicy: %v", err)
	}
	if err := stream.Send(startMsg(revA)); err != nil {
		t.Fatalf("send start: %v", err)
	}
	// Half the events before the switch, half after.
	half := 3
	for _, ev := range events[:half] {
		if err := stream.Send(eventMsg(ev)); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		checkBatch(t, ev, resp, true)
	}

	set, err := ts.admin.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}})
	if err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	revB := set.GetActive().GetRevision()
	if revB == revA {
		t.Fatalf("revision did not change: %q", revB)
	}

	for _, ev := range events[half:] {
		if err := stream.Send(eventMsg(ev)); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		checkBatch(t, ev, resp, true)
	}
	if err := stream.Send(endMsg()); err != nil {
		t.Fatalf("send end: %v", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after end: %v, want io.EOF", err)
	}

	// Complete responses: each revision runs its own policy; an empty or
	// unknown revision runs the active one (noop).
	msg := &cpv1.Message{Content: []*cpv1.ContentBlock{textBlock("quiet")}}
	for _, tt := range []struct {
		revision string
		changed  bool
	}{{revA, true}, {revB, false}, {"", false}, {"feedface", false}} {
		resp, err := ts.policy.ApplyResponsePolicy(ctx, &cpv1.ApplyResponsePolicyRequest{
			CallId: "c1", Format: anthropic, PolicyRevision: tt.revision, Response: msg,
		})
		if err != nil {
			t.Fatalf("ApplyResponsePolicy(%q): %v", tt.revision, err)
		}
		if changed := resp.Response != nil; changed != tt.changed {
			t.Errorf("ApplyResponsePolicy(%q) changed = %v, want %v", tt.revision, changed, tt.changed)
		}
	}
}
