package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/wire"
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

// apply runs the request phase of call id for body with a credential
// hash and request headers.
func (c *cacheCP) apply(id, body, cred string, headers map[string]string) *cpv1.ApplyRequestPoliciesResponse {
	c.t.Helper()
	resp, err := c.policy.ApplyRequestPolicies(testContext(c.t), &cpv1.ApplyRequestPoliciesRequest{CallId: id, Format: anthropic,
		Body: []byte(body), Metadata: &cpv1.RequestMetadata{SessionId: "s", Headers: headers, CredentialSha256: cred}})
	if err != nil {
		c.t.Fatalf("ApplyRequestPolicies: %v", err)
	}
	return resp
}

// record sends records and fails the test on an error. A record without
// a policy revision gets the active one, as a gateway's (or a forger's
// who asked GetPolicy) has.
func (c *cacheCP) record(recs ...*cpv1.CallRecord) {
	c.t.Helper()
	active, err := c.admin.GetPolicy(testContext(c.t), &cpv1.GetPolicyRequest{})
	if err != nil {
		c.t.Fatalf("GetPolicy: %v", err)
	}
	for _, rec := range recs {
		if rec.Summary.PolicyRevision == "" {
			rec.Summary.PolicyRevision = active.GetActive().GetRevision()
		}
	}
	if _, err := c.cp.record.RecordCalls(testContext(c.t), &cpv1.RecordCallsRequest{Calls: recs}); err != nil {
		c.t.Fatalf("RecordCalls: %v", err)
	}
}

