package bench

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Load is one phase's traffic: what is asked, and how hard.
type Load struct {
	API    API
	Stream bool
	Shape  Shape
	// Upper says the responses come back uppercased (the all_caps
	// policy); the checks expect that.
	Upper bool
	// Concurrency > 0 runs a closed loop of that many clients.
	Concurrency int
	// Rate > 0 runs an open loop: requests started at this many per
	// second, whatever the responses do.
	Rate float64
	// MaxInFlight bounds an open loop's requests in flight; a request
	// due while it is reached is dropped (and counted).
	MaxInFlight int
	// Ramp spreads the start of a closed loop's clients over this long.
	// Paced streams started at once stay in step, every event of every
	// stream due in the same instant; real clients are not in step.
	Ramp time.Duration
	// Warmup runs before the measured window; its requests are not
	// counted.
	Warmup   time.Duration
	Duration time.Duration
}

// recorder gathers the outcomes of the requests started in the measured
// window.
type recorder struct {
	mu       sync.Mutex
	requests int
	errors   int
	firstErr string
	events   int
	content  int
	dropped  int
	latency  []time.Duration
	ttft     []time.Duration
	gaps     []time.Duration
	path     []time.Duration
	delays   []time.Duration
	added    []time.Duration
	ttft1    []time.Duration
	lastDone time.Time
	winStart time.Time
}

func (r *recorder) add(o outcome) {
	done := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if done.After(r.lastDone) {
		r.lastDone = done
	}
	if o.err != "" {
		r.errors++
		if r.firstErr == "" {
			r.firstErr = o.err
		}
		return
	}
	r.events += o.events
	r.content += o.content
	r.latency = append(r.latency, o.latency)
	if o.content > 0 {
		r.ttft = append(r.ttft, o.ttft)
	}
	r.gaps = append(r.gaps, o.gaps...)
	if len(o.delays) > 0 {
		r.path = append(r.path, o.path)
		r.ttft1 = append(r.ttft1, o.ttft1)
	}
	r.delays = append(r.delays, o.delays...)
	r.added = append(r.added, o.added...)
}

// elapsed is the measured interval: from the window's start to the last
// counted completion.
func (r *recorder) elapsed() time.Duration {
	if r.lastDone.Before(r.winStart) {
		return 0
	}
	return r.lastDone.Sub(r.winStart)
}

// run sends l's traffic to base. atWindow is called when the measured
// window opens (to read the counters of the processes under test); run
// returns when every counted request is drained.
func (l Load) run(ctx context.Context, hc *http.Client, base string, atWindow func()) *recorder {
	c := newCall(l.API, l.Stream, l.Shape, l.Upper)
	t0 := time.Now()
	rec := &recorder{winStart: t0.Add(l.Warmup)}
	winEnd := rec.winStart.Add(l.Duration)
	opened := make(chan struct{})
	win := time.AfterFunc(l.Warmup, func() { atWindow(); close(opened) })
	var wg sync.WaitGroup
	if l.Rate > 0 {
		l.openLoop(ctx, hc, base, c, rec, t0, winEnd, &wg)
	} else {
		l.closedLoop(ctx, hc, base, c, rec, winEnd, &wg)
	}
	wg.Wait()
	if !win.Stop() {
		<-opened // atWindow ran (or is running): wait for what it read
	}
	return rec
}

// closedLoop runs Concurrency clients until the window ends, starting
// them evenly over Ramp.
func (l Load) closedLoop(ctx context.Context, hc *http.Client, base string, c *call, rec *recorder, winEnd time.Time, wg *sync.WaitGroup) {
	step := l.Ramp / time.Duration(l.Concurrency)
	for range l.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				if start.After(winEnd) {
					return
				}
				o := c.do(ctx, hc, base, start)
				if !start.Before(rec.winStart) {
					rec.add(o)
				}
			}
		}()
		if step > 0 {
			time.Sleep(step)
		}
	}
}

// openLoop starts requests at Rate per second until the window ends,
// each timed from its scheduled start (so that a slow server cannot
// slow the arrivals and hide its own latency).
func (l Load) openLoop(ctx context.Context, hc *http.Client, base string, c *call, rec *recorder, t0, winEnd time.Time, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / l.Rate)
	maxInFlight := int64(l.MaxInFlight)
	if maxInFlight <= 0 {
		maxInFlight = 4096
	}
	var inFlight atomic.Int64
	for next := t0; next.Before(winEnd) && ctx.Err() == nil; next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		counted := !next.Before(rec.winStart)
		if inFlight.Load() >= maxInFlight {
			if counted {
				rec.mu.Lock()
				rec.dropped++
				rec.mu.Unlock()
			}
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func(start time.Time) {
			defer wg.Done()
			defer inFlight.Add(-1)
			o := c.do(ctx, hc, base, start)
			if counted {
				rec.add(o)
			}
		}(next)
	}
}
