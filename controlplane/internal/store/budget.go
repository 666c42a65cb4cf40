package store

import "google.golang.org/protobuf/proto"

// Byte budgets. Queues and the memory store are bounded in records and in
// bytes: a coding agent's request runs to hundreds of kilobytes, and the
// gateway keeps bodies of up to 1 MiB, so a bound in records alone lets a
// few hundred records take gigabytes. The defaults suit a small machine
// (a container of 1 GiB runs the gateway, the control plane and both
// bounds full).
const (
	// DefaultMemoryBytes bounds the memory store: 256 MiB.
	DefaultMemoryBytes = 256 << 20
	// DefaultQueueBytes bounds the store's write queue: 128 MiB.
	DefaultQueueBytes = 128 << 20
)

// Fixed costs counted besides the variable parts: the structs, the
// timestamp, map and slice entries.
const (
	eventOverhead = 256
	rowOverhead   = 512
)

// eventBytes is about the memory an event holds: its strings and its
// payload (a Copy shares the original's, counted there) and a fixed
// overhead.
func eventBytes(e Event) int64 {
	ev := e.Event
	n := eventOverhead + len(e.Key) + len(ev.GetCallId()) + len(ev.GetSessionId()) + len(ev.GetEventType())
	if !e.Copy {
		n += len(ev.GetPayloadJson())
		if p := ev.GetPayload(); p != nil {
			n += proto.Size(p)
		}
	}
	return int64(n)
}

// rowBytes is about the memory a call row holds.
func rowBytes(c *Call) int64 {
	if c == nil {
		return 0
	}
	s := c.Summary
	return int64(rowOverhead + len(c.Text) + len(c.Preview) + len(s.GetCallId()) + len(s.GetSessionId()) +
		len(s.GetUserId()) + len(s.GetModel()) + len(s.GetUpstream()) + len(s.GetPolicyRevision()) + len(s.GetError()))
}
