package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// failing is a policy whose hooks fail (or hang) on demand.
type failing struct {
	hang bool
}

func (failing) Name() string           { return "failing" }
func (failing) InspectsResponse() bool { return true }

func (f failing) err(ctx context.Context) error {
	if f.hang {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // ignores its deadline a while
	}
	return errors.New("policy broke")
}

func (f failing) OnRequest(ctx context.Context, _ *Call) (RequestResult, error) {
	return RequestResult{Body: []byte(`{"changed":true}`)}, f.err(ctx)
}

func (f failing) OnResponse(ctx context.Context, _ *Call, _ *cpv1.Message) (*cpv1.Message, error) {
	return &cpv1.Message{Id: "replaced"}, f.err(ctx)
}

func (f failing) NewStream(context.Context, *Call) Stream { return failingStream(f) }

type failingStream failing

func (s failingStream) OnEvent(ctx context.Context, _ *cpv1.StreamEvent) (Emit, error) {
	return Emit{}, failing(s).err(ctx)
}

func (s failingStream) OnEnd(ctx context.Context, _ string) (Emit, error) {
	return Emit{}, failing(s).err(ctx)
}

func failingRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := NewRegistry(Type{Class: "failing", ConfigSchema: emptySchema, New: func(cfg map[string]any) (Policy, error) {
		s := newSettings(cfg)
		p := failing{hang: s.boolean("hang", false)}
		return p, s.done()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGuardFailsClosedByDefault(t *testing.T) {
	p, err := failingRegistry(t).Build("failing", nil)
	if err != nil {
		t.Fatal(err)
	}
	call, _ := testCall(anthropicFormat)
	if _, err := p.OnRequest(context.Background(), call); err == nil {
		t.Fatal("a failing policy without on_error passed the request")
	}
}

func TestGuardOnErrorPass(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"on_error": "pass"},
		{"on_error": "pass", "hang": true, "timeout": "20ms"},
	} {
		p, err := failingRegistry(t).Build("failing", cfg)
		if err != nil {
			t.Fatal(err)
		}
		call, rec := testCall(anthropicFormat)
		ctx := context.Background()
		res, err := p.OnRequest(ctx, call)
		if err != nil || res.Body != nil {
			t.Errorf("%v: request: got %+v, %v; want it passed unchanged", cfg, res, err)
		}
		msg := &cpv1.Message{Id: "upstream"}
		if out, err := p.OnResponse(ctx, call, msg); err != nil || out != msg {
			t.Errorf("%v: response: got %v, %v; want upstream's message", cfg, out, err)
		}
		st := p.NewStream(ctx, call)
		evs := streamOf("hello", 2, nil, "end_turn")
		for _, ev := range evs {
			out, err := st.OnEvent(ctx, ev)
			if err != nil || len(out.Events) != 1 || out.Events[0] != ev {
				t.Fatalf("%v: stream event: got %v, %v; want the input passed through", cfg, out, err)
			}
		}
		if _, err := st.OnEnd(ctx, ""); err != nil {
			t.Errorf("%v: stream end: %v", cfg, err)
		}
		bypass, ok := rec.find("policy.failing.bypassed")
		if !ok || bypass.Details["phase"] != "request" || bypass.Details["error"] == "" {
			t.Errorf("%v: no bypass recorded: %v", cfg, rec.types())
		}
		if n := strings.Count(strings.Join(rec.types(), ","), "bypassed"); n != 3 {
			t.Errorf("%v: %d bypass events, want 3 (request, response, stream): %v", cfg, n, rec.types())
		}
	}
}

func TestGuardTimeoutBlocks(t *testing.T) {
	p, err := failingRegistry(t).Build("failing", map[string]any{"hang": true, "timeout": 0.02})
	if err != nil {
		t.Fatal(err)
	}
	call, _ := testCall(openaiFormat)
	_, err = p.OnRequest(context.Background(), call)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("got %v, want the policy deadline", err)
	}
}

func TestGuardSettingsValidated(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"on_error": "maybe"}, "on_error"},
		{map[string]any{"timeout": "soon"}, "timeout"},
	} {
		_, err := failingRegistry(t).Build("failing", tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	r, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range r.Types() {
		if !strings.Contains(typ.ConfigSchema, `"on_error"`) {
			t.Errorf("%s: schema lacks on_error: %s", typ.Class, typ.ConfigSchema)
		}
	}
	if _, err := r.Build("all_caps", map[string]any{"on_error": "pass", "timeout": "1s"}); err != nil {
		t.Errorf("all_caps with failure settings: %v", err)
	}
}
