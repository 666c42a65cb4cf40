package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Markdown renders the report: the figures per target, then the checks.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Run %s; %d CPUs (%s), %s memory, Linux %s, %s; client API %s; %s per phase",
		r.Started.Format("2006-01-02 15:04 MST"), m.CPUs, m.CPUModel, m.Memory, m.Kernel, m.Go, r.API, r.Duration)
	if r.Smoke {
		b.WriteString(" (smoke run: figures not meaningful)")
	}
	b.WriteString(".\n\nTimes in ms; \"+x\" is what the target adds to `direct` (the fake upstream called without a proxy; for c=1 and paced streams, a direct run made just before the target's). ")
	b.WriteString("Paced streams: raw TTFT and gap are read on the client alone, so they carry the upstream's own timer jitter; the one-clock figures subtract the fake upstream's stamps (when it read the request, when it wrote each text event): ")
	b.WriteString("one-clock TTFT = request to upstream + the first text event's delay, delay = a text event's arrival minus its write, added gap = a gap between text events as received minus the same gap as written (text events only). ")
	b.WriteString("CPU is the CPU time of the processes under test (gateway and, split, control plane) divided by requests or events. ")
	b.WriteString("Peak RSS is per process (split: control plane + gateway), with the RSS the phase started from in brackets.\n\n")
	b.WriteString("| target | c=1 p50 | c=1 p99 | c=32 req/s | CPU ms/req (c=32) | open loop p99 | paced TTFT p50 (raw) | paced gap p99 (raw) | paced one-clock TTFT p50 | paced delay p50 | paced added gap p99 | burst events/s | CPU µs/event (burst) | peak RSS, 1000 streams | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.Targets {
		if t.Status != "ok" {
			fmt.Fprintf(&b, "| %s | %s ||||||||||||||\n", t.Name, t.Status)
			continue
		}
		base := func(phase string) *PhaseResult {
			if t.Name == TargetDirect {
				return nil
			}
			return r.baseline(t.Name, phase)
		}
		cell := func(phase string, get func(*PhaseResult) float64) string {
			p := t.Phases[phase]
			if p == nil {
				return "–"
			}
			v := get(p)
			if d := base(phase); d != nil {
				return fmt.Sprintf("%.2f (%+.2f)", v, v-get(d))
			}
			return fmt.Sprintf("%.2f", v)
		}
		plain := func(phase, format string, get func(*PhaseResult) float64) string {
			p := t.Phases[phase]
			if p == nil || get(p) == 0 {
				return "–"
			}
			return fmt.Sprintf(format, get(p))
		}
		rss := "–"
		if p := t.Phases[PhaseStream]; p != nil && len(p.PeakRSSMB) > 0 {
			var parts []string
			for _, n := range slices.Sorted(maps.Keys(p.PeakRSSMB)) {
				parts = append(parts, fmt.Sprintf("%.0f MB (from %.0f)", p.PeakRSSMB[n], p.StartRSSMB[n]))
			}
			rss = strings.Join(parts, " + ")
		}
		errs := 0
		for _, p := range t.Phases {
			errs += p.Errors
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t.Name,
			cell(PhaseC1, func(p *PhaseResult) float64 { return p.Latency.P50 }),
			cell(PhaseC1, func(p *PhaseResult) float64 { return p.Latency.P99 }),
			plain(PhaseC32, "%.0f", func(p *PhaseResult) float64 { return p.RequestsPerSec }),
			plain(PhaseC32, "%.3f", func(p *PhaseResult) float64 { return p.CPUPerRequestMs }),
			cell(PhaseOpen, func(p *PhaseResult) float64 { return p.Latency.P99 }),
			cell(PhasePaced, func(p *PhaseResult) float64 { return p.TTFT.P50 }),
			cell(PhasePaced, func(p *PhaseResult) float64 { return p.Gap.P99 }),
			cell(PhasePaced, func(p *PhaseResult) float64 { return p.OneClockTTFT.P50 }),
			cell(PhasePaced, func(p *PhaseResult) float64 { return p.EventDelay.P50 }),
			cell(PhasePaced, func(p *PhaseResult) float64 { return p.AddedGap.P99 }),
			plain(PhaseBurst, "%.0f", func(p *PhaseResult) float64 { return p.EventsPerSec }),
			plain(PhaseBurst, "%.2f", func(p *PhaseResult) float64 { return p.CPUPerEventUs }),
			rss, errs)
	}
	b.WriteString("\nTargets:\n\n| check | rule | value | status |\n|---|---|---|---|\n")
	for _, c := range r.Checks {
		v := "–"
		if c.Status != NA {
			switch c.Unit {
			case "x":
				v = fmt.Sprintf("%.2f× (%s)", c.Value, c.Detail)
			default:
				v = fmt.Sprintf("%.2f %s (%s)", c.Value, c.Unit, c.Detail)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Name, c.Rule, v, c.Status)
	}
	b.WriteString("\nPhases:\n\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "- `%s`: %s\n", p.Name, p.Description)
	}
	b.WriteString("\nTargets run:\n\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "- `%s`: %s\n", t.Name, t.Description)
	}
	return b.String()
}
