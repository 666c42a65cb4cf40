// Package shared declares the settings both binaries read: the control
// plane's start-up policy and persistence settings (docs/PERSISTENCE.md),
// the log settings and the link token. The control plane binary reads
// them for itself; the gateway reads the control plane's for the control
// plane it links in (LUTHIEN_CONTROL_PLANE=inprocess), and the log
// settings and the token for itself as well. Declared here once, each has
// one flag, variable, default and validation in both binaries.
//
// The two binaries' loaders used to differ; what each setting is now:
//
//   - LUTHIEN_STORE_QUEUE: default 10000, at least 1. The gateway's
//     default was 0, read as "the default" (10000) by the store, and it
//     took 0; the control plane refused 0. A capacity of 0 reads as "no
//     queue", which the store never had: refused in both.
//   - LUTHIEN_CACHE_MODE: temperature0, all or off, whatever the case
//     (the control plane's rule), normalized to lower case. The gateway
//     refused "ALL".
//   - LUTHIEN_LOG_FORMAT: text or json, whatever the case. Both refused
//     "JSON"; an empty flag was text for the control plane and an error
//     for the gateway: empty is the default everywhere now.
//   - LUTHIEN_LOG_LEVEL: slog's levels (debug, info, warn, error, any
//     case, with an offset such as debug+2), as both had; one error text.
//   - LUTHIEN_REDIS_PREFIX: default "luthien:" in both. The gateway's
//     was empty, which the server read as "luthien:": the same prefix,
//     now shown by -h and in the logs.
//   - LUTHIEN_RETENTION_DAYS: 0 (keep) to 36500 (100 years). Both took
//     any number from 0; above 106751 days the purge's cut-off overflowed
//     into the future and every call was purged.
//   - LUTHIEN_CACHE_TTL: a duration from 0 (0 disables the cache),
//     default 1h, as both had.
//   - LUTHIEN_POLICY_CONFIG: an existing regular file, checked at start
//     (the control plane's rule). The gateway's in-process control plane
//     found a missing file only when it loaded it, in an error that named
//     neither the flag nor the variable.
//   - DATABASE_URL: a postgres:// or postgresql:// URL; REDIS_URL: a
//     redis://, rediss:// or unix:// URL. Neither binary checked them
//     before connecting. Both are secrets: never quoted in errors, and -h
//     no longer shows the control plane's environment values as defaults.
//   - LUTHIEN_CONTROL_PLANE_TOKEN and LUTHIEN_CONTROL_PLANE_TOKEN_FILE:
//     the same rules in both (one or the other; the file trimmed and not
//     empty; 16 printable ASCII characters or more), read by ReadToken.
//     The flags keep their names: -control-plane-token-file on the
//     gateway, -token-file on the control plane.
//
// Not shared: the gateway's LUTHIEN_METRICS_MODELS (its own metrics) and
// the control plane's LUTHIEN_METRICS_ADDR (a listener of its own) are
// different settings; the judge, external policy and OTEL_* settings are
// read from the environment where they are used, by the same code in both
// binaries.
package shared

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"luthien.dev/settings"
)

// The control plane's start-up policy and the log settings.
var (
	// PolicyConfig is the policy the control plane starts with (a row in
	// the database wins over it).
	PolicyConfig = settings.String{Flag: "policy-config", Env: "LUTHIEN_POLICY_CONFIG",
		Usage: "policy configuration file (YAML) the control plane starts with (unset: noop)", Check: settings.RegularFile}
	// LogLevel is the lowest level logged.
	LogLevel = settings.Custom[slog.Level]{Flag: "log-level", Env: "LUTHIEN_LOG_LEVEL", Default: "info", Arg: "level",
		Usage: "lowest level logged: debug, info, warn or error", Func: parseLevel}
	// LogFormat is the format of the log lines.
	LogFormat = settings.Enum{Flag: "log-format", Env: "LUTHIEN_LOG_FORMAT", Default: "text", Values: []string{"text", "json"},
		Usage: "log lines: text (key=value) or json (one object per line)"}
)

