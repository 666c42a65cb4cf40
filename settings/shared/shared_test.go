package shared_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"luthien.dev/settings"
	"luthien.dev/settings/shared"
	"luthien.dev/settings/shared/sharedtest"
)

// load is the smallest loader of the shared settings: what each binary's
// loader does for them.
func load(args []string, getenv func(string) string) (sharedtest.Values, error) {
	var v sharedtest.Values
	s := settings.NewSet("test")
	v.Persistence.Bind(s)
	settings.Bind(s, &v.PolicyConfig, shared.PolicyConfig)
	settings.Bind(s, &v.LogLevel, shared.LogLevel)
	settings.Bind(s, &v.LogFormat, shared.LogFormat)
	file := shared.TokenFile("token-file", "token file")
	var path string
	settings.Bind(s, &path, file)
	if err := s.Parse(args, getenv); err != nil {
		return v, err
	}
	var err error
	v.Token, err = shared.ReadToken(getenv, file, path)
	return v, err
}

func TestSharedSettings(t *testing.T) {
	sharedtest.Run(t, load)
}

func TestNames(t *testing.T) {
	names, err := settings.Names(func(getenv func(string) string) error {
		_, err := load(nil, getenv)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sharedtest.CheckNames(t, names)
}

// TestDefaults checks that every declared default parses to what an empty
// value gives.
func TestDefaults(t *testing.T) {
	check := func(name string, info settings.Info, parse func(string) (any, error)) {
		t.Helper()
		empty, err := parse("")
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if info.Default == "" {
			return
		}
		def, err := parse(info.Default)
		if err != nil || !reflect.DeepEqual(def, empty) {
			t.Errorf("%s: default %q gives %v, %v; empty gives %v", name, info.Default, def, err, empty)
		}
	}
	for _, d := range []settings.String{shared.PolicyConfig, shared.RedisPrefix} {
		check(d.Env, d.Info(), func(s string) (any, error) { return d.Parse(s) })
	}
	for _, d := range []settings.URL{shared.DatabaseURL, shared.RedisURL} {
		check(d.Env, d.Info(), func(s string) (any, error) { return d.Parse(s) })
	}
	for _, d := range []settings.Int{shared.RetentionDays, shared.StoreQueue} {
		check(d.Env, d.Info(), func(s string) (any, error) { return d.Parse(s) })
	}
	for _, d := range []settings.Enum{shared.CacheMode, shared.LogFormat} {
		check(d.Env, d.Info(), func(s string) (any, error) { return d.Parse(s) })
	}
	check(shared.CacheTTL.Env, shared.CacheTTL.Info(), func(s string) (any, error) { return shared.CacheTTL.Parse(s) })
	check(shared.LogLevel.Env, shared.LogLevel.Info(), func(s string) (any, error) { return shared.LogLevel.Parse(s) })
	if l, _ := shared.LogLevel.Parse(""); l != slog.LevelInfo {
		t.Errorf("default log level %v", l)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, empty := write("good", "  "+sharedtest.Token+"\n"), write("empty", "\n")
	file := shared.TokenFile("control-plane-token-file", "")
	for _, tt := range []struct {
		name, env, path, want, wantErr string
	}{
		{name: "none"},
		{name: "from the variable", env: sharedtest.Token, want: sharedtest.Token},
		{name: "from a file, trimmed", path: good, want: sharedtest.Token},
		{name: "both", env: sharedtest.Token, path: good,
			wantErr: "LUTHIEN_CONTROL_PLANE_TOKEN and -control-plane-token-file (LUTHIEN_CONTROL_PLANE_TOKEN_FILE) are both set"},
		{name: "empty file", path: empty, wantErr: "-control-plane-token-file (LUTHIEN_CONTROL_PLANE_TOKEN_FILE): " + empty + " is empty"},
		{name: "missing file", path: filepath.Join(dir, "absent"), wantErr: "absent"},
		{name: "short", env: "0123456789abcde", wantErr: "shorter than 16"},
		{name: "a space inside", env: "0123456789 abcdef", wantErr: "printable ASCII"},
		{name: "not ASCII", env: "0123456789abcdéf", wantErr: "printable ASCII"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shared.ReadToken(func(name string) string {
				if name == shared.EnvToken {
					return tt.env
				}
				return ""
			}, file, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), tt.env) && tt.env != "" {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestErrorsAreTyped checks that a refused shared value is a
// *settings.Error naming the flag and the variable.
func TestErrorsAreTyped(t *testing.T) {
	_, err := load([]string{"-cache-mode", "never"}, func(string) string { return "" })
	var se *settings.Error
	if !errors.As(err, &se) || se.Flag != "cache-mode" || se.Env != "LUTHIEN_CACHE_MODE" || se.Value != "never" {
		t.Fatalf("got %#v", err)
	}
}
