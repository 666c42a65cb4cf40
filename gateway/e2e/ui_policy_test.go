package e2e

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// builtinClasses are the policy classes the control plane ships.
var builtinClasses = []string{"all_caps", "debug_logging", "external", "llm_judge", "noop", "regex_block",
	"serial", "sql_protection", "string_replacement", "tool_call_judge"}

var (
	activeClassRE = regexp.MustCompile(`<code id="active-class">([^<]*)</code>`)
	historyRowRE  = regexp.MustCompile(`(?s)<tr class="history-row"[^>]*>(.*?)</tr>`)
	policyTypeRE  = regexp.MustCompile(`<article class="policy-type" data-class="([^"]*)"`)
	bootRE        = regexp.MustCompile(`(?s)<script type="application/json" id="policy-data">(.*?)</script>`)
)

// policyPage fetches /policy and checks it is an HTML page.
func policyPage(t *testing.T, e *env, header map[string]string) string {
	t.Helper()
	resp, body := e.do(t, http.MethodGet, "/policy", "", header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /policy: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET /policy: Content-Type %q", ct)
	}
	return string(body)
}

// The policy page shows the active class, every class of the catalogue
// and the history with who made each activation, newest first.
func TestUIPolicyPage(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.setPolicy(t, "all_caps", nil)
	e.setPolicy(t, "string_replacement", map[string]any{"replacements": []any{[]any{"hello", "goodbye"}}, "apply_to": "both"})
	page := policyPage(t, e, nil)

	if m := activeClassRE.FindStringSubmatch(page); m == nil || m[1] != "string_replacement" {
		t.Errorf("#active-class: got %v, want string_replacement", m)
	}
	if !strings.Contains(page, `id="active-config"`) || !strings.Contains(page, "goodbye") {
		t.Errorf("the active policy's config is not shown")
	}

	var listed []string
	for _, m := range policyTypeRE.FindAllStringSubmatch(page, -1) {
		listed = append(listed, m[1])
	}
	if strings.Join(listed, ",") != strings.Join(builtinClasses, ",") {
		t.Errorf("catalogue lists %v, want %v", listed, builtinClasses)
	}
	if !strings.Contains(page, "luthien_proxy.policies.all_caps_policy:AllCapsPolicy") {
		t.Errorf("catalogue does not show the aliases")
	}
	if !strings.Contains(page, `&#34;match_capitalization&#34;`) {
		t.Errorf("catalogue does not show the config schemas")
	}

	rows := historyRowRE.FindAllStringSubmatch(page, -1)
	if len(rows) < 2 {
		t.Fatalf("history has %d rows, want at least the 2 activations", len(rows))
	}
	for i, want := range []string{"string_replacement", "all_caps"} {
		row := rows[i][1]
		if !strings.Contains(row, `<code class="history-class">`+want+`</code>`) {
			t.Errorf("history row %d is not %s: %s", i, want, row)
		}
		if !strings.Contains(row, `<td class="actor">loopback</td>`) {
			t.Errorf("history row %d does not say the change came from loopback: %s", i, row)
		}
		if !strings.Contains(row, `class="secondary load-policy"`) {
			t.Errorf("history row %d has no load action: %s", i, row)
		}
	}

	// The editor's data: the active policy and a parsable schema per class.
	m := bootRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no #policy-data script element")
	}
	var boot struct {
		Active struct {
			Class  string         `json:"class"`
			Config map[string]any `json:"config"`
		} `json:"active"`
		Types []struct {
			Class  string         `json:"class"`
			Schema map[string]any `json:"schema"`
		} `json:"types"`
	}
	if err := json.Unmarshal([]byte(m[1]), &boot); err != nil {
		t.Fatalf("#policy-data is not JSON: %v: %s", err, m[1])
	}
	if boot.Active.Class != "string_replacement" || boot.Active.Config["apply_to"] != "both" {
		t.Errorf("#policy-data active = %+v, want the string_replacement policy", boot.Active)
	}
	if len(boot.Types) != len(builtinClasses) {
		t.Errorf("#policy-data has %d types, want %d", len(boot.Types), len(builtinClasses))
	}
	for _, ty := range boot.Types {
		if ty.Schema["type"] != "object" {
			t.Errorf("#policy-data schema of %s = %v, want an object schema", ty.Class, ty.Schema)
		}
	}
}

