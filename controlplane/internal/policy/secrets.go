package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// SecretPlaceholder stands for a secret value wherever a configuration is
// shown. Sent back in place of a secret, it keeps the value stored at the
// same path (Registry.KeepSecrets).
const SecretPlaceholder = "***"

// Schema annotations of secrets: "x-secret": true (with "writeOnly":
// true, its JSON Schema spelling) on a secret value, and "x-policy": true
// on an object {class, config} whose config is a policy configuration of
// its own (a member of serial), so that secrets are found at any depth.
const (
	schemaSecret = "x-secret"
	schemaPolicy = "x-policy"
)

// secretNode marks where a configuration schema holds secrets.
type secretNode struct {
	secret bool                   // the value is a secret
	policy bool                   // the value is a policy {class, config}
	props  map[string]*secretNode // object properties that hold secrets
	items  *secretNode            // array items that hold secrets
}

// parseSecrets finds the secrets of a configuration schema; nil: none.
func parseSecrets(schema string) (*secretNode, error) {
	if schema == "" {
		return nil, nil
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	return secretsOf(s), nil
}

// secretsOf returns the secret marks of one schema object; nil: none.
func secretsOf(s map[string]any) *secretNode {
	n := &secretNode{}
	n.secret, _ = s[schemaSecret].(bool)
	n.policy, _ = s[schemaPolicy].(bool)
	if props, ok := s["properties"].(map[string]any); ok {
		for k, v := range props {
			if sub, ok := v.(map[string]any); ok {
				if c := secretsOf(sub); c != nil {
					if n.props == nil {
						n.props = map[string]*secretNode{}
					}
					n.props[k] = c
				}
			}
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		n.items = secretsOf(items)
	}
	if !n.secret && !n.policy && n.props == nil && n.items == nil {
		return nil
	}
	return n
}

// secretVisit is called on each secret value of a configuration: path is
// where it is, v its value (absent values are not visited), old the value
// at the same path of the previous configuration (nil: none) and
// sameScope whether the policy holding it still sends its secrets to the
// same place. It returns the value to put in its place.
type secretVisit func(path string, v, old any, sameScope bool) (any, error)

// Redact returns a copy of cfg, a configuration of class, in which every
// secret value is SecretPlaceholder. A class the registry does not know
// is returned unchanged.
func (r *Registry) Redact(class string, cfg map[string]any) map[string]any {
	out, _ := r.visitPolicy(class, cfg, "", nil, nil, func(_ string, v, _ any, _ bool) (any, error) {
		if s, ok := v.(string); ok && s == "" {
			return v, nil
		}
		return SecretPlaceholder, nil
	})
	return out
}

// InlineSecrets returns the paths of the secret values given in cfg, a
// configuration of class, e.g. "policies[1].config.api_key".
func (r *Registry) InlineSecrets(class string, cfg map[string]any) []string {
	var paths []string
	_, _ = r.visitPolicy(class, cfg, "", nil, nil, func(path string, v, _ any, _ bool) (any, error) {
		if s, ok := v.(string); !ok || s != "" {
			paths = append(paths, path)
		}
		return v, nil
	})
	slices.Sort(paths)
	return paths
}

// KeepSecrets returns cfg, a configuration of class, with every secret
// given as SecretPlaceholder replaced by the value at the same path of
// prev, the configuration of prevClass (the active policy). A
// placeholder without a stored value there, or whose policy now sends its
// secrets elsewhere (Type.SecretScope: another judge endpoint), is an
// error naming its path. cfg is not changed.
func (r *Registry) KeepSecrets(class string, cfg map[string]any, prevClass string, prev map[string]any) (map[string]any, error) {
	return r.visitPolicy(class, cfg, "", prev, scopeOf(r, prevClass, prev), func(path string, v, old any, sameScope bool) (any, error) {
		if s, ok := v.(string); !ok || s != SecretPlaceholder {
			return v, nil
		}
		stored, ok := old.(string)
		if !ok || stored == "" || stored == SecretPlaceholder {
			return nil, &configError{Key: path, Problem: fmt.Sprintf("%q stands for the stored secret, but the active policy has none at this path: give the value", SecretPlaceholder)}
		}
		if !sameScope {
			return nil, &configError{Key: path, Problem: fmt.Sprintf("%q keeps the stored secret only for the same endpoint: give the value to use another one", SecretPlaceholder)}
		}
		return stored, nil
	})
}

// scopeOf returns the secret scope of a configuration of class, for
// comparing with another configuration's; nil when prev is nil.
func scopeOf(r *Registry, class string, cfg map[string]any) *string {
	if cfg == nil {
		return nil
	}
	scope := ""
	if t, ok := r.lookup(class); ok && t.SecretScope != nil {
		scope = t.SecretScope(cfg)
	}
	return &scope
}

// visitPolicy applies visit to the secrets of cfg, a configuration of
// class at path, and returns the configuration with the values visit
// returned; the maps and lists holding secrets are copies, the rest is
// shared with cfg. prev is the configuration at the same path before
// (nil: none) and prevScope its secret scope.
func (r *Registry) visitPolicy(class string, cfg map[string]any, path string, prev map[string]any, prevScope *string, visit secretVisit) (map[string]any, error) {
	t, ok := r.lookup(class)
	if !ok || t.secrets == nil || cfg == nil {
		return cfg, nil
	}
	sameScope := prevScope != nil
	if sameScope && t.SecretScope != nil {
		sameScope = t.SecretScope(cfg) == *prevScope
	}
	out, err := r.visitValue(t.secrets, cfg, path, prev, sameScope, visit)
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	return m, nil
}

// visitValue applies visit to the secrets of v, which n describes.
func (r *Registry) visitValue(n *secretNode, v any, path string, old any, sameScope bool, visit secretVisit) (any, error) {
	if v == nil {
		return nil, nil
	}
	if n.secret {
		return visit(path, v, old, sameScope)
	}
	switch x := v.(type) {
	case map[string]any:
		oldMap, _ := old.(map[string]any)
		out := maps.Clone(x)
		if cfg, ok := x["config"].(map[string]any); ok && n.policy {
			class, _ := x["class"].(string)
			prevClass, _ := oldMap["class"].(string)
			prevCfg, _ := oldMap["config"].(map[string]any)
			nc, err := r.visitPolicy(class, cfg, join(path, "config"), prevCfg, scopeOf(r, prevClass, prevCfg), visit)
			if err != nil {
				return nil, err
			}
			out["config"] = nc
		}
		for _, k := range slices.Sorted(maps.Keys(n.props)) {
			if _, ok := x[k]; !ok {
				continue
			}
			nv, err := r.visitValue(n.props[k], x[k], join(path, k), oldMap[k], sameScope, visit)
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case []any:
		if n.items == nil {
			return v, nil
		}
		oldList, _ := old.([]any)
		out := slices.Clone(x)
		for i, item := range x {
			var o any
			if i < len(oldList) {
				o = oldList[i]
			}
			nv, err := r.visitValue(n.items, item, path+"["+strconv.Itoa(i)+"]", o, sameScope, visit)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	}
	return v, nil
}

// join appends a key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
