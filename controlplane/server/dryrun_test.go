package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"luthien.dev/controlplane/internal/calltest"
	"luthien.dev/controlplane/internal/dbtest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const (
	dryRequest = `{"model":"claude","max_tokens":100,"temperature":0,"messages":[{"role":"user","content":"hello, tidy the build directory"}]}`
	// dryResponse answers with text and a tool call regex_block blocks.
	dryResponse = `{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[` +
		`{"type":"text","text":"I will clean up."},` +
		`{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"rm -rf build"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":9}}`
)

// policyConfig returns a PolicyConfig of class with cfg.
func policyConfig(t *testing.T, class string, cfg map[string]any) *cpv1.PolicyConfig {
	t.Helper()
	st, err := structpb.NewStruct(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cpv1.PolicyConfig{Class: class, Config: st}
}

// eventTypesOf lists the types of dry-run events.
func eventTypesOf(events []*cpv1.DryRunEvent) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.GetType())
	}
	return out
}

// TestDryRun runs samples through the built-in policies: all_caps active,
// and proposed policies next to it. Nothing is activated.
func TestDryRun(t *testing.T) {
	tests := []struct {
		name     string
		proposed *cpv1.PolicyConfig
		response string
		check    func(t *testing.T, proposed *cpv1.DryRunResult)
	}{
		{
			name:     "active only",
			response: dryResponse,
		},
		{
			name:     "regex_block blocks the tool call",
			proposed: policyConfig(t, "regex_block", map[string]any{"patterns": []any{`rm\s+-rf`}, "tool_names": []any{"Bash"}}),
			response: dryResponse,
			check: func(t *testing.T, p *cpv1.DryRunResult) {
				if p.GetPolicy().GetClass() != "regex_block" || p.GetForwardRequestJson() != dryRequest || p.GetRequestChanged() {
					t.Errorf("request phase %v, want the request forwarded unchanged", p)
				}
				got := p.GetResponseJson()
				if !p.GetResponseChanged() || strings.Contains(got, `"type":"tool_use"`) || !strings.Contains(got, "BLOCKED") ||
					!strings.Contains(got, `"text":"I will clean up."`) || !strings.Contains(got, `"stop_reason":"end_turn"`) {
					t.Errorf("response %s, want the tool call replaced by the notice, the text kept", got)
				}
				if types := eventTypesOf(p.GetEvents()); !slices.Equal(types, []string{"policy.regex_block.blocked"}) ||
					!strings.Contains(p.GetEvents()[0].GetPayloadJson(), `"tool_name":"Bash"`) {
					t.Errorf("events %v, want policy.regex_block.blocked for Bash", p.GetEvents())
				}
			},
		},
		{
			name:     "string_replacement changes the request",
			proposed: policyConfig(t, "string_replacement", map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}, "apply_to": "both"}),
			check: func(t *testing.T, p *cpv1.DryRunResult) {
				if !p.GetRequestChanged() || !strings.Contains(p.GetForwardRequestJson(), "goodbye, tidy") {
					t.Errorf("request %s (changed %v), want hello replaced", p.GetForwardRequestJson(), p.GetRequestChanged())
				}
				if p.GetResponseJson() != "" {
					t.Errorf("response %q without a response sample", p.GetResponseJson())
				}
				if types := eventTypesOf(p.GetEvents()); !slices.Equal(types, []string{"policy.string_replacement.request_modified"}) {
					t.Errorf("events %v", types)
				}
			},
		},
		{
			name:     "noop leaves both unchanged",
			proposed: &cpv1.PolicyConfig{Class: "noop"},
			response: dryResponse,
			check: func(t *testing.T, p *cpv1.DryRunResult) {
				if p.GetRequestChanged() || p.GetResponseChanged() || p.GetResponseJson() != dryResponse || len(p.GetEvents()) != 0 {
					t.Errorf("noop result %v, want the samples unchanged", p)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCP(t, Config{PolicyConfigPath: allCapsConfig})
			ctx := testContext(t)
			before, err := c.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.admin.DryRunPolicy(ctx, &cpv1.DryRunPolicyRequest{Proposed: tt.proposed, Format: anthropic,
				RequestJson: dryRequest, ResponseJson: tt.response})
			if err != nil {
				t.Fatalf("DryRunPolicy: %v", err)
			}

			// all_caps, active: the request unchanged, the text upper-cased,
			// the tool call untouched.
			a := resp.GetActive()
			if a.GetPolicy().GetClass() != "all_caps" || a.GetRevision() != before.GetActive().GetRevision() || a.GetError() != "" {
				t.Errorf("active result %v", a)
			}
			if a.GetForwardRequestJson() != dryRequest || a.GetRequestChanged() {
				t.Errorf("active request %s (changed %v), want the sample unchanged", a.GetForwardRequestJson(), a.GetRequestChanged())
			}
			switch got := a.GetResponseJson(); {
			case tt.response == "":
				if got != "" || a.GetResponseChanged() {
					t.Errorf("active response %q without a response sample", got)
				}
			case !a.GetResponseChanged() || !strings.Contains(got, `"text":"I WILL CLEAN UP."`) ||
				!strings.Contains(got, `"input":{"command":"rm -rf build"}`) || !strings.Contains(got, `"usage":{"input_tokens":12,"output_tokens":9}`):
				t.Errorf("active response %s, want the text upper-cased and the rest kept", got)
			}
			if tt.proposed == nil {
				if resp.GetProposed() != nil {
					t.Errorf("proposed result %v without a proposed policy", resp.GetProposed())
				}
			} else {
				if resp.GetProposed().GetRevision() != "" || resp.GetProposed().GetError() != "" {
					t.Errorf("proposed result %v", resp.GetProposed())
				}
				tt.check(t, resp.GetProposed())
			}

			after, err := c.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil || !proto.Equal(before, after) {
				t.Errorf("a dry run changed the active policy from %v to %v (%v)", before, after, err)
			}
			if got, _ := historyOf(t, c); len(got) != 1 {
				t.Errorf("a dry run added to the history: %v", got)
			}
		})
	}
}

