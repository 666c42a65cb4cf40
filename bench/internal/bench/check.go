package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Check is one of the performance targets, judged on one run.
type Check struct {
	Name   string  `json:"name"`
	Rule   string  `json:"rule"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"` // "x" for a ratio, "ms", "MB"
	Status string  `json:"status"`
	Detail string  `json:"detail,omitempty"`
}

// The statuses of a check.
const (
	Met    = "met"
	Missed = "missed"
	NA     = "n/a"
)

// gatewayTargets are the targets the per-gateway checks apply to.
var gatewayTargets = []string{TargetNoop, TargetAllCaps, TargetSplit, TargetPostgres}

// evaluate judges the targets the run has figures for.
func evaluate(r *Report) []Check {
	var out []Check
	latency := func(t, q string) (float64, bool) {
		p, d := r.phase(t, PhaseC1), r.baseline(t, PhaseC1)
		if p == nil || d == nil || p.Latency.N == 0 || d.Latency.N == 0 {
			return 0, false
		}
		if q == "p99" {
			return p.Latency.P99 - d.Latency.P99, true
		}
		return p.Latency.P50 - d.Latency.P50, true
	}
	ratio := func(name, rule string, num, den float64, ok bool, cmp func(float64) bool, detail string) {
		c := Check{Name: name, Rule: rule, Unit: "x", Status: NA}
		if ok && den > 0 {
			c.Value = round3(num / den)
			c.Status = verdict(cmp(c.Value))
			c.Detail = detail
		}
		out = append(out, c)
	}
	for _, q := range []struct {
		q     string
		limit float64
	}{{"p50", 1.5}, {"p99", 2}} {
		n, ok1 := latency(TargetNoop, q.q)
		f, ok2 := latency(TargetFloor, q.q)
		ratio("non-streaming added latency "+q.q+" at c=1, gateway-noop / floor",
			fmt.Sprintf("≤ %g×", q.limit), n, f, ok1 && ok2, func(v float64) bool { return v <= q.limit },
			fmt.Sprintf("added %.3f ms vs %.3f ms", n, f))
	}
	rate := func(t, phase string, events bool) (float64, bool) {
		p := r.phase(t, phase)
		if p == nil || p.Requests == 0 {
			return 0, false
		}
		if events {
			return p.EventsPerSec, true
		}
		return p.RequestsPerSec, true
	}
	ratioOf := func(name, rule string, limit float64, t1, t2, phase string, events bool) {
		a, ok1 := rate(t1, phase, events)
		b, ok2 := rate(t2, phase, events)
		unit := "requests/s"
		if events {
			unit = "events/s"
		}
		ratio(name, rule, a, b, ok1 && ok2, func(v float64) bool { return v >= limit },
			fmt.Sprintf("%.0f vs %.0f %s", a, b, unit))
	}
	ratioOf("non-streaming throughput at c=32, gateway-noop / floor", "≥ 0.7×", 0.7, TargetNoop, TargetFloor, PhaseC32, false)
	ratioOf("burst streaming events/s, gateway-noop / floor", "≥ 0.8×", 0.8, TargetNoop, TargetFloor, PhaseBurst, true)
	ratioOf("burst streaming events/s, gateway-allcaps / floor", "≥ 0.6×", 0.6, TargetAllCaps, TargetFloor, PhaseBurst, true)
	ratioOf("burst streaming events/s, gateway-split / gateway-allcaps", "≥ 0.8×", 0.8, TargetSplit, TargetAllCaps, PhaseBurst, true)
	ratioOf("non-streaming throughput at c=32, gateway-postgres / gateway-noop", "≥ 0.9×", 0.9, TargetPostgres, TargetNoop, PhaseC32, false)

	// Paced streams are judged with one clock (see PhaseResult): the
	// upstream's timer wakes late by a varying amount, which moves the raw
	// TTFT and gap figures of two runs apart by more than the 1 ms judged.
	// The raw differences are kept in the detail.
	for _, t := range gatewayTargets {
		p, direct := r.phase(t, PhasePaced), r.baseline(t, PhasePaced)
		for _, m := range []struct {
			name, rule, what, raw string
			get, getRaw           func(*PhaseResult) float64
		}{
			{name: "added time to first token p50 (paced, 64 streams)",
				rule: "≤ 1 ms: one-clock TTFT p50 (request to upstream + first text event's upstream-to-client delay), target minus paired direct run",
				what: "one-clock TTFT p50", raw: "raw TTFT p50",
				get: func(p *PhaseResult) float64 { return p.OneClockTTFT.P50 }, getRaw: func(p *PhaseResult) float64 { return p.TTFT.P50 }},
			{name: "added inter-event gap p99 (paced, 64 streams)",
				rule: "≤ 1 ms: added-gap p99 (gap between text events as received minus as written upstream), target minus paired direct run",
				what: "added-gap p99", raw: "raw gap p99",
				get: func(p *PhaseResult) float64 { return p.AddedGap.P99 }, getRaw: func(p *PhaseResult) float64 { return p.Gap.P99 }},
		} {
			c := Check{Name: m.name + ", " + t, Rule: m.rule, Unit: "ms", Status: NA}
			if p != nil && direct != nil && p.OneClockTTFT.N > 0 && direct.OneClockTTFT.N > 0 {
				c.Value = round3(m.get(p) - m.get(direct))
				c.Status = verdict(c.Value <= 1)
				c.Detail = fmt.Sprintf("%s %.3f ms vs direct %.3f ms; %s %.3f ms vs direct %.3f ms, %+.3f",
					m.what, m.get(p), m.get(direct), m.raw, m.getRaw(p), m.getRaw(direct), m.getRaw(p)-m.getRaw(direct))
			}
			out = append(out, c)
		}
	}
	for _, t := range gatewayTargets {
		p := r.phase(t, PhaseStream)
		// The gateway process is judged: it carries the streams. A
		// separate control plane's memory is reported beside it.
		c := Check{Name: "peak RSS of the gateway with 1000 concurrent paced streams, " + t, Rule: "< 300 MB", Unit: "MB", Status: NA}
		if p != nil && len(p.PeakRSSMB) > 0 {
			var parts []string
			for _, n := range slices.Sorted(maps.Keys(p.PeakRSSMB)) {
				if n != "controlplane" {
					c.Value = p.PeakRSSMB[n]
				}
				parts = append(parts, fmt.Sprintf("%s %.0f MB (from %.0f)", n, p.PeakRSSMB[n], p.StartRSSMB[n]))
			}
			c.Status = verdict(c.Value > 0 && c.Value < 300)
			c.Detail = strings.Join(parts, ", ")
		}
		out = append(out, c)
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}
