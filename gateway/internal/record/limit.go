package record

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// TruncatedField is the top-level field of the JSON object that stands
// for a body the record does not keep whole:
//
//	{"_luthien_truncated":{"original_bytes":5000000,"kept_bytes":1048493},"head":"{\"model\":..."}
//
// original_bytes is the body's length, kept_bytes how many of its first
// bytes head holds, as text (a JSON string: the body's first kept_bytes
// bytes, cut on a UTF-8 boundary, a byte that is not UTF-8 written as
// U+FFFD). The whole object takes at most the recorder's MaxBodyBytes.
const TruncatedField = "_luthien_truncated"

// callOverhead is what a queued call costs besides its bodies and
// timeline: the Call, its strings and the record built from it.
const callOverhead = 1 << 10

// limit prepares c for the queue: each body over maxBody bytes (none when
// maxBody is negative) is replaced by its truncation marker, and what the
// record then cannot carry whole is left out (see Options.MaxBodyBytes).
// It returns the number of bodies truncated. The unchanged flags are
// computed first, from the whole bodies.
func (c *Call) limit(maxBody int) int {
	if maxBody < 0 || max(len(c.RequestReceived), len(c.RequestFinal), len(c.ResponseOriginal), len(c.ResponseFinal)) <= maxBody {
		return 0
	}
	c.trimmed = true
	c.requestSame = c.RequestReceived != nil && bytes.Equal(c.RequestReceived, c.RequestFinal)
	c.responseSame = c.ResponseOriginal != nil && bytes.Equal(c.ResponseOriginal, c.ResponseFinal)
	if c.CacheFillToken != "" {
		c.cacheKey = c.RequestFinal // the cache key: never stored, sent whole
	}
	n := 0
	trim := func(body []byte) []byte {
		if len(body) <= maxBody {
			return body
		}
		n++
		return truncatedBody(body, maxBody)
	}
	originalCut := len(c.ResponseOriginal) > maxBody
	responseCut := originalCut || len(c.ResponseFinal) > maxBody
	c.usage = c.FinalMessage.GetUsage()
	c.RequestReceived = trim(c.RequestReceived)
	if c.requestSame {
		c.RequestFinal = c.RequestReceived
	} else {
		c.RequestFinal = trim(c.RequestFinal)
	}
	c.ResponseOriginal = trim(c.ResponseOriginal)
	if c.responseSame {
		c.ResponseFinal = c.ResponseOriginal
	} else {
		c.ResponseFinal = trim(c.ResponseFinal)
	}
	if responseCut {
		// The canonical response is about as large as its body: kept only
		// when it fits the bound. The response cache takes upstream's
		// response from it (response unchanged) or from response.original:
		// a response not kept whole is not offered to the cache.
		if proto.Size(c.FinalMessage) > maxBody {
			c.FinalMessage = nil
		}
		if c.responseSame && c.FinalMessage == nil || !c.responseSame && originalCut {
			c.CacheFillToken, c.cacheKey = "", nil
		}
	}
	return n
}

// size is about the memory a queued call holds: its bodies (an array
// shared by two of them counted once), the canonical response (about its
// body's size), the timeline's entries and a fixed overhead.
func (c *Call) size() int64 {
	n := callOverhead + len(c.RequestReceived) + len(c.ResponseOriginal) + 8*cap(c.Timeline.entries)
	if !sameArray(c.RequestFinal, c.RequestReceived) {
		n += len(c.RequestFinal)
	}
	if !sameArray(c.ResponseFinal, c.ResponseOriginal) {
		n += len(c.ResponseFinal)
	}
	if c.FinalMessage != nil {
		n += len(c.ResponseFinal)
	}
	if c.cacheKey != nil && !sameArray(c.cacheKey, c.RequestFinal) {
		n += len(c.cacheKey)
	}
	return int64(n)
}

