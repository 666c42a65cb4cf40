package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// configError reports an invalid key of a policy configuration.
type configError struct {
	// Key is the path of the offending key, e.g. "replacements[0]".
	Key string
	// Problem says what was expected.
	Problem string
}

// Error implements error.
func (e *configError) Error() string {
	return fmt.Sprintf("config key %q: %s", e.Key, e.Problem)
}

// requireEmptyConfig rejects any key of the configuration of a policy that
// takes none.
func requireEmptyConfig(cfg map[string]any) error {
	if len(cfg) == 0 {
		return nil
	}
	key := slices.Sorted(maps.Keys(cfg))[0]
	return &configError{Key: key, Problem: "unknown key: this policy takes no configuration"}
}

// normalizeConfig returns a deep copy of cfg in which every value is
// JSON-like: nil, bool, float64, string, []any or map[string]any. Numbers
// become float64 whatever their Go type, so a configuration read from YAML
// and one received as a google.protobuf.Struct look the same to policies.
func normalizeConfig(cfg map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(cfg))
	for k, v := range cfg {
		nv, err := normalizeValue(k, v)
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

// normalizeValue normalizes one configuration value found at path.
func normalizeValue(path string, v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string, float64:
		return v, nil
	case float32:
		return float64(v), nil
	case int:
		return float64(v), nil
	case int8:
		return float64(v), nil
	case int16:
		return float64(v), nil
	case int32:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case uint:
		return float64(v), nil
	case uint8:
		return float64(v), nil
	case uint16:
		return float64(v), nil
	case uint32:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			nv, err := normalizeValue(path+"["+strconv.Itoa(i)+"]", item)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			nv, err := normalizeValue(path+"."+k, item)
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, &configError{Key: path, Problem: fmt.Sprintf("want string keys, got key %v of type %T", k, k)}
			}
			nv, err := normalizeValue(path+"."+ks, item)
			if err != nil {
				return nil, err
			}
			out[ks] = nv
		}
		return out, nil
	default:
		return nil, &configError{Key: path, Problem: fmt.Sprintf("unsupported value of type %T", v)}
	}
}
