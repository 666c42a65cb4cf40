package routes

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	d := mustParse(t, matchFile).Describe()
	wantProviders := []ProviderInfo{
		{Name: "claude", Kind: "anthropic", BaseURL: "https://api.anthropic.com", APIKeyEnv: "ANTHROPIC_API_KEY", KeySet: true, Headers: []string{}},
		{Name: "local", Kind: "openai", BaseURL: "http://127.0.0.1:11434/v1", Headers: []string{"X-Team", "X-Trace"}},
		{Name: "other", Kind: "openai", BaseURL: "https://other.example/v1", APIKeyEnv: "OPENAI_KEY", KeySet: true, Headers: []string{}},
	}
	if !reflect.DeepEqual(d.Providers, wantProviders) {
		t.Errorf("providers:\n got %+v\nwant %+v", d.Providers, wantProviders)
	}
	if len(d.Routes) != 11 {
		t.Fatalf("%d routes, want 11: %+v", len(d.Routes), d.Routes)
	}
	for i, want := range []RouteInfo{
		{Index: 0, Match: "claude-opus-4", Provider: "local", Model: "llama3:70b"},
		{Index: 1, Match: "claude-*", Provider: "claude"},
		{Index: 10, Match: `lit\*`, Provider: "other"},
	} {
		if got := d.Routes[want.Index]; got != want {
			t.Errorf("route %d: got %+v, want %+v", i, got, want)
		}
	}

	// Neither a key nor a header value shows, however it is printed.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d)} {
		assertNoSecret(t, "description", s)
		for _, v := range []string{"team-value-zzz", `"on"`} {
			if strings.Contains(s, v) {
				t.Errorf("description holds the header value %s: %s", v, s)
			}
		}
	}
}

func TestDescribeEmpty(t *testing.T) {
	for name, tab := range map[string]*Table{"nil": nil, "empty file": mustParse(t, "")} {
		b, err := json.Marshal(tab.Describe())
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != `{"providers":[],"routes":[]}` {
			t.Errorf("%s: %s", name, b)
		}
	}
}
