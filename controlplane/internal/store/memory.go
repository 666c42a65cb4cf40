package store

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Default bounds of the memory store. It is a debugging aid for running
// without a database: a coding agent's request bodies run to hundreds of
// kilobytes, so it keeps the last thousand calls and at most
// DefaultMemoryBytes of them, not a history (PostgreSQL is for that).
const (
	DefaultMemoryCalls  = 1000
	DefaultMemoryEvents = 20000
)

// MemoryLimits bound a memory store; zero values are the defaults.
type MemoryLimits struct {
	// Calls and Events bound the calls and the events kept
	// (DefaultMemoryCalls, DefaultMemoryEvents).
	Calls, Events int
	// Bytes bounds the bytes kept (DefaultMemoryBytes): payloads, call
	// rows' text and strings, and a fixed cost per event and row.
	Bytes int64
}

// Memory is the store used without a database: bounded in calls, events
// and bytes (the oldest calls are evicted first) and lost at exit. It
// answers the same queries as Postgres; search is a case-insensitive
// substring match. It is safe for concurrent use.
type Memory struct {
	limits MemoryLimits

	mu      sync.RWMutex
	calls   map[string]*memCall
	order   []string // call ids, first seen first
	nEvents int
	nBytes  int64
}

// memCall is a call and its events.
type memCall struct {
	row    *Call // nil until the call's row is written
	events []memEvent
	keys   map[string]bool
	bytes  int64 // held by the row and the events
}

// memEvent is a stored event and the bytes it holds.
type memEvent struct {
	ev    *cpv1.CallEvent
	bytes int64
}

var _ Writer = (*Memory)(nil)

// NewMemory returns a memory store of at most maxCalls calls and
// maxEvents events (0: the defaults) and DefaultMemoryBytes.
func NewMemory(maxCalls, maxEvents int) *Memory {
	return NewMemoryLimited(MemoryLimits{Calls: maxCalls, Events: maxEvents})
}

// NewMemoryLimited returns a memory store bounded by l.
func NewMemoryLimited(l MemoryLimits) *Memory {
	if l.Calls <= 0 {
		l.Calls = DefaultMemoryCalls
	}
	if l.Events <= 0 {
		l.Events = DefaultMemoryEvents
	}
	if l.Bytes <= 0 {
		l.Bytes = DefaultMemoryBytes
	}
	return &Memory{limits: l, calls: make(map[string]*memCall)}
}

// Bytes is the number of bytes the store holds (see MemoryLimits.Bytes).
func (m *Memory) Bytes() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.nBytes
}

// Kind returns KindMemory.
func (m *Memory) Kind() string { return KindMemory }

// WriteBatch stores calls and events; it never fails. Text the store
// cannot keep is repaired first, as Postgres does (repair.go), so that both
// answer the same.
func (m *Memory) WriteBatch(_ context.Context, calls []*Call, events []Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		// Queued events are immutable (Writer): kept as they are, copied
		// only to repair them or to add a missing time. Readers get copies.
		ev := repairedEvent(e.Event)
		key, _ := repairString(e.Key)
		mc := m.call(ev.GetCallId())
		if mc.keys[key] {
			continue
		}
		mc.keys[key] = true
		if ev.GetTime() == nil {
			ev = proto.CloneOf(ev)
			ev.Time = nowProto()
		}
		n := eventBytes(Event{Key: key, Event: ev, Copy: e.Copy})
		mc.events = append(mc.events, memEvent{ev: ev, bytes: n})
		m.nEvents++
		mc.bytes += n
		m.nBytes += n
	}
	for _, c := range calls {
		c = repairedCall(c)
		mc := m.call(c.Summary.GetCallId())
		n := rowBytes(c) - rowBytes(mc.row)
		mc.row = c
		mc.bytes += n
		m.nBytes += n
	}
	m.evict()
	return nil
}

// call returns the entry of a call id, creating it. m.mu is held.
func (m *Memory) call(id string) *memCall {
	mc, ok := m.calls[id]
	if !ok {
		mc = &memCall{keys: make(map[string]bool)}
		m.calls[id] = mc
		m.order = append(m.order, id)
	}
	return mc
}

