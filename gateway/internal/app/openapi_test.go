package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// restRules is the REST mapping the OpenAPI document is generated from.
const restRules = "../../../proto/luthien/controlplane/v1/controlplane_http.yaml"

// openAPIDoc is the part of a Swagger 2.0 document the tests read.
type openAPIDoc struct {
	Swagger string `json:"swagger"`
	Paths   map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Responses   map[string]struct {
			Schema schema `json:"schema"`
		} `json:"responses"`
	} `json:"paths"`
	Definitions map[string]schema `json:"definitions"`
}

type schema struct {
	Ref        string            `json:"$ref"`
	Type       string            `json:"type"`
	Properties map[string]schema `json:"properties"`
	Items      *schema           `json:"items"`
}

// restRule is one HTTP rule of the REST mapping.
type restRule struct{ method, path, operationID string }

// readRESTRules reads the selectors and their HTTP rules from the REST
// mapping (a flat list of `selector:` lines each followed by its verb).
func readRESTRules(t *testing.T) []restRule {
	t.Helper()
	b, err := os.ReadFile(restRules)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*- selector: luthien\.controlplane\.v1\.(\w+)\.(\w+)\n\s+(get|put|post|patch|delete): (\S+)$`)
	var rules []restRule
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		rules = append(rules, restRule{method: m[3], path: m[4], operationID: m[1] + "_" + m[2]})
	}
	if len(rules) < 10 {
		t.Fatalf("read %d rules from %s: the file's layout changed", len(rules), restRules)
	}
	return rules
}

// getAdmin answers a GET of path with the admin key.
func getAdmin(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+adminKey)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestOpenAPIDocument fetches /api/openapi.json with the admin key and
// checks that it is a Swagger 2.0 JSON document describing exactly the
// REST rules of controlplane_http.yaml (path, method, operation), all
// under the /api/v1/ routes, with the field names the REST API answers
// with.
func TestOpenAPIDocument(t *testing.T) {
	h := newApp(t, map[string]string{"LUTHIEN_ADMIN_API_KEY": adminKey}).Handler()
	w := getAdmin(t, h, "/api/openapi.json")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger %q, want 2.0", doc.Swagger)
	}

	rules := readRESTRules(t)
	for _, r := range rules {
		op, ok := doc.Paths[r.path][r.method]
		if !ok {
			t.Errorf("the document lacks %s %s", strings.ToUpper(r.method), r.path)
			continue
		}
		if op.OperationID != r.operationID {
			t.Errorf("%s %s is operation %q, want %q", strings.ToUpper(r.method), r.path, op.OperationID, r.operationID)
		}
	}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/v1/") {
			t.Errorf("path %s is not under /api/v1/", path)
		}
		for method := range ops {
			if !slices.Contains(rules, restRule{method, path, ops[method].OperationID}) {
				t.Errorf("%s %s is in the document but not in %s", strings.ToUpper(method), path, restRules)
			}
		}
	}

	// The field names of a live answer are the document's.
	resp := getAdmin(t, h, "/api/v1/policy")
	if resp.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/policy: %d %s", resp.Code, resp.Body)
	}
	var policy any
	if err := json.Unmarshal(resp.Body.Bytes(), &policy); err != nil {
		t.Fatal(err)
	}
	checkFields(t, &doc, "GET /api/v1/policy", policy, doc.Paths["/api/v1/policy"]["get"].Responses["200"].Schema)
}

// checkFields checks that every field of v is a property of s (following
// references) and recurses into the properties that describe objects.
func checkFields(t *testing.T, doc *openAPIDoc, at string, v any, s schema) {
	t.Helper()
	if ref, ok := strings.CutPrefix(s.Ref, "#/definitions/"); ok {
		def, found := doc.Definitions[ref]
		if !found {
			t.Errorf("%s: undefined %s", at, s.Ref)
			return
		}
		s = def
	}
	switch v := v.(type) {
	case map[string]any:
		if s.Properties == nil {
			return // a free-form object (google.protobuf.Struct)
		}
		for k, fv := range v {
			fs, ok := s.Properties[k]
			if !ok {
				t.Errorf("%s: field %q is not in the document", at, k)
				continue
			}
			checkFields(t, doc, at+"."+k, fv, fs)
		}
	case []any:
		if s.Items != nil {
			for _, e := range v {
				checkFields(t, doc, at+"[]", e, *s.Items)
			}
		}
	}
}
