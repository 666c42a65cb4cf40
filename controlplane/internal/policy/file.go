package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadFile reads a policy configuration file:
//
//	policy:
//	  class: all_caps   # a short name or an alias
//	  config: {}        # optional; the class's configuration
//
// It returns the class as written and the configuration (never nil). A
// file that is not exactly of this shape is an error naming the file, the
// line and the problem; the class itself is checked later by
// Registry.Build.
func LoadFile(path string) (class string, cfg map[string]any, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("load policy config: %w", err)
	}
	class, cfg, err = parseFile(data)
	if err != nil {
		return "", nil, fmt.Errorf("load policy config %s: %w", path, err)
	}
	return class, cfg, nil
}

// parseFile parses the contents of a policy configuration file.
func parseFile(data []byte) (string, map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return "", nil, errors.New("missing policy.class: the file is empty")
		}
		return "", nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("line %d: want a single YAML document, found another", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return "", nil, errors.New("missing policy.class: the file is empty")
	}
	top, err := mappingEntries(root, "the top level", map[string]bool{"policy": true})
	if err != nil {
		return "", nil, err
	}
	node, ok := top["policy"]
	if !ok {
		return "", nil, fmt.Errorf("line %d: missing policy.class: no top-level key \"policy\"", root.Line)
	}
	if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null" {
		return "", nil, fmt.Errorf("line %d: missing policy.class: \"policy\" is empty", node.Line)
	}
	entries, err := mappingEntries(node, "policy", map[string]bool{"class": true, "config": true})
	if err != nil {
		return "", nil, err
	}
	classNode, ok := entries["class"]
	if !ok {
		return "", nil, fmt.Errorf("line %d: missing policy.class", node.Line)
	}
	if classNode.Kind != yaml.ScalarNode || classNode.ShortTag() != "!!str" || strings.TrimSpace(classNode.Value) == "" {
		return "", nil, fmt.Errorf("line %d: policy.class: want a non-empty string", classNode.Line)
	}
	cfg, err := decodeConfig(entries["config"])
	if err != nil {
		return "", nil, err
	}
	return strings.TrimSpace(classNode.Value), cfg, nil
}

// mappingEntries returns the values of a mapping node by key. Keys must
// be strings, unique and among allowed; what names the mapping in errors.
func mappingEntries(node *yaml.Node, what string, allowed map[string]bool) (map[string]*yaml.Node, error) {
	if node.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %s: want a mapping with keys %s", node.Line, what, keyList(allowed))
	}
	out := make(map[string]*yaml.Node, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s: want string keys", k.Line, what)
		}
		if !allowed[k.Value] {
			return nil, fmt.Errorf("line %d: %s: unknown key %q (want %s)", k.Line, what, k.Value, keyList(allowed))
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("line %d: %s: key %q appears twice", k.Line, what, k.Value)
		}
		out[k.Value] = v
	}
	return out, nil
}

// decodeConfig decodes the policy.config node; a missing or null node is
// an empty configuration.
func decodeConfig(node *yaml.Node) (map[string]any, error) {
	if node == nil || (node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null") {
		return map[string]any{}, nil
	}
	if node.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: policy.config: want a mapping", node.Line)
	}
	timestampsAsStrings(node)
	var raw map[string]any
	if err := node.Decode(&raw); err != nil {
		return nil, fmt.Errorf("line %d: policy.config: %w", node.Line, err)
	}
	cfg, err := normalizeConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("line %d: policy.config: %w", node.Line, err)
	}
	return cfg, nil
}

// timestampsAsStrings retags the timestamp scalars under node as strings,
// so that a date in a configuration reaches the policy as written rather
// than as a time.Time, which configurations cannot carry.
func timestampsAsStrings(node *yaml.Node) {
	if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!timestamp" {
		node.Tag = "!!str"
	}
	for _, child := range node.Content {
		timestampsAsStrings(child)
	}
}

// keyList formats the allowed keys of a mapping for an error message.
func keyList(allowed map[string]bool) string {
	keys := make([]string, 0, len(allowed))
	for k := range allowed {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}
