package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeExample is the Node.js client of the activity feed.
const nodeExample = "examples/activity-watch-node"

// installNodeExample copies the Node.js example to a temporary directory
// and installs its locked dependencies there (npm ci), so the tree is
// left as it is. It returns the node command and the directory.
func installNodeExample(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	needTool(t, err, "node runs the Node.js example")
	npm, err := exec.LookPath("npm")
	needTool(t, err, "npm installs the Node.js example's dependencies")
	src := filepath.Join(repoRoot(t), nodeExample)
	dir = t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json", "watch.js"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	return node, dir
}

// watchCommand runs the example's watch.js against addr with the given
// token and flags; it is interrupted (SIGINT, as by Ctrl-C) when ctx ends.
func watchCommand(ctx context.Context, t *testing.T, node, dir, addr, token string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "watch.js")}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LUTHIEN_CONTROL_PLANE="+addr, envToken+"="+token,
		"LUTHIEN_PROTO_DIR="+filepath.Join(repoRoot(t), "proto"))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// watchLine is a line the example prints for an event.
type watchLine struct {
	Time      string         `json:"time"`
	CallID    string         `json:"call_id"`
	SessionID string         `json:"session_id"`
	EventType string         `json:"event_type"`
	Payload   map[string]any `json:"payload"`
}

// TestActivityWatchNode installs the Node.js example's locked
// dependencies, runs it against a live control plane with a token and
// checks that it prints a line for each event of a recorded call (and
// only the session it was asked for), that Ctrl-C ends it cleanly, and
// that without the token it fails with the control plane's refusal.
func TestActivityWatchNode(t *testing.T) {
	node, dir := installNodeExample(t)
	addr := serve(t, map[string]string{envToken: testToken})
	conn := dialToken(t, addr)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := watchCommand(ctx, t, node, dir, addr, testToken, "--session-id", "node-watch")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := collect(stdout)
	parsed := func() []watchLine {
		var evs []watchLine
		for _, l := range out.get() {
			var ev watchLine
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("the example printed %q, not a JSON line: %v", l, err)
			}
			evs = append(evs, ev)
		}
		return evs
	}
	// A call of another session first: filtered out.
	recordCall(t, conn, "other-session-call", "elsewhere")
	recordUntil(t, conn, "node-watch", func() bool { return len(parsed()) > 0 })
	cancel()
	// Wait reports the cancellation; the exit status tells how it ended.
	_ = cmd.Wait()
	if !cmd.ProcessState.Success() {
		t.Errorf("the example did not end cleanly on SIGINT: %v\nstderr:\n%s", cmd.ProcessState, stderr.Bytes())
	}
	<-out.done

	got := parsed()
	if len(got) == 0 {
		t.Fatalf("no event printed; stderr:\n%s", stderr.Bytes())
	}
	for _, ev := range got {
		if !strings.HasPrefix(ev.CallID, "node-watch-call-") || ev.SessionID != "node-watch" {
			t.Errorf("event of another call or session: %+v", ev)
		}
		if ev.EventType != "request.received" && ev.EventType != "request.final" {
			t.Errorf("event type %q, want the request's", ev.EventType)
		}
		if ev.Payload["model"] != "claude-test" {
			t.Errorf("payload %v, want the recorded request", ev.Payload)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
			t.Errorf("time %q: %v", ev.Time, err)
		}
	}

	t.Run("wrong token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := watchCommand(ctx, t, node, dir, addr, "wrong-token-0123456789abcdef").CombinedOutput()
		if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("the example with a wrong token: %v, want exit status 1:\n%s", err, out)
		}
		if !strings.Contains(string(out), "UNAUTHENTICATED") {
			t.Errorf("output lacks UNAUTHENTICATED:\n%s", out)
		}
	})
}
