package service

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const (
	sampleRequest  = `{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	sampleResponse = `{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`
)

// shout is a response policy hook that appends "!" to every text block.
func shout(msg *cpv1.Message) (*cpv1.Message, error) {
	out := proto.CloneOf(msg)
	for _, b := range out.GetContent() {
		if t := b.GetText(); t != nil {
			t.Text += "!"
		}
	}
	return out, nil
}

// TestDryRunOutcomes runs the samples through scripted policies and
// checks what each result reports.
func TestDryRunOutcomes(t *testing.T) {
	answer := &cpv1.Message{Id: "msg_local", Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: "answered locally"}}}}}
	reject := &cpv1.Reject{HttpStatus: 403, ErrorType: "permission_error", Message: "not allowed"}
	tests := []struct {
		name     string
		proposed *fakePolicy
		response string
		check    func(t *testing.T, res *cpv1.DryRunResult)
	}{
		{
			name:     "unchanged",
			proposed: &fakePolicy{},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if res.GetForwardRequestJson() != sampleRequest || res.GetRequestChanged() {
					t.Errorf("request %q (changed %v), want the sample unchanged", res.GetForwardRequestJson(), res.GetRequestChanged())
				}
				if res.GetResponseJson() != sampleResponse || res.GetResponseChanged() {
					t.Errorf("response %q (changed %v), want the sample unchanged", res.GetResponseJson(), res.GetResponseChanged())
				}
			},
		},
		{
			name:     "response changed",
			proposed: &fakePolicy{onResponse: shout},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if !res.GetResponseChanged() || !strings.Contains(res.GetResponseJson(), `"text":"hello!"`) ||
					!strings.Contains(res.GetResponseJson(), `"usage":{"input_tokens":1,"output_tokens":1}`) {
					t.Errorf("response %q (changed %v), want hello! with the other fields kept", res.GetResponseJson(), res.GetResponseChanged())
				}
			},
		},
		{
			name:     "no response sample",
			proposed: &fakePolicy{onResponse: shout},
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if res.GetResponseJson() != "" || res.GetResponseChanged() || res.GetForwardRequestJson() != sampleRequest {
					t.Errorf("result %v, want the request phase only", res)
				}
			},
		},
		{
			name:     "policy ignores responses",
			proposed: &fakePolicy{onResponse: shout, ignoresResponses: true},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if res.GetResponseJson() != sampleResponse || res.GetResponseChanged() {
					t.Errorf("response %q, want the sample: the response phase is skipped", res.GetResponseJson())
				}
			},
		},
		{
			name:     "request changed",
			proposed: &fakePolicy{request: policy.RequestResult{Body: []byte(`{"model":"other"}`)}},
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if res.GetForwardRequestJson() != `{"model":"other"}` || !res.GetRequestChanged() {
					t.Errorf("request %q (changed %v), want the policy's body", res.GetForwardRequestJson(), res.GetRequestChanged())
				}
			},
		},
		{
			name:     "respond",
			proposed: &fakePolicy{request: policy.RequestResult{Respond: answer}, onResponse: shout},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				var got struct {
					Type    string `json:"type"`
					Content []struct {
						Text string `json:"text"`
					} `json:"content"`
				}
				if err := json.Unmarshal([]byte(res.GetRespondJson()), &got); err != nil || got.Type != "message" ||
					len(got.Content) != 1 || got.Content[0].Text != "answered locally" {
					t.Errorf("respond_json %q (%v), want an Anthropic message with the answer", res.GetRespondJson(), err)
				}
				if !res.GetRequestChanged() || res.GetResponseJson() != "" {
					t.Errorf("request changed %v, response %q: an answered request has no response phase", res.GetRequestChanged(), res.GetResponseJson())
				}
			},
		},
		{
			name:     "reject",
			proposed: &fakePolicy{request: policy.RequestResult{Reject: reject}},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if !proto.Equal(res.GetReject(), reject) || !res.GetRequestChanged() || res.GetResponseJson() != "" {
					t.Errorf("result %v, want the rejection and no response phase", res)
				}
			},
		},
		{
			name:     "request error",
			proposed: &fakePolicy{requestErr: errors.New("judge down")},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if res.GetError() != "on request: judge down" || res.GetOutcome() != nil {
					t.Errorf("error %q, outcome %v", res.GetError(), res.GetOutcome())
				}
			},
		},
		{
			name:     "two outcomes",
			proposed: &fakePolicy{request: policy.RequestResult{Body: []byte(`{}`), Reject: reject}},
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if !strings.Contains(res.GetError(), "more than one outcome") {
					t.Errorf("error %q", res.GetError())
				}
			},
		},
		{
			name:     "response error",
			proposed: &fakePolicy{onResponse: func(*cpv1.Message) (*cpv1.Message, error) { return nil, errors.New("bad verdict") }},
			response: sampleResponse,
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if res.GetError() != "on response: bad verdict" || res.GetForwardRequestJson() != sampleRequest {
					t.Errorf("error %q, request %q", res.GetError(), res.GetForwardRequestJson())
				}
			},
		},
		{
			name:     "events redacted",
			proposed: &fakePolicy{event: "policy.fake.seen", details: map[string]any{"key": "sk-ant-TOPSECRET0123456789", "n": 1}},
			check: func(t *testing.T, res *cpv1.DryRunResult) {
				if len(res.GetEvents()) != 1 || res.GetEvents()[0].GetType() != "policy.fake.seen" {
					t.Fatalf("events %v, want one policy.fake.seen", res.GetEvents())
				}
				payload := res.GetEvents()[0].GetPayloadJson()
				if strings.Contains(payload, "TOPSECRET") || !strings.Contains(payload, `"n":1`) {
					t.Errorf("payload %s, want the details with the key redacted", payload)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.proposed.name = "proposed"
			active := &fakePolicy{name: "active", onResponse: shout}
			client, store := serveAdmin(t, classBuilder{"active": active, "proposed": tt.proposed})
			before := store.Active()
			resp, err := client.DryRunPolicy(testContext(t), &cpv1.DryRunPolicyRequest{
				Proposed: &cpv1.PolicyConfig{Class: "proposed"}, Format: anthropic,
				RequestJson: sampleRequest, ResponseJson: tt.response,
			})
			if err != nil {
				t.Fatalf("DryRunPolicy: %v", err)
			}
			if store.Active() != before {
				t.Error("a dry run changed the active policy")
			}
			// The active policy is always reported, with its revision.
			act := resp.GetActive()
			if act.GetRevision() != before.Revision || act.GetPolicy().GetClass() != "active" || act.GetError() != "" ||
				act.GetForwardRequestJson() != sampleRequest {
				t.Errorf("active result %v", act)
			}
			if tt.response != "" && !strings.Contains(act.GetResponseJson(), `"text":"hello!"`) {
				t.Errorf("active response %q, want the active policy's hello!", act.GetResponseJson())
			}
			if resp.GetProposed() == nil || resp.GetProposed().GetRevision() != "" {
				t.Fatalf("proposed result %v, want one without a revision", resp.GetProposed())
			}
			tt.check(t, resp.GetProposed())
		})
	}
}

// TestDryRunInvalid checks that bad samples and an invalid proposed
// policy are INVALID_ARGUMENT and change nothing.
func TestDryRunInvalid(t *testing.T) {
	big := `{"model":"m","pad":"` + strings.Repeat("x", MaxDryRunSample) + `"}`
	tests := []struct {
		name      string
		req       *cpv1.DryRunPolicyRequest
		wantErrIn string
	}{
		{name: "unspecified format", req: &cpv1.DryRunPolicyRequest{RequestJson: sampleRequest}, wantErrIn: "format"},
		{name: "unknown format", req: &cpv1.DryRunPolicyRequest{Format: cpv1.ClientFormat(42), RequestJson: sampleRequest}, wantErrIn: "format"},
		{name: "no request", req: &cpv1.DryRunPolicyRequest{Format: anthropic}, wantErrIn: "request_json"},
		{name: "request not an object", req: &cpv1.DryRunPolicyRequest{Format: anthropic, RequestJson: `["hi"]`}, wantErrIn: "request_json"},
		{name: "request not JSON", req: &cpv1.DryRunPolicyRequest{Format: anthropic, RequestJson: `{"model":`}, wantErrIn: "request_json"},
		{name: "request too large", req: &cpv1.DryRunPolicyRequest{Format: anthropic, RequestJson: big}, wantErrIn: "request_json is"},
		{name: "response too large", req: &cpv1.DryRunPolicyRequest{Format: anthropic, RequestJson: sampleRequest, ResponseJson: big}, wantErrIn: "response_json is"},
		{name: "response not a message", req: &cpv1.DryRunPolicyRequest{Format: anthropic, RequestJson: sampleRequest, ResponseJson: `{"content":"x"}`}, wantErrIn: "response_json"},
		{name: "response not an object", req: &cpv1.DryRunPolicyRequest{Format: anthropic, RequestJson: sampleRequest, ResponseJson: `"x"`}, wantErrIn: "response_json"},
		{
			name:      "proposed without class",
			req:       &cpv1.DryRunPolicyRequest{Proposed: &cpv1.PolicyConfig{}, Format: anthropic, RequestJson: sampleRequest},
			wantErrIn: "proposed.class is required",
		},
		{
			name:      "proposed invalid",
			req:       &cpv1.DryRunPolicyRequest{Proposed: &cpv1.PolicyConfig{Class: "shouting"}, Format: anthropic, RequestJson: sampleRequest},
			wantErrIn: `unknown policy class "shouting"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, store := serveAdmin(t, classBuilder{"active": &fakePolicy{name: "active"}})
			before := store.Active()
			_, err := client.DryRunPolicy(testContext(t), tt.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code %v (%v), want INVALID_ARGUMENT", status.Code(err), err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantErrIn) {
				t.Errorf("error %q does not contain %q", msg, tt.wantErrIn)
			}
			if store.Active() != before {
				t.Error("an invalid dry run changed the active policy")
			}
		})
	}
}

// TestDryRunActiveOnly runs without a proposed policy, in the OpenAI
// format.
func TestDryRunActiveOnly(t *testing.T) {
	client, _ := serveAdmin(t, classBuilder{"active": &fakePolicy{name: "active", onResponse: shout}})
	response := `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"system_fingerprint":"fp"}`
	resp, err := client.DryRunPolicy(testContext(t), &cpv1.DryRunPolicyRequest{
		Format: cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT, RequestJson: `{"model":"gpt","messages":[]}`, ResponseJson: response,
	})
	if err != nil {
		t.Fatalf("DryRunPolicy: %v", err)
	}
	if resp.GetProposed() != nil {
		t.Errorf("proposed = %v, want none", resp.GetProposed())
	}
	got := resp.GetActive().GetResponseJson()
	if !strings.Contains(got, `"content":"hello!"`) || !strings.Contains(got, `"system_fingerprint":"fp"`) || !resp.GetActive().GetResponseChanged() {
		t.Errorf("response %s, want hello! in the OpenAI format with its other fields", got)
	}
}
