package replica

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// An inline judge key is stored and announced as given (replicas need
// it), never shown by the admin API, the history read from the database
// included, and a placeholder sent back keeps it, also on a control plane
// restarted on the same database.
func TestInlineKeyAcrossRestart(t *testing.T) {
	for _, name := range []string{"OPENAI_API_KEY", "LUTHIEN_JUDGE_API_KEY", "LUTHIEN_JUDGE_HOSTS", "LUTHIEN_JUDGE_KEY_ENVS"} {
		t.Setenv(name, "")
	}
	const key = "sk-inline-replica-SECRET"
	var mu sync.Mutex
	var seen []string
	judge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"{\"probability\":0}"}}]}`))
	}))
	t.Cleanup(judge.Close)

	pool := openDB(t)
	channel := uniqueChannel()
	a := newNode(t, pool, openRedis(t), channel)
	admin := serveAdmin(t, a)
	cfg := map[string]any{"policies": []any{map[string]any{"class": "tool_call_judge",
		"config": map[string]any{"model": "judge-model", "api_base": judge.URL + "/v1", "api_key": key, "max_retries": 0}}}}
	if _, _, err := setPolicy(t, admin, 5*time.Second, "serial", cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hist, err := admin.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := protojson.Marshal(hist); strings.Contains(string(b), key) || !strings.Contains(string(b), policy.SecretPlaceholder) {
		t.Errorf("history shows %s", b)
	}
	var stored string
	if err := pool.QueryRow(ctx, `SELECT config->'policies'->0->'config'->>'api_key' FROM current_policy`).Scan(&stored); err != nil || stored != key {
		t.Errorf("stored key %q, %v: inline keys are stored as given", stored, err)
	}

	c := newNode(t, newPool(t, pool.Config().ConnString()), openRedis(t), channel)
	restarted := serveAdmin(t, c)
	shown := getPolicy(t, restarted)
	if b, _ := protojson.Marshal(shown); strings.Contains(string(b), key) {
		t.Errorf("GetPolicy after a restart shows %s", b)
	}
	again, _, err := setPolicy(t, restarted, 5*time.Second, "serial", shown.GetPolicy().GetConfig().AsMap())
	if err != nil {
		t.Fatalf("SetPolicy with the placeholder after a restart: %v", err)
	}
	waitRevisionWithin(t, c, again.GetActive().GetRevision(), time.Second)
	msg := &cpv1.Message{Id: "msg_1", StopReason: "tool_use", Content: []*cpv1.ContentBlock{{Block: &cpv1.ContentBlock_ToolUse{
		ToolUse: &cpv1.ToolUseBlock{Id: "toolu_1", Name: "Bash", InputJson: []byte(`{"command":"ls"}`)}}}}}
	if _, err := c.store.Active().Policy.OnResponse(ctx, &policy.Call{ID: "call_1"}, msg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "Bearer "+key {
		t.Errorf("the judge got %q, want the inline key", seen)
	}
}
