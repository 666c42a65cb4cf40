package policy

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

// settings reads a policy configuration key by key. The first problem is
// kept and reported by done, which also rejects keys nobody read, so every
// policy validates its configuration the same way: which key, what was
// expected.
type settings struct {
	cfg  map[string]any
	used map[string]bool
	err  error
}

// newSettings wraps a normalized configuration.
func newSettings(cfg map[string]any) *settings {
	return &settings{cfg: cfg, used: map[string]bool{}}
}

// fail records the first problem.
func (s *settings) fail(key, problem string) {
	if s.err == nil {
		s.err = &configError{Key: key, Problem: problem}
	}
}

// get returns a key's value; absent and null count as unset.
func (s *settings) get(key string) (any, bool) {
	s.used[key] = true
	v, ok := s.cfg[key]
	return v, ok && v != nil
}

// done reports the first problem, or an unknown key.
func (s *settings) done() error {
	if s.err != nil {
		return s.err
	}
	for _, k := range slices.Sorted(maps.Keys(s.cfg)) {
		if !s.used[k] {
			known := slices.Sorted(maps.Keys(s.used))
			return &configError{Key: k, Problem: "unknown key (known: " + strings.Join(known, ", ") + ")"}
		}
	}
	return nil
}

// str reads a string.
func (s *settings) str(key, def string) string {
	v, ok := s.get(key)
	if !ok {
		return def
	}
	str, isStr := v.(string)
	if !isStr {
		s.fail(key, fmt.Sprintf("want a string, got %s", jsonType(v)))
		return def
	}
	return str
}

// enum reads a string that must be one of allowed.
func (s *settings) enum(key, def string, allowed ...string) string {
	v := s.str(key, def)
	if !slices.Contains(allowed, v) {
		s.fail(key, fmt.Sprintf("want one of %s, got %q", strings.Join(allowed, ", "), v))
		return def
	}
	return v
}

// boolean reads a bool.
func (s *settings) boolean(key string, def bool) bool {
	v, ok := s.get(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		s.fail(key, fmt.Sprintf("want true or false, got %s", jsonType(v)))
		return def
	}
	return b
}

// number reads a number within [lo, hi].
func (s *settings) number(key string, def, lo, hi float64) float64 {
	v, ok := s.get(key)
	if !ok {
		return def
	}
	f, isNum := v.(float64)
	if !isNum || math.IsNaN(f) {
		s.fail(key, fmt.Sprintf("want a number, got %s", jsonType(v)))
		return def
	}
	if f < lo || f > hi {
		s.fail(key, fmt.Sprintf("want a number from %g to %g, got %g", lo, hi, f))
		return def
	}
	return f
}

// integer reads a whole number within [lo, hi].
func (s *settings) integer(key string, def, lo, hi int) int {
	f := s.number(key, float64(def), float64(lo), float64(hi))
	if f != math.Trunc(f) {
		s.fail(key, fmt.Sprintf("want a whole number, got %g", f))
		return def
	}
	return int(f)
}

// duration reads a duration: a string such as "30s" or "500ms", or a
// number of seconds. It must be positive.
func (s *settings) duration(key string, def time.Duration) time.Duration {
	v, ok := s.get(key)
	if !ok {
		return def
	}
	var d time.Duration
	switch x := v.(type) {
	case float64:
		d = time.Duration(x * float64(time.Second))
	case string:
		var err error
		if d, err = time.ParseDuration(x); err != nil {
			s.fail(key, fmt.Sprintf("want a duration such as \"30s\" or a number of seconds, got %q", x))
			return def
		}
	default:
		s.fail(key, fmt.Sprintf("want a duration such as \"30s\" or a number of seconds, got %s", jsonType(v)))
		return def
	}
	if d <= 0 {
		s.fail(key, "want a positive duration")
		return def
	}
	return d
}

// strings reads a list of strings.
func (s *settings) strings(key string) []string {
	v, ok := s.get(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		s.fail(key, fmt.Sprintf("want a list of strings, got %s", jsonType(v)))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		str, isStr := item.(string)
		if !isStr {
			s.fail(fmt.Sprintf("%s[%d]", key, i), fmt.Sprintf("want a string, got %s", jsonType(item)))
			return nil
		}
		out = append(out, str)
	}
	return out
}

// regexps reads a list of regular expressions, compiled case-insensitive.
func (s *settings) regexps(key string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for i, p := range s.strings(key) {
		re, err := regexp.Compile("(?i)" + p)
		if err != nil {
			s.fail(fmt.Sprintf("%s[%d]", key, i), fmt.Sprintf("want a regular expression: %v", err))
			return nil
		}
		out = append(out, re)
	}
	return out
}

// list reads a list of any values.
func (s *settings) list(key string) []any {
	v, ok := s.get(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		s.fail(key, fmt.Sprintf("want a list, got %s", jsonType(v)))
		return nil
	}
	return list
}

// jsonType names the JSON type of a normalized value.
func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", v)
	}
}
