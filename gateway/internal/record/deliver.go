package record

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Delivery settings.
const (
	// sendTimeout bounds one RecordCalls attempt.
	sendTimeout = 10 * time.Second
	// minBackoff and maxBackoff bound the wait between failed attempts.
	minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	// faultAttempts is how many times a batch is tried that fails with an
	// error that may be the batch's own (INTERNAL: it could not be
	// marshalled, or the control plane failed on it) before it counts as
	// refused.
	faultAttempts = 3
)

// deliver sends one batch. While the control plane is unreachable it
// retries with backoff (calls wait in the queue meanwhile, or are dropped
// and counted once it is full). A batch the control plane refuses for what
// it is (too large for a gRPC message, invalid) is split in two and each
// half tried once more; what is refused again is dropped and counted, so
// that no batch ever stops the records after it.
func (r *Recorder) deliver(ctx context.Context, batch []*cpv1.CallRecord) {
	err := r.sendRetrying(ctx, batch)
	if err == nil {
		return
	}
	if ctx.Err() != nil || len(batch) == 1 {
		r.drop(ctx, batch, err)
		return
	}
	half := len(batch) / 2
	for _, part := range [][]*cpv1.CallRecord{batch[:half], batch[half:]} {
		if err := r.sendRetrying(ctx, part); err != nil {
			r.drop(ctx, part, err)
		}
	}
}

// sendRetrying sends batch until it is accepted (nil), refused (the
// error), or ctx ends (ctx's error).
func (r *Recorder) sendRetrying(ctx context.Context, batch []*cpv1.CallRecord) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		resp, err := r.send.RecordCalls(sctx, &cpv1.RecordCallsRequest{Calls: batch})
		cancel()
		if err == nil {
			r.sent.Add(int64(resp.GetAccepted()))
			if d := resp.GetDropped(); d > 0 {
				r.dropped.Add(int64(d))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if refused(err, attempt) {
			return err
		}
		r.log.Warn("recording calls failed; retrying", "calls", len(batch), "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// refused reports whether err, on the given attempt, says that retrying
// the same batch cannot help. Every other error is an outage
// (UNAVAILABLE, DEADLINE_EXCEEDED, UNAUTHENTICATED while a token is
// rotated, ...): retried.
func refused(err error, attempt int) bool {
	switch status.Code(err) {
	case codes.ResourceExhausted, // over the gRPC message limit
		codes.InvalidArgument, codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange:
		return true
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return attempt >= faultAttempts
	}
	return false
}

// drop counts the calls of a batch that cannot be sent.
func (r *Recorder) drop(ctx context.Context, batch []*cpv1.CallRecord, err error) {
	n := r.dropped.Add(int64(len(batch)))
	if ctx.Err() != nil {
		r.log.Warn("call records dropped at shutdown", "calls", len(batch), "dropped_total", n)
		return
	}
	r.log.Error("call records refused by the control plane; dropped", "calls", len(batch), "bytes", batchSize(batch),
		"dropped_total", n, "err", err)
}

// batchSize is the size of a batch's records on the wire.
func batchSize(batch []*cpv1.CallRecord) int {
	n := 0
	for _, rec := range batch {
		n += proto.Size(rec)
	}
	return n
}
