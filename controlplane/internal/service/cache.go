package service

import (
	"context"
	"log/slog"
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

// maxScopeBytes bounds the credential hash a request names; a longer one
// is not a hash of ours and the request is not cached.
const maxScopeBytes = 128

// ResponseCache connects the response cache to the call sessions: a
// session answers an identical request from it, and caches upstream's
// response to a call as the session itself received it (whole, or the
// events of a stream), never what a gateway's record says. An entry is
// upstream's answer to a request as sent upstream, for one credential (the
// key's scope is the request's credential hash), so the policies are not
// part of the key: a cached answer goes through the response phase of the
// policy that decides the request, as a fresh one would. A nil
// *ResponseCache does nothing.
type ResponseCache struct {
	cache    *cache.Cache
	recorder policy.Recorder
	logger   *slog.Logger
}

// NewResponseCache returns a ResponseCache over c, or nil when c caches
// nothing. Hits and misses are recorded through recorder.
func NewResponseCache(c *cache.Cache, recorder policy.Recorder, logger *slog.Logger) *ResponseCache {
	if !c.Enabled() {
		return nil
	}
	return &ResponseCache{cache: c, recorder: recorder, logger: logger}
}

// cachePlan is what the cache does for one call whose request the
// policies let through: answer it (hit), or remember its key so that its
// response can be stored (fill).
type cachePlan struct {
	hit  *cpv1.Message // the cached answer; nil on a miss
	key  string        // "" when the call is not cacheable
	fill bool          // the response may be stored under key
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
	p := cachePlan{key: key}
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

// pendingFill is upstream's response to a call, as its session received
// it, to cache under the call's key.
type pendingFill struct {
	callID string
	key    string
	msg    *cpv1.Message
}

// fill caches a response.
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
