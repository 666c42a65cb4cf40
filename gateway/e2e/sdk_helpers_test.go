package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// The SDK tests call the gateway with the official OpenAI and Anthropic
// SDKs, run by Node.js from the project in sdk/ (package.json and its
// lock pin the SDKs; `make sdk-tools` installs Node.js and runs npm ci).

// sdkDir is the Node project of the SDK scripts, relative to this package.
const sdkDir = "sdk"

// sdkTimeout bounds one run of an SDK script.
const sdkTimeout = 60 * time.Second

// sdkResult is the JSON line an SDK script prints: what the SDK parsed, or
// the error it raised.
type sdkResult struct {
	CallID    string         `json:"call_id"`
	Choices   int            `json:"choices"` // OpenAI only
	Text      string         `json:"text"`
	ToolCalls []sdkToolCall  `json:"tool_calls"`
	Stop      string         `json:"stop"` // finish_reason or stop_reason, as the SDK gave it
	Usage     map[string]any `json:"usage"`
	Error     *sdkError      `json:"error"`
	raw       string         // the line itself
}

// sdkToolCall is a tool call as the SDK parsed it.
type sdkToolCall struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
	// ArgumentsRaw and ArgumentsError are set when the arguments of an
	// OpenAI tool call are not JSON.
	ArgumentsRaw   string `json:"arguments_raw"`
	ArgumentsError string `json:"arguments_error"`
}

