package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRejected marks a write the store refused for its data (not an
// outage): retrying the same batch cannot succeed.
var ErrRejected = errors.New("rejected by the store")

// Writer writes one batch of call rows and events, all or nothing. Call
// rows are upserted by call id; events already stored (same call id and
// key) are skipped, so a batch can be retried after a failure. Events are
// immutable once queued: a writer may keep them without copying.
type Writer interface {
	WriteBatch(ctx context.Context, calls []*Call, events []Event) error
}

// QueueOptions tune a Queue.
type QueueOptions struct {
	// Capacity is the most events queued or being written (default
	// 10000). A record that does not fit is dropped and counted.
	Capacity int
	// MaxBytes is the most bytes of records (payloads, strings and a
	// fixed cost per event and row) queued or being written (default
	// DefaultQueueBytes). A record that does not fit is dropped and
	// counted, as for Capacity.
	MaxBytes int64
	// MaxBatch is the most events per write (default 1000).
	MaxBatch int
	// Writers is the number of batches written concurrently (default 2).
	Writers int
	// Linger is how long a writer woken by a record waits for more before
	// it writes (default 10ms; negative: not at all). A database spends
	// per statement and per commit about what it spends per row, so
	// batches of a few records instead of one save most of its work, for
	// a record stored that much later. Close ends the wait. Under load
	// the queue does not empty and writers do not wait at all.
	Linger time.Duration
	// WriteTimeout bounds one write attempt (default 10s).
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed attempts
	// (defaults 50ms and 2s).
	MinBackoff, MaxBackoff time.Duration
	// OnDrop, when set, is called at most once per DropReportInterval
	// (default 1s) with the events dropped since its previous call and the
	// total, from a goroutine of the queue.
	OnDrop             func(dropped, total int64)
	DropReportInterval time.Duration
	// Logger receives write failures; nil discards them.
	Logger *slog.Logger
}

// DefaultQueueCapacity is the capacity of a Queue whose options name none.
const DefaultQueueCapacity = 10000

// item is one queued unit: a call row (optional) and its events, and
// the bytes they hold.
type item struct {
	call   *Call
	events []Event
	bytes  int64
}

// newItem returns the item of a record, its bytes counted.
func newItem(call *Call, events []Event) item {
	n := rowBytes(call)
	for _, e := range events {
		n += eventBytes(e)
	}
	return item{call: call, events: events, bytes: n}
}

// weight is what an item counts against the capacity: its events, and at
// least one.
func (it item) weight() int { return max(1, len(it.events)) }

// Queue is the write path: a FIFO of records bounded in events and in
// bytes, written in batches by a few goroutines, off the request path.
// Enqueue never blocks. A failed write is retried with backoff until it
// succeeds, while new records wait in the queue (or are dropped, counted,
// once it is full). Close flushes.
type Queue struct {
	w    Writer
	opts QueueOptions
	log  *slog.Logger

	mu      sync.Mutex
	items   []item
	size    int   // weight queued and in flight
	bytes   int64 // bytes queued and in flight
	closed  bool
	wake    chan struct{} // a token: records are waiting
	closing chan struct{} // closed by Close

	written     atomic.Int64
	dropped     atomic.Int64
	rejected    atomic.Int64
	writeErrors atomic.Int64
	reported    atomic.Int64 // dropped as of the last OnDrop

	cancel context.CancelFunc // ends the writers' attempts (after Close's deadline)
	done   chan struct{}      // closed when every writer returned
	stopDr chan struct{}      // stops the drop reporter
}

// NewQueue starts a queue writing to w. Close it to flush.
func NewQueue(w Writer, opts QueueOptions) *Queue {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultQueueCapacity
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultQueueBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.Writers <= 0 {
		opts.Writers = 2
	}
	if opts.Linger == 0 {
		opts.Linger = 10 * time.Millisecond
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(opts.MinBackoff, 2*time.Second)
	}
	if opts.DropReportInterval <= 0 {
		opts.DropReportInterval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{w: w, opts: opts, log: log, wake: make(chan struct{}, 1), closing: make(chan struct{}),
		cancel: cancel, done: make(chan struct{}), stopDr: make(chan struct{})}
	var wg sync.WaitGroup
	for range opts.Writers {
		wg.Go(func() { q.run(ctx) })
	}
	go func() {
		wg.Wait()
		close(q.done)
	}()
	if opts.OnDrop != nil {
		go q.reportDrops()
	}
	return q
}

// Enqueue queues a call row (may be nil) and its events. It never blocks:
// it returns false, and counts the events as dropped, when they do not fit
// (in events or in bytes) or the queue is closed.
func (q *Queue) Enqueue(call *Call, events []Event) bool {
	it := newItem(call, events)
	w := it.weight()
	q.mu.Lock()
	if q.closed || q.size+w > q.opts.Capacity || q.bytes+it.bytes > q.opts.MaxBytes {
		q.mu.Unlock()
		q.dropped.Add(int64(len(events)))
		return false
	}
	q.items = append(q.items, it)
	q.size += w
	q.bytes += it.bytes
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// Written is the number of events written since start.
func (q *Queue) Written() int64 { return q.written.Load() }

// Dropped is the number of events dropped: the queue was full, or the
// store rejected them (Rejected).
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// Rejected is the number of rows (call rows and events) the store refused
// for their data, each alone, and that were dropped.
func (q *Queue) Rejected() int64 { return q.rejected.Load() }

// WriteErrors is the number of failed write attempts.
func (q *Queue) WriteErrors() int64 { return q.writeErrors.Load() }

// Depth is the number of events waiting or being written.
func (q *Queue) Depth() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.size)
}

// Bytes is the number of bytes of the records waiting or being written.
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Close stops accepting records and writes what is queued. When ctx ends
// first it abandons the rest and returns an error counting it.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	already := q.closed
	q.closed = true
	q.mu.Unlock()
	if !already {
		close(q.stopDr)
		close(q.closing)
	}
	select {
	case <-q.done:
	case <-ctx.Done():
		q.cancel()
		<-q.done
	}
	q.cancel()
	if left := q.Depth(); left > 0 {
		return fmt.Errorf("store queue: %d events not written at shutdown", left)
	}
	return nil
}

