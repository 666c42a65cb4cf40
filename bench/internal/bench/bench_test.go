package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/bench/floor"
)

// TestSmoke runs the whole harness briefly against every target that
// needs nothing outside the repository, and checks that what it measured
// is sane: requests made, all answered 200 with every text piece once and
// in order, CPU and memory read. It never judges speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the binaries")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bins, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	runs := []Config{
		{Smoke: true, Duration: 200 * time.Millisecond, API: Anthropic, Bins: bins, Progress: &progress,
			Targets: []string{TargetDirect, TargetFloor, TargetNoop, TargetAllCaps, TargetSplit}},
		{Smoke: true, Duration: 200 * time.Millisecond, API: OpenAI, Bins: bins, Progress: &progress,
			Targets: []string{TargetAllCaps}},
	}
	for _, cfg := range runs {
		t.Run(string(cfg.API), func(t *testing.T) {
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("progress:\n%s\nreport:\n%s", progress.String(), rep.Markdown())
				}
			}()
			checkReport(t, rep, cfg)
		})
	}
}

func checkReport(t *testing.T, rep *Report, cfg Config) {
	t.Helper()
	if len(rep.Targets) != len(cfg.Targets) {
		t.Fatalf("%d targets in the report, want %d", len(rep.Targets), len(cfg.Targets))
	}
	for _, tr := range rep.Targets {
		if tr.Status != "ok" {
			t.Errorf("%s: %s", tr.Name, tr.Status)
			continue
		}
		for _, ph := range cfg.Phases() {
			p := tr.Phases[ph.Name]
			if ph.ProxiesOnly && tr.Name == TargetDirect {
				if p != nil {
					t.Errorf("%s ran %s, which is for proxies only", tr.Name, ph.Name)
				}
				continue
			}
			if p == nil {
				t.Errorf("%s: no %s", tr.Name, ph.Name)
				continue
			}
			where := tr.Name + " " + ph.Name
			switch {
			case p.Requests == 0:
				t.Errorf("%s: no requests", where)
			case p.Errors != 0:
				t.Errorf("%s: %d of %d requests failed, first: %s", where, p.Errors, p.Requests, p.FirstError)
			case p.Latency.N != p.Requests || p.Latency.P50 <= 0:
				t.Errorf("%s: latency %+v for %d requests", where, p.Latency, p.Requests)
			case p.RequestsPerSec <= 0:
				t.Errorf("%s: %v requests/s", where, p.RequestsPerSec)
			}
			if ph.Load.Stream {
				if p.ContentEvents == 0 || p.ContentEvents != p.ExpectedContentEvents {
					t.Errorf("%s: %d text events, want %d", where, p.ContentEvents, p.ExpectedContentEvents)
				}
				if p.TTFT.N != p.Requests || p.Gap.N == 0 || p.EventsPerSec <= 0 {
					t.Errorf("%s: ttft %+v, gaps %+v, %v events/s", where, p.TTFT, p.Gap, p.EventsPerSec)
				}
				// One clock: every stream stamped, every text event timed.
				if p.OneClockTTFT.N != p.Requests || p.RequestPath.N != p.Requests || p.EventDelay.N != p.ContentEvents ||
					p.AddedGap.N != p.ContentEvents-p.Requests || p.OneClockTTFT.P50 <= 0 || p.EventDelay.P50 < 0 {
					t.Errorf("%s: one-clock ttft %+v, request path %+v, delay %+v, added gap %+v", where, p.OneClockTTFT, p.RequestPath, p.EventDelay, p.AddedGap)
				}
			}
			if tr.Name != TargetDirect && len(p.CPUSeconds) != len(tr.Processes) {
				t.Errorf("%s: CPU of %v, want one per process %v", where, p.CPUSeconds, tr.Processes)
			}
			if ph.PeakRSS {
				for _, name := range tr.Processes {
					if p.PeakRSSMB[name] <= 0 {
						t.Errorf("%s: peak RSS of %s %v", where, name, p.PeakRSSMB[name])
					}
				}
			}
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report to JSON: %v", err)
	}
	md := rep.Markdown()
	for _, name := range cfg.Targets {
		if !strings.Contains(md, "| "+name+" |") {
			t.Errorf("the table has no row for %s:\n%s", name, md)
		}
	}
}

// TestCallChecksResponses sends the harness's requests to the fake
// upstream and to servers that answer wrongly: the checks must catch
// every wrong answer.
func TestCallChecksResponses(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.SetResponder(UpstreamScenario)
	shape := Shape{Chunks: 4}
	good := func(api API, stream bool) string {
		c := newCall(api, stream, shape, false)
		r, err := http.NewRequest(http.MethodPost, up.URL+c.path, strings.NewReader(string(c.body)))
		if err != nil {
			t.Fatal(err)
		}
		r.Header = c.hdr.Clone()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	anthropicStream := good(Anthropic, true)
	openaiStream := good(OpenAI, true)
	anthropicWhole := good(Anthropic, false)
	swap := func(s, a, b string) string {
		return strings.NewReplacer(a, b, b, a).Replace(s)
	}
	tests := []struct {
		name    string
		api     API
		stream  bool
		upper   bool
		body    string // served instead of the fake upstream's answer
		noRecv  bool   // the served answer lacks fakeupstream.ReceivedHeader
		ctype   string
		status  int
		wantErr string
	}{
		{name: "anthropic stream", api: Anthropic, stream: true},
		{name: "openai stream", api: OpenAI, stream: true},
		{name: "anthropic whole", api: Anthropic},
		{name: "openai whole", api: OpenAI},
		{name: "pieces swapped", api: Anthropic, stream: true, body: swap(anthropicStream, " w001", " w002"), wantErr: "out of order"},
		{name: "openai pieces swapped", api: OpenAI, stream: true, body: swap(openaiStream, " w000", " w003"), wantErr: "out of order"},
		{name: "piece missing", api: Anthropic, stream: true, body: regexp.MustCompile(`event: content_block_delta\n.*w003.*\n\n`).ReplaceAllString(anthropicStream, ""), wantErr: "3 text events, want 4"},
		{name: "no message_stop", api: Anthropic, stream: true, body: anthropicStream[:strings.Index(anthropicStream, "event: message_stop")], wantErr: "want message_start to message_stop"},
		{name: "no [DONE]", api: OpenAI, stream: true, body: strings.Replace(openaiStream, "data: [DONE]\n\n", "", 1), wantErr: "[DONE]"},
		{name: "cut inside an event", api: Anthropic, stream: true, body: anthropicStream[:len(anthropicStream)-1], wantErr: "inside an event"},
		{name: "in-stream error", api: Anthropic, stream: true, body: strings.Replace(anthropicStream, "event: message_stop\n", "event: error\ndata: {\"type\":\"error\"}\n\nevent: message_stop\n", 1), wantErr: "in-stream error"},
		{name: "not uppercased", api: Anthropic, stream: true, upper: true, body: anthropicStream, wantErr: "out of order or changed"},
		{name: "whole text changed", api: Anthropic, body: strings.Replace(anthropicWhole, " w002", " w009", 1), wantErr: "text"},
		{name: "stamp missing", api: Anthropic, stream: true, body: regexp.MustCompile(`(w002)@[0-9]{19}`).ReplaceAllString(anthropicStream, "$1"), wantErr: "text event 3 without a stamp"},
		{name: "openai stamp missing", api: OpenAI, stream: true, body: regexp.MustCompile(`@[0-9]{19}`).ReplaceAllString(openaiStream, ""), wantErr: "text event 1 without a stamp"},
		{name: "received header missing", api: Anthropic, stream: true, body: anthropicStream, noRecv: true, wantErr: "without the " + fakeupstream.ReceivedHeader},
		{name: "status 502", api: Anthropic, status: http.StatusBadGateway, body: `{"error":"x"}`, wantErr: "status 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := up.URL
			if tt.body != "" {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tt.stream {
						w.Header().Set("Content-Type", "text/event-stream")
					}
					if !tt.noRecv {
						w.Header().Set(fakeupstream.ReceivedHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
					}
					if tt.status != 0 {
						w.WriteHeader(tt.status)
					}
					_, _ = w.Write([]byte(tt.body))
				}))
				defer srv.Close()
				base = srv.URL
			}
			c := newCall(tt.api, tt.stream, shape, tt.upper)
			o := c.do(t.Context(), http.DefaultClient, base, time.Now())
			if tt.wantErr == "" {
				if o.err != "" {
					t.Fatalf("error %q for a right answer", o.err)
				}
				if tt.stream && (o.content != shape.Chunks || o.ttft <= 0 || len(o.gaps) != o.events-1) {
					t.Fatalf("content %d ttft %v gaps %d events %d", o.content, o.ttft, len(o.gaps), o.events)
				}
				if tt.stream && (len(o.delays) != shape.Chunks || len(o.added) != shape.Chunks-1 || o.path <= 0 || o.ttft1 < o.path || o.ttft1 > o.ttft) {
					t.Fatalf("one clock: path %v ttft1 %v (raw %v), %d delays, %d added gaps", o.path, o.ttft1, o.ttft, len(o.delays), len(o.added))
				}
				return
			}
			if !strings.Contains(o.err, tt.wantErr) {
				t.Fatalf("error %q, want one with %q", o.err, tt.wantErr)
			}
		})
	}
}

