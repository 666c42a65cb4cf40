package fakeupstream

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// Stamps let the benchmark harness time what a proxy adds with one clock:
// the fake upstream and the load generator run on the same machine, so a
// wall-clock time written by the one can be subtracted from a time read by
// the other.
//
// A stamp is StampSep followed by the wall-clock time in Unix nanoseconds
// as exactly StampDigits decimal digits. With Scenario.Stamp, every text
// delta of a stream ends with a stamp taken just before the event is
// written. It sits inside the text itself because a proxy that rewrites an
// event (the gateway's all_caps policy re-encodes every changed text
// delta) keeps the text, changed only as its policy says, while other
// fields may not survive; digits and StampSep are the same in upper and
// lower case. A reader strips it with CutStamp before checking the text.
const (
	StampSep    = '@'
	StampDigits = 19
	stampLen    = 1 + StampDigits
	// ReceivedHeader is the response header that carries, with
	// Scenario.Stamp, when the server had read the request: the
	// wall-clock time in Unix nanoseconds.
	ReceivedHeader = "X-Bench-Received-Ns"
)

// stampHolder is what a text delta ends with until the event is written.
var stampHolder = append([]byte{StampSep}, bytes.Repeat([]byte{'0'}, StampDigits)...)

// stampEvent writes the current time into the stamp holder of ev, if it
// has one. Events are built for one response, so ev is changed in place.
func stampEvent(ev []byte) {
	i := bytes.Index(ev, stampHolder)
	if i < 0 {
		return
	}
	putStamp(ev[i+1:i+stampLen], time.Now().UnixNano())
}

// putStamp writes ns into dst as len(dst) digits, zero-padded.
func putStamp(dst []byte, ns int64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + ns%10)
		ns /= 10
	}
}

// setReceived sets ReceivedHeader for a stamped response.
func (x *exchange) setReceived(sc Scenario) {
	if sc.Stamp {
		x.w.Header().Set(ReceivedHeader, strconv.FormatInt(x.rec.Received.UnixNano(), 10))
	}
}

// CutStamp splits a text delta into its text and the stamp it ends with,
// in Unix nanoseconds. ok is false when text does not end with a stamp.
func CutStamp(text string) (rest string, ns int64, ok bool) {
	if len(text) < stampLen || text[len(text)-stampLen] != StampSep {
		return text, 0, false
	}
	for _, c := range []byte(text[len(text)-StampDigits:]) {
		if c < '0' || c > '9' {
			return text, 0, false
		}
		ns = ns*10 + int64(c-'0')
	}
	return text[:len(text)-stampLen], ns, true
}

// ParseReceived reads ReceivedHeader from a response's headers.
func ParseReceived(h http.Header) (ns int64, ok bool) {
	ns, err := strconv.ParseInt(h.Get(ReceivedHeader), 10, 64)
	return ns, err == nil && ns > 0
}
