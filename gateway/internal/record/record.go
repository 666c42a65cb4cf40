// Package record sends the gateway's record of every finished call to the
// control plane, off the request path: a bounded queue, batches, retries
// while the control plane is unreachable, and counted (never silent)
// drops when the queue is full.
package record

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Sender is the part of the record service the recorder uses.
type Sender interface {
	RecordCalls(ctx context.Context, in *cpv1.RecordCallsRequest, opts ...grpc.CallOption) (*cpv1.RecordCallsResponse, error)
}

var _ Sender = cpv1.RecordServiceClient(nil)

// Recorder queues call records and sends them in batches.
type Recorder struct {
	send     Sender
	log      *slog.Logger
	queue    chan *Call
	maxBatch int
	linger   time.Duration

	dropped atomic.Int64
	sent    atomic.Int64
	done    chan struct{}
	stop    context.CancelFunc
	once    sync.Once
}

// Options tune a Recorder.
type Options struct {
	// Capacity is the queue length in calls (default 4096).
	Capacity int
	// MaxBatch is the most calls per RecordCalls (default 64).
	MaxBatch int
	// Linger is how long a batch waits for more calls once it has one
	// (default 10ms; negative: not at all). A RecordCalls round trip costs
	// about what recording one call does, so under load a few calls per
	// batch halve the cost of recording, for records that reach the
	// control plane (and the activity feed) that much later.
	Linger time.Duration
}

// New starts a recorder sending through send. Close it to flush.
func New(send Sender, log *slog.Logger, opts Options) *Recorder {
	if opts.Capacity <= 0 {
		opts.Capacity = 4096
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.Linger == 0 {
		opts.Linger = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{send: send, log: log, queue: make(chan *Call, opts.Capacity), maxBatch: opts.MaxBatch,
		linger: opts.Linger, done: make(chan struct{}), stop: cancel}
	go r.run(ctx)
	return r
}

// Submit queues a finished call. It never blocks: when the queue is full
// the call is dropped and counted.
func (r *Recorder) Submit(c *Call) {
	select {
	case r.queue <- c:
	default:
		if n := r.dropped.Add(1); n == 1 || n%100 == 0 {
			r.log.Warn("call records dropped: queue full", "dropped_total", n)
		}
	}
}

// Dropped is the number of calls dropped because the queue was full.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Sent is the number of calls the control plane accepted.
func (r *Recorder) Sent() int64 { return r.sent.Load() }

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

func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	batch := make([]*cpv1.CallRecord, 0, r.maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for c := range r.queue {
		batch = append(batch[:0], c.Record())
		linger.Reset(max(r.linger, 0))
	fill:
		for len(batch) < r.maxBatch {
			select {
			case more, ok := <-r.queue:
				if !ok {
					break fill // closing: send what there is now
				}
				batch = append(batch, more.Record())
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		r.deliver(ctx, batch)
	}
}

// deliver sends one batch, retrying with backoff while the control plane
// is unreachable; calls wait in the queue meanwhile.
func (r *Recorder) deliver(ctx context.Context, batch []*cpv1.CallRecord) {
	backoff := 100 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := r.send.RecordCalls(sctx, &cpv1.RecordCallsRequest{Calls: batch})
		cancel()
		if err == nil {
			r.sent.Add(int64(resp.GetAccepted()))
			if d := resp.GetDropped(); d > 0 {
				r.dropped.Add(int64(d))
			}
			return
		}
		if ctx.Err() != nil {
			r.dropped.Add(int64(len(batch)))
			r.log.Warn("call records dropped at shutdown", "calls", len(batch))
			return
		}
		if c := status.Code(err); c == codes.Unimplemented || c == codes.InvalidArgument {
			// Retrying cannot help: count the batch as dropped.
			r.dropped.Add(int64(len(batch)))
			r.log.Error("call records rejected by the control plane", "calls", len(batch), "err", err)
			return
		}
		r.log.Warn("recording calls failed; retrying", "calls", len(batch), "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
