package telemetry

import (
	"errors"
	"fmt"
	"strings"
)

// otherLabel is the value of a label whose real value is not among the
// allowed ones.
const otherLabel = "other"

// Bounds of a model allowlist (LUTHIEN_METRICS_MODELS).
const (
	maxModelEntries = 100
	maxModelLen     = 100
)

// ModelLabels bounds the gen_ai_request_model label. The model is chosen
// by the client, so it cannot be a label as it is (each new name would be
// a new series for ever): a model takes its label from an operator's
// allowlist, its own name when listed, the entry's pattern when it matches
// an entry ending in * (a prefix), and "other" otherwise. A nil
// *ModelLabels labels every model "other".
type ModelLabels struct {
	exact    map[string]bool
	prefixes []string // the entries ending in *, in the order given
}

// ParseModelLabels parses a comma-separated allowlist: model names, and
// prefixes ending in * (e.g. "gpt-4o,claude-sonnet-*"). Empty: nil.
func ParseModelLabels(list string) (*ModelLabels, error) {
	m := &ModelLabels{exact: map[string]bool{}}
	n := 0
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if n++; n > maxModelEntries {
			return nil, fmt.Errorf("more than %d models", maxModelEntries)
		}
		if err := checkModelEntry(entry); err != nil {
			return nil, fmt.Errorf("model %q: %w", entry, err)
		}
		if strings.HasSuffix(entry, "*") {
			m.prefixes = append(m.prefixes, entry)
		} else {
			m.exact[entry] = true
		}
	}
	if n == 0 {
		return nil, nil
	}
	return m, nil
}

// checkModelEntry checks one allowlist entry: printable ASCII, a * only
// at its end.
func checkModelEntry(entry string) error {
	if len(entry) > maxModelLen {
		return fmt.Errorf("longer than %d characters", maxModelLen)
	}
	for i, r := range entry {
		if r <= ' ' || r > '~' {
			return errors.New("only printable ASCII characters without spaces are allowed")
		}
		if r == '*' && i != len(entry)-1 {
			return errors.New("* may only end an entry (a prefix)")
		}
	}
	return nil
}

// Label returns the label of a model.
func (m *ModelLabels) Label(model string) string {
	if m == nil || model == "" {
		return otherLabel
	}
	if m.exact[model] {
		return model
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(model, p[:len(p)-1]) {
			return p
		}
	}
	return otherLabel
}
