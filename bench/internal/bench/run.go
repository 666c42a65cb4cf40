package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Config configures a run.
type Config struct {
	// Duration is each phase's measured window.
	Duration time.Duration
	// Smoke shrinks every phase (few clients, short windows) to check the
	// harness works, not to measure.
	Smoke bool
	// Targets to run, by name (AllTargets when empty).
	Targets []string
	// PhaseNames are the phases to run, by name (every phase when empty).
	PhaseNames []string
	// API is the client API of every load (Anthropic when empty).
	API API
	// DatabaseURL is the PostgreSQL the gateway-postgres target logs to.
	DatabaseURL string
	// Bins are the programs to run; Run builds them when Gateway is empty.
	Bins Binaries
	// Progress receives a line per step (nil: discarded).
	Progress io.Writer
}

// Phase is one measurement: a load and what to read about it.
type Phase struct {
	Name        string
	Description string
	Load        Load
	// PeakRSS resets the processes' peak RSS before the load and reads it
	// after.
	PeakRSS bool
	// Proxies only: the upstream called directly has no process to
	// measure here.
	ProxiesOnly bool
	// Paired phases are also run against the upstream directly, right
	// before each proxy target runs them, so that what a proxy adds is
	// the difference between two runs minutes apart at most seconds
	// apart: a machine shared with other work drifts.
	Paired bool
}

// The phases' names.
const (
	PhaseC1     = "nonstream-c1"
	PhaseC32    = "nonstream-c32"
	PhaseOpen   = "nonstream-open"
	PhasePaced  = "paced-c64"
	PhaseBurst  = "burst-c32"
	PhaseStream = "paced-c1000"
)

// Phases returns the phases of a run.
func (c Config) Phases() []Phase {
	d, warm := c.Duration, time.Second/2
	c1, c32, c64, c1000, rate := 1, 32, 64, 1000, 200.0
	// Streams start spread over one paced stream's length, so that their
	// events are spread in time like independent clients' are.
	spread := Paced.length()
	if c.Smoke {
		// No warm-up and no spread: a paced stream outlasts a smoke
		// window, so only the streams started at once get counted.
		warm, spread = 0, 0
		c32, c64, c1000, rate = 4, 8, 24, 50
	}
	api := c.API
	if api == "" {
		api = Anthropic
	}
	return []Phase{
		{Name: PhaseC1, Description: "non-streaming, closed loop, 1 client",
			Load: Load{API: api, Shape: Instant, Concurrency: c1, Warmup: warm, Duration: d}, Paired: true},
		{Name: PhaseC32, Description: fmt.Sprintf("non-streaming, closed loop, %d clients", c32),
			Load: Load{API: api, Shape: Instant, Concurrency: c32, Warmup: warm, Duration: d}},
		{Name: PhaseOpen, Description: fmt.Sprintf("non-streaming, open loop, %.0f requests/s", rate),
			Load: Load{API: api, Shape: Instant, Rate: rate, Warmup: warm, Duration: d}},
		{Name: PhasePaced, Description: fmt.Sprintf("paced streams (%s), closed loop, %d streams started over %v", Paced.Header(), c64, spread),
			Load: Load{API: api, Stream: true, Shape: Paced, Concurrency: c64, Ramp: spread, Warmup: warm + spread, Duration: d}, Paired: true},
		{Name: PhaseBurst, Description: fmt.Sprintf("burst streams (%d text events, no delay), closed loop, %d streams", Burst.Chunks, c32),
			Load: Load{API: api, Stream: true, Shape: Burst, Concurrency: c32, Warmup: warm, Duration: d}},
		{Name: PhaseStream, Description: fmt.Sprintf("paced streams, closed loop, %d concurrent streams started over %v: peak RSS", c1000, spread),
			Load:    Load{API: api, Stream: true, Shape: Paced, Concurrency: c1000, Ramp: spread, Warmup: warm + spread, Duration: max(d/2, Paced.length())},
			PeakRSS: true, ProxiesOnly: true},
	}
}

// selectPhases returns the phases named in PhaseNames, in run order.
func (c Config) selectPhases() ([]Phase, error) {
	all := c.Phases()
	if len(c.PhaseNames) == 0 {
		return all, nil
	}
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	for _, n := range c.PhaseNames {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("bench: unknown phase %q (want some of %s)", n, strings.Join(names, ", "))
		}
	}
	return slices.DeleteFunc(all, func(p Phase) bool { return !slices.Contains(c.PhaseNames, p.Name) }), nil
}

// length is how long a stream of the shape takes upstream (its
// Anthropic form has 5 events besides the text deltas).
func (s Shape) length() time.Duration {
	return s.FirstDelay + time.Duration(s.Chunks+4)*s.Interval
}

// Run builds what it needs, starts the fake upstream, and runs every
// phase against every target, one target at a time.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.API == "" {
		cfg.API = Anthropic
	}
	if cfg.API != Anthropic && cfg.API != OpenAI {
		return nil, fmt.Errorf("bench: unknown API %q", cfg.API)
	}
	targets := cfg.Targets
	if len(targets) == 0 {
		targets = AllTargets
	}
	for _, t := range targets {
		if !slices.Contains(AllTargets, t) {
			return nil, fmt.Errorf("bench: unknown target %q (want some of %s)", t, strings.Join(AllTargets, ", "))
		}
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "luthien-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if cfg.Bins.Gateway == "" {
		fmt.Fprintln(progress, "building binaries")
		if cfg.Bins, err = Build(ctx, dir); err != nil {
			return nil, err
		}
	}
	up, err := Start("fakeupstream", cfg.Bins.FakeUpstream, nil, nil)
	if err != nil {
		return nil, err
	}
	defer up.Stop()
	e := &env{bins: cfg.Bins, upstream: "http://" + up.Addr, dir: dir, databaseURL: cfg.DatabaseURL}

	rep := &Report{Machine: describeMachine(), Started: time.Now().UTC(), API: cfg.API,
		Duration: cfg.Duration.String(), Smoke: cfg.Smoke}
	phases, err := cfg.selectPhases()
	if err != nil {
		return nil, err
	}
	for _, p := range phases {
		rep.Phases = append(rep.Phases, PhaseInfo{Name: p.Name, Description: p.Description})
	}
	for _, name := range targets {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(progress, "target %s\n", name)
		tr := runTarget(ctx, e, name, phases, progress)
		rep.Targets = append(rep.Targets, tr)
	}
	rep.Checks = evaluate(rep)
	return rep, nil
}

