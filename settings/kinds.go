package settings

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The kinds of settings, each a Decl. A kind's Parse takes "" as its
// default and returns it unchecked: the defaults are the declarations'
// own (tests parse every one).
var (
	_ Decl[string]        = String{}
	_ Decl[int]           = Int{}
	_ Decl[time.Duration] = Duration{}
	_ Decl[bool]          = Bool{}
	_ Decl[string]        = Enum{}
	_ Decl[string]        = URL{}
	_ Decl[[]string]      = List{}
	_ Decl[string]        = HostPort{}
	_ Decl[int]           = Custom[int]{}
)

// String is a text setting.
type String struct {
	Flag, Env, Usage, Default string
	// Check, when set, validates a value (RegularFile, for one).
	Check func(string) error
	// Secret keeps the value out of errors.
	Secret bool
}

// Info describes the setting.
func (d String) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: d.Default, Arg: "string", Secret: d.Secret}
}

// Parse returns v once Check accepts it.
func (d String) Parse(v string) (string, error) {
	if v == "" {
		return d.Default, nil
	}
	if d.Check != nil {
		if err := d.Check(v); err != nil {
			return "", err
		}
	}
	return v, nil
}

// Int is a whole number from Min on, up to Max when Max is above Min.
type Int struct {
	Flag, Env, Usage  string
	Default, Min, Max int
	// Unit names what is counted ("days"), for errors.
	Unit string
}

// Info describes the setting.
func (d Int) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: strconv.Itoa(d.Default), Arg: "int"}
}

// Parse parses a decimal number within the bounds.
func (d Int) Parse(v string) (int, error) {
	if v == "" {
		return d.Default, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < d.Min || (d.Max > d.Min && n > d.Max) {
		what := "a whole number"
		if d.Unit != "" {
			what += " of " + d.Unit
		}
		if d.Max > d.Min {
			return 0, fmt.Errorf("want %s from %d to %d", what, d.Min, d.Max)
		}
		return 0, fmt.Errorf("want %s, %d or more", what, d.Min)
	}
	return n, nil
}

// Duration is a Go duration (30s, 1h30m): positive, or 0 as well when
// Zero says so.
type Duration struct {
	Flag, Env, Usage string
	Default          time.Duration
	// Zero accepts 0 (it turns something off, says Usage).
	Zero bool
}

// Info describes the setting.
func (d Duration) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: FormatDuration(d.Default), Arg: "duration"}
}

// Parse parses a duration with its unit; negative ones are refused.
func (d Duration) Parse(v string) (time.Duration, error) {
	if v == "" {
		return d.Default, nil
	}
	t, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || t < 0 || (t == 0 && !d.Zero) {
		example := "30s"
		if d.Default > 0 {
			example = FormatDuration(d.Default)
		}
		if d.Zero {
			return 0, fmt.Errorf("want a duration such as %s, or 0", example)
		}
		return 0, fmt.Errorf("want a positive duration such as %s", example)
	}
	return t, nil
}

// FormatDuration writes d as it is usually typed: 1h rather than 1h0m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// Bool is a switch: 1 or 0 (true, false and the other forms of
// strconv.ParseBool too).
type Bool struct {
	Flag, Env, Usage string
	Default          bool
}

// Info describes the setting.
func (d Bool) Info() Info {
	def := ""
	if d.Default {
		def = "1"
	}
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: def, Arg: "1|0"}
}

// Parse parses a switch.
func (d Bool) Parse(v string) (bool, error) {
	if v == "" {
		return d.Default, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, errors.New("want 1 or 0")
	}
	return b, nil
}

// Enum is one of Values (lower case), matched whatever the case and
// returned in lower case.
type Enum struct {
	Flag, Env, Usage, Default string
	Values                    []string
}

// Info describes the setting.
func (d Enum) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: d.Default, Arg: strings.Join(d.Values, "|")}
}

// Parse returns the value of Values that v names.
func (d Enum) Parse(v string) (string, error) {
	if v == "" {
		return d.Default, nil
	}
	if n := strings.ToLower(strings.TrimSpace(v)); slices.Contains(d.Values, n) {
		return n, nil
	}
	return "", fmt.Errorf("want %s", oneOf(d.Values))
}

// URL is an absolute URL with one of Schemes (lower case), returned as
// given.
type URL struct {
	Flag, Env, Usage, Default string
	Schemes                   []string
	// Host requires a host (unix:// and postgres:///db?host=/socket URLs
	// have none).
	Host bool
	// Secret keeps the value out of errors (it may hold a password).
	Secret bool
}

// Info describes the setting.
func (d URL) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: d.Default, Arg: "url", Secret: d.Secret}
}

// Parse checks the URL's scheme and host.
func (d URL) Parse(v string) (string, error) {
	if v == "" {
		return d.Default, nil
	}
	u, err := url.Parse(v)
	if err != nil || !slices.Contains(d.Schemes, u.Scheme) || (d.Host && u.Host == "") {
		schemes := make([]string, len(d.Schemes))
		for i, s := range d.Schemes {
			schemes[i] = s + "://"
		}
		want := "want a " + oneOf(schemes) + " URL"
		if d.Host {
			want += " with a host"
		}
		return "", errors.New(want)
	}
	return v, nil
}

// List is a comma-separated list; items are trimmed, empty ones dropped.
type List struct {
	Flag, Env, Usage, Default string
	// Check, when set, validates each item.
	Check func(string) error
}

// Info describes the setting.
func (d List) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: d.Default, Arg: "list"}
}

// Parse splits the list; nil when it has no item.
func (d List) Parse(v string) ([]string, error) {
	if v == "" {
		v = d.Default
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if d.Check != nil {
			if err := d.Check(item); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
		}
		out = append(out, item)
	}
	return out, nil
}

// HostPort is a listen address, host:port with a numeric port (an empty
// host listens everywhere). Empty is the default, which may be empty
// (off).
type HostPort struct {
	Flag, Env, Usage, Default string
}

// Info describes the setting.
func (d HostPort) Info() Info {
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: d.Default, Arg: "host:port"}
}

// Parse checks host:port.
func (d HostPort) Parse(v string) (string, error) {
	if v == "" {
		return d.Default, nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", errors.New("want host:port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("want host:port: port %q is not a number from 0 to 65535", port)
	}
	return v, nil
}

// Custom is a setting of any type, parsed by Func.
type Custom[T any] struct {
	Flag, Env, Usage, Default string
	// Arg names the value in -h; empty: "value".
	Arg string
	// Secret keeps the value out of errors.
	Secret bool
	// Func parses a value; it gets Default for "". Its error says what is
	// wanted.
	Func func(string) (T, error)
}

// Info describes the setting.
func (d Custom[T]) Info() Info {
	arg := d.Arg
	if arg == "" {
		arg = "value"
	}
	return Info{Flag: d.Flag, Env: d.Env, Usage: d.Usage, Default: d.Default, Arg: arg, Secret: d.Secret}
}

// Parse runs Func.
func (d Custom[T]) Parse(v string) (T, error) {
	if v == "" {
		v = d.Default
	}
	return d.Func(v)
}

// RegularFile checks that path names a regular file (for String.Check).
func RegularFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return errors.New(path + " is not a regular file")
	}
	return nil
}

// oneOf writes "a", "a or b", "a, b or c".
func oneOf(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}
