// Package bench is the gateway's load harness. It measures what the
// gateway adds to a call against a bare baseline, side by side in one run
// and against one fake upstream: the upstream called directly, a minimal
// reverse proxy (the floor), and the gateway in its deployment modes.
//
// The processes under test run as separate processes (built with go
// build), so that their CPU time and peak memory can be read from /proc;
// the fake upstream runs in its own process too, shared by every target.
// The load generator runs in the harness's process: closed-loop (a fixed
// number of clients, each sending its next request when the last one is
// drained) or open-loop (requests started at a constant rate, latency
// counted from the scheduled start). It reads every body to the end and
// checks what it read: status, event counts and the order of the streamed
// text.
package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// ScenarioHeader carries a request's Shape to the fake upstream. The
// gateway and the floor forward it like any other client header.
const ScenarioHeader = "X-Bench-Scenario"

// Shape is what the fake upstream answers: a text of Chunks pieces,
// streamed with FirstDelay before the first event and Interval before
// every later one (or answered whole after FirstDelay).
type Shape struct {
	Chunks     int
	FirstDelay time.Duration
	Interval   time.Duration
}

// The shapes of the benchmark.
var (
	// Instant answers at once: 20 pieces of text, no delay.
	Instant = Shape{Chunks: 20}
	// Paced streams like a model: 20 ms to the first event, then one
	// event every 20 ms (20 text deltas).
	Paced = Shape{Chunks: 20, FirstDelay: 20 * time.Millisecond, Interval: 20 * time.Millisecond}
	// Burst streams 100 text deltas as fast as they can be written.
	Burst = Shape{Chunks: 100}
)

// pieceRunes is the length of one piece of a shape's text.
const pieceRunes = 5

// Text is the shape's text: Chunks numbered pieces of pieceRunes runes,
// so that the fake upstream splits it at the piece boundaries and every
// piece says where it belongs (" w000 w001 ...").
func (s Shape) Text() string {
	var b strings.Builder
	b.Grow(s.Chunks * pieceRunes)
	for i := range s.Chunks {
		fmt.Fprintf(&b, " w%03d", i%1000)
	}
	return b.String()
}

// Header renders the shape for ScenarioHeader, e.g.
// "chunks=20;first=20ms;interval=20ms".
func (s Shape) Header() string {
	return "chunks=" + strconv.Itoa(s.Chunks) + ";first=" + s.FirstDelay.String() + ";interval=" + s.Interval.String()
}

// ParseShape reads a ScenarioHeader value.
func ParseShape(v string) (Shape, error) {
	var s Shape
	for part := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Shape{}, fmt.Errorf("bench: scenario %q: want key=value, got %q", v, part)
		}
		var err error
		switch k {
		case "chunks":
			s.Chunks, err = strconv.Atoi(val)
			if err == nil && (s.Chunks < 1 || s.Chunks > 1000) {
				err = fmt.Errorf("want 1 to 1000")
			}
		case "first":
			s.FirstDelay, err = time.ParseDuration(val)
		case "interval":
			s.Interval, err = time.ParseDuration(val)
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return Shape{}, fmt.Errorf("bench: scenario %q: %s: %v", v, k, err)
		}
	}
	if s.Chunks == 0 {
		return Shape{}, fmt.Errorf("bench: scenario %q: chunks is required", v)
	}
	return s, nil
}

// UpstreamScenario is the fake upstream's responder for the benchmark: it
// answers the Shape named by the request's ScenarioHeader, stamped (every
// streamed text delta ends with the time the upstream wrote it, and the
// response says when the request arrived: see fakeupstream.StampSep), and
// 400 when the header is missing or malformed.
func UpstreamScenario(r fakeupstream.Request) fakeupstream.Scenario {
	s, err := ParseShape(r.Header.Get(ScenarioHeader))
	if err != nil {
		return fakeupstream.Scenario{Status: 400, ErrorBody: `{"error":` + strconv.Quote(err.Error()) + `}`}
	}
	return fakeupstream.Scenario{Text: s.Text(), Chunks: s.Chunks, FirstDelay: s.FirstDelay, Interval: s.Interval, Stamp: true}
}
