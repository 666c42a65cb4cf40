package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds of the policy editor's YAML parser.
const (
	// maxPolicyText bounds the text the parser accepts, in bytes.
	maxPolicyText = 1 << 20
	// maxPolicyJSON bounds the JSON it produces (aliases can expand a
	// small document a lot), in bytes.
	maxPolicyJSON = 4 << 20
	// maxPolicyDepth bounds the nesting of the document.
	maxPolicyDepth = 64
)

// parseError is a document the parser refused, with the line of the
// problem when known (0 otherwise).
type parseError struct {
	Line    int
	Problem string
}

func (e *parseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Problem)
	}
	return e.Problem
}

// parsePolicy answers POST /policy/parse: the request body is one YAML
// (or JSON) document; the answer is that document as JSON, key order
// kept, or a 400 {"error":{"code":400,"message":..,"line":N}}. It checks
// syntax only: what the document means is the control plane's to judge.
func (u *UI) parsePolicy(w http.ResponseWriter, r *http.Request) {
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPolicyText))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeParseError(w, http.StatusRequestEntityTooLarge, &parseError{Problem: fmt.Sprintf("the text is larger than %d bytes", maxPolicyText)})
			return
		}
		writeParseError(w, http.StatusBadRequest, &parseError{Problem: "reading the text: " + err.Error()})
		return
	}
	out, err := yamlToJSON(text)
	if err != nil {
		var pe *parseError
		if !errors.As(err, &pe) {
			pe = &parseError{Problem: err.Error()}
		}
		writeParseError(w, http.StatusBadRequest, pe)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(out)
}

// writeParseError writes a refused document in the admin API's error
// shape, with its line.
func writeParseError(w http.ResponseWriter, code int, e *parseError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	body := map[string]any{"code": code, "message": e.Error()}
	if e.Line > 0 {
		body["line"] = e.Line
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

// yamlLine finds the line in the YAML library's error messages.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlToJSON converts one YAML document to JSON text, keeping the order
// of mapping keys.
func yamlToJSON(text []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &parseError{Problem: "the document is empty"}
		}
		return nil, yamlError(err, text)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err, text)
		}
		return nil, &parseError{Line: next.Line, Problem: "want a single document, found another"}
	}
	c := &yamlConverter{}
	if err := c.node(&doc, 0); err != nil {
		return nil, err
	}
	return c.out.Bytes(), nil
}

// yamlError turns a YAML library error into a parseError with the line
// the library names.
func yamlError(err error, text []byte) *parseError {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.Contains(msg, "cannot start any token") && indentedWithTab(text, line) {
		msg += " (a tab: YAML is indented with spaces)"
	}
	return &parseError{Line: line, Problem: msg}
}

// indentedWithTab reports whether the given line (1-based) of text starts
// with a tab in its indentation.
func indentedWithTab(text []byte, line int) bool {
	lines := bytes.Split(text, []byte("\n"))
	if line < 1 || line > len(lines) {
		return false
	}
	indent := lines[line-1][:len(lines[line-1])-len(bytes.TrimLeft(lines[line-1], " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}

// yamlConverter writes YAML nodes as JSON.
type yamlConverter struct {
	out bytes.Buffer
}

// node writes n and what it holds.
func (c *yamlConverter) node(n *yaml.Node, depth int) error {
	if depth > maxPolicyDepth {
		return &parseError{Line: n.Line, Problem: fmt.Sprintf("nested more than %d levels deep", maxPolicyDepth)}
	}
	if c.out.Len() > maxPolicyJSON {
		return &parseError{Line: n.Line, Problem: fmt.Sprintf("the document expands to more than %d bytes", maxPolicyJSON)}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &parseError{Problem: "the document is empty"}
		}
		return c.node(n.Content[0], depth)
	case yaml.AliasNode:
		if n.Alias == nil {
			return &parseError{Line: n.Line, Problem: "unknown alias"}
		}
		return c.node(n.Alias, depth+1)
	case yaml.MappingNode:
		return c.mapping(n, depth)
	case yaml.SequenceNode:
		c.out.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				c.out.WriteByte(',')
			}
			if err := c.node(item, depth+1); err != nil {
				return err
			}
		}
		c.out.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		return c.scalar(n)
	}
	return &parseError{Line: n.Line, Problem: "unsupported YAML node"}
}

// mapping writes a mapping as an object. Keys must be scalars and
// distinct; merge keys (<<) are refused rather than guessed at.
func (c *yamlConverter) mapping(n *yaml.Node, depth int) error {
	seen := make(map[string]int, len(n.Content)/2)
	c.out.WriteByte('{')
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return &parseError{Line: k.Line, Problem: "a mapping key must be a plain value, not a list or a mapping"}
		}
		if k.ShortTag() == "!!merge" {
			return &parseError{Line: k.Line, Problem: "merge keys (<<) are not supported: write the keys out"}
		}
		if prev, dup := seen[k.Value]; dup {
			return &parseError{Line: k.Line, Problem: fmt.Sprintf("key %q is already defined on line %d", k.Value, prev)}
		}
		seen[k.Value] = k.Line
		if i > 0 {
			c.out.WriteByte(',')
		}
		c.string(k.Value)
		c.out.WriteByte(':')
		if err := c.node(v, depth+1); err != nil {
			return err
		}
	}
	c.out.WriteByte('}')
	return nil
}

// scalar writes a scalar by its resolved tag: null, a boolean, a number
// or a string (timestamps and binary data stay the text written).
func (c *yamlConverter) scalar(n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		c.out.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return &parseError{Line: n.Line, Problem: err.Error()}
		}
		c.out.WriteString(strconv.FormatBool(b))
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			var f float64
			if ferr := n.Decode(&f); ferr != nil {
				return &parseError{Line: n.Line, Problem: fmt.Sprintf("%q is not a number JSON can hold", n.Value)}
			}
			return c.float(n, f)
		}
		c.out.WriteString(strconv.FormatInt(i, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return &parseError{Line: n.Line, Problem: err.Error()}
		}
		return c.float(n, f)
	default:
		c.string(n.Value)
	}
	return nil
}

// float writes a finite number; JSON has no infinities or NaN.
func (c *yamlConverter) float(n *yaml.Node, f float64) error {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return &parseError{Line: n.Line, Problem: fmt.Sprintf("%q is not a number JSON can hold", n.Value)}
	}
	b, _ := json.Marshal(f)
	c.out.Write(b)
	return nil
}

// string writes s as a JSON string.
func (c *yamlConverter) string(s string) {
	b, _ := json.Marshal(s)
	c.out.Write(b)
}
