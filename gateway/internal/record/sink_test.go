package record

import (
	"errors"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// sink ends calls as the control plane's side of their links would: it
// keeps each record it is sent after a trip through protobuf's wire
// format, so a record that cannot be marshalled fails as it would on a
// link, and counts the calls ended without one.
type sink struct {
	mu   sync.Mutex
	recs []*cpv1.CallRecord
	bare int // calls ended without their record
	// gate, while held, makes an end with a record wait; arrived gets a
	// token when one arrives, before the gate.
	gate    sync.RWMutex
	arrived chan struct{}
	// discard: keep nothing (benchmarks); fail: refuse every record.
	discard, fail bool
}

func newSink() *sink { return &sink{arrived: make(chan struct{}, 1)} }

// end is the link of one call ending at s.
func (s *sink) end() Ender { return sinkEnd{s} }

type sinkEnd struct{ s *sink }

func (e sinkEnd) End(rec *cpv1.CallRecord) error {
	s := e.s
	if rec == nil {
		s.mu.Lock()
		s.bare++
		s.mu.Unlock()
		return nil
	}
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.fail {
		return errors.New("the link broke")
	}
	wire, err := proto.Marshal(rec)
	if err != nil {
		return err
	}
	if s.discard {
		return nil
	}
	got := &cpv1.CallRecord{}
	if err := proto.Unmarshal(wire, got); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, got)
	return nil
}

// received returns the call ids of the records received so far, sorted.
func (s *sink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.recs))
	for i, rec := range s.recs {
		ids[i] = rec.GetSummary().GetCallId()
	}
	slices.Sort(ids)
	return ids
}

// ended returns how many calls were ended without their record.
func (s *sink) ended() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bare
}

// record returns the received record of a call, or nil.
func (s *sink) record(id string) *cpv1.CallRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.recs {
		if rec.GetSummary().GetCallId() == id {
			return rec
		}
	}
	return nil
}