// TestOneClock feeds a stream of text events with known stamps, read at
// known times, and checks the one-clock figures: per event delay, added
// gap with its sign, request path and one-clock TTFT, down to the
// phase's distributions.
func TestOneClock(t *testing.T) {
	msd := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	t0 := time.Unix(1764100000, 0)
	for _, api := range []API{Anthropic, OpenAI} {
		t.Run(string(api), func(t *testing.T) {
			shape := Shape{Chunks: 4}
			c := newCall(api, true, shape, true)
			o := &outcome{start: t0, path: msd(0.5)} // the upstream read the request at t0+0.5 ms
			st := &streamState{c: c, o: o}
			// Written upstream at 20, 40, 60, 80 ms (the second one late, at
			// 43); received with delays 1, 0.25, 3, 2 ms.
			written := []float64{20, 43, 60, 80}
			delays := []float64{1, 0.25, 3, 2}
			text := func(i int, stamp int64) []byte {
				piece := strings.ToUpper(shape.Text()[i*pieceRunes : (i+1)*pieceRunes])
				piece += "@" + fmt.Sprintf("%019d", stamp)
				if api == OpenAI {
					return fmt.Appendf(nil, `{"choices":[{"index":0,"delta":{"content":%q}}]}`, piece)
				}
				return fmt.Appendf(nil, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, piece)
			}
			name := []byte("content_block_delta")
			if api == OpenAI {
				name = nil
				st.event(t0.Add(msd(20.5)), nil, []byte(`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`))
			} else {
				st.first = "message_start"
			}
			for i := range written {
				stamp := t0.Add(msd(written[i])).UnixNano()
				st.event(t0.Add(msd(written[i]+delays[i])), name, text(i, stamp))
			}
			if api == OpenAI {
				st.event(t0.Add(msd(90)), nil, []byte("[DONE]"))
			} else {
				st.last = "message_stop"
			}
			if msg := st.bad + st.check(); msg != "" {
				t.Fatal(msg)
			}
			wantDelays := []time.Duration{msd(1), msd(0.25), msd(3), msd(2)}
			wantAdded := []time.Duration{msd(-0.75), msd(2.75), msd(-1)}
			if !slices.Equal(o.delays, wantDelays) || !slices.Equal(o.added, wantAdded) {
				t.Fatalf("delays %v, added gaps %v; want %v, %v", o.delays, o.added, wantDelays, wantAdded)
			}
			if o.ttft1 != msd(1.5) || o.ttft != msd(21) {
				t.Fatalf("one-clock TTFT %v, raw %v; want 1.5ms, 21ms", o.ttft1, o.ttft)
			}
			rec := &recorder{}
			rec.add(*o)
			o2 := *o
			o2.path, o2.ttft1 = msd(1), msd(5)
			o2.delays = []time.Duration{msd(4), msd(4), msd(4), msd(4)}
			o2.added = []time.Duration{0, 0, 0}
			rec.add(o2)
			pr := rec.result(Phase{Load: Load{Stream: true, Shape: shape}})
			check := func(what string, got, want Dist) {
				t.Helper()
				if got != want {
					t.Errorf("%s %+v, want %+v", what, got, want)
				}
			}
			check("request path", pr.RequestPath, Dist{N: 2, Mean: 0.75, P50: 0.5, P90: 1, P99: 1, Max: 1})
			check("one-clock TTFT", pr.OneClockTTFT, Dist{N: 2, Mean: 3.25, P50: 1.5, P90: 5, P99: 5, Max: 5})
			check("event delay", pr.EventDelay, Dist{N: 8, Mean: 2.781, P50: 3, P90: 4, P99: 4, Max: 4})
			check("added gap", pr.AddedGap, Dist{N: 6, Mean: 0.167, P50: 0, P90: 2.75, P99: 2.75, Max: 2.75})
		})
	}
}