// TestDryRunInvalidProposed checks that an invalid proposed policy is
// INVALID_ARGUMENT with the validation message and changes nothing.
func TestDryRunInvalidProposed(t *testing.T) {
	tests := []struct {
		name      string
		proposed  *cpv1.PolicyConfig
		wantErrIn []string
	}{
		{name: "unknown class", proposed: &cpv1.PolicyConfig{Class: "shouting"}, wantErrIn: []string{`unknown policy class "shouting"`}},
		{name: "invalid config", proposed: policyConfig(t, "regex_block", map[string]any{"patterns": []any{}}), wantErrIn: []string{"regex_block", "patterns"}},
		{name: "bad regular expression", proposed: policyConfig(t, "regex_block", map[string]any{"patterns": []any{"("}}), wantErrIn: []string{"regex_block", "patterns"}},
		{name: "missing class", proposed: &cpv1.PolicyConfig{}, wantErrIn: []string{"proposed.class is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCP(t, Config{PolicyConfigPath: allCapsConfig})
			ctx := testContext(t)
			before, err := c.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.admin.DryRunPolicy(ctx, &cpv1.DryRunPolicyRequest{Proposed: tt.proposed, Format: anthropic, RequestJson: dryRequest})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("DryRunPolicy: code %v (%v), want INVALID_ARGUMENT", status.Code(err), err)
			}
			for _, want := range tt.wantErrIn {
				if msg := status.Convert(err).Message(); !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			after, err := c.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
			if err != nil || !proto.Equal(before, after) {
				t.Errorf("an invalid dry run changed the active policy from %v to %v (%v)", before, after, err)
			}
		})
	}
}

// TestDryRunRecordsNothing dry-runs debug_logging, which records an event
// for every request, on a control plane with PostgreSQL, the response
// cache and an activity subscriber: the events come back in the result
// only. A live call afterwards shows that the pipeline works.
func TestDryRunRecordsNothing(t *testing.T) {
	url := dbtest.NewDatabase(t)
	c := startCP(t, Config{PolicyConfigPath: debugConfig, DatabaseURL: url, CacheTTL: time.Hour})
	feed := collect(subscribe(t, c, &cpv1.StreamActivityRequest{}))
	ctx := testContext(t)

	resp, err := c.admin.DryRunPolicy(ctx, &cpv1.DryRunPolicyRequest{Proposed: &cpv1.PolicyConfig{Class: "debug_logging"},
		Format: anthropic, RequestJson: dryRequest, ResponseJson: dryResponse})
	if err != nil {
		t.Fatalf("DryRunPolicy: %v", err)
	}
	for _, res := range []*cpv1.DryRunResult{resp.GetActive(), resp.GetProposed()} {
		if types := eventTypesOf(res.GetEvents()); !slices.Equal(types, []string{"policy.debug_logging.request", "policy.debug_logging.response"}) {
			t.Errorf("dry-run events %v, want debug_logging's request and response", types)
		}
	}

	const live = "live-1"
	upstream := textMessage("hi")
	mustRun(t, c.conn, calltest.Call{Start: &cpv1.CallStart{CallId: live, Format: anthropic, Body: []byte(dryRequest),
		Metadata: &cpv1.RequestMetadata{SessionId: "s", CredentialSha256: credA}}, Upstream: upstream, Record: endRecord(t, upstream)})
	// Events are published in order: once the live call's arrive, the
	// dry run's would have. debug_logging's request and response, the
	// cache miss, the record's request and response.
	eventually(t, "the live call's events on the feed", func() bool { return len(feed()) >= 7 })
	for _, r := range feed() {
		if r.GetEvent().GetCallId() != live {
			t.Errorf("the feed carried %s of call %q", r.GetEvent().GetEventType(), r.GetEvent().GetCallId())
		}
	}
	stats, err := c.history.GetStats(ctx, &cpv1.GetStatsRequest{})
	if err != nil || stats.GetCacheMisses() != 1 || stats.GetCacheHits() != 0 {
		t.Errorf("GetStats = %v, %v; want the live call's cache miss only", stats, err)
	}

	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.srv.Close(closeCtx); err != nil { // flushes the queue
		t.Fatalf("Close: %v", err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var liveEvents, otherEvents, calls int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE call_id = $1), count(*) FILTER (WHERE call_id <> $1),
		(SELECT count(*) FROM calls) FROM call_events`, live).Scan(&liveEvents, &otherEvents, &calls); err != nil {
		t.Fatal(err)
	}
	// The live call's unchanged request.final and response.final are
	// stored once, as their originals.
	if liveEvents != 5 || otherEvents != 0 || calls != 1 {
		t.Errorf("stored %d events of the live call, %d of others, %d calls; want the live call's 5 and its call only", liveEvents, otherEvents, calls)
	}
}
