package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

const anthropic = cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES

func TestKey(t *testing.T) {
	c := NewLRU(10, time.Hour, ModeTemperature0, nil)
	base := `{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	key := func(body string) string {
		t.Helper()
		k, ok := c.Key(anthropic, []byte(body), "scope")
		if !ok {
			t.Fatalf("Key(%s) not cacheable", body)
		}
		return k
	}
	want := key(base)
	same := []string{
		`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"model":"m"}`,
		`{"model":"m","temperature":0.0,"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"}}`,
		" {\n\"model\": \"m\", \"temperature\": 0e0, \"messages\": [{\"content\": \"hi\", \"role\": \"user\"}]}",
	}
	for _, body := range same {
		if got := key(body); got != want {
			t.Errorf("Key(%s) differs from the same request's", body)
		}
	}
	different := []string{
		`{"model":"m2","temperature":0,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi!"}]}`,
		`{"model":"m","temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
	}
	for _, body := range different {
		if got := key(body); got == want {
			t.Errorf("Key(%s) equals another request's", body)
		}
	}
	if k, _ := c.Key(cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT, []byte(base), "scope"); k == want {
		t.Error("the client format is not part of the key")
	}
	if k, _ := c.Key(anthropic, []byte(base), "another credential"); k == want {
		t.Error("the scope is not part of the key")
	}
	if _, ok := c.Key(anthropic, []byte(base), ""); ok {
		t.Error("a request without a scope (no credential) is cacheable")
	}
}

func TestCacheable(t *testing.T) {
	tests := []struct {
		mode Mode
		ttl  time.Duration
		body string
		want bool
	}{
		{ModeTemperature0, time.Hour, `{"model":"m","temperature":0}`, true},
		{ModeTemperature0, time.Hour, `{"model":"m","temperature":0.7}`, false},
		{ModeTemperature0, time.Hour, `{"model":"m"}`, false},
		{ModeTemperature0, time.Hour, `{"model":"m","temperature":"0"}`, false},
		{ModeAll, time.Hour, `{"model":"m","temperature":0.7}`, true},
		{ModeAll, time.Hour, `{"model":"m"}`, true},
		{ModeOff, time.Hour, `{"model":"m","temperature":0}`, false},
		{ModeAll, 0, `{"model":"m"}`, false},
		{ModeAll, time.Hour, `not json`, false},
		{ModeAll, time.Hour, `[1]`, false},
	}
	for _, tt := range tests {
		c := NewLRU(10, tt.ttl, tt.mode, nil)
		if _, ok := c.Key(anthropic, []byte(tt.body), "cred"); ok != tt.want {
			t.Errorf("mode %s ttl %v: Key(%s) cacheable = %v, want %v", tt.mode, tt.ttl, tt.body, ok, tt.want)
		}
	}
	var nilCache *Cache
	if _, ok := nilCache.Key(anthropic, []byte(`{}`), "cred"); ok || nilCache.Enabled() {
		t.Error("a nil cache is enabled")
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeTemperature0, "ALL": ModeAll, " off ": ModeOff, "temperature0": ModeTemperature0} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error("ParseMode accepted an unknown mode")
	}
}

func TestBypass(t *testing.T) {
	for headers, want := range map[*map[string]string]bool{
		{"cache-control": "no-cache"}:            true,
		{"cache-control": "max-age=0, No-Store"}: true,
		{"pragma": "no-cache"}:                   true,
		{"cache-control": "max-age=60"}:          false,
		{}:                                       false,
	} {
		if got := Bypass(*headers); got != want {
			t.Errorf("Bypass(%v) = %v, want %v", *headers, got, want)
		}
	}
	for headers, want := range map[*map[string]string]bool{
		{"cache-control": "no-cache"}:            false,
		{"cache-control": "max-age=0, No-Store"}: true,
		{"pragma": "no-cache"}:                   false,
	} {
		if got := NoStore(*headers); got != want {
			t.Errorf("NoStore(%v) = %v, want %v", *headers, got, want)
		}
	}
}

func message(text string) *cpv1.Message {
	return &cpv1.Message{Id: "msg", Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_Text{Text: &cpv1.TextBlock{Text: text}}}}}
}

// exercise checks a miss, a put, a hit, and the counters.
func exercise(t *testing.T, c *Cache) {
	t.Helper()
	ctx := context.Background()
	key, ok := c.Key(anthropic, []byte(`{"model":"m","temperature":0}`), "cred")
	if !ok {
		t.Fatal("not cacheable")
	}
	if _, hit := c.Get(ctx, key); hit {
		t.Fatal("hit in an empty cache")
	}
	if err := c.Put(ctx, key, message("cached")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, hit := c.Get(ctx, key)
	if !hit || !proto.Equal(got, message("cached")) {
		t.Fatalf("Get = %v, %v; want the cached message", got, hit)
	}
	if c.Hits() != 1 || c.Misses() != 1 {
		t.Errorf("hits %d, misses %d; want 1 and 1", c.Hits(), c.Misses())
	}
}

func TestLRU(t *testing.T) {
	exercise(t, NewLRU(10, time.Hour, ModeTemperature0, nil))

	c := NewLRU(2, time.Minute, ModeAll, nil)
	l := c.b.(*lru)
	now := time.Now()
	l.now = func() time.Time { return now }
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		_ = c.Put(ctx, k, message(k))
	}
	c.Get(ctx, "a")                   // a is now the most recently used
	_ = c.Put(ctx, "c", message("c")) // evicts b
	if _, hit := c.Get(ctx, "b"); hit {
		t.Error("the least recently used entry was kept")
	}
	if _, hit := c.Get(ctx, "a"); !hit {
		t.Error("a recently used entry was evicted")
	}
	now = now.Add(2 * time.Minute)
	if _, hit := c.Get(ctx, "a"); hit {
		t.Error("an expired entry was served")
	}
}

func TestRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "luthien-test:" + hex.EncodeToString(b[:]) + ":"
	c := NewRedis(rdb, prefix, time.Minute, ModeTemperature0, nil)
	exercise(t, c)
	keys, err := rdb.Keys(context.Background(), prefix+"cache:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys under the prefix: %v, %v", keys, err)
	}
	ttl := rdb.TTL(context.Background(), keys[0]).Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("entry TTL %v, want at most a minute", ttl)
	}
	rdb.Del(context.Background(), keys...)
}