// sdkError is an error the SDK raised: its class (the SDK's own, e.g.
// RateLimitError), HTTP status, error type and message.
type sdkError struct {
	Class   string `json:"class"`
	Status  int    `json:"status"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

// requireSDK returns the path of node, failing the test with what to run
// when Node.js or the SDKs are not installed (or older than the lock).
func requireSDK(t *testing.T) string {
	t.Helper()
	const fix = "run `make sdk-tools` (it installs Node.js and npm when missing and runs npm ci in gateway/e2e/sdk)"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the SDK tests need Node.js, and node is not on PATH: %s", fix)
	}
	lock, err := os.Stat(filepath.Join(sdkDir, "package-lock.json"))
	if err != nil {
		t.Fatalf("the SDK project's lock: %v", err)
	}
	installed, err := os.Stat(filepath.Join(sdkDir, "node_modules", ".package-lock.json"))
	if err != nil {
		t.Fatalf("the SDKs are not installed in %s: %s", sdkDir, fix)
	}
	if installed.ModTime().Before(lock.ModTime()) {
		t.Fatalf("the SDKs installed in %s are older than its package-lock.json: %s", sdkDir, fix)
	}
	return node
}

// runSDK runs the script of sdk ("openai" or "anthropic") against the
// gateway: it asks for model with key as the client's API key, streamed
// or not, with a tool defined, and returns what the SDK printed.
func runSDK(t *testing.T, e *env, sdk, model, key string, stream bool) sdkResult {
	t.Helper()
	node := requireSDK(t)
	sdkCase := "create"
	if stream {
		sdkCase = "stream"
	}
	ctx, cancel := context.WithTimeout(context.Background(), sdkTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, sdk+".mjs", "--base-url", e.URL, "--model", model, "--case", sdkCase)
	cmd.Dir = sdkDir
	cmd.Env = append(sdkEnviron(), "SDK_API_KEY="+key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	what := fmt.Sprintf("%s SDK, model %s, %s", sdk, model, sdkCase)
	if ctx.Err() != nil {
		t.Fatalf("%s: no answer within %s; stdout:\n%s\nstderr:\n%s", what, sdkTimeout, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("%s: the script failed: %v; stdout:\n%s\nstderr:\n%s", what, err, stdout.String(), stderr.String())
	}
	line := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	var res sdkResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("%s: the script's output is not one JSON line: %v; stdout:\n%s\nstderr:\n%s", what, err, stdout.String(), stderr.String())
	}
	res.raw = line
	return res
}

// sdkEnviron is the test's environment without the variables the SDKs
// read on their own (base URLs, keys, auth tokens), so that only what
// runSDK passes reaches them.
func sdkEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "OPENAI_") || strings.HasPrefix(name, "ANTHROPIC_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// writeRoutes writes a routes file into a temporary directory: text with
// ANTHROPIC_URL and OPENAI_URL replaced by up's base URLs.
func writeRoutes(t *testing.T, up *fakeupstream.Server, text string) string {
	t.Helper()
	text = strings.NewReplacer("ANTHROPIC_URL", up.AnthropicBaseURL(), "OPENAI_URL", up.OpenAIBaseURL()).Replace(text)
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sdkRoute is one SDK whose model the routes file sends to the provider
// of the other API.
type sdkRoute struct {
	sdk   string // the script: "openai" or "anthropic"
	model string // the model the client asks for
	// upPath and upModel are where the routed request must arrive
	// upstream and the model it must name there.
	upPath, upModel string
	// keyHeader and key are the route provider's key as upstream must
	// receive it.
	keyHeader, key string
	// toolStop and textStop are the stop reasons the SDK must report
	// after a tool call and after text, in its own API's vocabulary.
	toolStop, textStop string
	// inTokens and outTokens name the SDK's usage fields.
	inTokens, outTokens string
}

// The keys of the route providers, in the gateway's environment.
const (
	routeAnthropicKey = "sk-route-anthropic-7d1c"
	routeOpenAIKey    = "sk-route-openai-3e9a"
)

// openaiToAnthropic is the OpenAI SDK asking for gpt-4o, served by the
// Anthropic provider; anthropicToOpenAI the Anthropic SDK asking for
// claude-sonnet-4-5, served by the OpenAI provider.
var (
	openaiToAnthropic = sdkRoute{sdk: "openai", model: "gpt-4o", upPath: "/v1/messages", upModel: "claude-fake",
		keyHeader: "X-Api-Key", key: routeAnthropicKey, toolStop: "tool_calls", textStop: "stop",
		inTokens: "prompt_tokens", outTokens: "completion_tokens"}
	anthropicToOpenAI = sdkRoute{sdk: "anthropic", model: "claude-sonnet-4-5", upPath: "/v1/chat/completions", upModel: "gpt-fake",
		keyHeader: "Authorization", key: "Bearer " + routeOpenAIKey, toolStop: "tool_use", textStop: "end_turn",
		inTokens: "input_tokens", outTokens: "output_tokens"}
	sdkRoutes = []sdkRoute{openaiToAnthropic, anthropicToOpenAI}
)

func (r sdkRoute) String() string {
	return fmt.Sprintf("%s SDK %s to %s", r.sdk, r.model, r.upModel)
}

// sdkWant is what an SDK must have parsed.
type sdkWant struct {
	text  string
	tools []sdkWantTool
	tool  bool // the stop reason is the one after a tool call
	// usage, when set, are the exact input and output tokens; otherwise
	// both need only be present.
	usage *fakeupstream.Usage
}

type sdkWantTool struct {
	name string
	args map[string]any
}

// check compares what the SDK parsed with want.
func (r sdkRoute) check(t *testing.T, got sdkResult, want sdkWant) {
	t.Helper()
	if got.Error != nil {
		t.Fatalf("%s: the SDK raised %s (status %d): %s", r, got.Error.Class, got.Error.Status, got.Error.Message)
	}
	if r.sdk == "openai" && got.Choices != 1 {
		t.Errorf("%s: %d choices, want 1: %s", r, got.Choices, got.raw)
	}
	if got.Text != want.text {
		t.Errorf("%s: text %q, want %q", r, got.Text, want.text)
	}
	if len(got.ToolCalls) != len(want.tools) {
		t.Errorf("%s: %d tool calls, want %d: %s", r, len(got.ToolCalls), len(want.tools), got.raw)
	}
	for i := 0; i < len(got.ToolCalls) && i < len(want.tools); i++ {
		tc, w := got.ToolCalls[i], want.tools[i]
		if tc.ArgumentsError != "" {
			t.Errorf("%s: tool call %d's arguments %q are not JSON: %s", r, i, tc.ArgumentsRaw, tc.ArgumentsError)
		}
		if tc.Name != w.name || !reflect.DeepEqual(tc.Arguments, w.args) {
			t.Errorf("%s: tool call %d is %s %v, want %s %v", r, i, tc.Name, tc.Arguments, w.name, w.args)
		}
		if tc.ID == "" {
			t.Errorf("%s: tool call %d has no id: %s", r, i, got.raw)
		}
	}
	stop := r.textStop
	if want.tool {
		stop = r.toolStop
	}
	if got.Stop != stop {
		t.Errorf("%s: stop reason %q, want %q", r, got.Stop, stop)
	}
	in, inOK := got.Usage[r.inTokens].(float64)
	out, outOK := got.Usage[r.outTokens].(float64)
	switch {
	case !inOK || !outOK:
		t.Errorf("%s: usage %v lacks %s or %s", r, got.Usage, r.inTokens, r.outTokens)
	case want.usage != nil && (int(in) != want.usage.InputTokens || int(out) != want.usage.OutputTokens):
		t.Errorf("%s: usage %s=%v %s=%v, want %d and %d", r, r.inTokens, in, r.outTokens, out, want.usage.InputTokens, want.usage.OutputTokens)
	}
}

// upstreamSince returns the requests up received after the first n,
// judge requests left out.
func upstreamSince(up *fakeupstream.Server, n int) []fakeupstream.Request {
	var out []fakeupstream.Request
	for _, req := range up.Requests()[n:] {
		if m := req.JSON(); m != nil && m["model"] == judgeModel {
			continue
		}
		out = append(out, req)
	}
	return out
}

// checkRouted checks the one request upstream received for an SDK call
// (among those after the first n): the route's path, model and key, and
// the tool the client defined.
func (r sdkRoute) checkRouted(t *testing.T, up *fakeupstream.Server, n int) {
	t.Helper()
	reqs := upstreamSince(up, n)
	if len(reqs) != 1 {
		t.Fatalf("%s: upstream received %d requests, want 1", r, len(reqs))
	}
	req := reqs[0]
	m := req.JSON()
	if req.Path != r.upPath || m["model"] != r.upModel {
		t.Errorf("%s: upstream received %s for model %v, want %s for %s", r, req.Path, m["model"], r.upPath, r.upModel)
	}
	if got := req.Header.Get(r.keyHeader); got != r.key {
		t.Errorf("%s: upstream received %s %q, want the route's key %q", r, r.keyHeader, got, r.key)
	}
	tools, _ := m["tools"].([]any)
	name := ""
	if len(tools) == 1 {
		tool, _ := tools[0].(map[string]any)
		if fn, ok := tool["function"].(map[string]any); ok {
			name, _ = fn["name"].(string)
		} else {
			name, _ = tool["name"].(string)
		}
	}
	if name != "Bash" {
		t.Errorf("%s: upstream's tools %v, want the client's Bash tool", r, m["tools"])
	}
}

// checkNoKey fails when any request up received after the first n
// carries key, in a header or its body.
func checkNoKey(t *testing.T, up *fakeupstream.Server, n int, key string) {
	t.Helper()
	for _, req := range up.Requests()[n:] {
		for name, vs := range req.Header {
			for _, v := range vs {
				if strings.Contains(v, key) {
					t.Errorf("upstream request %d (%s) carries the client's key in %s: %q", req.Seq, req.Path, name, v)
				}
			}
		}
		if bytes.Contains(req.Body, []byte(key)) {
			t.Errorf("upstream request %d (%s) carries the client's key in its body", req.Seq, req.Path)
		}
	}
}
