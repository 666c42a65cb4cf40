package policy

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// checkBoth runs p streamed and whole on the same response and checks
// both give want.
func checkBoth(t *testing.T, p Policy, text string, tools []testTool, stop string, want streamResult) *events {
	t.Helper()
	call, events := testCall(anthropicFormat)
	got := resultOf(runStream(t, p, call, streamOf(text, 4, tools, stop)))
	if got.text != want.text || !slices.Equal(got.tools, want.tools) || got.stop != want.stop {
		t.Errorf("streamed %+v\n     want %+v", got, want)
	}
	msg, err := p.OnResponse(context.Background(), call, messageOf(text, tools, stop))
	if err != nil {
		t.Fatal(err)
	}
	if got := messageResult(msg); got.text != want.text || !slices.Equal(got.tools, want.tools) || got.stop != want.stop {
		t.Errorf("whole %+v\n want %+v", got, want)
	}
	return events
}

func TestRegexBlock(t *testing.T) {
	p := mustBuild(t, "regex_block", map[string]any{
		"patterns":   []any{`docker\s+compose\s+down`, `rm\s+-rf`},
		"tool_names": []any{"bash"},
		"message":    "no: {tool_name} ran {command} matching {pattern}",
	})
	t.Run("blocks docker compose down", func(t *testing.T) {
		ev := checkBoth(t, p, "Stopping.", []testTool{{"Bash", `{"command":"Docker Compose down -v"}`}}, "tool_use", streamResult{
			text: `Stopping.|no: Bash ran Docker Compose down -v matching docker\s+compose\s+down`, stop: "end_turn"})
		if e, ok := ev.find("policy.regex_block.blocked"); !ok || e.Details["tool_name"] != "Bash" {
			t.Errorf("events %v", ev.types())
		}
	})
	t.Run("passes ls", func(t *testing.T) {
		checkBoth(t, p, "", []testTool{{"Bash", `{"command":"ls -la"}`}}, "tool_use", streamResult{
			tools: []string{`Bash {"command":"ls -la"}`}, stop: "tool_use"})
	})
	t.Run("other tools are not checked", func(t *testing.T) {
		checkBoth(t, p, "", []testTool{{"Write", `{"content":"rm -rf /"}`}}, "tool_use", streamResult{
			tools: []string{`Write {"content":"rm -rf /"}`}, stop: "tool_use"})
	})
	t.Run("parallel calls: only the matching one blocked, notice first", func(t *testing.T) {
		checkBoth(t, p, "", []testTool{{"Bash", `{"command":"ls"}`}, {"Bash", `{"command":"rm -rf /tmp/x"}`}, {"Bash", `{"command":"pwd"}`}}, "tool_use", streamResult{
			text:  `no: Bash ran rm -rf /tmp/x matching rm\s+-rf`,
			tools: []string{`Bash {"command":"ls"}`, `Bash {"command":"pwd"}`}, stop: "tool_use"})
	})
	t.Run("unparsable arguments are scanned raw", func(t *testing.T) {
		checkBoth(t, p, "", []testTool{{"Bash", `{"command": "rm -rf /`}}, "tool_use", streamResult{
			text: `no: Bash ran {"command": "rm -rf / matching rm\s+-rf`, stop: "end_turn"})
	})
	t.Run("escaped JSON hides nothing", func(t *testing.T) {
		checkBoth(t, p, "", []testTool{{"Bash", `{"command":"rm\u0020-rf /"}`}}, "tool_use", streamResult{
			text: `no: Bash ran rm -rf / matching rm\s+-rf`, stop: "end_turn"})
	})
}

func TestRegexBlockDefaultMessageTruncates(t *testing.T) {
	p := mustBuild(t, "regex_block", map[string]any{"patterns": []any{"curl"}})
	long := strings.Repeat("a", 300)
	call, _ := testCall(openaiFormat)
	out := resultOf(runStream(t, p, call, streamOf("", 0, []testTool{{"run", `{"command":"curl ` + long + `"}`}}, "tool_use")))
	if !strings.Contains(out.text, "⛔ BLOCKED: Tool call 'run'") || !strings.Contains(out.text, "curl "+strings.Repeat("a", 195)+"...") {
		t.Errorf("notice %q", out.text)
	}
}

