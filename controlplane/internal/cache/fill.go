package cache

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Defaults of a Fills table.
const (
	// DefaultFillTTL is how long a cache-fill token stays valid: longer
	// than nearly every call, so that a long generation still fills the
	// cache, short enough that few are outstanding.
	DefaultFillTTL = 15 * time.Minute
	// DefaultFillBytes bounds the memory of the outstanding tokens (about
	// 20 000 of them).
	DefaultFillBytes = 4 << 20
)

// fillOverhead is what an entry costs besides its strings: the map slot,
// the list element and the struct.
const fillOverhead = 160

// Fill is what a cache-fill token allows: caching upstream's response to
// one call, under one key.
type Fill struct {
	// CallID is the call whose record may fill the cache.
	CallID string
	// Key is the cache key of the request as it went upstream.
	Key string
	// Scope is the scope the key was computed with (the credential hash),
	// to check the record's request against the key.
	Scope string
}

// Fills issues one-time cache-fill tokens and redeems them. The cache
// holds only responses a gateway received from upstream: the control
// plane issues a token when a cacheable request misses, the gateway sends
// it back with the call's record, and only a record with a valid, unused
// token of the same call and key fills the cache. Tokens live in this
// process, for a TTL, in a table bounded in bytes (the oldest token goes
// first when it is full). A nil *Fills issues nothing. It is safe for
// concurrent use.
type Fills struct {
	ttl      time.Duration
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	bytes   int
	tokens  map[string]*list.Element
	order   *list.List // oldest first; every entry has the same TTL
	evicted int64
}

type fillEntry struct {
	token   string
	fill    Fill
	expires time.Time
	size    int
}

// NewFills returns a table of tokens valid for ttl (DefaultFillTTL when
// <= 0) holding at most maxBytes (DefaultFillBytes when <= 0).
func NewFills(ttl time.Duration, maxBytes int) *Fills {
	if ttl <= 0 {
		ttl = DefaultFillTTL
	}
	if maxBytes <= 0 {
		maxBytes = DefaultFillBytes
	}
	return &Fills{ttl: ttl, maxBytes: maxBytes, now: time.Now, tokens: make(map[string]*list.Element), order: list.New()}
}

// Issue returns a new token for f.
func (t *Fills) Issue(f Fill) string {
	if t == nil {
		return ""
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	e := &fillEntry{token: token, fill: f, size: fillOverhead + len(token) + len(f.CallID) + len(f.Key) + len(f.Scope)}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e.expires = now.Add(t.ttl)
	t.expireLocked(now)
	t.tokens[token] = t.order.PushBack(e)
	t.bytes += e.size
	for t.bytes > t.maxBytes && t.order.Len() > 1 {
		t.removeLocked(t.order.Front())
		t.evicted++
	}
	return token
}

// Redeem returns what token allows and invalidates it; false when the
// token is unknown, used or expired.
func (t *Fills) Redeem(token string) (Fill, bool) {
	if t == nil || token == "" {
		return Fill{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.tokens[token]
	if !ok {
		return Fill{}, false
	}
	e := el.Value.(*fillEntry)
	t.removeLocked(el)
	if !t.now().Before(e.expires) {
		return Fill{}, false
	}
	return e.fill, true
}

// Outstanding is the number of tokens issued and neither redeemed nor
// expired yet (expired ones are counted until the next Issue).
func (t *Fills) Outstanding() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

// Evicted is the number of tokens dropped unused because the table was
// full.
func (t *Fills) Evicted() int64 {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evicted
}

// expireLocked drops the expired tokens, which are the oldest.
func (t *Fills) expireLocked(now time.Time) {
	for el := t.order.Front(); el != nil && !now.Before(el.Value.(*fillEntry).expires); el = t.order.Front() {
		t.removeLocked(el)
	}
}

func (t *Fills) removeLocked(el *list.Element) {
	e := t.order.Remove(el).(*fillEntry)
	delete(t.tokens, e.token)
	t.bytes -= e.size
}