// gatewayRecord is a successful call's record as the gateway sends it:
// bodies as JSON in the client's format, the final event left out when
// the response was not changed, and the call's cache-fill token.
func gatewayRecord(t *testing.T, id, body string, original, final *cpv1.Message, token string) *cpv1.CallRecord {
	t.Helper()
	now := time.Now()
	render := func(m *cpv1.Message) []byte {
		b, err := wire.RenderMessage(anthropic, nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ev := func(typ string, payload []byte) *cpv1.CallEvent {
		return &cpv1.CallEvent{CallId: id, EventType: typ, Time: timestamppb.New(now), PayloadJson: payload}
	}
	rec := &cpv1.CallRecord{
		Summary: &cpv1.CallSummary{CallId: id, SessionId: "s", Model: "claude", Format: anthropic, Upstream: "http://upstream.test",
			Status: 200, StartedAt: timestamppb.New(now.Add(-time.Second)), FinishedAt: timestamppb.New(now)},
		Events:           []*cpv1.CallEvent{ev("request.received", []byte(body)), ev("response.original", render(original))},
		FinalResponse:    final,
		FinalRequest:     []byte(body),
		RequestUnchanged: true,
		CacheFillToken:   token,
	}
	if proto.Equal(original, final) {
		rec.ResponseUnchanged = true
	} else {
		rec.Events = append(rec.Events, ev("response.final", render(final)))
		rec.Summary.Intervened = true
	}
	return rec
}

func textMessage(text string) *cpv1.Message {
	return &cpv1.Message{Id: "msg_1", Model: "claude", Content: []*cpv1.ContentBlock{textBlock(text)}, StopReason: "end_turn",
		Usage: &cpv1.Usage{InputTokens: 3, OutputTokens: 5}}
}

// TestResponseCache checks that the second identical request is answered
// from the cache, through the in-process LRU and through Redis; that the
// cache holds upstream's answer, which goes through the response policy
// active when it is served; and who gets cached answers.
func TestResponseCache(t *testing.T) {
	for _, redisURL := range []string{"", testRedisURL} {
		name := "lru"
		if redisURL != "" {
			name = "redis"
		}
		t.Run(name, func(t *testing.T) {
			c := startCacheCP(t, allCapsConfig, redisURL)
			ctx := testContext(t)
			first := c.apply("c1", cachedBody, credA, nil)
			if first.GetContinue() == nil || first.GetCacheFillToken() == "" {
				t.Fatalf("first request: %v, want continue with a cache-fill token", first)
			}
			c.record(gatewayRecord(t, "c1", cachedBody, textMessage("hi"), textMessage("HI"), first.GetCacheFillToken()))

			// The same request (keys reordered, streamed) is answered from
			// the cache, through all_caps.
			same := `{"messages":[{"role":"user","content":"say hi"}],"stream":true,"model":"claude","max_tokens":50,"temperature":0}`
			second := c.apply("c2", same, credA, nil)
			if !proto.Equal(second.GetRespond().GetMessage(), textMessage("HI")) || second.GetInspectResponse() || second.GetCacheFillToken() != "" {
				t.Fatalf("second request: %v, want respond with the cached response uppercased", second)
			}
			// no-cache goes upstream and refreshes the entry; no-store
			// does not store.
			if got := c.apply("c3", cachedBody, credA, map[string]string{"cache-control": "no-cache"}); got.GetContinue() == nil || got.GetCacheFillToken() == "" {
				t.Errorf("Cache-Control: no-cache: %v, want continue with a fill token", got)
			}
			if got := c.apply("c3b", cachedBody, credA, map[string]string{"cache-control": "no-store"}); got.GetContinue() == nil || got.GetCacheFillToken() != "" {
				t.Errorf("Cache-Control: no-store: %v, want continue without a fill token", got)
			}
			if got := c.apply("c4", strings.Replace(cachedBody, `"temperature":0`, `"temperature":0.5`, 1), credA, nil); got.GetContinue() == nil || got.GetCacheFillToken() != "" {
				t.Errorf("a request with temperature 0.5: %v, want continue without a fill token", got)
			}
			stats, err := c.history.GetStats(ctx, &cpv1.GetStatsRequest{})
			if err != nil || stats.GetCacheHits() != 1 || stats.GetCacheMisses() != 1 {
				t.Errorf("GetStats = %v, %v; want 1 hit and 1 miss", stats, err)
			}
			eventually(t, "cache.hit and all_caps's event recorded for the second call", func() bool {
				got, err := c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "c2"})
				return err == nil && slices.Contains(eventTypes(got.GetEvents()), "cache.hit")
			})
			eventually(t, "cache.miss recorded for the first call", func() bool {
				got, err := c.history.GetCall(ctx, &cpv1.GetCallRequest{CallId: "c1"})
				return err == nil && slices.Contains(eventTypes(got.GetEvents()), "cache.miss")
			})

			// Another credential, or none, never gets the answer.
			if got := c.apply("c5", cachedBody, credB, nil); got.GetContinue() == nil || got.GetCacheFillToken() == "" {
				t.Errorf("another credential: %v, want a miss", got)
			}
			if got := c.apply("c6", cachedBody, "", nil); got.GetContinue() == nil || got.GetCacheFillToken() != "" {
				t.Errorf("no credential: %v, want continue without a fill token", got)
			}

			// The cache holds upstream's answer, not all_caps's: under noop
			// it is served as upstream gave it.
			if _, err := c.admin.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}}); err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			if got := c.apply("c7", cachedBody, credA, nil); !proto.Equal(got.GetRespond().GetMessage(), textMessage("hi")) {
				t.Errorf("under noop: %v, want upstream's cached answer", got)
			}
		})
	}
}

// TestCachedAnswerPassesTheActivePolicy fills the cache under noop, then
// activates all_caps: the next identical request is answered from the
// cache and uppercased.
func TestCachedAnswerPassesTheActivePolicy(t *testing.T) {
	c := startCacheCP(t, noopConfig, "")
	first := c.apply("c1", cachedBody, credA, nil)
	c.record(gatewayRecord(t, "c1", cachedBody, textMessage("hello there"), textMessage("hello there"), first.GetCacheFillToken()))
	if got := c.apply("c2", cachedBody, credA, nil); !proto.Equal(got.GetRespond().GetMessage(), textMessage("hello there")) {
		t.Fatalf("under noop: %v, want the cached answer", got)
	}
	if _, err := c.admin.SetPolicy(testContext(t), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "all_caps"}}); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	got := c.apply("c3", cachedBody, credA, nil)
	if !proto.Equal(got.GetRespond().GetMessage(), textMessage("HELLO THERE")) || got.GetInspectResponse() {
		t.Fatalf("under all_caps: %v, want the cached answer uppercased", got)
	}
	if stats, err := c.history.GetStats(testContext(t), &cpv1.GetStatsRequest{}); err != nil || stats.GetCacheHits() != 2 {
		t.Errorf("GetStats = %v, %v; want 2 hits", stats, err)
	}
}