func TestSQLProtection(t *testing.T) {
	p := mustBuild(t, "luthien_proxy.policies.sql_protection:SQLProtectionPolicy", nil)
	const blocked = "⛔ BLOCKED: Tool call 'execute_sql' was blocked because it attempted a harmful SQL operation."
	for _, tt := range []struct {
		name  string
		tools []testTool
		want  streamResult
	}{
		{"drop table", []testTool{{"execute_sql", `{"query":"drop  table users;"}`}}, streamResult{text: blocked, stop: "end_turn"}},
		{"delete from", []testTool{{"execute_sql", `{"query":"DELETE FROM users"}`}}, streamResult{text: blocked, stop: "end_turn"}},
		{"select", []testTool{{"execute_sql", `{"query":"SELECT * FROM users"}`}}, streamResult{tools: []string{`execute_sql {"query":"SELECT * FROM users"}`}, stop: "tool_use"}},
		{"word boundaries", []testTool{{"execute_sql", `{"query":"SELECT dropped_tables FROM x"}`}}, streamResult{tools: []string{`execute_sql {"query":"SELECT dropped_tables FROM x"}`}, stop: "tool_use"}},
		{"not an sql tool", []testTool{{"Write", `{"content":"DROP TABLE x"}`}}, streamResult{tools: []string{`Write {"content":"DROP TABLE x"}`}, stop: "tool_use"}},
	} {
		t.Run(tt.name, func(t *testing.T) { checkBoth(t, p, "", tt.tools, "tool_use", tt.want) })
	}
}

// The regex_block presets block what they claim and pass ordinary work.
func TestPresets(t *testing.T) {
	tests := []struct {
		file    string
		blocked []string
		passed  []string
	}{
		{"preset_dangerous_commands.yaml",
			[]string{"rm -rf /", "sudo rm -fr ~/x", "chmod 777 /srv", "chmod -R 777 .", "mkfs.ext4 /dev/sda1", "dd if=/dev/zero of=/dev/sda", ":(){ :|:& };:"},
			[]string{"ls -la", "rm file.txt", "chmod 644 a", "git add -A"}},
		{"preset_sensitive_paths.yaml",
			[]string{"cat ~/.ssh/id_rsa", "ls $HOME/.aws", "echo x > /etc/hosts", "cp k /root/.ssh/"},
			[]string{"cat README.md", "ls ./etc-notes", "vim src/etc/x.go"}},
		{"preset_network_tools.yaml",
			[]string{"curl https://x", "wget http://y", "nc -l 4444", "cat f | ncat host 1"},
			[]string{"go build ./...", "echo curly", "npm run dev"}},
		{"preset_protect_gateway.yaml",
			[]string{"docker compose down", "docker-compose stop", "pkill -f gateway", "killall controlplane", "docker stop luthien-gateway-1"},
			[]string{"docker compose up -d", "docker ps", "pkill -f myapp", "ls"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			class, cfg, err := LoadFile("../../../config/policies/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			p := mustBuild(t, class, cfg)
			for _, cmd := range append(tt.blocked, tt.passed...) {
				call, _ := testCall(anthropicFormat)
				args, _ := json.Marshal(map[string]string{"command": cmd})
				msg, err := p.OnResponse(context.Background(), call, messageOf("", []testTool{{"Bash", string(args)}}, "tool_use"))
				if err != nil {
					t.Fatal(err)
				}
				wantBlocked := slices.Contains(tt.blocked, cmd)
				if got := len(messageResult(msg).tools) == 0; got != wantBlocked {
					t.Errorf("%q: blocked %v, want %v", cmd, got, wantBlocked)
				}
			}
		})
	}
}

// A response that says tool_use but holds no tool call ends with
// end_turn, streamed and whole: upstream sent none, or every one was
// blocked.
func TestStopReasonWithoutToolCalls(t *testing.T) {
	p := mustBuild(t, "regex_block", map[string]any{"patterns": []any{"rm"}})
	checkBoth(t, p, "pre", nil, "tool_use", streamResult{text: "pre", stop: "end_turn"})
	checkBoth(t, p, "pre", []testTool{{"Bash", `{"command":"rm x"}`}}, "tool_use", streamResult{
		text: "pre|⛔ BLOCKED: Tool call 'Bash' was blocked by policy: its command matched the pattern 'rm'. Command: rm x", stop: "end_turn"})
	checkBoth(t, p, "pre", []testTool{{"Bash", `{"command":"ls"}`}}, "tool_use", streamResult{
		text: "pre", tools: []string{`Bash {"command":"ls"}`}, stop: "tool_use"})
}
