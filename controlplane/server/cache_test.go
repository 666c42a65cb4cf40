package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"luthien.dev/canon"
	"luthien.dev/controlplane/internal/calltest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Credential hashes as the gateway sends them (any non-empty string
// scopes the cache).
const (
	credA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	credB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

const cachedBody = `{"model":"claude","temperature":0,"max_tokens":50,"messages":[{"role":"user","content":"say hi"}]}`

// cacheCP is a control plane with a response cache.
type cacheCP struct {
	*cp
	t *testing.T
}

func startCacheCP(t *testing.T, policyPath, redisURL string) *cacheCP {
	t.Helper()
	return &cacheCP{cp: startCP(t, Config{PolicyConfigPath: policyPath, RedisURL: redisURL, RedisPrefix: redisPrefix(t), CacheTTL: time.Hour}), t: t}
}

// call runs call id on CallService.Call for body (streamed when the body
// asks for it) with a credential hash and request headers; upstream
// answers with answer (nil: it fails), the gateway records nothing.
func (c *cacheCP) call(id, body, cred string, headers map[string]string, answer *cpv1.Message) *calltest.Result {
	c.t.Helper()
	return mustRun(c.t, c.conn, calltest.Call{Start: cacheStart(id, body, cred, headers), Upstream: answer})
}

// cacheStart is the start of call id for body with a credential hash and
// request headers.
func cacheStart(id, body, cred string, headers map[string]string) *cpv1.CallStart {
	return &cpv1.CallStart{CallId: id, Format: anthropic, Body: []byte(body), Stream: strings.Contains(body, `"stream":true`),
		Metadata: &cpv1.RequestMetadata{SessionId: "s", Headers: headers, CredentialSha256: cred}}
}

// answered returns the text of a cached answer; "" when the call was not
// answered from the cache.
func answered(res *calltest.Result) string {
	if !res.Decision.GetCached() {
		return ""
	}
	return res.Decision.GetRespond().GetMessage().GetContent()[0].GetText().GetText()
}

func textMessage(text string) *cpv1.Message {
	return &cpv1.Message{Id: "msg_1", Model: "claude", Content: []*cpv1.ContentBlock{textBlock(text)}, StopReason: "end_turn",
		Usage: &cpv1.Usage{InputTokens: 3, OutputTokens: 5}}
}

// TestResponseCache checks that the second identical request is answered
// from the cache, through the in-process LRU and through Redis; that the
// cache holds upstream's answer as the call's session received it, which
// goes through the response policy active when it is served; and who gets
// cached answers.
func TestResponseCache(t *testing.T) {
	for _, redisURL := range []string{"", testRedisURL} {
		name := "lru"
		if redisURL != "" {
			name = "redis"
		}
		t.Run(name, func(t *testing.T) {
			c := startCacheCP(t, allCapsConfig, redisURL)
			ctx := testContext(t)
			first := c.call("c1", cachedBody, credA, nil, textMessage("hi"))
			if first.Decision.GetContinue() == nil || first.Decision.GetCached() || first.Decision.GetInspect() != cpv1.Inspect_INSPECT_RESPONSE ||
				!proto.Equal(first.Response.GetResponse(), textMessage("HI")) {
				t.Fatalf("first call: %v, %v; want continue, upstream's answer uppercased", first.Decision, first.Response)
			}

			// The same request (keys reordered, streamed) is answered from
			// the cache, through all_caps.
			same := `{"messages":[{"role":"user","content":"say hi"}],"stream":true,"model":"claude","max_tokens":50,"temperature":0}`
			second := c.call("c2", same, credA, nil, nil)
			if !second.Decision.GetCached() || !proto.Equal(second.Decision.GetRespond().GetMessage(), textMessage("HI")) ||
				second.Decision.GetInspect() != cpv1.Inspect_INSPECT_UNSPECIFIED {
				t.Fatalf("second call: %v, want respond with the cached response uppercased", second.Decision)
			}
			// no-cache goes upstream and refreshes the entry; no-store
			// does not store; a request with temperature 0.5 is not
			// cacheable.
			if got := c.call("c3", cachedBody, credA, map[string]string{"cache-control": "no-cache"}, textMessage("hey")); got.Decision.GetContinue() == nil {
				t.Errorf("Cache-Control: no-cache: %v, want continue", got.Decision)
			}
			if got := c.call("c3b", cachedBody, credA, map[string]string{"cache-control": "no-store"}, textMessage("nope")); got.Decision.GetContinue() == nil {
				t.Errorf("Cache-Control: no-store: %v, want continue", got.Decision)
			}
			warm := strings.Replace(cachedBody, `"temperature":0`, `"temperature":0.5`, 1)
			if got := c.call("c4", warm, credA, nil, textMessage("warm")); got.Decision.GetContinue() == nil {
				t.Errorf("a request with temperature 0.5: %v, want continue", got.Decision)
			}
			if got := c.call("c4b", warm, credA, nil, textMessage("warm")); got.Decision.GetContinue() == nil {
				t.Errorf("a request with temperature 0.5 again: %v, want continue", got.Decision)
			}
			stats, err := c.history.GetStats(ctx, &cpv1.GetStatsRequest{})
			if err != nil || stats.GetCacheHits() != 1 || stats.GetCacheMisses() != 1 {
				t.Errorf("GetStats = %v, %v; want 1 hit and 1 miss", stats, err)
			}
			eventually(t, "cache.hit recorded for the second call", func() bool {
				got, err := c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "c2"})
				return err == nil && slices.Contains(eventTypes(got.GetEvents()), "cache.hit")
			})
			eventually(t, "cache.miss recorded for the first call", func() bool {
				got, err := c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "c1"})
				return err == nil && slices.Contains(eventTypes(got.GetEvents()), "cache.miss")
			})

			// Another credential, or none, never gets the answer; a call
			// without a credential fills nothing.
			if got := c.call("c5", cachedBody, credB, nil, textMessage("for b")); got.Decision.GetContinue() == nil {
				t.Errorf("another credential: %v, want continue", got.Decision)
			}
			for _, id := range []string{"c6", "c6b"} {
				if got := c.call(id, cachedBody, "", nil, textMessage("for nobody")); got.Decision.GetContinue() == nil {
					t.Errorf("no credential (%s): %v, want continue", id, got.Decision)
				}
			}

			// The cache holds upstream's answer, not all_caps's: under noop
			// it is served as upstream gave it, the one no-cache refreshed.
			if _, err := c.admin.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}}); err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			if got := c.call("c7", cachedBody, credA, nil, nil); !proto.Equal(got.Decision.GetRespond().GetMessage(), textMessage("hey")) {
				t.Errorf("under noop: %v, want upstream's answer to the no-cache call, from the cache", got.Decision)
			}
			if got := c.call("c8", cachedBody, credB, nil, nil); answered(got) != "for b" {
				t.Errorf("under noop, the other credential: %v, want its own answer", got.Decision)
			}
		})
	}
}

