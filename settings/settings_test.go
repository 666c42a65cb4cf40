package settings

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

// testConfig is a small configuration bound to a Set.
type testConfig struct {
	addr    string
	queue   int
	ttl     time.Duration
	mode    string
	key     string
	verbose bool
	hosts   []string
}

func newTestSet(c *testConfig) *Set {
	s := NewSet("test")
	Bind(s, &c.addr, HostPort{Flag: "addr", Env: "T_ADDR", Default: "127.0.0.1:1", Usage: "listen address"})
	Bind(s, &c.queue, Int{Flag: "queue", Env: "T_QUEUE", Default: 10, Min: 1, Unit: "events", Usage: "queue capacity"})
	Bind(s, &c.ttl, Duration{Flag: "ttl", Env: "T_TTL", Default: time.Hour, Zero: true, Usage: "lifetime"})
	Bind(s, &c.mode, Enum{Flag: "mode", Env: "T_MODE", Default: "a", Values: []string{"a", "b"}, Usage: "mode"})
	Bind(s, &c.key, String{Flag: "key", Env: "T_KEY", Secret: true, Check: func(v string) error {
		if len(v) < 8 {
			return errors.New("too short")
		}
		return nil
	}, Usage: "a key"})
	Bind(s, &c.verbose, Bool{Flag: "verbose", Env: "T_VERBOSE", Usage: "1: say more"})
	Bind(s, &c.hosts, List{Flag: "hosts", Env: "T_HOSTS", Usage: "hosts"})
	return s
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestPrecedence checks that flags beat the environment, which beats the
// defaults, setting by setting.
func TestPrecedence(t *testing.T) {
	var c testConfig
	err := newTestSet(&c).Parse([]string{"-queue", "3", "-mode=B"},
		env(map[string]string{"T_QUEUE": "5", "T_TTL": "5m", "T_MODE": "b", "T_HOSTS": " x, ,y"}))
	if err != nil {
		t.Fatal(err)
	}
	want := testConfig{addr: "127.0.0.1:1", queue: 3, ttl: 5 * time.Minute, mode: "b", hosts: []string{"x", "y"}}
	if c.addr != want.addr || c.queue != want.queue || c.ttl != want.ttl || c.mode != want.mode || strings.Join(c.hosts, "|") != "x|y" {
		t.Errorf("got %+v, want %+v", c, want)
	}
}

// TestEmptyIsUnset checks that an empty variable is unset and that an
// empty flag beats the variable with the default.
func TestEmptyIsUnset(t *testing.T) {
	var c testConfig
	if err := newTestSet(&c).Parse([]string{"-queue="}, env(map[string]string{"T_QUEUE": "5", "T_TTL": ""})); err != nil {
		t.Fatal(err)
	}
	if c.queue != 10 || c.ttl != time.Hour {
		t.Errorf("queue %d, ttl %v: want the defaults", c.queue, c.ttl)
	}
}

// TestEnvironmentReadOnlyWithoutFlag checks that a variable is not read
// for a setting given on the command line.
func TestEnvironmentReadOnlyWithoutFlag(t *testing.T) {
	var c testConfig
	var asked []string
	err := newTestSet(&c).Parse([]string{"-key", "flag-key-123"}, func(name string) string {
		asked = append(asked, name)
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(asked, ",") != "T_ADDR,T_QUEUE,T_TTL,T_MODE,T_VERBOSE,T_HOSTS" {
		t.Errorf("asked for %v", asked)
	}
	if c.key != "flag-key-123" {
		t.Errorf("key %q", c.key)
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
		not  string
	}{
		{name: "bad int from a flag", args: []string{"-queue", "0"}, want: []string{`invalid -queue (T_QUEUE) "0": want a whole number of events, 1 or more`}},
		{name: "bad int from the environment", env: map[string]string{"T_QUEUE": "many"}, want: []string{`-queue (T_QUEUE) "many"`}},
		{name: "every bad value", env: map[string]string{"T_TTL": "-1s", "T_MODE": "c", "T_ADDR": "nowhere"},
			want: []string{"-ttl (T_TTL)", "want a duration such as 1h, or 0", "-mode (T_MODE)", "want a or b", "-addr (T_ADDR)", "want host:port"}},
		{name: "a secret is not quoted", env: map[string]string{"T_KEY": "hunter2"}, want: []string{"invalid -key (T_KEY): too short"}, not: "hunter2"},
		{name: "bad switch", args: []string{"-verbose", "yes"}, want: []string{"-verbose (T_VERBOSE)", "want 1 or 0"}},
		{name: "unknown flag", args: []string{"-nope"}, want: []string{"flag provided but not defined: -nope"}},
		{name: "positional argument", args: []string{"serve"}, want: []string{`unexpected argument "serve"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			err := newTestSet(&c).Parse(tt.args, env(tt.env))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("error %q shows %q", err, tt.not)
			}
		})
	}
	var c testConfig
	err := newTestSet(&c).Parse(nil, env(map[string]string{"T_QUEUE": "x"}))
	var se *Error
	if !errors.As(err, &se) || se.Flag != "queue" || se.Env != "T_QUEUE" {
		t.Errorf("got %#v, want a *Error for -queue", err)
	}
}

func TestHelp(t *testing.T) {
	var c testConfig
	err := newTestSet(&c).Parse([]string{"-h"}, env(map[string]string{"T_KEY": "secret-from-env"}))
	var help *HelpError
	if !errors.As(err, &help) || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want a HelpError", err)
	}
	for _, want := range []string{"Usage of test:\n", "  -addr host:port\n    \tlisten address ($T_ADDR) (default \"127.0.0.1:1\")\n",
		"  -mode a|b\n", "  -ttl duration\n    \tlifetime ($T_TTL) (default \"1h\")\n", "  -verbose 1|0\n    \t1: say more ($T_VERBOSE)\n"} {
		if !strings.Contains(help.Usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, help.Usage)
		}
	}
	if strings.Contains(help.Usage, "secret-from-env") {
		t.Error("usage shows a value from the environment")
	}
	if strings.Index(help.Usage, "-addr") > strings.Index(help.Usage, "-verbose") {
		t.Error("flags not in order")
	}
}

func TestNames(t *testing.T) {
	names, err := Names(func(getenv func(string) string) error {
		var c testConfig
		err := newTestSet(&c).Parse(nil, getenv)
		getenv("T_EXTRA")
		getenv("T_ADDR")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteNames(&out, names); err != nil {
		t.Fatal(err)
	}
	if want := "T_ADDR\nT_QUEUE\nT_TTL\nT_MODE\nT_KEY\nT_VERBOSE\nT_HOSTS\nT_EXTRA\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if _, err := Names(func(func(string) string) error { return errors.New("broken") }); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("a failing loader gave %v", err)
	}
	for args, want := range map[string]bool{"-list-settings": true, "--list-settings": true, "-list-settings -h": false, "": false, "-h": false} {
		if got := ListRequested(strings.Fields(args)); got != want {
			t.Errorf("ListRequested(%q) = %v", args, got)
		}
	}
}
