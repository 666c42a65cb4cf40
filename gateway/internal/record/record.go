// Package record completes the gateway's record of every finished call
// and sends it to the control plane in the call's end, on the call's own
// stream, off the request path: a queue bounded in calls and in bytes,
// bodies over a bound truncated, and counted (never silent) drops when the
// queue is full or a record cannot be sent. The control plane's session of
// the call adds what it saw itself (the request, the policy revision) and
// records it.
package record

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"luthien.dev/canon/truncate"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Ender ends one call on the control plane: End sends the call's end with
// rec (nil: the record was dropped) and returns once the control plane is
// done with the call; an error means the record did not arrive.
type Ender interface {
	End(rec *cpv1.CallRecord) error
}

// Defaults of Options.
const (
	// DefaultCapacity is the queue's length in calls.
	DefaultCapacity = 4096
	// DefaultMaxBytes is the queue's byte budget: 64 MiB, dozens of the
	// largest calls (two response bodies truncated to 1 MiB and a
	// timeline), thousands of ordinary ones.
	DefaultMaxBytes = 64 << 20
	// DefaultWorkers is how many calls are ended at once: each end waits
	// for the control plane's answer.
	DefaultWorkers = 32
	// DefaultMaxBodyBytes bounds each body a record keeps: 1 MiB, as the
	// control plane's session bounds the request bodies it records.
	DefaultMaxBodyBytes = truncate.DefaultMaxBytes
)

// Recorder queues finished calls and ends each on the control plane with
// its record.
type Recorder struct {
	log  *slog.Logger
	opts Options

	queue  chan pending
	queued atomic.Int64 // bytes of the calls in queue (their weight)

	dropped   atomic.Int64
	sent      atomic.Int64
	truncated atomic.Int64
	workers   sync.WaitGroup
	stopping  chan struct{} // closed when Close gives up waiting
	once      sync.Once
	// closing guards the queue's closing against a Submit in flight:
	// Submit holds it to read, Close to write.
	closing sync.RWMutex
	closed  bool
}

// pending is a finished call waiting to be ended.
type pending struct {
	call *Call
	end  Ender
}

// Options tune a Recorder. Zero values are the defaults.
type Options struct {
	// Capacity is the queue length in calls (default DefaultCapacity).
	Capacity int
	// MaxBytes is the queue's byte budget (default DefaultMaxBytes): a
	// call that would take the bytes of the calls queued over it is
	// ended without its record, dropped and counted, like one that finds
	// the queue full. A call weighs its bodies (after truncation), its
	// canonical response and its timeline, until its end is sent.
	MaxBytes int64
	// Workers is how many calls are ended at once (default
	// DefaultWorkers).
	Workers int
	// MaxBodyBytes bounds each body the record keeps (default
	// DefaultMaxBodyBytes; negative: no bound). A longer body is replaced
	// by a JSON object of at most this size that says so and keeps its
	// start (see TruncatedField). The record is for reading and diffing,
	// not for replay: the start of a body of megabytes (a long context, a
	// base64 image) shows what it was, while the whole would cost its size
	// in every queue, message, store row and activity feed it passes. The
	// canonical response of a response truncated is left out when it is
	// larger than the bound.
	MaxBodyBytes int
}

// New starts a recorder. Close it to flush.
func New(log *slog.Logger, opts Options) *Recorder {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	r := &Recorder{log: log, opts: opts, queue: make(chan pending, opts.Capacity), stopping: make(chan struct{})}
	r.workers.Add(opts.Workers)
	for range opts.Workers {
		go r.run()
	}
	return r
}

// Submit queues a finished call, to be ended through end with its record;
// the recorder owns the call from then on. It never blocks on the queue:
// when the queue is full, in calls or in bytes, or closed, the call is
// ended at once without its record, and counted as dropped. Bodies over MaxBodyBytes are
// truncated here, so that the queue holds what will be sent.
func (r *Recorder) Submit(c *Call, end Ender) {
	if n := c.limit(r.opts.MaxBodyBytes); n > 0 {
		r.truncated.Add(int64(n))
	}
	c.weight = c.size()
	if r.queued.Add(c.weight) > r.opts.MaxBytes {
		r.queued.Add(-c.weight)
		r.dropFull("bytes", end)
		return
	}
	r.closing.RLock()
	queued := false
	if !r.closed {
		select {
		case r.queue <- pending{call: c, end: end}:
			queued = true
		default:
		}
	}
	closed := r.closed
	r.closing.RUnlock()
	if !queued {
		r.queued.Add(-c.weight)
		bound := "calls"
		if closed {
			bound = "none: the recorder is closed"
		}
		r.dropFull(bound, end)
	}
}

// dropFull ends a call the full queue could not take without its record,
// and counts it.
func (r *Recorder) dropFull(bound string, end Ender) {
	if n := r.dropped.Add(1); n == 1 || n%100 == 0 {
		r.log.Warn("call records dropped", "full_in", bound, "dropped_total", n)
	}
	_ = end.End(nil)
}

// Dropped is the number of calls whose record did not reach the control
// plane: the queue was full, the call's stream had failed, or shutdown
// came first.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Sent is the number of calls whose record reached the control plane.
func (r *Recorder) Sent() int64 { return r.sent.Load() }

// Truncated is the number of bodies truncated (see Options.MaxBodyBytes).
func (r *Recorder) Truncated() int64 { return r.truncated.Load() }

// QueuedBytes is the weight of the calls waiting to be ended.
func (r *Recorder) QueuedBytes() int64 { return r.queued.Load() }

// Queued is the number of calls waiting in the queue.
func (r *Recorder) Queued() int64 { return int64(len(r.queue)) }

// Close stops taking calls and ends those queued, with their records
// until ctx ends, without after.
func (r *Recorder) Close(ctx context.Context) {
	r.once.Do(func() {
		r.closing.Lock()
		r.closed = true
		close(r.queue)
		r.closing.Unlock()
		done := make(chan struct{})
		go func() { r.workers.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			close(r.stopping)
			<-done
		}
	})
}

// run ends the queued calls, one at a time, until the queue is closed and
// empty.
func (r *Recorder) run() {
	defer r.workers.Done()
	for p := range r.queue {
		r.end(p)
	}
}

// end converts a queued call into its record and ends the call with it;
// once Close gave up waiting, without it.
func (r *Recorder) end(p pending) {
	defer r.queued.Add(-p.call.weight)
	select {
	case <-r.stopping:
		n := r.dropped.Add(1)
		r.log.Warn("call record dropped at shutdown", "call_id", p.call.ID, "dropped_total", n)
		_ = p.end.End(nil)
		return
	default:
	}
	if err := p.end.End(p.call.Record()); err != nil {
		n := r.dropped.Add(1)
		r.log.Warn("call record not delivered", "call_id", p.call.ID, "err", err, "dropped_total", n)
		return
	}
	r.sent.Add(1)
}