// TestStreamedCallFillsTheCache: a streamed call fills the cache with
// upstream's stream as the session received it, not the outputs the
// policy sent the client.
func TestStreamedCallFillsTheCache(t *testing.T) {
	c := startCacheCP(t, allCapsConfig, "")
	streamed := strings.Replace(cachedBody, `"temperature":0`, `"temperature":0,"stream":true`, 1)
	first := c.call("s1", streamed, credA, nil, textMessage("hi there"))
	if first.Decision.GetInspect() != cpv1.Inspect_INSPECT_STREAM || len(first.Outputs) == 0 {
		t.Fatalf("first call: %v with %d outputs, want the stream inspected", first.Decision, len(first.Outputs))
	}
	if _, err := c.admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}}); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	if got := c.call("s2", cachedBody, credA, nil, nil); !proto.Equal(got.Decision.GetRespond().GetMessage(), textMessage("hi there")) {
		t.Fatalf("second call: %v, want upstream's streamed answer from the cache", got.Decision)
	}
}

// TestCachedAnswerPassesTheActivePolicy fills the cache under noop, then
// activates all_caps: the next identical request is answered from the
// cache and uppercased.
func TestCachedAnswerPassesTheActivePolicy(t *testing.T) {
	c := startCacheCP(t, noopConfig, "")
	first := c.call("c1", cachedBody, credA, nil, textMessage("hello there"))
	if first.Decision.GetInspect() != cpv1.Inspect_INSPECT_NONE || !first.Decision.GetWantsResponse() {
		t.Fatalf("under noop: %v, want continue asking for upstream's response in end", first.Decision)
	}
	if got := c.call("c2", cachedBody, credA, nil, nil); !proto.Equal(got.Decision.GetRespond().GetMessage(), textMessage("hello there")) {
		t.Fatalf("under noop: %v, want the cached answer", got.Decision)
	}
	if _, err := c.admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "all_caps"}}); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	got := c.call("c3", cachedBody, credA, nil, nil)
	if !proto.Equal(got.Decision.GetRespond().GetMessage(), textMessage("HELLO THERE")) || !got.Decision.GetCached() ||
		got.Decision.GetInspect() != cpv1.Inspect_INSPECT_UNSPECIFIED {
		t.Fatalf("under all_caps: %v, want the cached answer uppercased", got.Decision)
	}
	if stats, err := c.history.GetStats(testContext(t), &cpv1.GetStatsRequest{}); err != nil || stats.GetCacheHits() != 2 {
		t.Errorf("GetStats = %v, %v; want 2 hits", stats, err)
	}
}

