package bench

import (
	"math"
	"slices"
	"time"
)

// Dist summarises a distribution of durations, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// newDist summarises ds (which it sorts).
func newDist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Dist{
		N:    len(ds),
		Mean: ms(sum / time.Duration(len(ds))),
		P50:  ms(quantile(ds, 0.50)),
		P90:  ms(quantile(ds, 0.90)),
		P99:  ms(quantile(ds, 0.99)),
		Max:  ms(ds[len(ds)-1]),
	}
}

// quantile is the nearest-rank quantile q of sorted ds.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

// round3 keeps three decimals, enough for microseconds in milliseconds.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
