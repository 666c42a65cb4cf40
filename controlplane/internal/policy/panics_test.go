package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// panicking is a policy whose every hook panics.
type panicking struct{}

func (panicking) Name() string           { return "panicking" }
func (panicking) InspectsResponse() bool { return true }

func (panicking) OnRequest(context.Context, *Call) (RequestResult, error) {
	panic("request hook exploded")
}

func (panicking) OnResponse(_ context.Context, _ *Call, msg *cpv1.Message) (*cpv1.Message, error) {
	blocks := msg.GetContent()
	return nil, errors.New(blocks[len(blocks)].String()) // a runtime error, not a call to panic
}

func (panicking) NewStream(context.Context, *Call) Stream { return panickingStream{} }

type panickingStream struct{}

func (panickingStream) OnEvent(context.Context, *cpv1.StreamEvent) (Emit, error) {
	panic("stream hook exploded")
}

func (panickingStream) OnEnd(context.Context, string) (Emit, error) {
	panic("end hook exploded")
}

func panickingRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := NewRegistry(Type{Class: "panicking", ConfigSchema: emptySchema, New: func(cfg map[string]any) (Policy, error) {
		return panicking{}, newSettings(cfg).done()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A hook that panics, on the guard's deadline goroutine or inline, fails
// the call like a hook that returns an error: closed by default (the
// service answers the gateway with an error, which the client gets as a
// 502 or an in-stream error event), passed over under on_error: pass. The
// process goes on (a panic on the deadline goroutine would end it).
func TestGuardRecoversPanics(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []map[string]any{{"timeout": "5s"}, {"timeout": "5s", "on_error": "block"}} {
		p, err := panickingRegistry(t).Build("panicking", cfg)
		if err != nil {
			t.Fatal(err)
		}
		call, _ := testCall(anthropicFormat)
		_, err = p.OnRequest(ctx, call)
		var pe *panicError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "request hook exploded") || !strings.Contains(string(pe.stack), "panicking.OnRequest") {
			t.Errorf("%v: request: got %v, want the panic as the call's error, with its stack", cfg, err)
		}
		if _, err := p.OnResponse(ctx, call, &cpv1.Message{}); err == nil || !strings.Contains(err.Error(), "index out of range") {
			t.Errorf("%v: response: got %v, want the runtime error", cfg, err)
		}
		st := p.NewStream(ctx, call)
		if _, err := st.OnEvent(ctx, streamOf("hi", 0, nil, "end_turn")[0]); err == nil || !strings.Contains(err.Error(), "stream hook exploded") {
			t.Errorf("%v: stream event: got %v", cfg, err)
		}
		if _, err := st.OnEnd(ctx, ""); err == nil || !strings.Contains(err.Error(), "end hook exploded") {
			t.Errorf("%v: stream end: got %v", cfg, err)
		}
		if lv := pe.LogValue().String(); !strings.Contains(lv, "goroutine") {
			t.Errorf("the logged panic has no stack: %s", lv)
		}
	}

	for _, cfg := range []map[string]any{{"on_error": "pass"}, {"on_error": "pass", "timeout": "5s"}} {
		p, err := panickingRegistry(t).Build("panicking", cfg)
		if err != nil {
			t.Fatal(err)
		}
		call, rec := testCall(openaiFormat)
		if res, err := p.OnRequest(ctx, call); err != nil || res.Body != nil {
			t.Errorf("%v: request: got %+v, %v; want it passed unchanged", cfg, res, err)
		}
		msg := &cpv1.Message{Id: "upstream"}
		if out, err := p.OnResponse(ctx, call, msg); err != nil || out != msg {
			t.Errorf("%v: response: got %v, %v; want upstream's message", cfg, out, err)
		}
		st := p.NewStream(ctx, call)
		for _, ev := range streamOf("hi", 0, nil, "end_turn") {
			if out, err := st.OnEvent(ctx, ev); err != nil || len(out.Events) != 1 || out.Events[0] != ev {
				t.Fatalf("%v: stream: got %v, %v; want the input passed through", cfg, out, err)
			}
		}
		bypass, ok := rec.find("policy.panicking.bypassed")
		if !ok || !strings.Contains(bypass.Details["error"].(string), "request hook exploded") {
			t.Errorf("%v: no bypass recorded for the panic: %v", cfg, rec.types())
		}
	}
}

// A judge that panics on one of the goroutines judging tool calls
// concurrently is that tool's judge failure: blocked (fail-secure), or
// kept with the bypass recorded under on_error: pass. Here the judges have
// no LLM client, so the call to it panics.
func TestJudgesRecoverPanics(t *testing.T) {
	ctx := context.Background()
	tools := []*stream.Block{
		{Index: 0, Content: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t1", Name: "Bash", InputJson: []byte(`{"command":"ls"}`)}}}},
		{Index: 1, Content: &cpv1.ContentBlock{Block: &cpv1.ContentBlock_ToolUse{ToolUse: &cpv1.ToolUseBlock{Id: "t2", Name: "Read", InputJson: []byte(`{}`)}}}},
	}
	for _, onError := range []string{onErrorBlock, onErrorPass} {
		call, rec := testCall(anthropicFormat)
		deciders := map[string]stream.Decider{
			"tool_call_judge": &toolJudgeDecider{j: &toolCallJudge{onError: onError, template: defaultBlockedTemplate}, call: call},
			"llm_judge":       &llmJudgeDecider{j: &llmJudge{onError: onError}, call: call},
		}
		for class, d := range deciders {
			out, err := d.DecideTools(ctx, tools)
			if err != nil || len(out) != len(tools) {
				t.Fatalf("%s %s: got %v, %v", class, onError, out, err)
			}
			for i, dec := range out {
				blocked := dec.Action == stream.Replace
				if blocked != (onError == onErrorBlock) {
					t.Errorf("%s %s: tool %d decided %+v", class, onError, i, dec)
				}
			}
			want := "policy." + class + ".judge_failed"
			if onError == onErrorPass {
				want = "policy." + class + ".bypassed"
			}
			ev, ok := rec.find(want)
			if !ok || !strings.Contains(ev.Details["error"].(string), "policy panicked") {
				t.Errorf("%s %s: no %s event naming the panic: %v", class, onError, want, rec.types())
			}
		}
	}
}