// evict drops the oldest calls while over a bound. m.mu is held.
func (m *Memory) evict() {
	n := 0
	for n < len(m.order) && (len(m.calls) > m.limits.Calls || m.nEvents > m.limits.Events || m.nBytes > m.limits.Bytes) {
		id := m.order[n]
		m.nEvents -= len(m.calls[id].events)
		m.nBytes -= m.calls[id].bytes
		delete(m.calls, id)
		n++
	}
	if n > 0 {
		m.order = slices.Delete(m.order, 0, n)
	}
}

// rows returns the calls with a row, newest first. m.mu is held.
func (m *Memory) rows(keep func(*Call) bool) []*Call {
	var out []*Call
	for _, mc := range m.calls {
		if mc.row != nil && (keep == nil || keep(mc.row)) {
			out = append(out, mc.row)
		}
	}
	slices.SortFunc(out, func(a, b *Call) int {
		if c := startedAt(b.Summary).Compare(startedAt(a.Summary)); c != 0 {
			return c
		}
		return strings.Compare(b.Summary.GetCallId(), a.Summary.GetCallId())
	})
	return out
}

// ListCalls lists calls matching f, newest first.
func (m *Memory) ListCalls(_ context.Context, f CallFilter) ([]*cpv1.CallSummary, string, error) {
	var afterT time.Time
	var afterID string
	if f.PageToken != "" {
		var err error
		if afterT, afterID, err = decodeCallToken(f.PageToken); err != nil {
			return nil, "", err
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	rows := m.rows(func(c *Call) bool {
		s := c.Summary
		t := startedAt(s).Truncate(time.Microsecond)
		switch {
		case f.SessionID != "" && s.GetSessionId() != f.SessionID,
			f.Model != "" && s.GetModel() != f.Model,
			f.Status != 0 && s.GetStatus() != f.Status,
			f.IntervenedOnly && !s.GetIntervened(),
			!f.Since.IsZero() && t.Before(f.Since),
			!f.Until.IsZero() && !t.Before(f.Until),
			f.PageToken != "" && (t.After(afterT) || t.Equal(afterT) && s.GetCallId() >= afterID):
			return false
		}
		return true
	})
	out := make([]*cpv1.CallSummary, 0, min(len(rows), f.Limit+1))
	for _, c := range rows[:min(len(rows), f.Limit+1)] {
		out = append(out, proto.CloneOf(c.Summary))
	}
	return pageCalls(out, f.Limit)
}

// GetCall returns a call and its events in time order.
func (m *Memory) GetCall(_ context.Context, id string) (*cpv1.CallSummary, []*cpv1.CallEvent, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mc, ok := m.calls[id]
	if !ok {
		return nil, nil, ErrNotFound
	}
	events := sortedEvents(mc.events)
	if mc.row == nil {
		return &cpv1.CallSummary{CallId: id, SessionId: events[0].GetSessionId()}, events, nil
	}
	return proto.CloneOf(mc.row.Summary), events, nil
}

// sortedEvents returns copies of events in time order (stable).
func sortedEvents(events []memEvent) []*cpv1.CallEvent {
	out := make([]*cpv1.CallEvent, len(events))
	for i, e := range events {
		out[i] = proto.CloneOf(e.ev)
	}
	slices.SortStableFunc(out, func(a, b *cpv1.CallEvent) int { return a.GetTime().AsTime().Compare(b.GetTime().AsTime()) })
	return out
}

// sessions groups the calls of each session; rows are newest first.
func sessions(rows []*Call) map[string]*cpv1.SessionSummary {
	out := make(map[string]*cpv1.SessionSummary)
	for i := len(rows) - 1; i >= 0; i-- { // oldest first
		s := rows[i].Summary
		if s.GetSessionId() == "" {
			continue
		}
		sum, ok := out[s.GetSessionId()]
		if !ok {
			sum = &cpv1.SessionSummary{SessionId: s.GetSessionId(), FirstActivity: s.GetStartedAt()}
			out[s.GetSessionId()] = sum
		}
		sum.Turns++
		if s.GetIntervened() {
			sum.Interventions++
		}
		if s.GetModel() != "" && !slices.Contains(sum.Models, s.GetModel()) {
			sum.Models = append(sum.Models, s.GetModel())
		}
		sum.LastActivity = s.GetStartedAt()
		if sum.Preview == "" {
			sum.Preview = rows[i].Preview
		}
	}
	for _, sum := range out {
		slices.Sort(sum.Models)
	}
	return out
}

// ListSessions lists sessions, most recently active first.
func (m *Memory) ListSessions(_ context.Context, limit int, token string) ([]*cpv1.SessionSummary, string, error) {
	offset, err := decodeOffset(token)
	if err != nil {
		return nil, "", err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var list []*cpv1.SessionSummary
	for _, s := range sessions(m.rows(nil)) {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b *cpv1.SessionSummary) int {
		if c := b.GetLastActivity().AsTime().Compare(a.GetLastActivity().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.GetSessionId(), b.GetSessionId())
	})
	list = list[min(offset, len(list)):]
	return pageOffset(list[:min(len(list), limit+1)], limit, offset)
}

// GetSession returns a session and its turns, oldest first.
func (m *Memory) GetSession(_ context.Context, id string) (*cpv1.SessionSummary, []Turn, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rows := m.rows(func(c *Call) bool { return id != "" && c.Summary.GetSessionId() == id })
	if len(rows) == 0 {
		return nil, nil, ErrNotFound
	}
	sum := sessions(rows)[id]
	slices.Reverse(rows)
	calls := make([]*cpv1.CallSummary, len(rows))
	var events []*cpv1.CallEvent
	for i, c := range rows {
		calls[i] = proto.CloneOf(c.Summary)
		events = append(events, sortedEvents(m.calls[c.Summary.GetCallId()].events)...)
	}
	return sum, buildTurns(calls, events), nil
}

// Search finds calls whose conversation contains every term of query
// (case-insensitive; "quoted phrases" are one term; -term excludes).
func (m *Memory) Search(_ context.Context, query string, limit int) ([]*cpv1.SearchHit, error) {
	include, exclude := searchTerms(query)
	if len(include) == 0 {
		return nil, nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var hits []*cpv1.SearchHit
	for _, c := range m.rows(nil) {
		text := strings.ToLower(c.Text)
		match := true
		for _, t := range include {
			match = match && strings.Contains(text, t)
		}
		for _, t := range exclude {
			match = match && !strings.Contains(text, t)
		}
		if !match {
			continue
		}
		hits = append(hits, &cpv1.SearchHit{Call: proto.CloneOf(c.Summary), Snippet: snippet(c.Text, include)})
		if len(hits) == limit {
			break
		}
	}
	return hits, nil
}

// searchTerms splits a web-search style query into lower-cased terms to
// include and to exclude.
func searchTerms(query string) (include, exclude []string) {
	var terms []string
	for i, part := range strings.Split(query, `"`) {
		if i%2 == 1 { // inside quotes
			if p := strings.TrimSpace(part); p != "" {
				terms = append(terms, p)
			}
			continue
		}
		terms = append(terms, strings.Fields(part)...)
	}
	for _, t := range terms {
		t = strings.ToLower(t)
		switch {
		case t == "or":
		case strings.HasPrefix(t, "-") && len(t) > 1:
			exclude = append(exclude, t[1:])
		default:
			include = append(include, t)
		}
	}
	return include, exclude
}

// Purge deletes calls started and events created before cutoff.
func (m *Memory) Purge(_ context.Context, cutoff time.Time, _ int) (calls, events int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, mc := range m.calls {
		kept := mc.events[:0]
		for _, e := range mc.events {
			if e.ev.GetTime().AsTime().Before(cutoff) {
				events++
				m.nEvents--
				mc.bytes -= e.bytes
				m.nBytes -= e.bytes
				continue
			}
			kept = append(kept, e)
		}
		clear(mc.events[len(kept):])
		mc.events = kept
		if mc.row != nil && startedAt(mc.row.Summary).Before(cutoff) {
			n := rowBytes(mc.row)
			mc.bytes -= n
			m.nBytes -= n
			mc.row = nil
			calls++
		}
		if mc.row == nil && len(mc.events) == 0 {
			delete(m.calls, id)
		}
	}
	m.order = slices.DeleteFunc(m.order, func(id string) bool { _, ok := m.calls[id]; return !ok })
	return calls, events, nil
}
