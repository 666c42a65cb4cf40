package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// The propagation delay docs/POLICIES.md promises between control planes
// sharing PostgreSQL and Redis ("milliseconds"), with room for a loaded
// test machine.
const maxPropagation = 2 * time.Second

// dangerousCall is an upstream answer regex_block blocks: a Bash tool call
// that removes files.
var dangerousCall = fakeupstream.Scenario{Text: "running it", Chunks: 4,
	ToolCalls: []fakeupstream.ToolCall{{Name: "Bash", Arguments: `{"command":"rm -rf /tmp/x"}`}}}

// blockConfig blocks dangerousCall with a notice the test can find.
var blockConfig = map[string]any{"patterns": []any{`rm\s+-rf`}, "tool_names": []any{"Bash"}, "message": "BLOCKED-BY-POLICY {tool_name}"}

// loadOutcome is one request of the switch test: when it started, and
// whether the tool call was blocked.
type loadOutcome struct {
	started time.Time
	blocked bool
	err     error
}

// switchUnderLoad sends requests to e from four workers (both formats,
// streamed and not) while doSwitch activates regex_block and returns the
// moment from which every request must be blocked; it checks that every
// request started after that moment was, and that requests before the
// switch were not.
func switchUnderLoad(t *testing.T, e *env, doSwitch func() time.Time) {
	t.Helper()
	var mu sync.Mutex
	var outcomes []loadOutcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := loadOutcome{started: time.Now()}
				req, _ := loadRequest(e, w, i)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					switch text := string(b); {
					case err != nil:
					case resp.StatusCode != http.StatusOK:
						err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					case strings.Contains(text, "BLOCKED-BY-POLICY"):
						o.blocked = true
					case !strings.Contains(text, "rm -rf"):
						err = fmt.Errorf("neither the tool call nor the notice: %s", b)
					}
				}
				o.err = err
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	from := doSwitch()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()

	var before, after, passedBefore int
	for _, o := range outcomes {
		if o.err != nil {
			t.Errorf("request failed: %v", o.err)
			continue
		}
		switch {
		case o.started.After(from):
			after++
			if !o.blocked {
				t.Errorf("a request started %v after the switch took effect passed", o.started.Sub(from))
			}
		default:
			before++
			if !o.blocked {
				passedBefore++
			}
		}
	}
	t.Logf("%d requests before the switch (%d passed), %d after", before, passedBefore, after)
	if after < 8 || passedBefore == 0 {
		t.Errorf("%d requests after the switch, %d passed before it: the load did not straddle the switch", after, passedBefore)
	}
}

// A switch from noop to regex_block under load applies to every request
// that starts after the switch returns, in both modes, whether or not the
// gateway has heard of the new policy's processing mode yet.
func TestSwitchToBlockingUnderLoad(t *testing.T) {
	forEachMode(t, options{}, func(t *testing.T, e *env) {
		e.up.SetDefault(dangerousCall)
		e.setPolicy(t, "noop", nil)
		switchUnderLoad(t, e, func() time.Time {
			e.setPolicy(t, "regex_block", blockConfig)
			return time.Now()
		})
	})
}

// Across two control planes sharing PostgreSQL and Redis: the switch made
// on one reaches the other within the documented delay, and every request
// its gateway starts from then on is blocked.
func TestSwitchToBlockingAcrossControlPlanes(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	up.SetDefault(dangerousCall)
	prefix := uniqueName("luthien-e2e-") + ":"
	a := start(t, "split", options{database: true, redisPrefix: prefix, up: up})
	b := start(t, "split", options{env: map[string]string{"DATABASE_URL": a.databaseURL}, redisPrefix: prefix, up: up})
	a.setPolicy(t, "noop", nil)
	_, rev := policyOf(t, a)
	waitPolicy(t, b, rev)
	switchUnderLoad(t, b, func() time.Time {
		a.setPolicy(t, "regex_block", blockConfig)
		_, rev := policyOf(t, a)
		if d := waitPolicy(t, b, rev); d > maxPropagation {
			t.Errorf("the switch took %v to reach the other control plane, more than %v", d, maxPropagation)
		}
		return time.Now()
	})
}
