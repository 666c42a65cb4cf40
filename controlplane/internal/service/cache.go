package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"luthien.dev/controlplane/internal/cache"
	"luthien.dev/controlplane/internal/policy"
	"luthien.dev/controlplane/internal/store"
	"luthien.dev/controlplane/internal/wire"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Deadlines of cache operations: a lookup is on the request path and
// must not slow it when the cache is unreachable.
const (
	cacheLookupTimeout = 200 * time.Millisecond
	cacheStoreTimeout  = 2 * time.Second
)

// maxScopeBytes bounds the credential hash a request names; a longer one
// is not a hash of ours and the request is not cached.
const maxScopeBytes = 128

// ResponseCache connects the response cache to the policy services: it
// answers identical requests from the cache and caches upstream's
// responses of recorded calls. An entry is upstream's answer to a request
// as sent upstream, for one credential (the key's scope is the request's
// credential hash), so the policies are not part of the key: a cached
// answer goes through the response phase of the policy that decides the
// request, as a fresh one would. Only a record that brings back the
// cache-fill token issued for its call fills the cache. A nil
// *ResponseCache does nothing.
type ResponseCache struct {
	cache    *cache.Cache
	fills    *cache.Fills
	recorder policy.Recorder
	logger   *slog.Logger
}

// NewResponseCache returns a ResponseCache over c, or nil when c caches
// nothing. Hits and misses are recorded through recorder.
func NewResponseCache(c *cache.Cache, recorder policy.Recorder, logger *slog.Logger) *ResponseCache {
	if !c.Enabled() {
		return nil
	}
	return &ResponseCache{cache: c, fills: cache.NewFills(0, 0), recorder: recorder, logger: logger}
}

// cachePlan is what the cache does for one call whose request the
// policies let through: answer it (hit), or remember its key so that its
// response can be stored (fill).
type cachePlan struct {
	hit     *cpv1.Message // the cached answer; nil on a miss
	request []byte        // the request as it goes upstream
	key     string        // "" when the call is not cacheable
	scope   string
	fill    bool // the response may be stored under key
}

// plan looks a call up: the request as it goes upstream (body), from the
// call's metadata. A request that asks to bypass the cache is not
// answered from it, and fills it unless it also says no-store; a miss
// fills it.
func (rc *ResponseCache) plan(ctx context.Context, callID string, format cpv1.ClientFormat, body []byte, meta *cpv1.RequestMetadata) cachePlan {
	scope := meta.GetCredentialSha256()
	if rc == nil || len(scope) > maxScopeBytes {
		return cachePlan{}
	}
	key, ok := rc.cache.Key(format, body, scope)
	if !ok {
		return cachePlan{}
	}
	p := cachePlan{request: body, key: key, scope: scope}
	if headers := meta.GetHeaders(); cache.Bypass(headers) {
		p.fill = !cache.NoStore(headers)
		return p
	}
	lctx, cancel := context.WithTimeout(ctx, cacheLookupTimeout)
	msg, hit := rc.cache.Get(lctx, key)
	cancel()
	call := &policy.Call{ID: callID, Format: format, Metadata: meta, Recorder: rc.recorder}
	details := map[string]any{"key": key[:16], "cache": rc.cache.Kind()}
	if !hit {
		call.Record(ctx, "cache.miss", details)
		p.fill = true
		return p
	}
	call.Record(ctx, "cache.hit", details)
	p.hit = msg
	return p
}

// lookup plans a call of the request-policy RPC: on a hit it returns the
// cached answer and the request as it went upstream; a call that may fill
// the cache gets a fill token in resp, for its record.
func (rc *ResponseCache) lookup(ctx context.Context, req *cpv1.ApplyRequestPoliciesRequest, resp *cpv1.ApplyRequestPoliciesResponse) (*cpv1.Message, []byte) {
	cont := resp.GetContinue()
	if rc == nil || cont == nil {
		return nil, nil
	}
	body := req.GetBody()
	if cont.Body != nil {
		body = cont.Body
	}
	p := rc.plan(ctx, req.GetCallId(), req.GetFormat(), body, req.GetMetadata())
	if p.fill {
		resp.CacheFillToken = rc.fills.Issue(cache.Fill{CallID: req.GetCallId(), Key: p.key, Scope: p.scope})
	}
	return p.hit, p.request
}

// pendingFill is upstream's response to a recorded call, allowed into the
// cache by the call's fill token.
type pendingFill struct {
	callID string
	key    string
	msg    *cpv1.Message
}

