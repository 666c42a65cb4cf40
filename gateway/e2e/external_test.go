package e2e

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// debianPython is the Python whose python3-grpcio and python3-protobuf
// match the stubs in gen/python.
const debianPython = "/usr/bin/python3"

// pythonPolicyServer starts examples/python-policy/server.py on a free
// loopback port with args and the extra environment env, and returns its
// address. Without Debian's Python and its gRPC modules the test is
// skipped, or fails when CI=true.
func pythonPolicyServer(t *testing.T, env []string, args ...string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pythonPath := "PYTHONPATH=" + filepath.Join(root, "gen", "python")
	check := exec.Command(debianPython, "-c", "import grpc, google.protobuf; from luthien.controlplane.v1 import policy_pb2_grpc")
	check.Env = append(os.Environ(), pythonPath, "PYTHONDONTWRITEBYTECODE=1")
	if out, err := check.CombinedOutput(); err != nil {
		why := "the external policy test needs " + debianPython + " with python3-grpcio and python3-protobuf, and the stubs in gen/python: " + strings.TrimSpace(string(out)+" "+err.Error())
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	cmd := exec.Command(debianPython, append([]string{filepath.Join(root, "examples", "python-policy", "server.py"), "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), pythonPath, "PYTHONDONTWRITEBYTECODE=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	found := make(chan string, 1)
	var mu sync.Mutex
	var logs bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the Python policy server did not start listening; its log:\n%s", logs.String())
		return ""
	}
}

// A Python policy server runs as an `external` member of a chain, in both
// deployment modes: it refuses requests by word, rewrites streamed and
// whole text, passes unchanged events through as upstream's bytes, and
// refuses a call without its token (the gateway then fails closed).
func TestExternalPythonPolicy(t *testing.T) {
	const token = "py-policy-token"
	addr := pythonPolicyServer(t, []string{"PY_POLICY_TOKEN=" + token},
		"--token-env", "PY_POLICY_TOKEN", "--block-word", "forbidden", "--rewrite", "hello=goodbye")
	// The control plane reads the tokens from its environment, in-process
	// the gateway's own (this process's).
	t.Setenv("LUTHIEN_EXTERNAL_POLICY_TOKEN", token)
	t.Setenv("LUTHIEN_EXTERNAL_POLICY_TOKEN_WRONG", "not-the-token")
	external := func(tokenEnv string) map[string]any {
		return map[string]any{"address": addr, "token_env": tokenEnv}
	}
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.setPolicy(t, "serial", map[string]any{"policies": []any{
			map[string]any{"class": "external", "config": external("LUTHIEN_EXTERNAL_POLICY_TOKEN")},
			map[string]any{"class": "all_caps"},
		}})
		t.Run("rewritten then uppercased", func(t *testing.T) {
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				// One delta per word: the rewrite works per delta.
				got := ask(t, e, format, stream, fakeupstream.Scenario{Text: "hello world, hello"})
				checkOutcome(t, got, "GOODBYE WORLD, GOODBYE", false, nil, "end_turn")
			})
		})
		t.Run("blocked request", func(t *testing.T) {
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				before := len(e.up.Requests())
				path, body, headers := "/v1/messages", anthropicBody(stream, ""), anthropicHeaders
				if format == "openai" {
					path, body, headers = "/v1/chat/completions", openaiBody(stream, ""), openaiHeaders
				}
				body = strings.Replace(body, `"hi"`, `"tell me something Forbidden"`, 1)
				resp, b := e.do(t, http.MethodPost, path, body, headers)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "Request blocked by policy: it mentions 'forbidden'.") {
					t.Errorf("got %d %s, want 403 with the server's message", resp.StatusCode, b)
				}
				if n := len(e.up.Requests()); n != before {
					t.Errorf("a blocked request reached upstream (%d requests, was %d)", n, before)
				}
			})
		})
		t.Run("unchanged events keep upstream's bytes", func(t *testing.T) {
			e.setPolicy(t, "external", external("LUTHIEN_EXTERNAL_POLICY_TOKEN"))
			for _, format := range clientFormats {
				args := `{"command":"ls"}`
				got := ask(t, e, format, true, fakeupstream.Scenario{Text: "Nothing to change. ", ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: args}}})
				checkOutcome(t, got, "Nothing to change. ", false, []string{"Bash " + args}, "tool_use")
				if up, _ := e.up.LastFinished(5 * time.Second); got.raw != string(up.Sent) {
					t.Errorf("%s: stream through the policy server not byte-identical:\n got %s\nwant %s", format, got.raw, up.Sent)
				}
			}
		})
		t.Run("wrong token fails closed", func(t *testing.T) {
			e.setPolicy(t, "external", external("LUTHIEN_EXTERNAL_POLICY_TOKEN_WRONG"))
			forEachCall(t, func(t *testing.T, format string, stream bool) {
				got := send(t, e, format, stream)
				if got.status != http.StatusBadGateway {
					t.Errorf("got %d %s, want 502", got.status, got.raw)
				}
			})
		})
	})
}
