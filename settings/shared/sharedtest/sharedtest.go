// Package sharedtest checks a binary's loader against the shared settings:
// every binary runs the same cases (Run), so that the same flags and
// environment give the same values, and the same errors, in each.
package sharedtest

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"luthien.dev/settings/shared"
)

// Values is what a loader made of the shared settings.
type Values struct {
	shared.Persistence
	PolicyConfig string
	LogLevel     slog.Level
	LogFormat    string
	Token        string
}

// Load runs a binary's loader on args (without the program name) and
// getenv, and returns the shared values of its configuration.
type Load func(args []string, getenv func(string) string) (Values, error)

// Defaults are the values with no flag and an empty environment.
func Defaults() Values {
	return Values{Persistence: shared.Persistence{RedisPrefix: "luthien:", CacheTTL: time.Hour, CacheMode: "temperature0",
		QueueCapacity: 10000}, LogLevel: slog.LevelInfo, LogFormat: "text"}
}

// Token is a valid token.
const Token = "sharedtest-token-0123456789abcdef"

// A case's arguments and variables may hold these, replaced by paths.
const (
	policyFile = "{policy}"
	tokenFile  = "{token}"
	dir        = "{dir}"
	absent     = "{absent}"
)

// with returns the defaults with change applied.
func with(change func(*Values)) Values {
	v := Defaults()
	change(&v)
	return v
}

// valueCases give values.
var valueCases = []struct {
	name string
	args []string
	env  map[string]string
	want Values
}{
	{name: "defaults", want: Defaults()},
	{name: "the environment beats the defaults", env: map[string]string{
		"DATABASE_URL": "postgres://u:p@db:5432/x?sslmode=disable", "REDIS_URL": "redis://r:6379/0", "LUTHIEN_REDIS_PREFIX": "t:",
		"LUTHIEN_RETENTION_DAYS": "30", "LUTHIEN_CACHE_TTL": "0", "LUTHIEN_CACHE_MODE": "all", "LUTHIEN_STORE_QUEUE": "50",
		"LUTHIEN_POLICY_CONFIG": policyFile, "LUTHIEN_LOG_LEVEL": "debug", "LUTHIEN_LOG_FORMAT": "json",
		"LUTHIEN_CONTROL_PLANE_TOKEN": Token},
		want: with(func(v *Values) {
			v.DatabaseURL, v.RedisURL, v.RedisPrefix = "postgres://u:p@db:5432/x?sslmode=disable", "redis://r:6379/0", "t:"
			v.RetentionDays, v.CacheTTL, v.CacheMode, v.QueueCapacity = 30, 0, "all", 50
			v.PolicyConfig, v.LogLevel, v.LogFormat, v.Token = policyFile, slog.LevelDebug, "json", Token
		})},
	{name: "flags beat the environment",
		args: []string{"-database-url", "postgresql:///luthien?host=/run/postgresql", "-redis-url", "rediss://r:6380/1",
			"-redis-prefix", "f:", "-retention-days", "7", "-cache-ttl", "5m", "-cache-mode", "off", "-store-queue", "9",
			"-policy-config", policyFile, "-log-level", "warn", "-log-format", "text"},
		env: map[string]string{"DATABASE_URL": "postgres://env/x", "REDIS_URL": "redis://env:6379/0", "LUTHIEN_REDIS_PREFIX": "e:",
			"LUTHIEN_RETENTION_DAYS": "30", "LUTHIEN_CACHE_TTL": "1m", "LUTHIEN_CACHE_MODE": "all", "LUTHIEN_STORE_QUEUE": "50",
			"LUTHIEN_POLICY_CONFIG": absent, "LUTHIEN_LOG_LEVEL": "debug", "LUTHIEN_LOG_FORMAT": "json"},
		want: with(func(v *Values) {
			v.DatabaseURL, v.RedisURL, v.RedisPrefix = "postgresql:///luthien?host=/run/postgresql", "rediss://r:6380/1", "f:"
			v.RetentionDays, v.CacheTTL, v.CacheMode, v.QueueCapacity = 7, 5*time.Minute, "off", 9
			v.PolicyConfig, v.LogLevel, v.LogFormat = policyFile, slog.LevelWarn, "text"
		})},
	{name: "an empty variable is unset", env: map[string]string{"DATABASE_URL": "", "LUTHIEN_REDIS_PREFIX": "",
		"LUTHIEN_CACHE_MODE": "", "LUTHIEN_STORE_QUEUE": "", "LUTHIEN_LOG_FORMAT": ""}, want: Defaults()},
	{name: "an empty flag is the default, over the environment",
		args: []string{"-redis-prefix=", "-cache-mode=", "-store-queue=", "-log-format=", "-database-url="},
		env: map[string]string{"LUTHIEN_REDIS_PREFIX": "e:", "LUTHIEN_CACHE_MODE": "all", "LUTHIEN_STORE_QUEUE": "50",
			"LUTHIEN_LOG_FORMAT": "json", "DATABASE_URL": "postgres://env/x"},
		want: Defaults()},
	{name: "names whatever the case", args: []string{"-cache-mode", "ALL", "-log-level", "Warn"},
		env:  map[string]string{"LUTHIEN_LOG_FORMAT": " JSON "},
		want: with(func(v *Values) { v.CacheMode, v.LogLevel, v.LogFormat = "all", slog.LevelWarn, "json" })},
	{name: "bounds", env: map[string]string{"LUTHIEN_RETENTION_DAYS": "36500", "LUTHIEN_STORE_QUEUE": "1", "LUTHIEN_LOG_LEVEL": "debug+2"},
		want: with(func(v *Values) { v.RetentionDays, v.QueueCapacity, v.LogLevel = 36500, 1, slog.LevelDebug+2 })},
	{name: "token from a file", env: map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN_FILE": tokenFile},
		want: with(func(v *Values) { v.Token = Token })},
}

