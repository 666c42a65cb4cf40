package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/migrations/dbtest"
)

// canaries are recognisable secrets, each with the places it belongs.
type canaries struct {
	clientKey, wrongKey, adminKey, anthropicKey, openaiKey, judgeKey string
	// In the conversation itself: a monitored agent that reads them
	// (AWS, GitHub, a private key, a JWT).
	inBody []string
}

func newCanaries() canaries {
	r := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return strings.ToUpper(hex.EncodeToString(b))
	}
	return canaries{
		clientKey:    "sk-ant-api03-CLIENTCANARY" + r(12),
		wrongKey:     "sk-ant-api03-WRONGCANARY" + r(12),
		adminKey:     "adm-CANARY-" + r(12),
		anthropicKey: "sk-ant-api03-PROVIDERCANARY" + r(12),
		openaiKey:    "sk-proj-PROVIDERCANARY" + r(12),
		judgeKey:     "sk-proj-JUDGECANARY" + r(12),
		inBody: []string{
			"AKIA" + r(8),
			"ghp_" + r(18),
			"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlki" + r(4) + "fQ.c2lnbmF0dXJl" + r(6),
		},
	}
}

// A credential canary run: recognisable keys go in as flags, headers and
// conversation text; afterwards none of them is found in PostgreSQL,
// Redis, the logs, the activity feed, the REST API, the pages, error
// messages or the profiler — while the fake provider did receive the
// provider key and the conversation (so the search would have found them).
func TestCredentialCanaries(t *testing.T) {
	c := newCanaries()
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	dbURL := dbtest.NewDatabase(t)
	prefix := "luthien-canary-" + strings.ToLower(c.adminKey[len(c.adminKey)-8:]) + ":"
	env := map[string]string{
		"DATABASE_URL":         dbURL,
		"REDIS_URL":            "redis://127.0.0.1:6379/0",
		"LUTHIEN_REDIS_PREFIX": prefix,
		"OPENAI_BASE_URL":      up.OpenAIBaseURL(),
		"ANTHROPIC_BASE_URL":   up.AnthropicBaseURL(),
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-http-addr", "127.0.0.1:0", "-debug-addr", "127.0.0.1:0", "-log-level", "debug",
			"-admin-api-key", c.adminKey, "-client-api-key", c.clientKey,
			"-anthropic-api-key", c.anthropicKey, "-openai-api-key", c.openaiKey,
		}, func(k string) string { return env[k] }, logs)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	addr := func(msg string) string {
		re := regexp.MustCompile(`msg="` + msg + `" addr=(\S+)`)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				return "http://" + m[1]
			}
		}
		t.Fatalf("no %q in the logs:\n%s", msg, logs.String())
		return ""
	}
	gw, prof := addr("gateway listening"), addr("profiler listening")

	var seen strings.Builder // every byte a client or admin got back
	var seenMu sync.Mutex
	do := func(method, url, body string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		// A client's own successful answer holds what its conversation
		// holds; everything else (admin views, errors) is searched.
		if resp.StatusCode != http.StatusOK || !strings.Contains(url, "/v1/") {
			seenMu.Lock()
			fmt.Fprintf(&seen, "%s %s -> %d %v\n%s\n", method, url, resp.StatusCode, resp.Header, b)
			seenMu.Unlock()
		}
		return resp.StatusCode, string(b)
	}
	admin := []string{"Authorization", "Bearer " + c.adminKey}

	// The live feed, read for the whole run.
	feedCtx, stopFeed := context.WithCancel(context.Background())
	var feed strings.Builder
	feedDone := make(chan struct{})
	freq, _ := http.NewRequestWithContext(feedCtx, http.MethodGet, gw+"/api/activity/stream", nil)
	freq.Header.Set("Authorization", "Bearer "+c.adminKey)
	fresp, err := http.DefaultClient.Do(freq)
	if err != nil || fresp.StatusCode != http.StatusOK {
		t.Fatalf("activity feed: %v %v", err, fresp)
	}
	go func() {
		defer close(feedDone)
		sc := bufio.NewScanner(fresp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			feed.WriteString(sc.Text() + "\n")
		}
	}()

	secrets := strings.Join(c.inBody, " and ")
	prompt := func(stream bool) string {
		return fmt.Sprintf(`{"model":"claude-canary","max_tokens":64,"stream":%t,"metadata":{"user_id":"user_x_account__session_canary"},`+
			`"messages":[{"role":"user","content":"my keys are %s; key: %s"}]}`, stream, secrets, c.clientKey)
	}
	anth := []string{"Content-Type", "application/json", "anthropic-version", "2023-06-01", "x-api-key", c.clientKey}
	up.Enqueue(fakeupstream.Scenario{Text: "noted " + c.inBody[0]})
	if st, b := do(http.MethodPost, gw+"/v1/messages", prompt(false), anth...); st != http.StatusOK {
		t.Fatalf("whole call: %d %s", st, b)
	}
	up.Enqueue(fakeupstream.Scenario{Text: "streamed " + c.inBody[1]})
	if st, b := do(http.MethodPost, gw+"/v1/messages", prompt(true), anth...); st != http.StatusOK {
		t.Fatalf("streamed call: %d %s", st, b)
	}
	// The provider refuses, quoting the key it got, as some do.
	up.Enqueue(fakeupstream.Scenario{Status: http.StatusUnauthorized,
		ErrorBody: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key ` + c.anthropicKey + `"}}`})
	do(http.MethodPost, gw+"/v1/messages", prompt(false), anth...)
	openaiBody := `{"model":"gpt-canary","messages":[{"role":"user","content":"token ` + c.inBody[2] + `"}]}`
	if st, b := do(http.MethodPost, gw+"/v1/chat/completions", openaiBody,
		"Content-Type", "application/json", "Authorization", "Bearer "+c.clientKey); st != http.StatusOK {
		t.Fatalf("openai call: %d %s", st, b)
	}
	// A wrong client key, and the admin key where a client key goes.
	do(http.MethodPost, gw+"/v1/messages", prompt(false), "Content-Type", "application/json", "x-api-key", c.wrongKey)
	do(http.MethodPost, gw+"/v1/chat/completions", openaiBody, "Content-Type", "application/json", "Authorization", "Bearer "+c.adminKey)
	// A judge configured with an inline key.
	judge := `{"class":"tool_call_judge","config":{"api_base":"http://127.0.0.1:9/v1","api_key":"` + c.judgeKey + `","model":"j"}}`
	if st, b := do(http.MethodPut, gw+"/api/v1/policy", judge, append(admin, "Content-Type", "application/json")...); st != http.StatusOK {
		t.Fatalf("set judge policy: %d %s", st, b)
	}
	do(http.MethodPut, gw+"/api/v1/policy", `{"class":"noop"}`, append(admin, "Content-Type", "application/json")...)

	// Wait until the calls are recorded, then read everything an admin can.
	var calls string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, calls = do(http.MethodGet, gw+"/api/v1/calls", "", admin...)
		if strings.Count(calls, `"call_id"`) >= 4 {
			break
		}
	}
	for _, id := range regexp.MustCompile(`"call_id":\s*"([0-9a-f]+)"`).FindAllStringSubmatch(calls, -1) {
		do(http.MethodGet, gw+"/api/v1/calls/"+id[1], "", admin...)
		do(http.MethodGet, gw+"/api/v1/calls/"+id[1]+"/diff", "", admin...)
		do(http.MethodGet, gw+"/calls/"+id[1], "", admin...)
	}
	for _, path := range []string{"/api/v1/sessions", "/api/v1/sessions/user_x_account__session_canary", "/api/v1/search?query=keys",
		"/api/v1/stats", "/api/v1/policy", "/api/v1/policy/history", "/", "/calls", "/sessions", "/policy", "/metrics"} {
		do(http.MethodGet, gw+path, "", admin...)
	}
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", "/debug/pprof/"} {
		do(http.MethodGet, prof+path, "", admin...)
	}
	time.Sleep(300 * time.Millisecond) // the feed's last events
	stopFeed()
	<-feedDone
	stop() // flushes the records and ends the logs

	// What is stored.
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	conn, err := pgx.Connect(pctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(pctx)
	var tables []string
	rows, err := conn.Query(pctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		_ = rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	var db strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(pctx, fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			db.WriteString(s + "\n")
		}
		rows.Close()
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	var cache strings.Builder
	iter := rdb.Scan(pctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(pctx) {
		key := iter.Val()
		v, err := rdb.Dump(pctx, key).Result()
		if err == nil {
			cache.WriteString(key + " " + v + "\n")
		}
		defer rdb.Del(context.Background(), key)
	}

	if !strings.Contains(db.String(), "claude-canary") || !strings.Contains(feed.String(), "request.received") {
		t.Fatalf("the run left no record to search: db %d bytes, feed %d bytes", db.Len(), feed.Len())
	}
	places := map[string]string{"PostgreSQL": db.String(), "Redis": cache.String(), "logs": logs.String(),
		"activity feed": feed.String(), "REST API, pages, profiler and error answers": seen.String()}
	secretsOf := map[string]string{"client key": c.clientKey, "wrong client key": c.wrongKey, "admin key": c.adminKey,
		"Anthropic key": c.anthropicKey, "OpenAI key": c.openaiKey, "judge key": c.judgeKey}
	for i, s := range c.inBody {
		secretsOf[fmt.Sprintf("conversation credential %d", i)] = s
	}
	for place, text := range places {
		for what, secret := range secretsOf {
			if what == "judge key" && place == "PostgreSQL" {
				continue // inline judge keys are stored as given (docs/POLICIES.md); api_key_env keeps them out
			}
			if strings.Contains(text, secret) {
				i := strings.Index(text, secret)
				t.Errorf("the %s is in the %s: …%s…", what, place, text[max(0, i-120):min(len(text), i+len(secret)+40)])
			}
		}
	}
	// The search above could find them: the provider got its key and the
	// conversation as sent.
	var upstreamSaw strings.Builder
	for _, r := range up.Requests() {
		fmt.Fprintf(&upstreamSaw, "%v %s\n", r.Header, r.Body)
	}
	for _, want := range []string{c.anthropicKey, c.openaiKey, c.inBody[0], c.inBody[2]} {
		if !strings.Contains(upstreamSaw.String(), want) {
			t.Errorf("the provider did not receive %.24s…: the canary search proves nothing", want)
		}
	}
}
