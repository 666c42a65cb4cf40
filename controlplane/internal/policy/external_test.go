package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/stream"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// fakePolicyServer is a policy server: it refuses requests containing
// "forbidden", uppercases response text (whole, and each streamed text
// delta) and passes every other streamed event through by seq.
type fakePolicyServer struct {
	cpv1.UnimplementedPolicyServiceServer
	// token, when set, is the bearer token every call must carry.
	token string
	// mode changes the behaviour: "fail" fails every call, "hang" never
	// answers, "hold" answers a stream only at its end, "end" ends a
	// stream at its first text delta.
	mode string

	mu          sync.Mutex
	auth        []string // the authorization of each call
	starts      []*cpv1.StreamStart
	seqs        []uint64 // the seq of each streamed event received
	upstreamErr string
}

// check records the call's authorization and applies token and mode.
func (f *fakePolicyServer) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := strings.Join(md.Get("authorization"), ",")
	f.mu.Lock()
	f.auth = append(f.auth, got)
	f.mu.Unlock()
	if f.token != "" && got != "Bearer "+f.token {
		return status.Error(codes.Unauthenticated, "wrong token")
	}
	switch f.mode {
	case "fail":
		return status.Error(codes.Internal, "the policy broke")
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakePolicyServer) ApplyRequestPolicies(ctx context.Context, req *cpv1.ApplyRequestPoliciesRequest) (*cpv1.ApplyRequestPoliciesResponse, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	body := req.GetBody()
	switch {
	case bytes.Contains(body, []byte("forbidden")):
		return &cpv1.ApplyRequestPoliciesResponse{Outcome: &cpv1.ApplyRequestPoliciesResponse_Reject{Reject: &cpv1.Reject{
			HttpStatus: 403, ErrorType: "permission_error", Message: "no forbidden words"}}}, nil
	case bytes.Contains(body, []byte("canned")):
		return &cpv1.ApplyRequestPoliciesResponse{Outcome: &cpv1.ApplyRequestPoliciesResponse_Respond{Respond: &cpv1.Respond{
			Message: messageOf("a canned answer", nil, "end_turn")}}}, nil
	case bytes.Contains(body, []byte("shout")):
		return &cpv1.ApplyRequestPoliciesResponse{Outcome: &cpv1.ApplyRequestPoliciesResponse_Continue{Continue: &cpv1.Continue{
			Body: bytes.ToUpper(body)}}, PolicyRevision: "theirs"}, nil
	}
	return &cpv1.ApplyRequestPoliciesResponse{Outcome: &cpv1.ApplyRequestPoliciesResponse_Continue{Continue: &cpv1.Continue{}}}, nil
}

func (f *fakePolicyServer) ApplyResponsePolicy(ctx context.Context, req *cpv1.ApplyResponsePolicyRequest) (*cpv1.ApplyResponsePolicyResponse, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	msg := proto.Clone(req.GetResponse()).(*cpv1.Message)
	changed := false
	for _, b := range msg.GetContent() {
		if t := b.GetText(); t != nil && strings.ToUpper(t.Text) != t.Text {
			t.Text, changed = strings.ToUpper(t.Text), true
		}
	}
	if !changed {
		return &cpv1.ApplyResponsePolicyResponse{}, nil
	}
	return &cpv1.ApplyResponsePolicyResponse{Response: msg}, nil
}

