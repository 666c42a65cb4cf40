package e2e

// The browser tests drive the web UI in a real, headless Chromium: one
// browser process per package run, and for each test a tab in a browser
// context of its own (its own cookies), whose console errors, uncaught
// exceptions and browser-log errors (CSP violations among them) are
// collected so that every test can assert there were none.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// shared is the browser every test of the package run uses.
var shared struct {
	once sync.Once
	// ctx is the browser's root chromedp context; stop ends the browser.
	ctx  context.Context
	stop func()
	// missing says why there is no Chromium to run.
	missing string
	err     error
}

// chromiumPath is the browser binary: $CHROMIUM, or Debian's chromium.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browserTimeout bounds each step a test takes in its tab; the pages answer
// in milliseconds, so this only stops a wedged browser from hanging the run.
const browserTimeout = 20 * time.Second

func startBrowser() {
	path := chromiumPath()
	if _, err := exec.LookPath(path); err != nil {
		shared.missing = err.Error()
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root, where the sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		// This machine's network is closed: without these, Chromium's own
		// connections (updates, sync, field trials) are refused and logged.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900),
		// No UserDataDir: the allocator passes a fresh --user-data-dir in a
		// temporary directory, and removes it when the browser stops.
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	shared.ctx = ctx
	shared.stop = func() { cancel(); allocCancel() }
	// The first Do starts the browser; its context must outlive this call,
	// so the start is bounded from outside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			shared.err = fmt.Errorf("starting %s: %w", path, err)
		}
	case <-time.After(60 * time.Second):
		shared.err = fmt.Errorf("starting %s: no answer after 60s", path)
	}
	if shared.err != nil {
		shared.stop()
		shared.stop = nil
	}
}

// stopBrowser ends the shared browser, if a test started it (TestMain).
func stopBrowser() {
	if shared.stop != nil {
		shared.stop()
	}
}

// requireBrowser starts the shared browser once, and skips the test when
// Chromium is not installed (in CI, where it must be, it fails instead).
func requireBrowser(t *testing.T) {
	t.Helper()
	shared.once.Do(startBrowser)
	if shared.missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not installed (%s): CI must run the browser tests; run make browser first", shared.missing)
		}
		t.Skipf("chromium not installed: run make browser, or set CHROMIUM (%s)", shared.missing)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
}

// tab is one test's browser tab.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors, exceptions, error log entries
}

// newTab opens a tab in a fresh browser context (no cookies of other
// tests) with its console watched; it closes when the test ends. Call it
// after starting the gateway, so that the tab (and any feed it holds
// open) goes away before the gateway shuts down.
func newTab(t *testing.T) *tab {
	t.Helper()
	requireBrowser(t)
	tb := &tab{t: t}
	ctx, cancel := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.listen))
	tb.ctx = ctx
	t.Cleanup(cancel)
	// Errors after a test's last check fail it too (unless it failed
	// already, when they are likely consequences).
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		if len(tb.problems) > 0 && !t.Failed() {
			t.Errorf("console errors after the last check:\n  %s", strings.Join(tb.problems, "\n  "))
		}
	})
	// The first Do opens the tab (and enables the runtime and log
	// domains); the log domain is enabled here as well, so that the tab
	// does not depend on the library doing it.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return err
	})); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tb
}

// listen runs in the tab's message loop: it only records.
func (tb *tab) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			switch {
			case a.Description != "":
				args = append(args, a.Description)
			case len(a.Value) > 0:
				args = append(args, string(a.Value))
			default:
				args = append(args, string(a.Type))
			}
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		if d.URL != "" {
			msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError {
			return
		}
		msg = "log " + string(ev.Entry.Source) + ": " + ev.Entry.Text
		if ev.Entry.URL != "" {
			msg += " (" + ev.Entry.URL + ")"
		}
	default:
		return
	}
	tb.mu.Lock()
	tb.problems = append(tb.problems, msg)
	tb.mu.Unlock()
}

