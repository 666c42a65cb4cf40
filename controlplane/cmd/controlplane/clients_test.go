package main

// Helpers of the tests that drive a live control plane with clients of
// other languages and tools (grpcurl, the Node.js example).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/calltest"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// inCI reports whether the tests run in CI, where a missing tool is a
// failure rather than a reason to skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// needTool skips the test (fails it in CI) when a tool it runs is
// missing.
func needTool(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if inCI() {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("skipped: %s: %v (set CI=true to make this a failure)", what, err)
}

// repoRoot is the repository's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "proto", "luthien", "controlplane", "v1")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// dialToken connects to addr over plaintext, sending testToken on every
// call.
func dialToken(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
			return streamer(ctx, desc, cc, method, opts...)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// recordCall runs a call of session on CallService.Call as the gateway
// would, its record (the summary) in end: the control plane's session
// records it with the request as received.
func recordCall(t *testing.T, conn *grpc.ClientConn, callID, session string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	now := time.Now()
	body := `{"model":"claude-test","max_tokens":16,"messages":[{"role":"user","content":"hello from ` + callID + `"}]}`
	res, err := calltest.Run(ctx, conn, calltest.Call{
		Start: &cpv1.CallStart{CallId: callID, Format: cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES, Body: []byte(body),
			Metadata: &cpv1.RequestMetadata{SessionId: session, Model: "claude-test"}},
		Record: &cpv1.CallRecord{Summary: &cpv1.CallSummary{Status: 200,
			StartedAt: timestamppb.New(now.Add(-time.Second)), FinishedAt: timestamppb.New(now), DurationMs: 1000}},
	})
	if err != nil {
		t.Fatalf("call %s: %v", callID, err)
	}
	if res.Decision.GetContinue() == nil {
		t.Fatalf("call %s: decision %v, want continue", callID, res.Decision)
	}
}

// recordUntil records calls of session, a new one every 200ms, until
// seen reports that one of them arrived or 20 seconds pass, and returns
// the id of the first call recorded. A subscriber cannot say when its
// subscription is in place, so calls keep coming until one gets through.
func recordUntil(t *testing.T, conn *grpc.ClientConn, session string, seen func() bool) string {
	t.Helper()
	var first string
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("%s-call-%d", session, i)
		if first == "" {
			first = id
		}
		recordCall(t, conn, id, session)
		time.Sleep(200 * time.Millisecond)
		if seen() {
			return first
		}
	}
	t.Fatalf("no recorded call of session %s reached the subscriber", session)
	return ""
}

// lines collects what a process writes, line by line, while it runs.
type lines struct {
	mu   sync.Mutex
	all  []string
	done chan struct{}
}

// collect reads r to its end in the background.
func collect(r io.Reader) *lines {
	l := &lines{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
		}
	}()
	return l
}

// get returns the lines read so far.
func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// text returns what was read so far.
func (l *lines) text() string { return strings.Join(l.get(), "\n") }