func (f *fakePolicyServer) StreamChunkPolicy(s cpv1.PolicyService_StreamChunkPolicyServer) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	if first.GetStart() == nil {
		return status.Error(codes.InvalidArgument, "first message must be start")
	}
	f.mu.Lock()
	f.starts = append(f.starts, first.GetStart())
	f.mu.Unlock()
	if err := f.check(s.Context()); err != nil {
		return err
	}
	var held []*cpv1.StreamOutput
	for {
		msg, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if end := msg.GetEnd(); end != nil {
			f.mu.Lock()
			f.upstreamErr = end.GetUpstreamError()
			f.mu.Unlock()
			if len(held) > 0 {
				return s.Send(&cpv1.StreamChunkPolicyResponse{Outputs: held})
			}
			return nil
		}
		ev := msg.GetEvent()
		f.mu.Lock()
		f.seqs = append(f.seqs, ev.GetSeq())
		f.mu.Unlock()
		out := &cpv1.StreamOutput{Output: &cpv1.StreamOutput_PassthroughSeq{PassthroughSeq: ev.GetSeq()}}
		if d := ev.GetContentBlockDelta().GetText(); d != nil {
			up := proto.Clone(ev).(*cpv1.StreamEvent)
			up.GetContentBlockDelta().GetText().Text = strings.ToUpper(d.GetText())
			out = &cpv1.StreamOutput{Output: &cpv1.StreamOutput_Event{Event: up}}
			if f.mode == "end" {
				return s.Send(&cpv1.StreamChunkPolicyResponse{EndStream: true, Outputs: []*cpv1.StreamOutput{out,
					{Output: &cpv1.StreamOutput_Event{Event: &cpv1.StreamEvent{Event: &cpv1.StreamEvent_ContentBlockStop{ContentBlockStop: &cpv1.ContentBlockStop{}}}}},
					{Output: &cpv1.StreamOutput_Event{Event: &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageDelta{MessageDelta: &cpv1.MessageDelta{StopReason: "end_turn"}}}}},
					{Output: &cpv1.StreamOutput_Event{Event: &cpv1.StreamEvent{Event: &cpv1.StreamEvent_MessageStop{MessageStop: &cpv1.MessageStop{}}}}},
				}})
			}
		}
		if f.mode == "hold" {
			held = append(held, out)
			continue
		}
		if err := s.Send(&cpv1.StreamChunkPolicyResponse{Outputs: []*cpv1.StreamOutput{out}}); err != nil {
			return err
		}
	}
}

// startPolicyServer serves f on a loopback port and returns its address.
func startPolicyServer(t *testing.T, f *fakePolicyServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	cpv1.RegisterPolicyServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	addr := lis.Addr().String()
	t.Cleanup(func() {
		srv.Stop()
		forgetConns(addr)
	})
	return addr
}

// forgetConns closes and forgets the connections to addr: a later test
// that gets its port must not find a connection broken and waiting to
// retry.
func forgetConns(addr string) {
	externalConns.Lock()
	defer externalConns.Unlock()
	for key, conn := range externalConns.m {
		if key.target == addr {
			_ = conn.Close()
			delete(externalConns.m, key)
		}
	}
}

