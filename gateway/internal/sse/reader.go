// Package sse reads Server-Sent Events streams event by event while keeping
// each event's exact bytes, so that an event nobody changes can be written
// to the client byte-identical to what upstream sent.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventSize bounds one event (a huge tool-call argument delta fits many
// times over); a longer event is an error rather than unbounded memory.
const MaxEventSize = 8 << 20

// Event is one SSE event.
type Event struct {
	// Raw is the event exactly as read, including its terminating blank
	// line. It is only valid until the next call to Next.
	Raw []byte
	// Name is the `event:` field ("" when absent).
	Name []byte
	// Data is the `data:` field; several data lines are joined with "\n".
	Data []byte
}

// Reader splits a stream into events. Lines may end in "\n", "\r\n" or
// "\r" is not supported (no provider sends bare CR).
type Reader struct {
	br   *bufio.Reader
	raw  []byte
	data []byte
}

// NewReader reads events from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 32<<10)}
}

// ErrEventTooLarge reports an event over MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

// Next returns the next event. At the end of the stream it returns io.EOF;
// bytes after the last blank line (an unterminated event) are returned as
// a final event whose Raw lacks the terminator, then io.EOF. An event
// consisting only of comments has empty Name and Data and is returned too,
// so that callers can forward it.
func (r *Reader) Next() (Event, error) {
	r.raw = r.raw[:0]
	r.data = r.data[:0]
	var ev Event
	dataLines := 0
	for {
		line, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: accumulate it whole.
			r.raw = append(r.raw, line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.br.ReadSlice('\n')
				r.raw = append(r.raw, line...)
				if len(r.raw) > MaxEventSize {
					return Event{}, ErrEventTooLarge
				}
			}
			start := len(r.raw) - len(line)
			for start > 0 && r.raw[start-1] != '\n' {
				start--
			}
			line = r.raw[start:]
			r.field(line, &ev, &dataLines)
		} else {
			if len(line) > 0 {
				start := len(r.raw)
				r.raw = append(r.raw, line...)
				if len(r.raw) > MaxEventSize {
					return Event{}, ErrEventTooLarge
				}
				line = r.raw[start:]
				if isBlank(line) {
					if len(r.raw) == len(line) {
						// Blank lines between events: skip them.
						r.raw = r.raw[:0]
						continue
					}
					return r.finish(ev), nil
				}
				r.field(line, &ev, &dataLines)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(r.raw) > 0 {
					return r.finish(ev), nil
				}
				return Event{}, io.EOF
			}
			return Event{}, fmt.Errorf("sse: read: %w", err)
		}
	}
}

func (r *Reader) finish(ev Event) Event {
	ev.Raw = r.raw
	ev.Data = r.data
	// Name points into raw, which may have been reallocated since; re-slice
	// it from a copy-free search of the final buffer.
	if ev.Name != nil {
		ev.Name = fieldValue(r.raw, "event")
	}
	return ev
}

// field interprets one non-blank line.
func (r *Reader) field(line []byte, ev *Event, dataLines *int) {
	line = trimEOL(line)
	switch {
	case bytes.HasPrefix(line, []byte("data:")):
		v := trimSpace1(line[len("data:"):])
		if *dataLines > 0 {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, v...)
		*dataLines++
	case bytes.HasPrefix(line, []byte("event:")):
		ev.Name = trimSpace1(line[len("event:"):])
	}
}

// fieldValue finds the value of the first `name:` line in raw.
func fieldValue(raw []byte, name string) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		var line []byte
		if i < 0 {
			line, raw = raw, nil
		} else {
			line, raw = raw[:i+1], raw[i+1:]
		}
		line = trimEOL(line)
		if len(line) > len(name) && string(line[:len(name)]) == name && line[len(name)] == ':' {
			return trimSpace1(line[len(name)+1:])
		}
	}
	return nil
}

func isBlank(line []byte) bool {
	return len(trimEOL(line)) == 0
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// trimSpace1 drops the single optional space after a field's colon.
func trimSpace1(v []byte) []byte {
	if len(v) > 0 && v[0] == ' ' {
		return v[1:]
	}
	return v
}

// DataOf returns the data of the first event in raw (for events whose
// single `data:` line is all that matters), or nil.
func DataOf(raw []byte) []byte {
	return fieldValue(raw, "data")
}
