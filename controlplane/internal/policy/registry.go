package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Factory builds a policy from its configuration. The configuration is
// never nil, holds only JSON-like values (nil, bool, float64, string,
// []any, map[string]any) and belongs to the factory.
type Factory func(cfg map[string]any) (Policy, error)

// Type describes a policy class the registry can build.
type Type struct {
	// Class is the short name, e.g. "all_caps".
	Class string
	// Description says what the policy does, in one sentence.
	Description string
	// Aliases are other names accepted for the class: the earlier
	// system's class paths that take this class's configuration as is.
	Aliases []string
	// Legacy are the earlier system's class paths whose configuration is
	// adapted first: its keys renamed, its defaults (or a preset's fixed
	// configuration) filled in.
	Legacy []Legacy
	// ConfigSchema is the JSON Schema of the class's config object.
	ConfigSchema string
	// New builds a policy of this class.
	New Factory
	// HandlesErrors marks classes that read on_error and timeout
	// themselves (the judges); every other class gets them from the
	// registry (guard.go).
	HandlesErrors bool
	// SecretScope, when set, names where a configuration's secrets go
	// (for the judges: the origin of their endpoint). A secret sent back
	// as SecretPlaceholder keeps its stored value only while the scope is
	// the same (secrets.go).
	SecretScope func(cfg map[string]any) string

	// secrets marks where ConfigSchema holds secrets; nil: nowhere.
	secrets *secretNode
}

// Legacy is an earlier class path of a class whose configuration differs
// from the class's own.
type Legacy struct {
	// Name is the class path, e.g.
	// "luthien_proxy.policies.presets.no_yapping:NoYappingPolicy".
	Name string
	// Renames maps the earlier configuration's keys to this class's.
	Renames map[string]string
	// Defaults fill the keys the configuration leaves out (after the
	// renames).
	Defaults map[string]any
}

// AllAliases returns every other name of the class: its aliases, then its
// earlier class paths with an adapted configuration.
func (t Type) AllAliases() []string {
	out := slices.Clone(t.Aliases)
	for _, l := range t.Legacy {
		out = append(out, l.Name)
	}
	return out
}

// Registry maps class names and aliases to policy types. It is immutable
// after construction and safe for concurrent use.
type Registry struct {
	types map[string]Type  // by class
	names map[string]alias // class, alias or legacy name -> class
}

// alias is what a name resolves to.
type alias struct {
	class  string
	legacy *Legacy // nil: the class's configuration as is
}

// NewRegistry returns a registry of the given types. Class names and
// aliases must be unique and non-empty, and every type needs a factory.
func NewRegistry(types ...Type) (*Registry, error) {
	r := &Registry{
		types: make(map[string]Type, len(types)),
		names: make(map[string]alias, len(types)),
	}
	for _, t := range types {
		if err := r.add(t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// add registers one type; only constructors call it.
func (r *Registry) add(t Type) error {
	if t.Class == "" {
		return errors.New("new registry: policy type with an empty class name")
	}
	if t.New == nil {
		return fmt.Errorf("new registry: policy type %q has no factory", t.Class)
	}
	names := append([]string{t.Class}, t.Aliases...)
	for _, l := range t.Legacy {
		names = append(names, l.Name)
	}
	seen := map[string]bool{}
	for _, name := range names {
		if name == "" {
			return fmt.Errorf("new registry: policy type %q has an empty alias", t.Class)
		}
		if prev, ok := r.names[name]; ok || seen[name] {
			return fmt.Errorf("new registry: name %q of policy type %q is already taken by %q", name, t.Class, prev.class)
		}
		seen[name] = true
	}
	if !t.HandlesErrors {
		schema, err := withGuardSchema(t.ConfigSchema)
		if err != nil {
			return fmt.Errorf("new registry: policy type %q: %w", t.Class, err)
		}
		t.ConfigSchema = schema
	}
	secrets, err := parseSecrets(t.ConfigSchema)
	if err != nil {
		return fmt.Errorf("new registry: policy type %q: %w", t.Class, err)
	}
	t.secrets = secrets
	for _, name := range append([]string{t.Class}, t.Aliases...) {
		r.names[name] = alias{class: t.Class}
	}
	t.Legacy = slices.Clone(t.Legacy)
	for i := range t.Legacy {
		r.names[t.Legacy[i].Name] = alias{class: t.Class, legacy: &t.Legacy[i]}
	}
	t.Aliases = slices.Clone(t.Aliases)
	r.types[t.Class] = t
	return nil
}

// Builtin returns a registry of the policies built into the control
// plane, its judges governed by the environment (JudgeAccessFromEnv).
func Builtin() (*Registry, error) {
	access, err := JudgeAccessFromEnv(nil)
	if err != nil {
		return nil, fmt.Errorf("judge settings: %w", err)
	}
	return NewBuiltin(access)
}

// NewBuiltin returns a registry of the policies built into the control
// plane, its judges governed by access.
func NewBuiltin(access JudgeAccess) (*Registry, error) {
	r, err := NewRegistry(noopType(), allCapsType(), stringReplacementType(), regexBlockType(),
		sqlProtectionType(), toolCallJudgeType(access), llmJudgeType(access), debugLoggingType(), externalType(access))
	if err != nil {
		return nil, err
	}
	// serial builds its members with the registry it belongs to.
	if err := r.add(serialType(r)); err != nil {
		return nil, err
	}
	return r, nil
}

// Build builds a policy of the given class (a short name or an alias)
// from its configuration; a nil cfg is an empty configuration. An unknown
// class is an error listing the known classes; an invalid configuration is
// an error naming the offending key and what was expected.
func (r *Registry) Build(class string, cfg map[string]any) (Policy, error) {
	class, normalized, err := r.Resolve(class, cfg)
	if err != nil {
		return nil, err
	}
	t := r.types[class]
	if t.HandlesErrors {
		p, err := t.New(normalized)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", t.Class, err)
		}
		return p, nil
	}
	onError, timeout, rest, err := splitGuard(normalized)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", t.Class, err)
	}
	p, err := t.New(rest)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", t.Class, err)
	}
	if onError == onErrorBlock && timeout == 0 {
		return p, nil
	}
	return &guarded{Policy: p, class: t.Class, onError: onError, timeout: timeout}, nil
}

