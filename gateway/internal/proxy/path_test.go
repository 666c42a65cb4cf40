package proxy

import (
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
)

func TestMatchPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want route
		bad  bool
	}{
		{"/", routeRoot, false},
		{"/v1/chat/completions", routeChat, false},
		{"/v1/messages", routeMessages, false},
		{"/v1/messages/count_tokens", routeCountTokens, false},
		{"/v1/models", routeModels, false},
		{"/v1/models/claude-sonnet-4-5-20250929", routeModel, false},
		{"/v1/models/ft:gpt-4o-mini:org:custom@v1.2+x~y_z", routeModel, false},
		{"/v1/models/ft%3Agpt-4o", routeModel, false}, // an encoded colon is a colon
		{"/v1/models/a..b", routeModel, false},        // dots inside a name are fine
		{"/v1/%6dessages", routeMessages, false},
		{"/v2/messages", routeNone, false},
		{"/v1/files", routeNone, false},
		{"/v1/models/a/b", routeNone, false},
		{"/v1/messages/batches", routeNone, false},
		{"/v1", routeNone, false},
		{"/v1/models/%2e%2e/%2e%2e/v1/files", routeNone, true},
		{"/v1/models/%2E%2E", routeNone, true},
		{"/v1/models/.%2e/files", routeNone, true},
		{"/v1/models/%2e", routeNone, true},
		{"/v1/models/a%2eb", routeNone, true}, // an encoded dot, even inside a name
		{"/v1/models/..", routeNone, true},
		{"/v1/models/.", routeNone, true},
		{"/v1/models/../../v1/files", routeNone, true},
		{"/v1/./messages", routeNone, true},
		{"/v1/models/x%2fy", routeNone, true},
		{"/v1/models/x%2Fy", routeNone, true},
		{"/v1/messages%2fcount_tokens", routeNone, true},
		{"/v1/models/a%5cb", routeNone, true},
		{`/v1/models/a\b`, routeNone, true},
		{"/v1/models/a%00", routeNone, true},
		{"/v1/models/a%0a", routeNone, true},
		{"/v1/models/a%7f", routeNone, true},
		{"/v1/models/a\x01", routeNone, true},
		{"/v1//messages", routeNone, true},
		{"/v1/messages/", routeNone, false}, // unknown, not malformed
		{"/debug/pprof/", routeNone, false},
		{"/v1/%2e%2e/", routeNone, true},
		{"/v1//", routeNone, true},
		{"//v1/messages", routeNone, true},
		{"/v1/models/", routeNone, false},
		{"/v1/models/a%2", routeNone, true},
		{"/v1/models/a%zz", routeNone, true},
		{"/v1/models/a b", routeNone, true},
		{"/v1/models/a%20b", routeNone, true},
		{"/v1/models/a?b", routeNone, true},
		{"v1/messages", routeNone, true},
		{"", routeNone, true},
	} {
		got, err := matchPath(tc.path)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("matchPath(%q) = %v, %v; want %v, malformed %v", tc.path, got, err, tc.want, tc.bad)
		}
	}
}

// The shapes a path may have once accepted.
var acceptedShapes = map[route]func(segs []string) bool{
	routeRoot:        func(s []string) bool { return len(s) == 1 && s[0] == "" },
	routeChat:        func(s []string) bool { return strings.Join(s, "/") == "v1/chat/completions" },
	routeMessages:    func(s []string) bool { return strings.Join(s, "/") == "v1/messages" },
	routeCountTokens: func(s []string) bool { return strings.Join(s, "/") == "v1/messages/count_tokens" },
	routeModels:      func(s []string) bool { return strings.Join(s, "/") == "v1/models" },
	routeModel: func(s []string) bool {
		return len(s) == 3 && s[0] == "v1" && s[1] == "models" && s[2] != "" && s[2] != "." && s[2] != ".."
	},
}