// The persistence settings (docs/PERSISTENCE.md), bound by
// Persistence.Bind.
var (
	// DatabaseURL is the PostgreSQL database; unset: the memory store.
	DatabaseURL = settings.URL{Flag: "database-url", Env: "DATABASE_URL", Schemes: []string{"postgres", "postgresql"}, Secret: true,
		Usage: "PostgreSQL URL of the call records and the active policy (unset: calls kept in memory)"}
	// RedisURL is the Redis server; unset: in-process feed and cache.
	RedisURL = settings.URL{Flag: "redis-url", Env: "REDIS_URL", Schemes: []string{"redis", "rediss", "unix"}, Secret: true,
		Usage: "Redis URL of the shared activity feed, response cache and policy changes (unset: in-process)"}
	// RedisPrefix prefixes the Redis keys and channels.
	RedisPrefix = settings.String{Flag: "redis-prefix", Env: "LUTHIEN_REDIS_PREFIX", Default: DefaultRedisPrefix,
		Usage: "prefix of Redis keys and channels"}
	// RetentionDays purges older calls; 0 keeps them.
	RetentionDays = settings.Int{Flag: "retention-days", Env: "LUTHIEN_RETENTION_DAYS", Min: 0, Max: MaxRetentionDays, Unit: "days",
		Usage: "purge calls older than this many days (0: keep them)"}
	// CacheTTL is the response cache's lifetime; 0 disables the cache.
	CacheTTL = settings.Duration{Flag: "cache-ttl", Env: "LUTHIEN_CACHE_TTL", Default: DefaultCacheTTL, Zero: true,
		Usage: "response cache lifetime (0 disables the cache)"}
	// CacheMode says which requests are cacheable.
	CacheMode = settings.Enum{Flag: "cache-mode", Env: "LUTHIEN_CACHE_MODE", Default: "temperature0",
		Values: []string{"temperature0", "all", "off"}, Usage: "cacheable requests: temperature0, all or off"}
	// StoreQueue is the write queue's capacity in events.
	StoreQueue = settings.Int{Flag: "store-queue", Env: "LUTHIEN_STORE_QUEUE", Default: DefaultQueueCapacity, Min: 1, Unit: "events",
		Usage: "write queue capacity in events"}
)

// Defaults and bounds of the persistence settings; the control plane's
// server package has the same defaults (its tests compare them).
const (
	// DefaultRedisPrefix is the default of LUTHIEN_REDIS_PREFIX.
	DefaultRedisPrefix = "luthien:"
	// DefaultCacheTTL is the default of LUTHIEN_CACHE_TTL.
	DefaultCacheTTL = time.Hour
	// DefaultQueueCapacity is the default of LUTHIEN_STORE_QUEUE.
	DefaultQueueCapacity = 10000
	// MaxRetentionDays is 100 years: far below the 106751 days a
	// time.Duration holds.
	MaxRetentionDays = 36500
)

// Persistence holds the persistence settings, named as server.Config
// names them.
type Persistence struct {
	DatabaseURL   string
	RedisURL      string
	RedisPrefix   string
	RetentionDays int
	CacheTTL      time.Duration
	// CacheMode is temperature0, all or off.
	CacheMode     string
	QueueCapacity int
}

// Bind binds every persistence setting to p.
func (p *Persistence) Bind(s *settings.Set) {
	settings.Bind(s, &p.DatabaseURL, DatabaseURL)
	settings.Bind(s, &p.RedisURL, RedisURL)
	settings.Bind(s, &p.RedisPrefix, RedisPrefix)
	settings.Bind(s, &p.RetentionDays, RetentionDays)
	settings.Bind(s, &p.CacheTTL, CacheTTL)
	settings.Bind(s, &p.CacheMode, CacheMode)
	settings.Bind(s, &p.QueueCapacity, StoreQueue)
}

// parseLevel parses a slog level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

// The link token: the shared secret the gateway presents and the control
// plane checks. It has no flag: a flag would show in process listings.
const (
	// EnvToken holds the token itself.
	EnvToken = "LUTHIEN_CONTROL_PLANE_TOKEN"
	// EnvTokenFile names a file holding the token instead.
	EnvTokenFile = "LUTHIEN_CONTROL_PLANE_TOKEN_FILE"
	// MinTokenLen is the shortest token accepted: a shared secret that
	// can be guessed protects nothing.
	MinTokenLen = 16
)

// TokenFile declares the file holding the token, with the binary's flag
// name and usage.
func TokenFile(flag, usage string) settings.String {
	return settings.String{Flag: flag, Env: EnvTokenFile, Usage: usage}
}

// ReadToken returns the token: $LUTHIEN_CONTROL_PLANE_TOKEN, or the
// content of path (the value of the setting file), trimmed; not both.
// Empty: no token.
func ReadToken(getenv func(string) string, file settings.String, path string) (string, error) {
	token := getenv(EnvToken)
	switch {
	case token != "" && path != "":
		return "", fmt.Errorf("%s and -%s (%s) are both set: set one", EnvToken, file.Flag, file.Env)
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("invalid -%s (%s): %w", file.Flag, file.Env, err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return "", fmt.Errorf("invalid -%s (%s): %s is empty", file.Flag, file.Env, path)
		}
	}
	if err := CheckToken(token); err != nil {
		return "", fmt.Errorf("invalid control plane token (%s or %s): %w", EnvToken, EnvTokenFile, err)
	}
	return token, nil
}

// CheckToken checks a token's length and characters (printable ASCII
// without spaces, as a gRPC metadata value carries it unchanged); empty
// is no token.
func CheckToken(token string) error {
	if token == "" {
		return nil
	}
	if len(token) < MinTokenLen {
		return fmt.Errorf("shorter than %d characters (e.g. openssl rand -hex 32)", MinTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return errors.New("only printable ASCII characters without spaces are allowed")
		}
	}
	return nil
}