// With an admin key, the history names the key as who activated the
// policy, and the page answers the key.
func TestUIPolicyHistoryActor(t *testing.T) {
	const key = "adm-ui-policy-test-key"
	e := start(t, "inprocess", options{gatewayEnv: map[string]string{"LUTHIEN_ADMIN_API_KEY": key}})
	auth := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	resp, body := e.do(t, http.MethodPut, "/api/v1/policy", `{"class":"sql_protection","config":{}}`, auth)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /api/v1/policy: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(t, http.MethodGet, "/policy", "", nil); resp.StatusCode == http.StatusOK {
		t.Fatalf("GET /policy without the key: 200, want it refused")
	}
	page := policyPage(t, e, auth)
	rows := historyRowRE.FindAllStringSubmatch(page, -1)
	if len(rows) == 0 {
		t.Fatal("history is empty")
	}
	if !strings.Contains(rows[0][1], `<code class="history-class">sql_protection</code>`) ||
		!strings.Contains(rows[0][1], `<td class="actor">admin-key</td>`) {
		t.Errorf("newest history row is not sql_protection by admin-key: %s", rows[0][1])
	}
}

// Policy text reaches the page as text: a config value holding markup is
// escaped wherever it is shown (the active config, the history, the
// editor's data), never a live element.
func TestUIPolicyEscapesConfig(t *testing.T) {
	e := start(t, "inprocess", options{})
	const payload = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	e.setPolicy(t, "string_replacement", map[string]any{"replacements": []any{[]any{"hello", payload}}})
	page := policyPage(t, e, nil)

	for _, raw := range []string{"<script>alert", "<img src=x"} {
		if strings.Contains(page, raw) {
			t.Errorf("page contains the raw markup %q", raw)
		}
	}
	escaped := html.EscapeString(`<script>alert(`)
	if n := strings.Count(page, escaped); n < 2 {
		t.Errorf("escaped payload %q shown %d times, want in the active config and the history", escaped, n)
	}
	// Inside the JSON data element the markup is JSON-escaped, and the
	// data still decodes to the original text.
	m := bootRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no #policy-data script element")
	}
	if strings.Contains(m[1], "</") {
		t.Errorf("#policy-data contains \"</\": %s", m[1])
	}
	var boot struct {
		Active struct {
			Config struct {
				Replacements [][]string `json:"replacements"`
			} `json:"config"`
		} `json:"active"`
	}
	if err := json.Unmarshal([]byte(m[1]), &boot); err != nil {
		t.Fatalf("#policy-data is not JSON: %v", err)
	}
	if r := boot.Active.Config.Replacements; len(r) != 1 || r[0][1] != payload {
		t.Errorf("#policy-data replacements = %v, want the payload intact", r)
	}
	// The load action's data attribute holds the policy as JSON text.
	if !strings.Contains(page, `data-policy="{&#34;class&#34;:&#34;string_replacement&#34;`) {
		t.Errorf("the history's load action does not carry the policy as an attribute-escaped JSON text")
	}
}

// The editor's parser turns YAML into JSON and names the line of a
// syntax error; it is an admin route like the page.
func TestUIPolicyParse(t *testing.T) {
	const key = "adm-ui-parse-test-key"
	e := start(t, "inprocess", options{gatewayEnv: map[string]string{"LUTHIEN_ADMIN_API_KEY": key}})
	auth := map[string]string{"Authorization": "Bearer " + key}

	resp, body := e.do(t, http.MethodPost, "/policy/parse", "class: serial\nconfig:\n  policies:\n    - class: all_caps\n    - class: regex_block\n      config: {patterns: ['rm -rf']}\n", auth)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("valid YAML: %d %s", resp.StatusCode, body)
	}
	const want = `{"class":"serial","config":{"policies":[{"class":"all_caps"},{"class":"regex_block","config":{"patterns":["rm -rf"]}}]}}`
	if string(body) != want {
		t.Errorf("valid YAML:\n got  %s\n want %s", body, want)
	}

	resp, body = e.do(t, http.MethodPost, "/policy/parse", "class: noop\nconfig:\n  a: 1\n b: 2\n", auth)
	var bad struct {
		Error struct {
			Message string `json:"message"`
			Line    int    `json:"line"`
		} `json:"error"`
	}
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &bad) != nil || bad.Error.Line == 0 ||
		!strings.HasPrefix(bad.Error.Message, "line ") {
		t.Errorf("invalid YAML: %d %s, want 400 with the line", resp.StatusCode, body)
	}

	if resp, body := e.do(t, http.MethodPost, "/policy/parse", "class: noop\n", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the key: %d %s, want 401", resp.StatusCode, body)
	}
	// The parser only reads: the active policy is unchanged.
	if page := policyPage(t, e, auth); !strings.Contains(page, `<code id="active-class">noop</code>`) {
		t.Errorf("parsing changed the active policy")
	}
}
