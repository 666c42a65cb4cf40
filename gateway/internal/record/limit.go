package record

import (
	"bytes"

	"google.golang.org/protobuf/proto"

	"luthien.dev/canon/truncate"
)

// TruncatedField is the top-level field of the JSON object that stands
// for a body the record does not keep whole (see truncate.Field). The
// whole object takes at most the recorder's MaxBodyBytes.
const TruncatedField = truncate.Field

// callOverhead is what a queued call costs besides its bodies and
// timeline: the Call, its strings and the record built from it.
const callOverhead = 1 << 10

// limit prepares c for the queue: each body over maxBody bytes (none when
// maxBody is negative) is replaced by its truncation marker, and what the
// record then cannot carry whole is left out (see Options.MaxBodyBytes).
// It returns the number of bodies truncated. The unchanged flag is
// computed first, from the whole bodies.
func (c *Call) limit(maxBody int) int {
	if maxBody < 0 || max(len(c.ResponseOriginal), len(c.ResponseFinal), len(c.RequestUpstream), len(c.ResponseUpstream), len(c.RequestClient)) <= maxBody {
		return 0
	}
	c.trimmed = true
	c.responseSame = c.ResponseOriginal != nil && bytes.Equal(c.ResponseOriginal, c.ResponseFinal)
	n := 0
	trim := func(body []byte) []byte {
		if len(body) <= maxBody {
			return body
		}
		n++
		return truncate.Body(body, maxBody)
	}
	c.usage = c.FinalMessage.GetUsage()
	c.RequestClient = trim(c.RequestClient)
	c.RequestUpstream = trim(c.RequestUpstream)
	c.ResponseUpstream = trim(c.ResponseUpstream)
	c.ResponseOriginal = trim(c.ResponseOriginal)
	if c.responseSame {
		c.ResponseFinal = c.ResponseOriginal
	} else {
		c.ResponseFinal = trim(c.ResponseFinal)
	}
	// The canonical response is about as large as its body: kept only
	// when it fits the bound.
	if proto.Size(c.FinalMessage) > maxBody {
		c.FinalMessage = nil
	}
	return n
}

// size is about the memory a queued call holds: its bodies (an array
// shared by two of them counted once), the canonical response (about its
// body's size), the timeline's entries and a fixed overhead.
func (c *Call) size() int64 {
	n := callOverhead + len(c.ResponseOriginal) + len(c.RequestUpstream) + len(c.ResponseUpstream) + len(c.RequestClient) + 8*cap(c.Timeline.entries)
	if !sameArray(c.ResponseFinal, c.ResponseOriginal) {
		n += len(c.ResponseFinal)
	}
	if c.FinalMessage != nil {
		n += len(c.ResponseFinal)
	}
	return int64(n)
}

// sameArray reports whether a and b are the same bytes of the same array.
func sameArray(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