// TestForgedRecordsDoNotFillTheCache checks that only a record bringing
// back the fill token issued for its own call and request fills the
// cache: a record without one, with another call's, with one already
// used, or for another request, does not.
func TestForgedRecordsDoNotFillTheCache(t *testing.T) {
	forged := textMessage("forged answer")
	for _, tt := range []struct {
		name string
		// forge records calls; it may run the request phase of other
		// calls through c, for tokens.
		forge func(t *testing.T, c *cacheCP, body string) []*cpv1.CallRecord
	}{
		{"no token", func(t *testing.T, c *cacheCP, body string) []*cpv1.CallRecord {
			return []*cpv1.CallRecord{gatewayRecord(t, "f1", body, forged, forged, "")}
		}},
		{"made-up token", func(t *testing.T, c *cacheCP, body string) []*cpv1.CallRecord {
			return []*cpv1.CallRecord{gatewayRecord(t, "f1", body, forged, forged, "00112233445566778899aabbccddeeff")}
		}},
		{"another call's token", func(t *testing.T, c *cacheCP, body string) []*cpv1.CallRecord {
			tok := c.apply("real", body, credA, nil).GetCacheFillToken()
			return []*cpv1.CallRecord{gatewayRecord(t, "f1", body, forged, forged, tok)}
		}},
		{"token of another request", func(t *testing.T, c *cacheCP, body string) []*cpv1.CallRecord {
			other := strings.Replace(body, "say hi", "say bye", 1)
			tok := c.apply("f1", other, credA, nil).GetCacheFillToken()
			return []*cpv1.CallRecord{gatewayRecord(t, "f1", body, forged, forged, tok)}
		}},
		{"token used twice", func(t *testing.T, c *cacheCP, body string) []*cpv1.CallRecord {
			tok := c.apply("f1", body, credA, nil).GetCacheFillToken()
			// The first use fills the cache with a failed call: nothing.
			failed := gatewayRecord(t, "f1", body, forged, forged, tok)
			failed.Summary.Status, failed.Summary.Error = 500, "upstream answered 500"
			return []*cpv1.CallRecord{failed, gatewayRecord(t, "f2", body, forged, forged, tok)}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startCacheCP(t, noopConfig, "")
			body := cachedBody
			for _, rec := range tt.forge(t, c, body) {
				c.record(rec)
			}
			if got := c.apply("check", body, credA, nil); got.GetContinue() == nil {
				t.Fatalf("a forged record filled the cache: %v", got)
			}
		})
	}
	t.Run("the real record fills it", func(t *testing.T) {
		c := startCacheCP(t, noopConfig, "")
		tok := c.apply("c1", cachedBody, credA, nil).GetCacheFillToken()
		c.record(gatewayRecord(t, "c1", cachedBody, textMessage("real answer"), textMessage("real answer"), tok))
		// Its token used, a resent record with another answer changes
		// nothing.
		c.record(gatewayRecord(t, "c1", cachedBody, forged, forged, tok))
		if got := c.apply("c2", cachedBody, credA, nil); !proto.Equal(got.GetRespond().GetMessage(), textMessage("real answer")) {
			t.Fatalf("%v, want the real answer from the cache", got)
		}
	})
}

// TestTruncatedResponseNotCached checks that a record whose
// response.original the gateway kept only in part (the truncation
// marker) does not fill the cache, even with its token.
func TestTruncatedResponseNotCached(t *testing.T) {
	c := startCacheCP(t, allCapsConfig, "")
	tok := c.apply("c1", cachedBody, credA, nil).GetCacheFillToken()
	rec := gatewayRecord(t, "c1", cachedBody, textMessage("hi"), textMessage("HI"), tok)
	for _, ev := range rec.Events {
		if ev.EventType == "response.original" {
			ev.PayloadJson = []byte(`{"_luthien_truncated":{"original_bytes":5000000,"kept_bytes":12},"head":"{\"id\":\"msg_1\""}`)
		}
	}
	c.record(rec)
	if got := c.apply("c2", cachedBody, credA, nil); got.GetContinue() == nil {
		t.Fatalf("a truncated response filled the cache: %v", got)
	}
}