func TestParseShape(t *testing.T) {
	for _, s := range []Shape{Instant, Paced, Burst} {
		got, err := ParseShape(s.Header())
		if err != nil || got != s {
			t.Errorf("ParseShape(%q) = %+v, %v; want %+v", s.Header(), got, err, s)
		}
	}
	for _, bad := range []string{"", "chunks=0", "chunks=x", "chunks=2;first=soon", "chunks=2;colour=red", "chunks"} {
		if _, err := ParseShape(bad); err == nil {
			t.Errorf("ParseShape(%q) accepted", bad)
		}
	}
	if got := (Shape{Chunks: 3}).Text(); got != " w000 w001 w002" {
		t.Errorf("Text() = %q", got)
	}
}

func TestDist(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := newDist(ds)
	want := Dist{N: 100, Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("newDist = %+v, want %+v", got, want)
	}
	if got := newDist(nil); got != (Dist{}) {
		t.Errorf("newDist(nil) = %+v", got)
	}
}

// TestFloorFlushesEvents checks that the floor relays each event as it
// comes rather than the stream as a whole.
func TestFloorFlushesEvents(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.SetResponder(UpstreamScenario)
	floorSrv := httptest.NewServer(floor.New(up.URL))
	defer floorSrv.Close()
	shape := Shape{Chunks: 5, Interval: 40 * time.Millisecond}
	o := newCall(Anthropic, true, shape, false).do(t.Context(), http.DefaultClient, floorSrv.URL, time.Now())
	if o.err != "" {
		t.Fatal(o.err)
	}
	d := newDist(o.gaps)
	if d.P50 < 10 {
		t.Fatalf("events 40 ms apart upstream arrive %v ms apart (p50): the floor buffers the stream", d.P50)
	}
	whole := newCall(OpenAI, false, Instant, false).do(t.Context(), http.DefaultClient, floorSrv.URL, time.Now())
	if whole.err != "" {
		t.Fatal(whole.err)
	}
}