// Resolve returns the class a name (a short name, an alias or an earlier
// class path) stands for and the configuration that class gets: cfg
// normalized, and for an earlier class path with its keys renamed and its
// defaults filled in. What is stored of a policy is what Resolve returns,
// so that a stored policy builds the same without its earlier name.
func (r *Registry) Resolve(name string, cfg map[string]any) (string, map[string]any, error) {
	a, ok := r.names[strings.TrimSpace(name)]
	if !ok {
		if why, earlier := unported[strings.TrimSpace(name)]; earlier {
			return "", nil, fmt.Errorf("policy class %q of the earlier system has no counterpart here: %s (docs/MIGRATION.md: an `external` policy runs such a policy beside ours)", name, why)
		}
		return "", nil, fmt.Errorf("unknown policy class %q (known: %s)", name, strings.Join(r.classes(), ", "))
	}
	normalized, err := normalizeConfig(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("policy %s: %w", a.class, err)
	}
	if a.legacy != nil {
		if normalized, err = a.legacy.adapt(normalized); err != nil {
			return "", nil, fmt.Errorf("policy %s (as %s): %w", a.class, a.legacy.Name, err)
		}
	}
	return a.class, normalized, nil
}

// adapt renames the earlier keys of cfg (which it owns) and fills in the
// defaults.
func (l *Legacy) adapt(cfg map[string]any) (map[string]any, error) {
	for from, to := range l.Renames {
		v, ok := cfg[from]
		if !ok {
			continue
		}
		if _, both := cfg[to]; both {
			return nil, &configError{Key: from, Problem: fmt.Sprintf("given together with %q, which it stands for", to)}
		}
		delete(cfg, from)
		cfg[to] = v
	}
	for k, v := range l.Defaults {
		if _, ok := cfg[k]; !ok {
			cfg[k] = cloneJSON(v)
		}
	}
	return cfg, nil
}

// cloneJSON deep-copies a JSON-like value, so that a default handed to a
// factory is never shared.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = cloneJSON(item)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[k] = cloneJSON(item)
		}
		return out
	}
	return v
}

// Types lists the registered policy types, sorted by class.
func (r *Registry) Types() []Type {
	out := make([]Type, 0, len(r.types))
	for _, class := range r.classes() {
		t := r.types[class]
		t.Aliases = slices.Clone(t.Aliases)
		t.Legacy = slices.Clone(t.Legacy)
		out = append(out, t)
	}
	return out
}

// lookup resolves a class name, alias or earlier class path.
func (r *Registry) lookup(name string) (Type, bool) {
	a, ok := r.names[strings.TrimSpace(name)]
	if !ok {
		return Type{}, false
	}
	return r.types[a.class], true
}

// classes returns the class names, sorted.
func (r *Registry) classes() []string {
	out := make([]string, 0, len(r.types))
	for class := range r.types {
		out = append(out, class)
	}
	slices.Sort(out)
	return out
}