// externalRegistry is the built-in registry with env as its environment.
func externalRegistry(t *testing.T, env map[string]string) *Registry {
	t.Helper()
	r, err := NewBuiltin(JudgeAccess{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// buildExternal builds an external policy (cfg plus the address) with env
// as the environment.
func buildExternal(t *testing.T, env map[string]string, address string, cfg map[string]any) Policy {
	t.Helper()
	full := map[string]any{"address": address}
	for k, v := range cfg {
		full[k] = v
	}
	p, err := externalRegistry(t, env).Build("external", full)
	if err != nil {
		t.Fatalf("Build(external): %v", err)
	}
	return p
}

func TestExternal(t *testing.T) {
	f := &fakePolicyServer{}
	p := buildExternal(t, nil, startPolicyServer(t, f), nil)
	ctx := context.Background()
	if p.Name() != "external" || !p.InspectsResponse() {
		t.Errorf("Name %q, InspectsResponse %v", p.Name(), p.InspectsResponse())
	}

	t.Run("request", func(t *testing.T) {
		for _, tc := range []struct {
			body string
			want func(RequestResult) bool
		}{
			{`{"say":"hi"}`, func(r RequestResult) bool { return r.Body == nil && r.Respond == nil && r.Reject == nil }},
			{`{"say":"shout"}`, func(r RequestResult) bool { return string(r.Body) == `{"SAY":"SHOUT"}` }},
			{`{"say":"forbidden"}`, func(r RequestResult) bool {
				return r.Reject.GetHttpStatus() == 403 && r.Reject.GetMessage() == "no forbidden words" && r.Body == nil
			}},
			{`{"say":"canned"}`, func(r RequestResult) bool { return messageResult(r.Respond).text == "a canned answer" }},
		} {
			call, events := testCall(anthropicFormat)
			call.Request = []byte(tc.body)
			res, err := p.OnRequest(ctx, call)
			if err != nil || !tc.want(res) {
				t.Errorf("%s: got %+v, %v", tc.body, res, err)
			}
			if strings.Contains(tc.body, "forbidden") {
				if ev, ok := events.find("policy.external.rejected"); !ok || ev.Details["message"] != "no forbidden words" {
					t.Errorf("events %v", events.types())
				}
			}
		}
	})

	t.Run("response and stream", func(t *testing.T) {
		tools := []testTool{{"Bash", `{"command":"ls"}`}}
		checkBoth(t, p, "hello wörld", tools, "tool_use", streamResult{text: "HELLO WÖRLD", tools: []string{`Bash {"command":"ls"}`}, stop: "tool_use"})
		// A response the server leaves alone is msg itself.
		call, _ := testCall(openaiFormat)
		msg := messageOf("ALREADY LOUD", tools, "tool_use")
		if got, err := p.OnResponse(ctx, call, msg); err != nil || got != msg {
			t.Errorf("unchanged response: got %v, %v; want the same message", got, err)
		}
	})

	t.Run("passthrough outputs are the inputs", func(t *testing.T) {
		call, _ := testCall(anthropicFormat)
		call.Metadata = &cpv1.RequestMetadata{SessionId: "s1", Model: "m"}
		evs := streamOf("hello world", 3, []testTool{{"Bash", `{"command":"ls"}`}}, "tool_use")
		out := runStream(t, p, call, evs)
		if len(out) != len(evs) {
			t.Fatalf("%d outputs for %d inputs:\n%s", len(out), len(evs), describeStream(out))
		}
		for i, ev := range out {
			isText := ev.GetContentBlockDelta().GetText() != nil
			if ev.GetSeq() != evs[i].GetSeq() || (ev == evs[i]) == isText {
				t.Errorf("output %d (seq %d, text %v): same pointer as its input = %v", i, ev.GetSeq(), isText, ev == evs[i])
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		start := f.starts[len(f.starts)-1]
		if start.GetCallId() != "call_1" || start.GetFormat() != anthropicFormat || start.GetMetadata().GetSessionId() != "s1" || string(start.GetRequest()) != "{}" {
			t.Errorf("start %v", start)
		}
		var want []uint64
		for _, ev := range evs {
			want = append(want, ev.GetSeq())
		}
		if got := f.seqs[len(f.seqs)-len(evs):]; !slices.Equal(got, want) {
			t.Errorf("server got seqs %v, want %v", got, want)
		}
	})
}

// Outputs the server holds until the end come back from OnEnd, the
// unchanged ones as the input pointers; the upstream error reaches it.
func TestExternalStreamHeld(t *testing.T) {
	f := &fakePolicyServer{mode: "hold"}
	p := buildExternal(t, nil, startPolicyServer(t, f), nil)
	ctx := context.Background()
	call, _ := testCall(openaiFormat)
	evs := streamOf("abc", 0, nil, "end_turn")
	s := p.NewStream(ctx, call)
	for _, ev := range evs {
		if emit, err := s.OnEvent(ctx, ev); err != nil || len(emit.Events) != 0 {
			t.Fatalf("OnEvent: %v, %v; want nothing yet", emit, err)
		}
	}
	emit, err := s.OnEnd(ctx, "upstream broke")
	if err != nil || len(emit.Events) != len(evs) {
		t.Fatalf("OnEnd: %d events, %v", len(emit.Events), err)
	}
	if emit.Events[0] != evs[0] || emit.Events[len(evs)-1] != evs[len(evs)-1] {
		t.Error("held passthroughs are not the input pointers")
	}
	if r := resultOf(emit.Events); r.text != "ABC" {
		t.Errorf("text %q", r.text)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.upstreamErr != "upstream broke" {
		t.Errorf("server got upstream error %q", f.upstreamErr)
	}
}

// A server that ends the response early ends it here too.
func TestExternalStreamEnd(t *testing.T) {
	p := buildExternal(t, nil, startPolicyServer(t, &fakePolicyServer{mode: "end"}), nil)
	ctx := context.Background()
	call, _ := testCall(anthropicFormat)
	s := p.NewStream(ctx, call)
	var out []*cpv1.StreamEvent
	ended := false
	deadline := time.Now().Add(10 * time.Second)
	// The end arrives with a later event than the delta that caused it;
	// keep sending deltas until it does.
	evs := streamOf("", 0, nil, "end_turn")[:1]
	evs = append(evs, &cpv1.StreamEvent{Seq: 2, Event: &cpv1.StreamEvent_ContentBlockStart{ContentBlockStart: &cpv1.ContentBlockStart{Block: stream.TextBlock("")}}})
	for seq := uint64(3); !ended && time.Now().Before(deadline); seq++ {
		var ev *cpv1.StreamEvent
		if int(seq) <= len(evs) {
			ev = evs[seq-1]
		} else {
			ev = textDelta(seq, "cut here")
			time.Sleep(10 * time.Millisecond)
		}
		emit, err := s.OnEvent(ctx, ev)
		if err != nil {
			t.Fatalf("OnEvent(%d): %v", seq, err)
		}
		out, ended = append(out, emit.Events...), emit.End
	}
	if !ended {
		t.Fatal("the server's end_stream never arrived")
	}
	if r := resultOf(out); r.text != "CUT HERE" || r.stop != "end_turn" {
		t.Errorf("got %+v\n%s", r, describeStream(out))
	}
	if emit, err := s.OnEnd(ctx, ""); err != nil || len(emit.Events) != 0 {
		t.Errorf("OnEnd after the end: %v, %v", emit, err)
	}
}

// In a chain, each member sees what the previous one emitted: a member's
// modified events keep their seq, and what the server passes through by
// seq is the event it was given.
func TestExternalInChain(t *testing.T) {
	addr := startPolicyServer(t, &fakePolicyServer{})
	replace := map[string]any{"class": "string_replacement", "config": map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}}}
	ext := map[string]any{"class": "external", "config": map[string]any{"address": addr}}
	for _, tc := range []struct {
		members []any
		want    string
	}{
		{[]any{replace, ext}, "GOODBYE WORLD"},
		{[]any{ext, replace}, "HELLO WORLD"},
	} {
		p, err := externalRegistry(t, nil).Build("serial", map[string]any{"policies": tc.members})
		if err != nil {
			t.Fatal(err)
		}
		checkBoth(t, p, "hello world", nil, "end_turn", streamResult{text: tc.want, stop: "end_turn"})
	}
}

func TestExternalToken(t *testing.T) {
	f := &fakePolicyServer{token: "s3cret"}
	addr := startPolicyServer(t, f)
	env := map[string]string{"LUTHIEN_EXTERNAL_POLICY_TOKEN": "s3cret", "LUTHIEN_EXTERNAL_POLICY_TOKEN_OLD": "stale", "DATABASE_URL": "postgres://x"}
	call, _ := testCall(anthropicFormat)
	p := buildExternal(t, env, addr, map[string]any{"token_env": "LUTHIEN_EXTERNAL_POLICY_TOKEN"})
	if _, err := p.OnRequest(context.Background(), call); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	runStream(t, p, call, streamOf("hi", 0, nil, "end_turn"))
	f.mu.Lock()
	if len(f.auth) != 2 || f.auth[0] != "Bearer s3cret" || f.auth[1] != "Bearer s3cret" {
		t.Errorf("server saw authorization %q", f.auth)
	}
	f.mu.Unlock()
	// The caller's own credentials (the control plane's, on its incoming
	// call) are not passed on.
	incoming := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer control-plane-token"))
	for name, cfg := range map[string]map[string]any{
		"no token":    nil,
		"wrong token": {"token_env": "LUTHIEN_EXTERNAL_POLICY_TOKEN_OLD"},
	} {
		p := buildExternal(t, env, addr, cfg)
		if _, err := p.OnRequest(incoming, call); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: got %v, want the server's UNAUTHENTICATED", name, err)
		}
	}
	f.mu.Lock()
	if got := f.auth[len(f.auth)-2:]; !slices.Contains(got, "") || !slices.Contains(got, "Bearer stale") {
		t.Errorf("server saw authorization %q, want none and the stale token", got)
	}
	f.mu.Unlock()
	for _, tc := range []struct {
		env  map[string]string
		name string
		want string
	}{
		{env, "DATABASE_URL", `"DATABASE_URL" is not one external policies may use`},
		{env, "OPENAI_API_KEY", `"OPENAI_API_KEY" is not one external policies may use`},
		{env, "LUTHIEN_EXTERNAL_POLICY_TOKEN_UNSET", `"LUTHIEN_EXTERNAL_POLICY_TOKEN_UNSET" is not set`},
		{env, "not a name", "is not one external policies may use"},
		{map[string]string{"MY_TOKEN": "x", EnvExternalPolicyTokenEnvs: "MY_*"}, "LUTHIEN_EXTERNAL_POLICY_TOKEN", "is not one"},
	} {
		_, err := externalRegistry(t, tc.env).Build("external", map[string]any{"address": addr, "token_env": tc.name})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "token_env") {
			t.Errorf("token_env %q: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := externalRegistry(t, map[string]string{"MY_TOKEN": "x", EnvExternalPolicyTokenEnvs: "MY_*"}).Build("external",
		map[string]any{"address": addr, "token_env": "MY_TOKEN"}); err != nil {
		t.Errorf("an allowed prefix: %v", err)
	}
}

func TestExternalConfig(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{EnvExternalPolicyAddrs: "policy.internal:50051, 10.1.2.3"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		cfg  map[string]any
		want string // "" builds
	}{
		{"loopback v4", nil, map[string]any{"address": "127.0.0.1:50061"}, ""},
		{"loopback v6", nil, map[string]any{"address": "[::1]:50061"}, ""},
		{"localhost", nil, map[string]any{"address": "LocalHost:50061"}, ""},
		{"not loopback, unset list", nil, map[string]any{"address": "10.0.0.1:50061", "tls": true}, "loopback addresses only"},
		{"listed with tls", listed, map[string]any{"address": "policy.internal:50051", "tls": true, "server_name": "policy"}, ""},
		{"listed host any port", listed, map[string]any{"address": "10.1.2.3:9", "tls": true}, ""},
		{"listed, wrong port", listed, map[string]any{"address": "policy.internal:50052", "tls": true}, "not a policy server"},
		{"list leaves out loopback", listed, map[string]any{"address": "127.0.0.1:50061"}, "not a policy server"},
		{"plaintext beyond loopback", listed, map[string]any{"address": "policy.internal:50051"}, "insecure: true"},
		{"plaintext beyond loopback, insecure", listed, map[string]any{"address": "policy.internal:50051", "insecure": true}, ""},
		{"tls and insecure", listed, map[string]any{"address": "policy.internal:50051", "tls": true, "insecure": true}, "insecure"},
		{"ca_file without tls", nil, map[string]any{"address": "127.0.0.1:1", "ca_file": "/etc/hosts"}, "ca_file"},
		{"server_name without tls", nil, map[string]any{"address": "127.0.0.1:1", "server_name": "x"}, "server_name"},
		{"ca_file missing", nil, map[string]any{"address": "127.0.0.1:1", "tls": true, "ca_file": "/nonexistent/ca.pem"}, "cannot read"},
		{"ca_file not PEM", nil, map[string]any{"address": "127.0.0.1:1", "tls": true, "ca_file": notPEM}, "no PEM certificate"},
		{"no address", nil, map[string]any{}, "required"},
		{"URL", nil, map[string]any{"address": "http://127.0.0.1:1"}, "want host:port"},
		{"resolver scheme", nil, map[string]any{"address": "dns:///127.0.0.1:1"}, "want host:port"},
		{"no port", nil, map[string]any{"address": "127.0.0.1"}, "want host:port"},
		{"port 0", nil, map[string]any{"address": "127.0.0.1:0"}, "port"},
		{"unknown key", nil, map[string]any{"address": "127.0.0.1:1", "token": "inline"}, "unknown key"},
		{"bad address list", map[string]string{EnvExternalPolicyAddrs: "http://x/"}, map[string]any{"address": "127.0.0.1:1"}, EnvExternalPolicyAddrs},
		{"bad token list", map[string]string{EnvExternalPolicyTokenEnvs: "1BAD"}, map[string]any{"address": "127.0.0.1:1"}, EnvExternalPolicyTokenEnvs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := externalRegistry(t, tc.env).Build("external", tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if insecure, _ := tc.cfg["insecure"].(bool); insecure != (len(Warnings(p)) == 1) {
					t.Errorf("warnings %q", Warnings(p))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Building connects to nothing; equal settings share a connection.
	a, _ := externalRegistry(t, nil).Build("external", map[string]any{"address": "127.0.0.1:1"})
	b, _ := externalRegistry(t, nil).Build("external", map[string]any{"address": "127.0.0.1:1", "token_env": nil})
	if a.(*external).conn != b.(*external).conn {
		t.Error("two policies with the same connection settings have different connections")
	}
}

func TestExternalInspectResponseOff(t *testing.T) {
	f := &fakePolicyServer{}
	p := buildExternal(t, nil, startPolicyServer(t, f), map[string]any{"inspect_response": false})
	if p.InspectsResponse() {
		t.Fatal("InspectsResponse with inspect_response: false")
	}
	call, _ := testCall(anthropicFormat)
	msg := messageOf("quiet", nil, "end_turn")
	if got, err := p.OnResponse(context.Background(), call, msg); err != nil || got != msg {
		t.Errorf("OnResponse: %v, %v", got, err)
	}
	out := runStream(t, p, call, streamOf("quiet", 0, nil, "end_turn"))
	if resultOf(out).text != "quiet" {
		t.Errorf("stream changed: %s", describeStream(out))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auth) != 0 {
		t.Errorf("the server was called %d times", len(f.auth))
	}
}

// A server's failure is the policy's: on_error decides.
func TestExternalFailure(t *testing.T) {
	addr := startPolicyServer(t, &fakePolicyServer{mode: "fail"})
	ctx := context.Background()
	call, _ := testCall(anthropicFormat)
	p := buildExternal(t, nil, addr, nil)
	if _, err := p.OnRequest(ctx, call); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "policy server "+addr) {
		t.Errorf("OnRequest: %v", err)
	}
	if _, err := p.OnResponse(ctx, call, messageOf("x", nil, "end_turn")); err == nil {
		t.Error("OnResponse: no error")
	}
	s := p.NewStream(ctx, call)
	var err error
	for _, ev := range streamOf("some text", 1, nil, "end_turn") {
		if _, err = s.OnEvent(ctx, ev); err != nil {
			break
		}
	}
	if err == nil {
		_, err = s.OnEnd(ctx, "")
	}
	if status.Code(err) != codes.Internal {
		t.Errorf("stream: %v", err)
	}

	// on_error: pass lets the content through, recording the bypass. A
	// server that cannot be reached fails at the stream's first event, so
	// the stream passes whole.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := lis.Addr().String()
	_ = lis.Close()
	t.Cleanup(func() { forgetConns(closed) })
	for _, addr := range []string{addr, closed} {
		p := buildExternal(t, nil, addr, map[string]any{"on_error": "pass"})
		call, events := testCall(anthropicFormat)
		if res, err := p.OnRequest(ctx, call); err != nil || res.Body != nil || res.Reject != nil {
			t.Errorf("%s: OnRequest with on_error pass: %+v, %v", addr, res, err)
		}
		msg := messageOf("x", nil, "end_turn")
		if got, err := p.OnResponse(ctx, call, msg); err != nil || got != msg {
			t.Errorf("%s: OnResponse with on_error pass: %v, %v", addr, got, err)
		}
		if ev, ok := events.find("policy.external.bypassed"); !ok || !strings.Contains(ev.Details["error"].(string), "policy server") {
			t.Errorf("%s: events %v", addr, events.types())
		}
	}
	p = buildExternal(t, nil, closed, map[string]any{"on_error": "pass"})
	evs := streamOf("unchecked", 0, nil, "end_turn")
	if out := runStream(t, p, call, evs); !slices.Equal(out, evs) {
		t.Errorf("stream with on_error pass:\n%s", describeStream(out))
	}
}

// A server that never answers hits the deadline: the policy's timeout or
// the caller's.
func TestExternalTimeout(t *testing.T) {
	addr := startPolicyServer(t, &fakePolicyServer{mode: "hang"})
	call, _ := testCall(anthropicFormat)
	ctx := context.Background()
	p := buildExternal(t, nil, addr, map[string]any{"timeout": "200ms"})
	start := time.Now()
	// The guard's deadline or the call's own, whichever is seen first.
	isDeadline := func(err error) bool { return err != nil && strings.Contains(strings.ToLower(err.Error()), "deadline") }
	if _, err := p.OnRequest(ctx, call); !isDeadline(err) {
		t.Errorf("OnRequest: %v", err)
	}
	s := p.NewStream(ctx, call)
	if emit, err := s.OnEvent(ctx, streamOf("x", 0, nil, "end_turn")[0]); err != nil || len(emit.Events) != 0 {
		t.Errorf("OnEvent: %v, %v; want nothing yet", emit, err)
	}
	if _, err := s.OnEnd(ctx, ""); !isDeadline(err) {
		t.Errorf("OnEnd: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}

	unbounded := buildExternal(t, nil, addr, nil)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := unbounded.OnResponse(cctx, call, messageOf("x", nil, "end_turn")); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("OnResponse under the caller's deadline: %v", err)
	}
}

// With tls, the server's certificate is checked against ca_file and
// server_name.
func TestExternalTLS(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "policy.test")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	addr := startPolicyServer(t, &fakePolicyServer{}, grpc.Creds(grpccreds.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	call, _ := testCall(anthropicFormat)
	call.Request = []byte(`{"say":"forbidden"}`)
	for _, tc := range []struct {
		cfg map[string]any
		ok  bool
	}{
		{map[string]any{"tls": true, "ca_file": caFile, "server_name": "policy.test"}, true},
		{map[string]any{"tls": true, "ca_file": caFile, "server_name": "other.test"}, false},
		{map[string]any{"tls": true}, false}, // not signed by a system CA
		{nil, false},                         // plaintext to a TLS server
	} {
		p := buildExternal(t, nil, addr, tc.cfg)
		res, err := p.OnRequest(context.Background(), call)
		if ok := err == nil && res.Reject != nil; ok != tc.ok {
			t.Errorf("%v: got %+v, %v", tc.cfg, res, err)
		}
	}
}

// selfSigned returns a self-signed certificate for name (and 127.0.0.1)
// and its key, PEM-encoded.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
