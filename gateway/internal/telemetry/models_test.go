package telemetry

import (
	"fmt"
	"strings"
	"testing"
)

func TestModelLabels(t *testing.T) {
	m, err := ParseModelLabels(" gpt-4o, claude-sonnet-*,claude-* ,,o3")
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]string{
		"gpt-4o":                     "gpt-4o",
		"gpt-4o-mini":                "other", // exact entries match exactly
		"claude-sonnet-4-5-20250929": "claude-sonnet-*",
		"claude-opus-4-1":            "claude-*", // the first prefix that matches
		"o3":                         "o3",
		"":                           "other",
		"llama":                      "other",
	} {
		if got := m.Label(model); got != want {
			t.Errorf("Label(%q) = %q, want %q", model, got, want)
		}
	}
	var none *ModelLabels
	if got := none.Label("gpt-4o"); got != "other" {
		t.Errorf("nil list: Label = %q, want other", got)
	}
	if m, err := ParseModelLabels(" , "); m != nil || err != nil {
		t.Errorf("empty list = %v, %v; want nil", m, err)
	}
}

// Whatever models clients send, the labels are the list's entries and
// "other".
func TestModelLabelsBounded(t *testing.T) {
	m, err := ParseModelLabels("gpt-*,claude-3")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 10000 {
		seen[m.Label(fmt.Sprintf("gpt-%d", i))] = true
		seen[m.Label(fmt.Sprintf("model-%d", i))] = true
		seen[m.Label(fmt.Sprintf("claude-3%d", i))] = true
	}
	if len(seen) != 2 || !seen["gpt-*"] || !seen["other"] {
		t.Errorf("labels = %v, want gpt-* and other", seen)
	}
}

func TestParseModelLabelsErrors(t *testing.T) {
	for list, want := range map[string]string{
		"gpt*4":                   "* may only end",
		"gpt 4":                   "printable ASCII",
		strings.Repeat("m", 101):  "longer than",
		strings.Repeat("m,", 101): "more than 100",
		"ok,\u00e9":               "printable ASCII",
	} {
		if _, err := ParseModelLabels(list); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseModelLabels(%.20q) = %v, want an error with %q", list, err, want)
		}
	}
}