// TestOpenLoopKeepsItsRate checks that an open loop starts its requests
// on schedule whatever the server does: every scheduled request in the
// window is sent or counted as dropped.
func TestOpenLoopKeepsItsRate(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		http.Error(w, "slow", http.StatusServiceUnavailable)
	}))
	defer slow.Close()
	l := Load{API: Anthropic, Shape: Instant, Rate: 100, MaxInFlight: 5, Duration: 500 * time.Millisecond}
	rec := l.run(t.Context(), newClient(8), slow.URL, func() {})
	if n := rec.requests + rec.dropped; n < 49 || n > 51 {
		t.Fatalf("%d requests and %d dropped, want 50 scheduled", rec.requests, rec.dropped)
	}
	if rec.dropped == 0 || rec.errors != rec.requests {
		t.Fatalf("dropped %d, errors %d of %d: want drops (5 in flight at most) and every answer an error", rec.dropped, rec.errors, rec.requests)
	}
}

func TestEvaluate(t *testing.T) {
	phase := func(p50, p99, rps, eps float64) *PhaseResult {
		return &PhaseResult{Requests: 10, Latency: Dist{N: 10, P50: p50, P99: p99}, RequestsPerSec: rps, EventsPerSec: eps,
			TTFT: Dist{N: 10, P50: 20 + 3*p50}, Gap: Dist{N: 10, P99: 20 + 3*p99}, // raw figures: not judged
			OneClockTTFT: Dist{N: 10, P50: p50}, AddedGap: Dist{N: 10, P99: p99}, PeakRSSMB: map[string]float64{"gateway": rps}}
	}
	target := func(name string, p50, p99, rps, eps float64) TargetResult {
		p := phase(p50, p99, rps, eps)
		return TargetResult{Name: name, Status: "ok", Phases: map[string]*PhaseResult{
			PhaseC1: p, PhaseC32: p, PhaseBurst: p, PhasePaced: p, PhaseStream: p}}
	}
	rep := &Report{Targets: []TargetResult{
		target(TargetDirect, 1, 2, 1000, 1000),
		target(TargetFloor, 1.5, 3, 900, 800),
		target(TargetNoop, 2, 4, 720, 500), // added p50 1 (2× the floor's), p99 2 (2×)
		target(TargetAllCaps, 1.5, 2.5, 500, 300),
		target(TargetSplit, 3, 3, 400, 200),
		{Name: TargetPostgres, Status: "pending (persistence not landed)"},
	}}
	// Split is compared with its own direct run for paced streams, and
	// judged on its gateway's memory, not its control plane's.
	split := rep.Target(TargetSplit)
	split.Baseline = map[string]*PhaseResult{PhasePaced: phase(2.5, 2.5, 0, 0)}
	split.Phases[PhaseStream] = &PhaseResult{PeakRSSMB: map[string]float64{"gateway": 120, "controlplane": 900}}
	got := map[string]Check{}
	for _, c := range evaluate(rep) {
		got[c.Name] = c
	}
	want := map[string]struct {
		status string
		value  float64
	}{
		"non-streaming added latency p50 at c=1, gateway-noop / floor":                 {Missed, 2},
		"non-streaming added latency p99 at c=1, gateway-noop / floor":                 {Met, 2},
		"non-streaming throughput at c=32, gateway-noop / floor":                       {Met, 0.8},
		"burst streaming events/s, gateway-noop / floor":                               {Missed, 0.625},
		"burst streaming events/s, gateway-allcaps / floor":                            {Missed, 0.375},
		"burst streaming events/s, gateway-split / gateway-allcaps":                    {Missed, 0.667},
		"non-streaming throughput at c=32, gateway-postgres / gateway-noop":            {NA, 0},
		"added time to first token p50 (paced, 64 streams), gateway-noop":              {Met, 1},
		"added inter-event gap p99 (paced, 64 streams), gateway-allcaps":               {Met, 0.5},
		"peak RSS of the gateway with 1000 concurrent paced streams, gateway-noop":     {Missed, 720},
		"peak RSS of the gateway with 1000 concurrent paced streams, gateway-postgres": {NA, 0},
	}
	for name, w := range want {
		c, ok := got[name]
		if !ok {
			t.Errorf("no check %q", name)
			continue
		}
		if c.Status != w.status || c.Value != w.value {
			t.Errorf("%s: %s %v, want %s %v", name, c.Status, c.Value, w.status, w.value)
		}
	}
}
