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
	// Aliases are other names accepted for the class, e.g. the earlier
	// system's Python class references.
	Aliases []string
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

// Registry maps class names and aliases to policy types. It is immutable
// after construction and safe for concurrent use.
type Registry struct {
	types map[string]Type   // by class
	names map[string]string // class or alias -> class
}

// NewRegistry returns a registry of the given types. Class names and
// aliases must be unique and non-empty, and every type needs a factory.
func NewRegistry(types ...Type) (*Registry, error) {
	r := &Registry{
		types: make(map[string]Type, len(types)),
		names: make(map[string]string, len(types)),
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
	for _, name := range append([]string{t.Class}, t.Aliases...) {
		if name == "" {
			return fmt.Errorf("new registry: policy type %q has an empty alias", t.Class)
		}
		if prev, ok := r.names[name]; ok {
			return fmt.Errorf("new registry: name %q of policy type %q is already taken by %q", name, t.Class, prev)
		}
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
		r.names[name] = t.Class
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
		sqlProtectionType(), toolCallJudgeType(access), llmJudgeType(access), debugLoggingType())
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
	t, ok := r.lookup(class)
	if !ok {
		return nil, fmt.Errorf("unknown policy class %q (known: %s)", class, strings.Join(r.classes(), ", "))
	}
	normalized, err := normalizeConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", t.Class, err)
	}
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

// Types lists the registered policy types, sorted by class.
func (r *Registry) Types() []Type {
	out := make([]Type, 0, len(r.types))
	for _, class := range r.classes() {
		t := r.types[class]
		t.Aliases = slices.Clone(t.Aliases)
		out = append(out, t)
	}
	return out
}

// lookup resolves a class name or alias.
func (r *Registry) lookup(name string) (Type, bool) {
	class, ok := r.names[strings.TrimSpace(name)]
	if !ok {
		return Type{}, false
	}
	return r.types[class], true
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
