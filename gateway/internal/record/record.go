// Package record sends the gateway's record of every finished call to the
// control plane, off the request path: a queue bounded in calls and in
// bytes, batches bounded in calls and in bytes, bodies over a bound
// truncated, retries while the control plane is unreachable, and counted
// (never silent) drops when the queue is full or a record cannot be sent.
package record

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Sender is the part of the record service the recorder uses.
type Sender interface {
	RecordCalls(ctx context.Context, in *cpv1.RecordCallsRequest, opts ...grpc.CallOption) (*cpv1.RecordCallsResponse, error)
}

var _ Sender = cpv1.RecordServiceClient(nil)

// Defaults of Options.
const (
	// DefaultCapacity is the queue's length in calls.
	DefaultCapacity = 4096
	// DefaultMaxBytes is the queue's byte budget: 64 MiB, at least four of
	// the largest calls (a 10 MiB request kept whole as a cache key beside
	// four bodies truncated to 1 MiB), thousands of ordinary ones.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxBatch is the most calls per RecordCalls.
	DefaultMaxBatch = 64
	// DefaultMaxBatchBytes is the most bytes per RecordCalls: a quarter of
	// the gateway's gRPC message limit (64 MiB), so that a batch always
	// fits, and so does the largest record, sent alone.
	DefaultMaxBatchBytes = 16 << 20
	// DefaultMaxBodyBytes bounds each body a record keeps: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultLinger is how long a batch waits for more calls.
	DefaultLinger = 10 * time.Millisecond
)

// Recorder queues call records and sends them in batches.
type Recorder struct {
	send Sender
	log  *slog.Logger
	opts Options

	queue  chan *Call
	queued atomic.Int64 // bytes of the calls in queue (their weight)

	dropped   atomic.Int64
	sent      atomic.Int64
	truncated atomic.Int64
	done      chan struct{}
	stop      context.CancelFunc
	once      sync.Once
}

// Options tune a Recorder. Zero values are the defaults.
type Options struct {
	// Capacity is the queue length in calls (default DefaultCapacity).
	Capacity int
	// MaxBytes is the queue's byte budget (default DefaultMaxBytes): a
	// call that would take the bytes of the calls queued over it is
	// dropped and counted, like one that finds the queue full. A call
	// weighs its bodies (after truncation), its canonical response and its
	// timeline. The batch being sent, taken off the queue, is bounded by
	// MaxBatchBytes on top of it.
	MaxBytes int64
	// MaxBatch is the most calls per RecordCalls (default
	// DefaultMaxBatch).
	MaxBatch int
	// MaxBatchBytes is the most bytes (protobuf size) per RecordCalls
	// (default DefaultMaxBatchBytes). Keep it well under the gRPC message
	// limit of the connection (app.MaxMessageBytes): a batch over the
	// limit is refused whole. A record larger than this alone is sent
	// alone.
	MaxBatchBytes int
	// MaxBodyBytes bounds each body the record keeps (default
	// DefaultMaxBodyBytes; negative: no bound). A longer body is replaced
	// by a JSON object of at most this size that says so and keeps its
	// start (see TruncatedField). The record is for reading and diffing,
	// not for replay: the start of a body of megabytes (a long context, a
	// base64 image) shows what it was, while the whole would cost its size
	// in every queue, batch, store row and activity feed it passes, and
	// make batches fail at the gRPC message limit. The canonical response
	// of a response truncated is left out when it is larger than the
	// bound, and such a response is not offered to the response cache.
	MaxBodyBytes int
	// Linger is how long a batch waits for more calls once it has one
	// (default DefaultLinger; negative: not at all). A RecordCalls round
	// trip costs about what recording one call does, so under load a few
	// calls per batch halve the cost of recording, for records that reach
	// the control plane (and the activity feed) that much later.
	Linger time.Duration
}

// New starts a recorder sending through send. Close it to flush.
func New(send Sender, log *slog.Logger, opts Options) *Recorder {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{send: send, log: log, opts: opts, queue: make(chan *Call, opts.Capacity),
		done: make(chan struct{}), stop: cancel}
	go r.run(ctx)
	return r
}

// Submit queues a finished call; the recorder owns it from then on. It
// never blocks: when the queue is full, in calls or in bytes, the call is
// dropped and counted. Bodies over MaxBodyBytes are truncated here, so
// that the queue holds what will be sent.
func (r *Recorder) Submit(c *Call) {
	if n := c.limit(r.opts.MaxBodyBytes); n > 0 {
		r.truncated.Add(int64(n))
	}
	c.weight = c.size()
	if r.queued.Add(c.weight) > r.opts.MaxBytes {
		r.queued.Add(-c.weight)
		r.dropFull("bytes")
		return
	}
	select {
	case r.queue <- c:
	default:
		r.queued.Add(-c.weight)
		r.dropFull("calls")
	}
}

// dropFull counts a call the full queue could not take.
func (r *Recorder) dropFull(bound string) {
	if n := r.dropped.Add(1); n == 1 || n%100 == 0 {
		r.log.Warn("call records dropped: queue full", "bound", bound, "dropped_total", n)
	}
}

// Dropped is the number of calls dropped: the queue was full, the control
// plane refused them, or shutdown came first.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Sent is the number of calls the control plane accepted.
func (r *Recorder) Sent() int64 { return r.sent.Load() }

// Truncated is the number of bodies truncated (see Options.MaxBodyBytes).
func (r *Recorder) Truncated() int64 { return r.truncated.Load() }

// QueuedBytes is the weight of the calls waiting in the queue.
func (r *Recorder) QueuedBytes() int64 { return r.queued.Load() }

// Queued is the number of calls waiting in the queue.
func (r *Recorder) Queued() int64 { return int64(len(r.queue)) }

// Close stops accepting the wait for more and sends what is queued,
// giving up when ctx ends.
func (r *Recorder) Close(ctx context.Context) {
	r.once.Do(func() {
		close(r.queue)
		select {
		case <-r.done:
		case <-ctx.Done():
			r.stop()
			<-r.done
		}
	})
}

// pending is a call taken off the queue, converted to its record, with
// its size on the wire and its weight (released once its batch is
// formed).
type pending struct {
	rec    *cpv1.CallRecord
	size   int
	weight int64
}

// take converts a call off the queue.
func take(c *Call) pending {
	rec := c.Record()
	return pending{rec: rec, size: wireSize(c, rec), weight: c.weight}
}

// run batches the queued calls, at most MaxBatch calls and MaxBatchBytes
// bytes (a record larger than that goes alone), and delivers each batch.
func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	batch := make([]*cpv1.CallRecord, 0, r.opts.MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var next *pending // taken off the queue, for the next batch
	for {
		var first pending
		if next != nil {
			first, next = *next, nil
		} else {
			c, ok := <-r.queue
			if !ok {
				return
			}
			first = take(c)
		}
		batch = append(batch[:0], first.rec)
		size, taken := first.size, first.weight
		linger.Reset(max(r.opts.Linger, 0))
	fill:
		for len(batch) < r.opts.MaxBatch && size < r.opts.MaxBatchBytes {
			select {
			case c, ok := <-r.queue:
				if !ok {
					break fill // closing: send what there is now
				}
				p := take(c)
				taken += p.weight
				if size+p.size > r.opts.MaxBatchBytes {
					p.weight = 0 // released with this batch
					next = &p
					break fill
				}
				batch = append(batch, p.rec)
				size += p.size
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		r.queued.Add(-taken) // off the queue: MaxBatchBytes bounds them now
		r.deliver(ctx, batch)
		clear(batch) // the records are sent: let them go
	}
}
