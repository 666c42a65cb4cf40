// Package cache is the exact-match response cache: a response recorded
// for a request is served again for an identical request, without calling
// upstream. Entries live in Redis (shared by every control plane) or in an
// in-process LRU, for a configured time.
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Mode says which requests are cacheable.
type Mode string

// Modes.
const (
	// ModeTemperature0 caches requests that set temperature to 0.
	ModeTemperature0 Mode = "temperature0"
	// ModeAll caches every request.
	ModeAll Mode = "all"
	// ModeOff caches nothing.
	ModeOff Mode = "off"
)

// ParseMode parses a mode; "" is ModeTemperature0.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeTemperature0, nil
	case ModeTemperature0, ModeAll, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("cache mode %q: want temperature0, all or off", s)
}

// ignoredFields are request fields that do not change the answer's
// content, left out of the key.
var ignoredFields = []string{"stream", "stream_options", "metadata"}

// backend stores entries.
type backend interface {
	get(ctx context.Context, key string) ([]byte, bool, error)
	set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// Cache is a response cache. A nil *Cache caches nothing. It is safe for
// concurrent use.
type Cache struct {
	b    backend
	ttl  time.Duration
	mode Mode
	kind string
	log  *slog.Logger

	hits, misses atomic.Int64
}

// Enabled reports whether the cache may hold anything.
func (c *Cache) Enabled() bool { return c != nil && c.ttl > 0 && c.mode != ModeOff }

// Kind returns "redis" or "memory".
func (c *Cache) Kind() string {
	if c == nil {
		return ""
	}
	return c.kind
}

// Key returns the cache key of a request body (the request as sent
// upstream, JSON in the client's format) and whether the request is
// cacheable. scope says whose request it is (a hash of the credential it
// goes upstream with), so that an answer is never served to a caller
// upstream would not have answered; a request without a scope is not
// cacheable. The entry is upstream's answer to the request: the policies
// are not part of the key, since the response policy runs over a cached
// answer as over a fresh one. The key covers the format, the model, the
// scope and the canonical JSON of the request without stream,
// stream_options and metadata.
func (c *Cache) Key(format cpv1.ClientFormat, body []byte, scope string) (string, bool) {
	if !c.Enabled() || scope == "" {
		return "", false
	}
	if c.mode == ModeTemperature0 {
		// Most requests are not cacheable: tell from the temperature alone
		// before building the whole document.
		t, ok := topLevelField(body, "temperature")
		if !ok {
			return "", false
		}
		if f, err := strconv.ParseFloat(string(t), 64); err != nil || f != 0 {
			return "", false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var req map[string]any
	if err := dec.Decode(&req); err != nil || req == nil || dec.More() {
		return "", false
	}
	if c.mode == ModeTemperature0 {
		t, ok := req["temperature"].(json.Number)
		if !ok {
			return "", false
		}
		if f, err := t.Float64(); err != nil || f != 0 {
			return "", false
		}
	}
	for _, f := range ignoredFields {
		delete(req, f)
	}
	canonical, err := json.Marshal(normalize(req))
	if err != nil {
		return "", false
	}
	model, _ := req["model"].(string)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", format, model, scope)
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil)), true
}

// normalize rewrites numbers to one spelling (1.0 and 1e0 are 1); maps
// are marshalled with sorted keys.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
	case json.Number:
		if strings.ContainsAny(t.String(), ".eE") {
			if f, err := t.Float64(); err == nil {
				return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
			}
		}
	}
	return v
}

// Bypass reports whether the client's request headers (names
// lower-cased) ask not to be served from a cache: Cache-Control no-cache
// or no-store, or Pragma no-cache.
func Bypass(headers map[string]string) bool {
	cc := strings.ToLower(headers["cache-control"])
	return strings.Contains(cc, "no-cache") || strings.Contains(cc, "no-store") ||
		strings.Contains(strings.ToLower(headers["pragma"]), "no-cache")
}

// NoStore reports whether the client's request headers (names
// lower-cased) ask that the response not be stored: Cache-Control
// no-store. A no-cache request is answered upstream but refreshes the
// cache.
func NoStore(headers map[string]string) bool {
	return strings.Contains(strings.ToLower(headers["cache-control"]), "no-store")
}

// Get returns the response cached under key. A backend failure counts as
// a miss.
func (c *Cache) Get(ctx context.Context, key string) (*cpv1.Message, bool) {
	if !c.Enabled() {
		return nil, false
	}
	raw, ok, err := c.b.get(ctx, key)
	if err != nil {
		c.log.WarnContext(ctx, "response cache read failed", "error", err)
	}
	if ok {
		var msg cpv1.Message
		if err := proto.Unmarshal(raw, &msg); err == nil {
			c.hits.Add(1)
			return &msg, true
		}
	}
	c.misses.Add(1)
	return nil, false
}

// Put caches msg under key for the cache's TTL.
func (c *Cache) Put(ctx context.Context, key string, msg *cpv1.Message) error {
	if !c.Enabled() || msg == nil {
		return nil
	}
	raw, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := c.b.set(ctx, key, raw, c.ttl); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// Hits is the number of lookups that found a response.
func (c *Cache) Hits() int64 {
	if c == nil {
		return 0
	}
	return c.hits.Load()
}

// Misses is the number of lookups that found none.
func (c *Cache) Misses() int64 {
	if c == nil {
		return 0
	}
	return c.misses.Load()
}