// take returns and forgets the console problems seen so far. Errors are
// reported by the browser asynchronously, a little after the page that
// caused them, so it first lets the page settle.
func (tb *tab) take() []string {
	tb.t.Helper()
	// Two animation frames after load: scripts have run, and log entries
	// of the load have crossed the protocol.
	tb.eval(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, new(bool))
	time.Sleep(100 * time.Millisecond)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	p := tb.problems
	tb.problems = nil
	return p
}

// noConsoleErrors fails the test if the page logged any error.
func (tb *tab) noConsoleErrors(where string) {
	tb.t.Helper()
	if p := tb.take(); len(p) > 0 {
		tb.t.Errorf("%s: console errors:\n  %s", where, strings.Join(p, "\n  "))
	}
}

// expectConsoleErrors asserts that the errors since the last check are
// exactly the expected ones (one pattern each, in order): a test that
// provokes an error (a 401) says so instead of ignoring it.
func (tb *tab) expectConsoleErrors(where string, patterns ...string) {
	tb.t.Helper()
	p := tb.take()
	ok := len(p) == len(patterns)
	for i := 0; ok && i < len(p); i++ {
		ok = regexp.MustCompile(patterns[i]).MatchString(p[i])
	}
	if !ok {
		tb.t.Errorf("%s: console errors %q, want ones matching %q", where, p, patterns)
	}
}

// do runs steps in the tab, failing the test on error.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// navigate loads url and returns the document's HTTP status.
func (tb *tab) navigate(url string) int {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		tb.t.Fatalf("navigating to %s: %v", url, err)
	}
	return int(resp.Status)
}

// submit runs steps that cause a navigation (a click on a submit button)
// and waits for the new page; it returns its HTTP status.
func (tb *tab) submit(what string, steps ...chromedp.Action[chromedp.Void]) int {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	return int(resp.Status)
}

// eval evaluates a JavaScript expression (awaiting a promise) into out.
func (tb *tab) eval(expr string, out any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.t.Fatalf("evaluating %s: result %s: %v", expr, raw, err)
		}
	}
}

// location is the tab's current URL.
func (tb *tab) location() string {
	tb.t.Helper()
	var s string
	tb.eval(`location.href`, &s)
	return s
}

// text is the visible text of the first element matching the CSS selector
// (innerText: what a person sees), waiting for it to be visible.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("text of %s on %s: %v", sel, tb.location(), err)
	}
	return strings.TrimSpace(s)
}

