package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"luthien.dev/controlplane/internal/dbtest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// readmeAddr is the control plane's address in the README's commands;
// the tests replace it with their control plane's.
const readmeAddr = "127.0.0.1:9000"

// grpcurlDir returns a directory holding grpcurl, the version pinned in
// tools/go.mod (built once, then taken from the build cache).
func grpcurlDir(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	needTool(t, err, "the go command builds grpcurl")
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "tool", "-n", "grpcurl")
	cmd.Dir = filepath.Join(repoRoot(t), "tools")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool -n grpcurl: %v\n%s", err, stderr.Bytes())
	}
	dir := t.TempDir()
	if err := os.Symlink(strings.TrimSpace(string(out)), filepath.Join(dir, "grpcurl")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readmeCommands is the shell block of README.md's "grpcurl" section:
// its variable assignments, and its grpcurl commands with continuation
// lines joined.
func readmeCommands(t *testing.T) (assignments, commands []string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## grpcurl\n")
	if !ok {
		t.Fatal(`README.md has no "## grpcurl" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```sh\n")
	if !ok {
		t.Fatal(`README.md's "grpcurl" section has no sh block`)
	}
	block, _, _ = strings.Cut(block, "\n```")
	block = strings.ReplaceAll(block, "\\\n", " ")
	assignment := regexp.MustCompile(`^[A-Z_]+=`)
	for line := range strings.Lines(block) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case assignment.MatchString(line):
			assignments = append(assignments, line)
		case strings.HasPrefix(line, "grpcurl "):
			commands = append(commands, strings.Join(strings.Fields(line), " "))
		default:
			t.Fatalf("README.md's grpcurl block: %q is neither an assignment nor a grpcurl command", line)
		}
	}
	return assignments, commands
}

// commandKey names what a README command does: the method it calls, or
// list, or describe and what it describes.
func commandKey(command string) string {
	f := strings.Fields(command)
	for i, w := range f {
		if w == "list" || w == "describe" {
			return strings.Join(f[i:], " ")
		}
	}
	return f[len(f)-1]
}

// grpcurlShell runs README commands with bash, the README's
// assignments first (its address replaced by addr), grpcurl from dir
// on the PATH and env added to the environment.
type grpcurlShell struct {
	bash, dir, addr string
	assignments     []string
}

func newGrpcurlShell(t *testing.T, addr string) (*grpcurlShell, []string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	needTool(t, err, "bash runs the README's commands")
	assignments, commands := readmeCommands(t)
	return &grpcurlShell{bash: bash, dir: grpcurlDir(t), addr: addr, assignments: assignments}, commands
}

func (s *grpcurlShell) command(ctx context.Context, command string, env ...string) *exec.Cmd {
	// exec: cancelling ctx kills grpcurl itself, not a shell around it.
	script := strings.ReplaceAll(strings.Join(s.assignments, "\n"), readmeAddr, s.addr) + "\nexec " + command
	cmd := exec.CommandContext(ctx, s.bash, "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+s.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a command to its end and returns its output (stdout and
// stderr) and error.
func (s *grpcurlShell) run(t *testing.T, command string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := s.command(ctx, command, env...).CombinedOutput()
	return string(out), err
}

// decode parses grpcurl's JSON output into m.
func decode(t *testing.T, out string, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("grpcurl's output is not a %T: %v\n%s", m, err, out)
	}
}

// TestGrpcurlREADME runs every grpcurl command of README.md's "grpcurl"
// section against a live control plane with a token and PostgreSQL, and
// checks what each prints. A command added to the README without a check
// here fails the test, and so does a check whose command left the README.
func TestGrpcurlREADME(t *testing.T) {
	addr := serve(t, map[string]string{envToken: testToken, envDatabaseURL: dbtest.NewDatabase(t)})
	sh, commands := newGrpcurlShell(t, addr)
	token := envToken + "=" + testToken
	conn := dialToken(t, addr)
	var callID string

	const (
		getPolicy = "luthien.controlplane.v1.PolicyAdminService/GetPolicy"
		setPolicy = "luthien.controlplane.v1.PolicyAdminService/SetPolicy"
		watch     = "luthien.controlplane.v1.ActivityService/StreamActivity"
		listCalls = "luthien.controlplane.v1.HistoryService/ListCalls"
		getCall   = "luthien.controlplane.v1.HistoryService/GetCall"
	)
	// checks run in this order; a key may come back to see a change.
	type check struct {
		key string
		fn  func(t *testing.T, command string)
	}
	checkPolicy := func(class, changedBy string) func(*testing.T, string) {
		return func(t *testing.T, command string) {
			out, err := sh.run(t, command, token)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var resp cpv1.GetPolicyResponse
			decode(t, out, &resp)
			if got := resp.GetActive(); got.GetPolicy().GetClass() != class || got.GetChangedBy() != changedBy {
				t.Errorf("policy %s changed by %q, want %s changed by %q:\n%s", got.GetPolicy().GetClass(), got.GetChangedBy(), class, changedBy, out)
			}
		}
	}
	contains := func(want ...string) func(*testing.T, string) {
		return func(t *testing.T, command string) {
			out, err := sh.run(t, command, token)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		}
	}
	checks := []check{
		{"list", contains(append(slices.Clone(servedServices()), "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection")...)},
		{"describe luthien.controlplane.v1.PolicyAdminService", contains("service PolicyAdminService", "rpc SetPolicy", "rpc GetPolicy")},
		{"describe luthien.controlplane.v1.PolicyConfig", contains("message PolicyConfig", "string class = 1")},
		{getPolicy, checkPolicy("noop", "startup")},
		{setPolicy, func(t *testing.T, command string) {
			out, err := sh.run(t, command, token)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var resp cpv1.SetPolicyResponse
			decode(t, out, &resp)
			if got := resp.GetActive(); got.GetPolicy().GetClass() != "all_caps" || got.GetChangedBy() != "grpcurl" {
				t.Errorf("SetPolicy answered %v", got)
			}
		}},
		{getPolicy, checkPolicy("all_caps", "grpcurl")},
		{watch, func(t *testing.T, command string) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			cmd := sh.command(ctx, command, token)
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
			events := func() []*cpv1.StreamActivityResponse { return activity(t, out.text()) }
			callID = recordUntil(t, conn, "grpcurl", func() bool { return len(events()) > 0 })
			cancel()
			_ = cmd.Wait()
			<-out.done
			got := events()
			for _, ev := range got {
				// The request as received, and as sent (unchanged: a copy).
				e := ev.GetEvent()
				if !strings.HasPrefix(e.GetCallId(), "grpcurl-call-") || e.GetSessionId() != "grpcurl" ||
					(e.GetEventType() != "request.received" && e.GetEventType() != "request.final") {
					t.Errorf("unexpected event %v", e)
				}
				if !strings.Contains(e.GetPayload().GetFields()["model"].GetStringValue(), "claude-test") {
					t.Errorf("event without the request as its payload: %v", e)
				}
			}
			if len(got) == 0 {
				t.Fatalf("no event printed; stderr:\n%s", stderr.Bytes())
			}
		}},
		{listCalls, func(t *testing.T, command string) {
			eventually(t, "ListCalls lists the recorded call", func() (bool, string) {
				out, err := sh.run(t, command, token)
				if err != nil {
					return false, out
				}
				var resp cpv1.ListCallsResponse
				decode(t, out, &resp)
				for _, c := range resp.GetCalls() {
					if c.GetCallId() == callID && c.GetModel() == "claude-test" {
						return true, out
					}
				}
				return false, out
			})
		}},
		{getCall, func(t *testing.T, command string) {
			eventually(t, "GetCall returns the recorded call", func() (bool, string) {
				out, err := sh.run(t, command, token, "CALL_ID="+callID)
				if err != nil {
					return false, out
				}
				var resp cpv1.GetCallResponse
				decode(t, out, &resp)
				var types []string
				for _, e := range resp.GetEvents() {
					types = append(types, e.GetEventType())
				}
				return resp.GetCall().GetCallId() == callID && slices.Contains(types, "request.received"), out
			})
		}},
	}

	byKey := map[string]string{}
	for _, c := range commands {
		k := commandKey(c)
		if _, dup := byKey[k]; dup {
			t.Fatalf("README.md's grpcurl block has two commands for %s", k)
		}
		byKey[k] = c
		if !slices.ContainsFunc(checks, func(ch check) bool { return ch.key == k }) {
			t.Errorf("README.md's command %q is not checked here: add a check", c)
		}
	}
	for _, ch := range checks {
		command, ok := byKey[ch.key]
		if !ok {
			t.Errorf("README.md's grpcurl block has no command for %s", ch.key)
			continue
		}
		if !strings.Contains(command, `-H "$AUTH"`) {
			t.Errorf("README.md's command %q does not send the token", command)
		}
		if !t.Run(ch.key, func(t *testing.T) { ch.fn(t, command) }) {
			return // later checks build on earlier ones
		}
	}
}

// TestGrpcurlNeedsToken runs README.md's commands for listing the
// services (reflection) and reading the policy without the token and
// with a wrong one: the control plane refuses them.
func TestGrpcurlNeedsToken(t *testing.T) {
	addr := serve(t, map[string]string{envToken: testToken})
	sh, commands := newGrpcurlShell(t, addr)
	for _, key := range []string{"list", "luthien.controlplane.v1.PolicyAdminService/GetPolicy"} {
		i := slices.IndexFunc(commands, func(c string) bool { return commandKey(c) == key })
		if i < 0 {
			t.Fatalf("README.md's grpcurl block has no command for %s", key)
		}
		command := commands[i]
		for name, tt := range map[string]struct {
			command string
			env     []string
		}{
			"no authorization": {strings.Replace(command, `-H "$AUTH" `, "", 1), nil},
			"empty token":      {command, []string{envToken + "="}},
			"wrong token":      {command, []string{envToken + "=wrong-token-0123456789abcdef"}},
		} {
			t.Run(key+"/"+name, func(t *testing.T) {
				out, err := sh.run(t, tt.command, tt.env...)
				if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) {
					t.Fatalf("grpcurl %s: %v, want a refusal:\n%s", name, err, out)
				}
				if !strings.Contains(out, "Unauthenticated") {
					t.Errorf("grpcurl %s: output lacks Unauthenticated:\n%s", name, out)
				}
			})
		}
	}
	// The token opens them.
	out, err := sh.run(t, commands[slices.IndexFunc(commands, func(c string) bool { return commandKey(c) == "list" })], envToken+"="+testToken)
	if err != nil || !strings.Contains(out, "luthien.controlplane.v1.PolicyAdminService") {
		t.Fatalf("grpcurl list with the token: %v\n%s", err, out)
	}
}

// servedServices lists the control plane's own services.
func servedServices() []string {
	return []string{
		cpv1.PolicyService_ServiceDesc.ServiceName, cpv1.CallService_ServiceDesc.ServiceName,
		cpv1.PolicyAdminService_ServiceDesc.ServiceName, cpv1.ActivityService_ServiceDesc.ServiceName,
		cpv1.HistoryService_ServiceDesc.ServiceName,
	}
}

// activity parses the messages grpcurl printed for a stream: JSON
// objects one after the other. A message cut short at the end (still
// being printed) is left out.
func activity(t *testing.T, out string) []*cpv1.StreamActivityResponse {
	t.Helper()
	var msgs []*cpv1.StreamActivityResponse
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("grpcurl's stream output: %v\n%s", err, out)
			}
			return msgs
		}
		var m cpv1.StreamActivityResponse
		if err := protojson.Unmarshal(raw, &m); err != nil {
			t.Fatalf("grpcurl printed %s: %v", raw, err)
		}
		msgs = append(msgs, &m)
	}
}

// eventually retries cond for up to 15 seconds and fails with its last
// output.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, out := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15s; last output:\n%s", what, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