// An accepted path is one of the supported shapes, is its own cleaned
// form, and means the same once decoded: no segment hides a slash, a
// backslash, a dot-segment or a control character. The seeds are in
// testdata/fuzz/FuzzMatchPath.
func FuzzMatchPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, escaped string) {
		rt, err := matchPath(escaped)
		if err != nil || rt == routeNone {
			return
		}
		if path.Clean(escaped) != escaped {
			t.Fatalf("accepted %q, which cleans to %q", escaped, path.Clean(escaped))
		}
		decoded, err := url.PathUnescape(escaped)
		if err != nil {
			t.Fatalf("accepted %q, which does not decode: %v", escaped, err)
		}
		if path.Clean(decoded) != decoded || strings.ContainsAny(decoded, "\\%") {
			t.Fatalf("accepted %q, which decodes to %q", escaped, decoded)
		}
		for _, c := range []byte(decoded) {
			if c < 0x21 || c >= 0x7f {
				t.Fatalf("accepted %q, which decodes to %q with byte %#x", escaped, decoded, c)
			}
		}
		segs := strings.Split(strings.TrimPrefix(decoded, "/"), "/")
		if !acceptedShapes[rt](segs) {
			t.Fatalf("accepted %q (decoded %q) as %v, which is not that shape", escaped, decoded, rt)
		}
		if again, err := matchPath(decoded); again != rt || err != nil {
			t.Fatalf("%q accepted as %v, its decoded form %q as %v, %v", escaped, rt, decoded, again, err)
		}
	})
}

// seenPaths is an upstream that records the paths it is asked for.
type seenPaths struct {
	mu    sync.Mutex
	paths []string
}

func (s *seenPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.RequestURI())
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, wholeResponse(r.URL.Path))
}

func (s *seenPaths) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.paths
	s.paths = nil
	return out
}

// rawRequest sends a request whose path goes on the wire exactly as
// given, without following redirects.
func rawRequest(t *testing.T, method, base, rawPath string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base, strings.NewReader(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// No malformed path reaches upstream: each is a 400 in the client's
// format; the supported paths are forwarded as they were, query included.
func TestPathsNeverReachUpstream(t *testing.T) {
	up := &seenPaths{}
	g := startGateway(t, Config{}, &passPolicy{}, up)
	anth, oai := formats[0], formats[1]
	for _, tc := range []struct {
		method, path string
		f            format
	}{
		{"GET", "/v1/models/%2e%2e/%2e%2e/v1/files", anth},
		{"GET", "/v1/models/%2e%2e/%2e%2e/v1/files", oai},
		{"GET", "/v1/models/..%2f..%2fv1%2ffiles", anth},
		{"GET", "/v1/models/.%2e/files", oai},
		{"GET", "/v1/models/%2E%2E", anth},
		{"GET", "/v1/models/x%2fy", oai},
		{"GET", "/v1/models/a%5c..%5cfiles", anth},
		{"GET", `/v1/models/a\b`, anth},
		{"GET", "/v1/models/a%00", oai},
		{"GET", "/v1/models/a%0d%0aX-Injected:%20yes", anth},
		{"POST", "/v1/messages/%2e%2e/count_tokens", anth},
		{"POST", "/v1/messages%2fcount_tokens", anth},
		{"POST", "/v1/chat/completions%2f..", oai},
		{"HEAD", "/%2e", anth},
	} {
		resp, body := rawRequest(t, tc.method, g.URL, tc.path, tc.f.header)
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			(tc.method != "HEAD" && !strings.HasPrefix(body, tc.f.errorShape)) {
			t.Errorf("%s %s: got %d %s, want a 400 in the %s format", tc.method, tc.path, resp.StatusCode, body, tc.f.name)
		}
	}
	if seen := up.take(); len(seen) != 0 {
		t.Fatalf("malformed paths reached upstream: %q", seen)
	}

	for _, tc := range []struct {
		method, path, upstream string
		f                      format
	}{
		{"POST", "/v1/messages?beta=true", "/v1/messages?beta=true", anth},
		{"POST", "/v1/chat/completions", "/v1/chat/completions", oai},
		{"POST", "/v1/messages/count_tokens?beta=true", "/v1/messages/count_tokens?beta=true", anth},
		{"GET", "/v1/models?limit=5", "/v1/models?limit=5", anth},
		{"GET", "/v1/models/claude-sonnet-4-5", "/v1/models/claude-sonnet-4-5", anth},
		{"GET", "/v1/models/ft:gpt-4o-mini:org::abc", "/v1/models/ft:gpt-4o-mini:org::abc", oai},
		{"HEAD", "/", "/", anth},
	} {
		resp, body := rawRequest(t, tc.method, g.URL, tc.path, tc.f.header)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: got %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
		if seen := up.take(); len(seen) != 1 || seen[0] != tc.upstream {
			t.Errorf("%s %s: upstream saw %q, want %q", tc.method, tc.path, seen, tc.upstream)
		}
	}
}
