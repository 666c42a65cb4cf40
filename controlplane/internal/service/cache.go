package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"luthien.dev/controlplane/internal/cache"
	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Deadlines of cache operations: a lookup is on the request path and
// must not slow it when the cache is unreachable.
const (
	cacheLookupTimeout = 200 * time.Millisecond
	cacheStoreTimeout  = 2 * time.Second
)

// ResponseCache connects the response cache to the policy services: it
// answers identical requests from the cache and caches the responses of
// recorded calls. Keys are scoped by the policy (class and config) that
// produced the response, so a change of policy never serves a response
// made under another one. A nil *ResponseCache does nothing.
type ResponseCache struct {
	cache    *cache.Cache
	policies *Store
	recorder policy.Recorder
	logger   *slog.Logger
	scopes   sync.Map // revision -> scope
}

// NewResponseCache returns a ResponseCache over c, or nil when c caches
// nothing. Hits and misses are recorded through recorder.
func NewResponseCache(c *cache.Cache, policies *Store, recorder policy.Recorder, logger *slog.Logger) *ResponseCache {
	if !c.Enabled() {
		return nil
	}
	return &ResponseCache{cache: c, policies: policies, recorder: recorder, logger: logger}
}

// scope identifies the policy of a revision: a hash of its class and
// config, the same on every control plane. It is false when the revision
// is unknown here.
func (rc *ResponseCache) scope(revision string) (string, bool) {
	if v, ok := rc.scopes.Load(revision); ok {
		return v.(string), true
	}
	a := rc.policies.Lookup(revision)
	if revision == "" || a.Revision != revision {
		return "", false
	}
	desc := a.Proto().GetPolicy()
	cfg, err := json.Marshal(desc.GetConfig().AsMap())
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(append([]byte(desc.GetClass()+"\x00"), cfg...))
	scope := hex.EncodeToString(sum[:16])
	rc.scopes.Store(revision, scope)
	return scope, true
}

// lookup answers a request that the policies let through from the cache
// when it holds the response, recording cache.hit or cache.miss.
func (rc *ResponseCache) lookup(ctx context.Context, req *cpv1.ApplyRequestPoliciesRequest, resp *cpv1.ApplyRequestPoliciesResponse) {
	cont := resp.GetContinue()
	if rc == nil || cont == nil || cache.Bypass(req.GetMetadata().GetHeaders()) {
		return
	}
	body := req.GetBody()
	if cont.Body != nil {
		body = cont.Body
	}
	scope, ok := rc.scope(resp.GetPolicyRevision())
	if !ok {
		return
	}
	key, ok := rc.cache.Key(req.GetFormat(), body, scope)
	if !ok {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, cacheLookupTimeout)
	msg, hit := rc.cache.Get(lctx, key)
	cancel()
	call := &policy.Call{ID: req.GetCallId(), Format: req.GetFormat(), Metadata: req.GetMetadata(), Recorder: rc.recorder}
	details := map[string]any{"key": key[:16], "cache": rc.cache.Kind()}
	if !hit {
		call.Record(ctx, "cache.miss", details)
		return
	}
	call.Record(ctx, "cache.hit", details)
	resp.Outcome = &cpv1.ApplyRequestPoliciesResponse_Respond{Respond: &cpv1.Respond{Message: msg}}
	resp.InspectResponse = false
}

// remember caches the final response of a successful call that went
// upstream (a call answered from the cache or by a policy is not cached
// again).
func (rc *ResponseCache) remember(ctx context.Context, rec *cpv1.CallRecord) {
	sum := rec.GetSummary()
	if rc == nil || rec.GetFinalResponse() == nil || len(rec.GetFinalRequest()) == 0 ||
		sum.GetStatus() != http.StatusOK || sum.GetUpstream() == "" || sum.GetError() != "" {
		return
	}
	scope, ok := rc.scope(sum.GetPolicyRevision())
	if !ok {
		return
	}
	key, ok := rc.cache.Key(sum.GetFormat(), rec.GetFinalRequest(), scope)
	if !ok {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheStoreTimeout)
	defer cancel()
	if err := rc.cache.Put(sctx, key, rec.GetFinalResponse()); err != nil {
		rc.logger.WarnContext(ctx, "caching a response failed", "call_id", sum.GetCallId(), "error", err)
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
// through whose response is cached is answered with it (respond).
func (s *CachingPolicyService) ApplyRequestPolicies(ctx context.Context, req *cpv1.ApplyRequestPoliciesRequest) (*cpv1.ApplyRequestPoliciesResponse, error) {
	resp, err := s.PolicyService.ApplyRequestPolicies(ctx, req)
	if err == nil {
		s.cache.lookup(ctx, req, resp)
	}
	return resp, err
}
