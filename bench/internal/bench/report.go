package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Report is the result of a run (written as JSON, rendered as Markdown).
type Report struct {
	Machine  Machine        `json:"machine"`
	Started  time.Time      `json:"started"`
	API      API            `json:"api"`
	Duration string         `json:"phase_duration"`
	Smoke    bool           `json:"smoke"`
	Phases   []PhaseInfo    `json:"phases"`
	Targets  []TargetResult `json:"targets"`
	Checks   []Check        `json:"checks"`
}

// PhaseInfo describes a phase.
type PhaseInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Machine describes where the run ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Memory    string `json:"memory"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	FileLimit uint64 `json:"file_limit"`
}

// TargetResult is one target's figures, by phase name.
type TargetResult struct {
	Name        string                  `json:"name"`
	Description string                  `json:"description"`
	Status      string                  `json:"status"` // "ok", or why there are no figures
	Processes   []string                `json:"processes,omitempty"`
	Phases      map[string]*PhaseResult `json:"phases,omitempty"`
	// Baseline holds the paired phases run against the upstream directly
	// just before this target's own.
	Baseline map[string]*PhaseResult `json:"direct_baseline,omitempty"`
}

// PhaseResult is one phase's figures for one target. Requests are those
// started in the measured window; rates divide by the time from the
// window's start to the last of them finishing.
type PhaseResult struct {
	Requests              int     `json:"requests"`
	Errors                int     `json:"errors"`
	FirstError            string  `json:"first_error,omitempty"`
	Dropped               int     `json:"dropped,omitempty"`
	Seconds               float64 `json:"seconds"`
	RequestsPerSec        float64 `json:"requests_per_sec"`
	Events                int     `json:"events"`
	ContentEvents         int     `json:"content_events"`
	ExpectedContentEvents int     `json:"expected_content_events,omitempty"`
	EventsPerSec          float64 `json:"events_per_sec"`
	Latency               Dist    `json:"latency"`
	TTFT                  Dist    `json:"ttft"`
	Gap                   Dist    `json:"inter_event_gap"`
	// One clock (streams; text events only): the fake upstream stamps
	// each text delta with when it wrote it and each response with when
	// it read the request, and the load generator reads the same clock.
	// RequestPath is from the request's start to the upstream having read
	// it; EventDelay, per text event, its arrival minus its stamp;
	// AddedGap, per pair of consecutive text events, the gap between
	// their arrivals minus the gap between their stamps (negative when
	// the second came through faster than the first); OneClockTTFT,
	// RequestPath plus the first text event's delay: TTFT without the
	// upstream's own wait before its first event.
	RequestPath  Dist `json:"request_path"`
	EventDelay   Dist `json:"event_delay"`
	AddedGap     Dist `json:"added_gap"`
	OneClockTTFT Dist `json:"one_clock_ttft"`
	// CPU of the processes under test over the window.
	CPUSeconds      map[string]float64 `json:"cpu_seconds,omitempty"`
	CPUCores        float64            `json:"cpu_cores,omitempty"`
	CPUPerRequestMs float64            `json:"cpu_per_request_ms,omitempty"`
	CPUPerEventUs   float64            `json:"cpu_per_event_us,omitempty"`
	// StartRSSMB is the RSS when the phase began (what earlier phases
	// left, e.g. an in-memory call history); PeakRSSMB the peak during
	// the phase.
	StartRSSMB map[string]float64 `json:"start_rss_mb,omitempty"`
	PeakRSSMB  map[string]float64 `json:"peak_rss_mb,omitempty"`
}

func (p *PhaseResult) summary() string {
	s := fmt.Sprintf("%d requests (%d errors) %.0f/s latency p50 %.2f ms p99 %.2f ms",
		p.Requests, p.Errors, p.RequestsPerSec, p.Latency.P50, p.Latency.P99)
	if p.Events > 0 {
		s += fmt.Sprintf(", %.0f events/s, ttft p50 %.2f ms, gap p99 %.2f ms", p.EventsPerSec, p.TTFT.P50, p.Gap.P99)
		s += fmt.Sprintf("; one clock: ttft p50 %.3f ms, delay p50 %.3f ms, added gap p99 %.3f ms", p.OneClockTTFT.P50, p.EventDelay.P50, p.AddedGap.P99)
	}
	if p.CPUPerRequestMs > 0 {
		s += fmt.Sprintf(", cpu %.3f ms/req", p.CPUPerRequestMs)
	}
	for n, mb := range p.PeakRSSMB {
		s += fmt.Sprintf(", %s peak %.0f MB", n, mb)
	}
	if p.FirstError != "" {
		s += "; first error: " + p.FirstError
	}
	return s
}

// Target returns the target's result, or nil.
func (r *Report) Target(name string) *TargetResult {
	for i := range r.Targets {
		if r.Targets[i].Name == name {
			return &r.Targets[i]
		}
	}
	return nil
}

// baseline returns what a target's phase is compared with: the paired
// direct run made just before it, or else the direct target's.
func (r *Report) baseline(target, phase string) *PhaseResult {
	if t := r.Target(target); t != nil && t.Baseline[phase] != nil {
		return t.Baseline[phase]
	}
	return r.phase(TargetDirect, phase)
}

// phase returns a target's phase result when the target ran it.
func (r *Report) phase(target, phase string) *PhaseResult {
	t := r.Target(target)
	if t == nil || t.Status != "ok" {
		return nil
	}
	return t.Phases[phase]
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), FileLimit: fileLimit()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb, err := meminfoKB("MemTotal:"); err == nil {
		m.Memory = strconv.FormatFloat(float64(kb)/(1<<20), 'f', 1, 64) + " GiB"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func meminfoKB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s", field)
}