// run is a writer goroutine.
func (q *Queue) run(ctx context.Context) {
	for {
		batch, closed := q.take()
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-q.wake:
				q.linger(ctx)
			case <-q.closing:
			case <-ctx.Done():
				return
			}
			continue
		}
		if !q.write(ctx, batch) {
			return
		}
	}
}

// linger waits Linger, or until Close or ctx's end, for more records to
// join the batch.
func (q *Queue) linger(ctx context.Context) {
	if q.opts.Linger <= 0 {
		return
	}
	t := time.NewTimer(q.opts.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-q.closing:
	case <-ctx.Done():
	}
}

// take removes up to MaxBatch events' worth of items from the queue; their
// weight stays counted until they are written.
func (q *Queue) take() ([]item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, events := 0, 0
	for n < len(q.items) && (n == 0 || events+len(q.items[n].events) <= q.opts.MaxBatch) {
		events += len(q.items[n].events)
		n++
	}
	batch := make([]item, n)
	copy(batch, q.items[:n])
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil
	} else {
		select { // more for another writer
		case q.wake <- struct{}{}:
		default:
		}
	}
	return batch, q.closed
}

// write writes one batch, retrying with backoff until it succeeds or ctx
// ends (then it reports false and the batch stays counted as queued). A
// batch the store rejects (ErrRejected: bad data, not an outage) is
// written record by record, a record the store rejects row by row (its
// call row, then each event), and only the rows rejected alone are dropped
// and counted, so that one bad row never blocks the queue nor costs its
// neighbours their place.
func (q *Queue) write(ctx context.Context, batch []item) bool {
	weight, bytes := 0, int64(0)
	for _, it := range batch {
		weight += it.weight()
		bytes += it.bytes
	}
	var err error
	if len(batch) == 1 {
		err = q.writeItem(ctx, batch[0])
	} else {
		calls, events := flatten(batch)
		if err = q.writeRetrying(ctx, calls, events); errors.Is(err, ErrRejected) {
			err = q.writeEach(ctx, batch)
		}
	}
	if err != nil {
		return false
	}
	q.mu.Lock()
	q.size -= weight
	q.bytes -= bytes
	q.mu.Unlock()
	return true
}

// writeEach writes the items of a rejected batch one at a time.
func (q *Queue) writeEach(ctx context.Context, batch []item) error {
	for _, it := range batch {
		if err := q.writeItem(ctx, it); err != nil {
			return err
		}
	}
	return nil
}

// writeItem writes one record; when the store rejects it, it writes its
// rows one at a time and drops those the store rejects alone.
func (q *Queue) writeItem(ctx context.Context, it item) error {
	calls, events := flatten([]item{it})
	err := q.writeRetrying(ctx, calls, events)
	if !errors.Is(err, ErrRejected) {
		return err
	}
	if it.call != nil {
		err := q.writeRetrying(ctx, []*Call{it.call}, nil)
		if errors.Is(err, ErrRejected) {
			q.rejected.Add(1)
			q.log.Error("store rejected a call row; dropped", "call_id", it.call.Summary.GetCallId(), "error", err)
		} else if err != nil {
			return err
		}
	}
	for _, e := range it.events {
		err := q.writeRetrying(ctx, nil, []Event{e})
		if errors.Is(err, ErrRejected) {
			q.rejected.Add(1)
			q.dropped.Add(1)
			q.log.Error("store rejected an event; dropped", "call_id", e.Event.GetCallId(), "event_type", e.Event.GetEventType(), "error", err)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// writeRetrying writes calls and events, retrying outages with backoff.
// It returns nil once written, an ErrRejected error when the store
// refuses the data itself, or ctx's error when ctx ends first.
func (q *Queue) writeRetrying(ctx context.Context, calls []*Call, events []Event) error {
	backoff := q.opts.MinBackoff
	for {
		wctx, cancel := context.WithTimeout(ctx, q.opts.WriteTimeout)
		err := q.w.WriteBatch(wctx, calls, events)
		cancel()
		if err == nil {
			q.written.Add(int64(len(events)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.writeErrors.Add(1)
		if errors.Is(err, ErrRejected) {
			return err
		}
		if n := q.writeErrors.Load(); n == 1 || n%20 == 0 {
			q.log.Warn("store write failed; retrying", "events", len(events), "calls", len(calls),
				"queued", q.Depth(), "failures_total", n, "retry_in", backoff, "error", err)
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, q.opts.MaxBackoff)
	}
}

// flatten collects the call rows and events of items.
func flatten(items []item) ([]*Call, []Event) {
	var calls []*Call
	var events []Event
	for _, it := range items {
		if it.call != nil {
			calls = append(calls, it.call)
		}
		events = append(events, it.events...)
	}
	return calls, events
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reportDrops calls OnDrop when events were dropped since its last call.
func (q *Queue) reportDrops() {
	ticker := time.NewTicker(q.opts.DropReportInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-q.stopDr:
			return
		}
		total := q.dropped.Load()
		if prev := q.reported.Swap(total); total > prev {
			q.log.Warn("store events dropped: write queue full or rejected", "dropped", total-prev, "dropped_total", total)
			q.opts.OnDrop(total-prev, total)
		}
	}
}