// errorCases are refused with an error naming the flag ("-name (", as
// settings.Error writes it; none for the token, whose flag differs between
// the binaries) and the variable.
var errorCases = []struct {
	name, flag, env string
	args            []string
	vars            map[string]string
	// also is in the error too; never is not (a secret).
	also, never string
}{
	{name: "queue of 0", flag: "-store-queue (", env: "LUTHIEN_STORE_QUEUE", args: []string{"-store-queue", "0"}, also: "1 or more"},
	{name: "negative queue", flag: "-store-queue (", env: "LUTHIEN_STORE_QUEUE", vars: map[string]string{"LUTHIEN_STORE_QUEUE": "-5"}},
	{name: "negative retention", flag: "-retention-days (", env: "LUTHIEN_RETENTION_DAYS", args: []string{"-retention-days", "-1"}},
	{name: "retention past the bound", flag: "-retention-days (", env: "LUTHIEN_RETENTION_DAYS",
		vars: map[string]string{"LUTHIEN_RETENTION_DAYS": "200000"}, also: "from 0 to 36500"},
	{name: "retention not a number", flag: "-retention-days (", env: "LUTHIEN_RETENTION_DAYS", vars: map[string]string{"LUTHIEN_RETENTION_DAYS": "a week"}},
	{name: "cache ttl not a duration", flag: "-cache-ttl (", env: "LUTHIEN_CACHE_TTL", vars: map[string]string{"LUTHIEN_CACHE_TTL": "soon"}},
	{name: "cache ttl without a unit", flag: "-cache-ttl (", env: "LUTHIEN_CACHE_TTL", args: []string{"-cache-ttl", "60"}},
	{name: "negative cache ttl", flag: "-cache-ttl (", env: "LUTHIEN_CACHE_TTL", vars: map[string]string{"LUTHIEN_CACHE_TTL": "-1s"}},
	{name: "unknown cache mode", flag: "-cache-mode (", env: "LUTHIEN_CACHE_MODE", args: []string{"-cache-mode", "sometimes"},
		also: "temperature0, all or off"},
	{name: "unknown log level", flag: "-log-level (", env: "LUTHIEN_LOG_LEVEL", args: []string{"-log-level", "loud"}},
	{name: "unknown log format", flag: "-log-format (", env: "LUTHIEN_LOG_FORMAT", vars: map[string]string{"LUTHIEN_LOG_FORMAT": "yaml"}},
	{name: "database URL of another scheme", flag: "-database-url (", env: "DATABASE_URL",
		vars: map[string]string{"DATABASE_URL": "postgress://luthien:s3cret-pw@db/x"}, never: "s3cret-pw"},
	{name: "database address without a scheme", flag: "-database-url (", env: "DATABASE_URL", args: []string{"-database-url", "db:5432"}},
	{name: "redis URL of another scheme", flag: "-redis-url (", env: "REDIS_URL",
		vars: map[string]string{"REDIS_URL": "http://:s3cret-pw@redis:6379"}, never: "s3cret-pw"},
	{name: "missing policy file", flag: "-policy-config (", env: "LUTHIEN_POLICY_CONFIG", args: []string{"-policy-config", absent},
		also: "absent.yaml"},
	{name: "policy path is a directory", flag: "-policy-config (", env: "LUTHIEN_POLICY_CONFIG",
		vars: map[string]string{"LUTHIEN_POLICY_CONFIG": dir}, also: "not a regular file"},
	{name: "short token", env: "LUTHIEN_CONTROL_PLANE_TOKEN", vars: map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": "short"},
		also: "shorter than 16"},
	{name: "token and token file", env: "LUTHIEN_CONTROL_PLANE_TOKEN_FILE",
		vars: map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": Token, "LUTHIEN_CONTROL_PLANE_TOKEN_FILE": tokenFile}, also: "both set"},
}

// Run runs every case through load.
func Run(t *testing.T, load Load) {
	t.Helper()
	d := t.TempDir()
	paths := strings.NewReplacer(policyFile, write(t, d, "policy.yaml", "policy:\n  class: noop\n"),
		tokenFile, write(t, d, "token", Token+"\n"), dir, d, absent, filepath.Join(d, "absent.yaml"))
	run := func(args []string, env map[string]string) (Values, error) {
		args = slices.Clone(args)
		for i := range args {
			args[i] = paths.Replace(args[i])
		}
		return load(args, func(name string) string { return paths.Replace(env[name]) })
	}
	for _, tt := range valueCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.PolicyConfig = paths.Replace(want.PolicyConfig)
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(tt.args, tt.vars)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, want := range []string{tt.flag, tt.env, tt.also} {
				if want != "" && !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if tt.never != "" && strings.Contains(msg, tt.never) {
				t.Errorf("error %q shows the secret %q", msg, tt.never)
			}
		})
	}
}

// CheckNames checks that names, what a binary's -list-settings prints,
// has every shared variable.
func CheckNames(t *testing.T, names []string) {
	t.Helper()
	for _, n := range []string{shared.PolicyConfig.Env, shared.LogLevel.Env, shared.LogFormat.Env, shared.DatabaseURL.Env,
		shared.RedisURL.Env, shared.RedisPrefix.Env, shared.RetentionDays.Env, shared.CacheTTL.Env, shared.CacheMode.Env,
		shared.StoreQueue.Env, shared.EnvToken, shared.EnvTokenFile} {
		if !slices.Contains(names, n) {
			t.Errorf("the settings listed lack %s: %v", n, names)
		}
	}
}

// write writes a file in dir and returns its path.
func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