// claim redeems the cache-fill token of a record and returns upstream's
// response to cache; nil when the record has no valid token of its own
// call and request, or did not succeed upstream. Call it before the record
// is redacted: the cache keeps the response as upstream gave it.
func (rc *ResponseCache) claim(ctx context.Context, rec *cpv1.CallRecord) *pendingFill {
	token := rec.GetCacheFillToken()
	if rc == nil || token == "" {
		return nil
	}
	sum := rec.GetSummary()
	fill, ok := rc.fills.Redeem(token)
	if !ok {
		rc.logger.DebugContext(ctx, "cache fill token unknown, used or expired", "call_id", sum.GetCallId())
		return nil
	}
	if fill.CallID != sum.GetCallId() {
		rc.logger.WarnContext(ctx, "cache fill refused: the token was issued for another call", "call_id", sum.GetCallId())
		return nil
	}
	if key, ok := rc.cache.Key(sum.GetFormat(), rec.GetFinalRequest(), fill.Scope); !ok || key != fill.Key {
		rc.logger.WarnContext(ctx, "cache fill refused: the recorded request is not the one the token was issued for", "call_id", sum.GetCallId())
		return nil
	}
	if sum.GetStatus() != http.StatusOK || sum.GetUpstream() == "" || sum.GetError() != "" {
		return nil
	}
	msg, err := upstreamResponse(rec)
	if err != nil {
		rc.logger.WarnContext(ctx, "cache fill skipped: upstream's response not found in the record", "call_id", sum.GetCallId(), "error", err)
		return nil
	}
	return &pendingFill{callID: sum.GetCallId(), key: fill.Key, msg: msg}
}

// upstreamResponse returns the response a record says upstream gave: the
// final response when no policy changed it, else the response.original
// event, parsed. A body the gateway recorded truncated, or an answer
// without content, is not one to cache.
func upstreamResponse(rec *cpv1.CallRecord) (*cpv1.Message, error) {
	msg, err := recordedResponse(rec)
	if err == nil && len(msg.GetContent()) == 0 {
		err = errors.New("no content")
	}
	return msg, err
}

func recordedResponse(rec *cpv1.CallRecord) (*cpv1.Message, error) {
	if rec.GetResponseUnchanged() {
		if rec.GetFinalResponse() == nil {
			return nil, errors.New("no final response")
		}
		return rec.GetFinalResponse(), nil
	}
	for _, ev := range rec.GetEvents() {
		if ev.GetEventType() != "response.original" {
			continue
		}
		body := store.PayloadJSON(ev)
		if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte(`{"`+store.TruncatedField+`"`)) {
			return nil, errors.New("response.original was truncated")
		}
		return wire.ParseMessage(rec.GetSummary().GetFormat(), body)
	}
	return nil, errors.New("no response.original event")
}

// fill caches a claimed response.
func (rc *ResponseCache) fill(ctx context.Context, p *pendingFill) {
	if rc == nil || p == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheStoreTimeout)
	defer cancel()
	if err := rc.cache.Put(sctx, p.key, p.msg); err != nil {
		rc.logger.WarnContext(ctx, "caching a response failed", "call_id", p.callID, "error", err)
	}
}

// CachingPolicyService is a PolicyService that answers requests from the
// response cache when it can.
type CachingPolicyService struct {
	*PolicyService
	cache *ResponseCache
}

var _ cpv1.PolicyServiceServer = (*CachingPolicyService)(nil)

// NewCachingPolicyService wraps s with cache (nil: s unchanged).
func NewCachingPolicyService(s *PolicyService, cache *ResponseCache) *CachingPolicyService {
	return &CachingPolicyService{PolicyService: s, cache: cache}
}

// ApplyRequestPolicies runs the request policies; a request they let
// through whose response is cached is answered with it (respond), after
// the response phase of the same policy revision: a cached answer passes
// the response policies active when it is served, never fewer. A response
// policy that fails on it fails the call, as it would a fresh response.
func (s *CachingPolicyService) ApplyRequestPolicies(ctx context.Context, req *cpv1.ApplyRequestPoliciesRequest) (*cpv1.ApplyRequestPoliciesResponse, error) {
	resp, err := s.PolicyService.ApplyRequestPolicies(ctx, req)
	if err != nil {
		return resp, err
	}
	msg, request := s.cache.lookup(ctx, req, resp)
	if msg == nil {
		return resp, nil
	}
	if active := s.store.Lookup(resp.GetPolicyRevision()); active.Policy.InspectsResponse() {
		call := &policy.Call{ID: req.GetCallId(), Format: req.GetFormat(), Request: request, Metadata: req.GetMetadata(), Recorder: s.recorder}
		if msg, _, err = decideResponse(ctx, active, call, msg); err != nil {
			return nil, s.policyError(ctx, active, call, "on cached response", err)
		}
	}
	resp.Outcome = &cpv1.ApplyRequestPoliciesResponse_Respond{Respond: &cpv1.Respond{Message: msg}}
	resp.InspectResponse = false
	return resp, nil
}