// Fixed costs of a record on the wire, besides its bytes and strings: more
// than the protobuf tags, lengths, numbers and timestamps take.
const (
	recordWireOverhead = 256
	eventWireOverhead  = 64
)

// wireSize is a bound on the protobuf size of rec, the record of c,
// cheaper than proto.Size: its bytes and strings and a fixed cost per
// message. The canonical response counts as its JSON body, which is
// larger (JSON spells out what protobuf numbers), unless that body was
// truncated.
func wireSize(c *Call, rec *cpv1.CallRecord) int {
	s := rec.GetSummary()
	n := recordWireOverhead + len(s.GetCallId()) + len(s.GetSessionId()) + len(s.GetUserId()) + len(s.GetModel()) +
		len(s.GetUpstream()) + len(s.GetPolicyRevision()) + len(s.GetError()) + len(rec.GetFinalRequest()) + len(rec.GetCacheFillToken())
	for _, ev := range rec.GetEvents() {
		n += eventWireOverhead + len(ev.GetCallId()) + len(ev.GetSessionId()) + len(ev.GetEventType()) + len(ev.GetPayloadJson())
	}
	if m := rec.GetFinalResponse(); m != nil {
		if len(c.ResponseFinal) > 0 && !c.trimmed {
			n += len(c.ResponseFinal) + eventWireOverhead
		} else {
			n += proto.Size(m)
		}
	}
	return n
}

// sameArray reports whether a and b are the same bytes of the same array.
func sameArray(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// truncatedBody returns the marker standing for body (see TruncatedField),
// of at most maxBytes bytes.
func truncatedBody(body []byte, maxBytes int) []byte {
	total := strconv.Itoa(len(body))
	const (
		open = `{"` + TruncatedField + `":{"original_bytes":`
		kept = `,"kept_bytes":`
		head = `},"head":"`
		end  = `"}`
	)
	// kept_bytes has at most as many digits as original_bytes.
	room := maxBytes - len(open) - 2*len(total) - len(kept) - len(head) - len(end)
	text, n := appendJSONHead(make([]byte, 0, max(room, 0)), body, room)
	b := make([]byte, 0, len(open)+2*len(total)+len(kept)+len(head)+len(text)+len(end))
	b = append(b, open...)
	b = append(b, total...)
	b = append(b, kept...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, head...)
	b = append(b, text...)
	return append(b, end...)
}

// appendJSONHead appends to dst, as the contents of a JSON string (no
// quotes), as much of the start of src as takes at most room bytes, whole
// UTF-8 sequences only; a byte that is not UTF-8 becomes \ufffd. It
// returns dst and the number of bytes of src written.
func appendJSONHead(dst, src []byte, room int) ([]byte, int) {
	i, used := 0, 0
	for i < len(src) {
		c := src[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			// A run of bytes written as they are.
			j := i + 1
			for j < len(src) && j-i < room-used {
				if d := src[j]; d < 0x20 || d == '"' || d == '\\' || d >= utf8.RuneSelf {
					break
				}
				j++
			}
			if used+j-i > room {
				break
			}
			dst = append(dst, src[i:j]...)
			used += j - i
			i = j
			continue
		}
		var buf [6]byte
		esc, size := buf[:2], 1
		switch {
		case c == '"' || c == '\\':
			buf[0], buf[1] = '\\', c
		case c == '\n':
			buf[0], buf[1] = '\\', 'n'
		case c == '\r':
			buf[0], buf[1] = '\\', 'r'
		case c == '\t':
			buf[0], buf[1] = '\\', 't'
		case c < 0x20:
			buf = [6]byte{'\\', 'u', '0', '0', hexDigit(c >> 4), hexDigit(c & 0xf)}
			esc = buf[:]
		default:
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				esc = append(buf[:0], `\ufffd`...)
			} else {
				esc, size = src[i:i+n], n
			}
		}
		if used+len(esc) > room {
			break
		}
		dst = append(dst, esc...)
		used += len(esc)
		i += size
	}
	return dst, i
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b] }
