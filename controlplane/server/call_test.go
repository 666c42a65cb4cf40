package server

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

func callStart(stream bool) *cpv1.CallRequest {
	return &cpv1.CallRequest{Msg: &cpv1.CallRequest_Start{Start: &cpv1.CallStart{
		CallId: "call-1", Format: anthropic, Body: []byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`), Stream: stream,
	}}}
}

func callEvents(evs ...*cpv1.StreamEvent) *cpv1.CallRequest {
	return &cpv1.CallRequest{Msg: &cpv1.CallRequest_Events{Events: &cpv1.CallEvents{Events: evs}}}
}

func callEnd() *cpv1.CallRequest {
	return &cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: &cpv1.CallEnd{HttpStatus: 200}}}
}

func callStreamEnd() *cpv1.CallRequest {
	return &cpv1.CallRequest{Msg: &cpv1.CallRequest_StreamEnd{StreamEnd: &cpv1.StreamEnd{}}}
}

func callResponse(msg *cpv1.Message) *cpv1.CallRequest {
	return &cpv1.CallRequest{Msg: &cpv1.CallRequest_Response{Response: msg}}
}

// A streamed call on one stream: start, decision, events in batches of
// several, outputs (all_caps changes the text, everything else passes
// through by seq), stream_end, the last batch ending the stream, end,
// done.
func TestCallStream(t *testing.T) {
	for _, tt := range []struct {
		name        string
		config      string
		caps        bool
		wantInspect cpv1.Inspect
	}{
		{"all_caps", allCapsConfig, true, cpv1.Inspect_INSPECT_STREAM},
		{"noop inspects nothing", noopConfig, false, cpv1.Inspect_INSPECT_NONE},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, tt.config)
			stream, err := cpv1.NewCallServiceClient(ts.conn).Call(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(callStart(true)); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			dec := resp.GetDecision()
			if dec.GetContinue() == nil || dec.GetContinue().Body != nil || dec.GetInspect() != tt.wantInspect {
				t.Fatalf("decision %v, want continue unchanged with %v", dec, tt.wantInspect)
			}
			events := streamEvents()
			var outputs []*cpv1.StreamOutput
			if tt.caps {
				// Several events per message, as the gateway sends what it
				// has already read.
				for i := 0; i < len(events); i += 4 {
					if err := stream.Send(callEvents(events[i:min(i+4, len(events))]...)); err != nil {
						t.Fatal(err)
					}
				}
				if err := stream.Send(callStreamEnd()); err != nil {
					t.Fatal(err)
				}
				for {
					resp, err := stream.Recv()
					if err != nil || resp.GetOutputs() == nil {
						t.Fatalf("got %v, %v; want outputs until one ends the stream", resp, err)
					}
					outputs = append(outputs, resp.GetOutputs().GetOutputs()...)
					if resp.GetOutputs().GetEndStream() {
						break
					}
				}
			}
			if err := stream.Send(callEnd()); err != nil {
				t.Fatal(err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if resp, err := stream.Recv(); err != nil || resp.GetDone() == nil {
				t.Fatalf("got %v, %v; want done", resp, err)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("after done: %v, want io.EOF", err)
			}
			if !tt.caps {
				if len(outputs) != 0 {
					t.Errorf("outputs %v for a call that inspects nothing", outputs)
				}
				return
			}
			if len(outputs) != len(events) {
				t.Fatalf("%d outputs for %d events", len(outputs), len(events))
			}
			for i, ev := range events {
				checkBatch(t, ev, &cpv1.StreamChunkPolicyResponse{Outputs: outputs[i : i+1]}, true)
			}
		})
	}
}

// A whole response on the call's stream gets the final one back.
func TestCallWholeResponse(t *testing.T) {
	ts := start(t, allCapsConfig)
	stream, err := cpv1.NewCallServiceClient(ts.conn).Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(callStart(false)); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetDecision().GetInspect() != cpv1.Inspect_INSPECT_RESPONSE {
		t.Fatalf("decision %v, %v", resp, err)
	}
	msg := &cpv1.Message{Id: "m", StopReason: "end_turn", Content: []*cpv1.ContentBlock{textBlock("hello")}}
	if err := stream.Send(callResponse(msg)); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetResponse().GetResponse().GetContent()[0].GetText().GetText(); got != "HELLO" {
		t.Errorf("final text %q", got)
	}
	if err := stream.Send(callEnd()); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	if resp, err := stream.Recv(); err != nil || resp.GetDone() == nil {
		t.Errorf("got %v, %v; want done", resp, err)
	}
}

// Messages out of order are INVALID_ARGUMENT, never a panic, and the
// server goes on serving.
func TestCallInvalidSequences(t *testing.T) {
	ev := func(seq uint64) *cpv1.StreamEvent {
		e := streamEvents()[0]
		e.Seq = seq
		return e
	}
	tests := []struct {
		name    string
		config  string
		msgs    []*cpv1.CallRequest
		close   bool // close the send side after msgs
		wantErr string
	}{
		{"nothing at all", allCapsConfig, nil, true, "closed before start"},
		{"events before start", allCapsConfig, []*cpv1.CallRequest{callEvents(ev(1))}, false, "first message must be start, got events"},
		{"end before start", allCapsConfig, []*cpv1.CallRequest{callEnd()}, false, "first message must be start, got end"},
		{"empty message", allCapsConfig, []*cpv1.CallRequest{{}}, false, "first message must be start"},
		{"start without a call id", allCapsConfig, []*cpv1.CallRequest{{Msg: &cpv1.CallRequest_Start{Start: &cpv1.CallStart{Format: anthropic}}}}, false, "call_id"},
		{"a second start", allCapsConfig, []*cpv1.CallRequest{callStart(true), callStart(true)}, false, "start sent twice"},
		{"events the decision did not ask for", noopConfig, []*cpv1.CallRequest{callStart(true), callEvents(ev(1))}, false, "inspects nothing"},
		{"a response the decision did not ask for", noopConfig, []*cpv1.CallRequest{callStart(false), callResponse(&cpv1.Message{})}, false, "inspects nothing"},
		{"seq zero", allCapsConfig, []*cpv1.CallRequest{callStart(true), callEvents(ev(0))}, false, "seq 0 does not follow 0"},
		{"seq going back", allCapsConfig, []*cpv1.CallRequest{callStart(true), callEvents(ev(1), ev(2)), callEvents(ev(2))}, false, "seq 2 does not follow 2"},
		{"a nil event", allCapsConfig, []*cpv1.CallRequest{callStart(true), callEvents(nil)}, false, "does not follow"},
		{"a response after events", allCapsConfig, []*cpv1.CallRequest{callStart(true), callEvents(ev(1)), callResponse(&cpv1.Message{})}, false, "response sent after events"},
		{"events after the response", allCapsConfig, []*cpv1.CallRequest{callStart(false), callResponse(&cpv1.Message{}), callEvents(ev(1))}, false, "after the complete response"},
		{"an empty message after start", allCapsConfig, []*cpv1.CallRequest{callStart(false), {}}, false, "empty call message"},
		{"end twice", allCapsConfig, []*cpv1.CallRequest{callStart(false), callEnd(), callEnd()}, false, "end sent after end"},
		{"closed before end", allCapsConfig, []*cpv1.CallRequest{callStart(false)}, true, "closed before end"},
		{"stream_end the decision did not ask for", noopConfig, []*cpv1.CallRequest{callStart(true), callStreamEnd()}, false, "inspects nothing"},
		{"stream_end for a whole response", allCapsConfig, []*cpv1.CallRequest{callStart(false), callStreamEnd()}, false, "inspects a complete response"},
		{"stream_end twice", allCapsConfig, []*cpv1.CallRequest{callStart(true), callEvents(ev(1)), callStreamEnd(), callStreamEnd()}, false, "stream_end sent twice"},
	}
	ts := start(t, allCapsConfig)
	tsNoop := start(t, noopConfig)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := ts.conn
			if tt.config == noopConfig {
				conn = tsNoop.conn
			}
			stream, err := cpv1.NewCallServiceClient(conn).Call(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.msgs {
				if err := stream.Send(m); err != nil {
					break // the server has already refused: Recv tells why
				}
			}
			if tt.close {
				_ = stream.CloseSend()
			}
			for {
				_, err := stream.Recv()
				if err == nil {
					continue // a decision or a final response before the refusal
				}
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want INVALID_ARGUMENT containing %q", err, tt.wantErr)
				}
				break
			}
		})
	}
	// Still serving.
	stream, err := cpv1.NewCallServiceClient(ts.conn).Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(callStart(false)); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetDecision() == nil {
		t.Fatalf("after the refusals: %v, %v", resp, err)
	}
}

// The processing watch says at once what the active policy needs, and
// again after every activation.
func TestWatchProcessing(t *testing.T) {
	ts := start(t, noopConfig)
	watch, err := cpv1.NewCallServiceClient(ts.conn).WatchProcessing(testContext(t), &cpv1.WatchProcessingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got.GetRequest() || got.GetResponse() || got.GetCache() || got.GetPolicyRevision() == "" {
		t.Errorf("noop: %v, want nothing needed", got)
	}
	for _, tt := range []struct {
		class         string
		cfg           map[string]any
		request, resp bool
	}{
		{"regex_block", map[string]any{"patterns": []any{"rm"}}, false, true},
		{"debug_logging", nil, true, true},
		{"noop", nil, false, false},
	} {
		cfg, err := structpb.NewStruct(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		set, err := ts.admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: tt.class, Config: cfg}})
		if err != nil {
			t.Fatal(err)
		}
		next, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if next.GetPolicyRevision() != set.GetActive().GetRevision() || next.GetRequest() != tt.request || next.GetResponse() != tt.resp {
			t.Errorf("%s: %v, want revision %s, request %v, response %v", tt.class, next, set.GetActive().GetRevision(), tt.request, tt.resp)
		}
	}
}

// Shutting down ends the watches, so that a graceful stop never waits
// for them.
func TestWatchProcessingEndsAtShutdown(t *testing.T) {
	ts := start(t, noopConfig)
	watch, err := cpv1.NewCallServiceClient(ts.conn).WatchProcessing(testContext(t), &cpv1.WatchProcessingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	ts.srv.Shutdown()
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("after shutdown: %v, want UNAVAILABLE", err)
	}
}

// A policy that fails answers a failure instead of its decision, and the
// call goes on to its end: what was under way is ignored, the call's
// record is stored and done comes as for any call.
func TestCallPolicyFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failing.yaml")
	// Nothing listens on port 1: the external policy fails, and blocks.
	config := "policy:\n  class: external\n  config:\n    address: 127.0.0.1:1\n    timeout: 2s\n"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, path)
	stream, err := cpv1.NewCallServiceClient(ts.conn).Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(callStart(true)); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetFailure() == nil || !strings.Contains(resp.GetFailure().GetMessage(), "external") {
		t.Fatalf("got %v, %v; want a failure naming the policy", resp, err)
	}
	// Under way when the failure came: ignored.
	for _, m := range []*cpv1.CallRequest{callEvents(streamEvents()[0]), callStreamEnd()} {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	end := &cpv1.CallEnd{Record: &cpv1.CallRecord{Summary: &cpv1.CallSummary{Status: 502, Error: "policy evaluation failed"}}}
	if err := stream.Send(&cpv1.CallRequest{Msg: &cpv1.CallRequest_End{End: end}}); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	if resp, err := stream.Recv(); err != nil || resp.GetDone() == nil {
		t.Fatalf("got %v, %v; want done", resp, err)
	}
	history := cpv1.NewHistoryServiceClient(ts.conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := history.GetCall(testContext(t), &cpv1.GetCallRequest{CallId: "call-1"})
		if err == nil {
			if got.GetCall().GetStatus() != 502 || !strings.Contains(got.GetCall().GetError(), "policy evaluation failed") {
				t.Errorf("recorded %v, want the failed call", got.GetCall())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed call was not recorded: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