// runTarget starts one target, runs the phases and stops it.
func runTarget(ctx context.Context, e *env, name string, phases []Phase, progress io.Writer) TargetResult {
	tr := TargetResult{Name: name, Description: targetDescriptions[name], Status: "ok", Phases: map[string]*PhaseResult{}}
	r, err := e.start(ctx, name)
	if err != nil {
		tr.Status = "failed: " + err.Error()
		return tr
	}
	if r.pending != "" {
		tr.Status = r.pending
		return tr
	}
	defer stopAll(r.procs)
	for _, p := range r.procs {
		tr.Processes = append(tr.Processes, p.Name)
	}
	direct := &running{base: e.upstream}
	for _, ph := range phases {
		if ph.ProxiesOnly && len(r.procs) == 0 {
			continue
		}
		if ph.Paired && len(r.procs) > 0 {
			pr := runPhase(ctx, direct, ph, ph.Load)
			fmt.Fprintf(progress, "  %-15s %s\n", ph.Name+" (direct)", pr.summary())
			if tr.Baseline == nil {
				tr.Baseline = map[string]*PhaseResult{}
			}
			tr.Baseline[ph.Name] = pr
		}
		l := ph.Load
		l.Upper = r.upper
		pr := runPhase(ctx, r, ph, l)
		fmt.Fprintf(progress, "  %-15s %s\n", ph.Name, pr.summary())
		tr.Phases[ph.Name] = pr
		if ctx.Err() != nil {
			break
		}
	}
	return tr
}

// runPhase runs one load and reads the processes' counters around its
// measured window.
func runPhase(ctx context.Context, r *running, ph Phase, l Load) *PhaseResult {
	conns := l.Concurrency
	if l.Rate > 0 {
		conns = 256
	}
	hc := newClient(conns)
	defer hc.CloseIdleConnections()
	startRSS := map[string]float64{}
	if ph.PeakRSS {
		for _, p := range r.procs {
			if b, err := p.RSS(); err == nil {
				startRSS[p.Name] = round3(float64(b) / (1 << 20))
			}
			_ = p.ResetPeakRSS()
		}
	}
	cpu0 := make([]time.Duration, len(r.procs))
	readCPU := func(dst []time.Duration) {
		for i, p := range r.procs {
			dst[i], _ = p.CPU()
		}
	}
	rec := l.run(ctx, hc, r.base, func() { readCPU(cpu0) })
	cpu1 := make([]time.Duration, len(r.procs))
	readCPU(cpu1)
	pr := rec.result(ph)
	if len(r.procs) > 0 {
		pr.CPUSeconds = map[string]float64{}
		var total time.Duration
		for i, p := range r.procs {
			d := cpu1[i] - cpu0[i]
			total += d
			pr.CPUSeconds[p.Name] = round3(d.Seconds())
		}
		if ok := pr.Requests - pr.Errors; ok > 0 {
			pr.CPUPerRequestMs = round3(float64(total) / float64(time.Millisecond) / float64(ok))
		}
		if pr.Events > 0 {
			pr.CPUPerEventUs = round3(float64(total) / float64(time.Microsecond) / float64(pr.Events))
		}
		if elapsed := rec.elapsed(); elapsed > 0 {
			pr.CPUCores = round3(float64(total) / float64(elapsed))
		}
	}
	if ph.PeakRSS {
		pr.StartRSSMB = startRSS
		pr.PeakRSSMB = map[string]float64{}
		for _, p := range r.procs {
			if b, err := p.PeakRSS(); err == nil {
				pr.PeakRSSMB[p.Name] = round3(float64(b) / (1 << 20))
			}
		}
	}
	return pr
}

// result summarises a recorder.
func (rec *recorder) result(ph Phase) *PhaseResult {
	pr := &PhaseResult{
		Requests:      rec.requests,
		Errors:        rec.errors,
		FirstError:    rec.firstErr,
		Dropped:       rec.dropped,
		Events:        rec.events,
		ContentEvents: rec.content,
		Latency:       newDist(rec.latency),
		TTFT:          newDist(rec.ttft),
		Gap:           newDist(rec.gaps),
		RequestPath:   newDist(rec.path),
		EventDelay:    newDist(rec.delays),
		AddedGap:      newDist(rec.added),
		OneClockTTFT:  newDist(rec.ttft1),
	}
	if el := rec.elapsed(); el > 0 {
		pr.Seconds = round3(el.Seconds())
		pr.RequestsPerSec = round3(float64(rec.requests-rec.errors) / el.Seconds())
		pr.EventsPerSec = round3(float64(rec.events) / el.Seconds())
	}
	if ph.Load.Stream {
		pr.ExpectedContentEvents = (rec.requests - rec.errors) * ph.Load.Shape.Chunks
	}
	return pr
}