// texts is the visible text of every element matching the CSS selector
// (none: an empty slice), without waiting.
func (tb *tab) texts(sel string) []string {
	tb.t.Helper()
	var out []string
	js, _ := json.Marshal(sel)
	tb.eval(fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.innerText.trim())`, js), &out)
	return out
}

// count is the number of elements matching the CSS selector.
func (tb *tab) count(sel string) int {
	tb.t.Helper()
	var n int
	js, _ := json.Marshal(sel)
	tb.eval(fmt.Sprintf(`document.querySelectorAll(%s).length`, js), &n)
	return n
}

// waitFor polls a JavaScript predicate (an expression) in the page until
// it is truthy, failing the test with what after the timeout.
func (tb *tab) waitFor(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+expr+`)`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		tb.shot("timeout")
		tb.t.Fatalf("waiting for %s (%s) on %s: %v", what, expr, tb.location(), err)
	}
}

// waitText waits until the element matching sel shows text containing want.
func (tb *tab) waitText(sel, want string) {
	tb.t.Helper()
	s, _ := json.Marshal(sel)
	w, _ := json.Marshal(want)
	tb.waitFor(fmt.Sprintf("%s to show %q", sel, want),
		fmt.Sprintf(`(e => e && e.innerText.includes(%s))(document.querySelector(%s))`, w, s), browserTimeout)
}

// choose sets a form control's value (a select's option, a text field's
// text) and fires the input and change events a person's edit fires.
func (tb *tab) choose(sel, value string) {
	tb.t.Helper()
	s, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	var got string
	tb.eval(fmt.Sprintf(`(e => {
		e.focus();
		e.value = %s;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return e.value;
	})(document.querySelector(%s))`, v, s), &got)
	if got != value {
		tb.t.Fatalf("%s: value %q did not take (%q)", sel, value, got)
	}
}

// shots numbers a test's screenshots (of all its tabs) in one directory.
var shots struct {
	mu  sync.Mutex
	dir map[*testing.T]string
	n   map[*testing.T]int
}

func nextShot(t *testing.T) (dir string, n int) {
	shots.mu.Lock()
	defer shots.mu.Unlock()
	if shots.dir == nil {
		shots.dir, shots.n = map[*testing.T]string{}, map[*testing.T]int{}
	}
	if _, ok := shots.dir[t]; !ok {
		shots.dir[t] = t.TempDir()
		t.Cleanup(func() {
			shots.mu.Lock()
			defer shots.mu.Unlock()
			delete(shots.dir, t)
			delete(shots.n, t)
		})
	}
	shots.n[t]++
	return shots.dir[t], shots.n[t]
}

// shot saves a full-page PNG of the tab in the test's temporary directory
// (and, when LUTHIEN_SCREENSHOTS names a directory, there too, so that
// they outlive the run) and logs where.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir, n := nextShot(tb.t)
	file := fmt.Sprintf("%02d-%s.png", n, name)
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	tb.t.Logf("screenshot %s", path)
	if dir := os.Getenv("LUTHIEN_SCREENSHOTS"); dir != "" {
		keep := filepath.Join(dir, strings.ReplaceAll(tb.t.Name(), "/", "_")+"-"+file)
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(keep, png, 0o644)
		}
	}
}

// check is what a test does on every page it looks at: a screenshot, then
// the assertion that the page logged no errors.
func (tb *tab) check(name string) {
	tb.t.Helper()
	tb.shot(name)
	tb.noConsoleErrors(name)
}

// login signs in with key on the login page the tab shows (or opens it),
// and returns the status of the page it lands on.
func (tb *tab) login(base, key string) int {
	tb.t.Helper()
	if !strings.Contains(tb.location(), "/login") {
		tb.navigate(base + "/login")
	}
	tb.do("typing the key", chromedp.SetValue(chromedp.CSS("#key"), key))
	return tb.submit("logging in", chromedp.Click(chromedp.CSS("#login-submit")))
}

// adminDo sends an admin REST request with the admin key (empty: none).
func adminDo(t *testing.T, e *env, key, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	return e.do(t, method, path, body, h)
}

// setPolicyKey activates a policy through the REST API with the admin key.
func setPolicyKey(t *testing.T, e *env, key, class string, cfg map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"class": class, "config": cfg})
	resp, b := adminDo(t, e, key, http.MethodPut, "/api/v1/policy", string(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set policy %s: %d %s", class, resp.StatusCode, b)
	}
}

// activeClass is the active policy's class, from the REST API.
func activeClass(t *testing.T, e *env, key string) string {
	t.Helper()
	resp, b := adminDo(t, e, key, http.MethodGet, "/api/v1/policy", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get policy: %d %s", resp.StatusCode, b)
	}
	var got struct {
		Active struct {
			Policy struct {
				Class string `json:"class"`
			} `json:"policy"`
		} `json:"active"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("get policy: %v: %s", err, b)
	}
	return got.Active.Policy.Class
}

// waitRecorded polls the history until the call is recorded with its
// final response (records arrive asynchronously), with the admin key, and
// returns how many events the call has.
func waitRecorded(t *testing.T, e *env, key, callID string) int {
	t.Helper()
	if callID == "" {
		t.Fatal("no X-Call-ID on the response")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, b := adminDo(t, e, key, http.MethodGet, "/api/v1/calls/"+callID, "")
		if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"response.final"`) {
			var got struct {
				Events []json.RawMessage `json:"events"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("call %s: %v: %s", callID, err, b)
			}
			return len(got.Events)
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s not recorded: %d %s", callID, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