// TestOnlyTheSessionFillsTheCache checks that the cache holds only a
// complete, successful response the call's session itself received for
// the request it decided: not the response a record carries, not an
// answer to another request, not a failed call's, a stream broken off, an
// answer without content, nor a response the session did not ask for.
func TestOnlyTheSessionFillsTheCache(t *testing.T) {
	forged := textMessage("forged answer")
	forgedRecord := func(t *testing.T, body string) *cpv1.CallRecord {
		rec := endRecord(t, forged)
		rec.Events = append(rec.Events, &cpv1.CallEvent{EventType: "request.received", PayloadJson: []byte(body)})
		return rec
	}
	for _, tt := range []struct {
		name   string
		config string
		// run runs the calls that must not fill the cache for cachedBody.
		run func(t *testing.T, c *cacheCP)
	}{
		{"a record's response", noopConfig, func(t *testing.T, c *cacheCP) {
			res := mustRun(t, c.conn, calltest.Call{Start: cacheStart("f1", cachedBody, credA, nil),
				End: &cpv1.CallEnd{HttpStatus: 200, Record: forgedRecord(t, cachedBody)}})
			if !res.Decision.GetWantsResponse() {
				t.Fatalf("decision %v, want the response asked for", res.Decision)
			}
		}},
		{"a record claiming another request", noopConfig, func(t *testing.T, c *cacheCP) {
			other := strings.Replace(cachedBody, "say hi", "say bye", 1)
			mustRun(t, c.conn, calltest.Call{Start: cacheStart("f1", other, credA, nil), Upstream: forged, Record: forgedRecord(t, cachedBody)})
			if got := c.call("f2", other, credA, nil, nil); answered(got) != "forged answer" {
				t.Fatalf("the other request: %v, want its own answer cached", got.Decision)
			}
		}},
		{"a failed call", noopConfig, func(t *testing.T, c *cacheCP) {
			mustRun(t, c.conn, calltest.Call{Start: cacheStart("f1", cachedBody, credA, nil),
				End: &cpv1.CallEnd{HttpStatus: 500, Response: forged, Record: forgedRecord(t, cachedBody)}})
		}},
		{"a response broken off", noopConfig, func(t *testing.T, c *cacheCP) {
			mustRun(t, c.conn, calltest.Call{Start: cacheStart("f1", cachedBody, credA, nil),
				End: &cpv1.CallEnd{HttpStatus: 200, UpstreamError: "connection reset", Response: forged}})
		}},
		{"an inspected stream broken off", allCapsConfig, func(t *testing.T, c *cacheCP) {
			streamed := strings.Replace(cachedBody, `"temperature":0`, `"temperature":0,"stream":true`, 1)
			res := mustRun(t, c.conn, calltest.Call{Start: cacheStart("f1", streamed, credA, nil),
				Events: canon.Events(forged)[:3], UpstreamError: "connection reset"})
			if res.Decision.GetInspect() != cpv1.Inspect_INSPECT_STREAM || len(res.Outputs) == 0 {
				t.Fatalf("decision %v with %d outputs, want the stream inspected", res.Decision, len(res.Outputs))
			}
		}},
		{"an answer without content", noopConfig, func(t *testing.T, c *cacheCP) {
			c.call("f1", cachedBody, credA, nil, &cpv1.Message{Id: "msg_1", Model: "claude", StopReason: "end_turn"})
		}},
		{"a response not asked for", noopConfig, func(t *testing.T, c *cacheCP) {
			_, err := calltest.Run(testContext(t), c.conn, calltest.Call{Start: cacheStart("f1", cachedBody, credA, map[string]string{"cache-control": "no-store"}),
				End: &cpv1.CallEnd{HttpStatus: 200, Response: forged}})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("end with a response not asked for: %v, want INVALID_ARGUMENT", err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startCacheCP(t, tt.config, "")
			tt.run(t, c)
			if got := c.call("check", cachedBody, credA, nil, nil); got.Decision.GetContinue() == nil {
				t.Fatalf("the cache was filled: %v", got.Decision)
			}
		})
	}
	t.Run("the session's response fills it", func(t *testing.T) {
		c := startCacheCP(t, noopConfig, "")
		// With a record that says otherwise: the session's response wins.
		mustRun(t, c.conn, calltest.Call{Start: cacheStart("c1", cachedBody, credA, nil), Upstream: textMessage("real answer"),
			Record: forgedRecord(t, cachedBody)})
		if got := c.call("c2", cachedBody, credA, nil, nil); answered(got) != "real answer" {
			t.Fatalf("%v, want the real answer from the cache", got.Decision)
		}
	})
}

// TestPolicyServiceIgnoresTheCache: PolicyService is pure policy
// evaluation: a request whose answer is cached is still decided by the
// policy alone, and looks nothing up (no hit, no miss).
func TestPolicyServiceIgnoresTheCache(t *testing.T) {
	c := startCacheCP(t, noopConfig, "")
	c.call("c1", cachedBody, credA, nil, textMessage("hello there"))
	if got := c.call("c2", cachedBody, credA, nil, nil); answered(got) != "hello there" {
		t.Fatalf("on CallService: %v, want the cached answer", got.Decision)
	}
	resp, err := c.policy.ApplyRequestPolicies(testContext(t), &cpv1.ApplyRequestPoliciesRequest{CallId: "p1", Format: anthropic,
		Body: []byte(cachedBody), Metadata: &cpv1.RequestMetadata{SessionId: "s", CredentialSha256: credA}})
	if err != nil || resp.GetContinue() == nil {
		t.Fatalf("ApplyRequestPolicies = %v, %v; want continue, the policy's decision", resp, err)
	}
	if stats, err := c.history.GetStats(testContext(t), &cpv1.GetStatsRequest{}); err != nil || stats.GetCacheHits() != 1 || stats.GetCacheMisses() != 1 {
		t.Errorf("GetStats = %v, %v; want the calls' 1 hit and 1 miss only", stats, err)
	}
}
