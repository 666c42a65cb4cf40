package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/sse"
	"luthien.dev/gateway/internal/translate"
)

// responsesWriter is the ResponseWriter the chat handler answers a
// Responses client through. What the handler writes is translated on its
// way to the client: a successful completion to a Response object (held
// until whole), a successful stream to Responses events (each written
// and flushed as its chunk arrives), and anything else — errors, in the
// format both APIs share — passed on as it is. The handler's headers go
// out with the answer: X-Call-ID, Content-Type and upstream's, with the
// length of what the client gets.
type responsesWriter struct {
	w      http.ResponseWriter
	echo   translate.ResponsesEcho
	header http.Header // the chat handler's
	p      *Proxy
	r      *http.Request

	status int // the chat handler's status, once it wrote one
	mode   responsesMode
	buf    bytes.Buffer // the completion, or the stream's unfinished event
	stream *translate.ResponsesStream
	out    *countingWriter // the client, for the stream
	sent   bool            // the Response object is written
}

type responsesMode int

const (
	modePass     responsesMode = iota // as it comes
	modeComplete                      // a completion, translated once whole
	modeStream                        // chunks, translated event by event
)

var _ http.ResponseWriter = (*responsesWriter)(nil)

func (rw *responsesWriter) Header() http.Header { return rw.header }

func (rw *responsesWriter) WriteHeader(code int) {
	if rw.status != 0 || code < 200 {
		return // informational answers are the chat handler's affair
	}
	rw.status = code
	rw.echo.ID = rw.header.Get("X-Call-ID")
	switch {
	case code > 299:
		rw.mode = modePass
		copyHeader(rw.w.Header(), rw.header)
		rw.w.WriteHeader(code)
	case isEventStreamHeader(rw.header):
		rw.mode = modeStream
		rw.stream = translate.NewChatToResponsesStream(rw.echo)
		rw.out = &countingWriter{w: rw.w}
		copyHeader(rw.w.Header(), rw.header)
		rw.w.Header().Del("Content-Length")
		rw.w.WriteHeader(code)
	default:
		rw.mode = modeComplete
	}
}

func (rw *responsesWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	switch rw.mode {
	case modeComplete:
		return rw.buf.Write(b)
	case modeStream:
		rw.buf.Write(b)
		return len(b), rw.translateEvents(false)
	}
	return rw.w.Write(b)
}

// FlushError flushes what reached the client. A completion whose whole
// length came is answered at once rather than when the handler returns
// (it flushes before it parses the response for the record).
func (rw *responsesWriter) FlushError() error {
	if rw.mode == modeComplete {
		if n, err := strconv.Atoi(rw.header.Get("Content-Length")); err == nil && n == rw.buf.Len() {
			rw.sendResponse()
		}
		if !rw.sent {
			return nil
		}
	}
	return http.NewResponseController(rw.w).Flush()
}

// Unwrap lets http.ResponseController reach the client's writer (the
// chat handler sets its read deadline).
func (rw *responsesWriter) Unwrap() http.ResponseWriter { return rw.w }

// finish completes the answer once the chat handler returned.
func (rw *responsesWriter) finish() {
	switch rw.mode {
	case modeComplete:
		if rw.status != 0 {
			rw.sendResponse()
		}
	case modeStream:
		if rw.translateEvents(true) != nil || rw.r.Context().Err() != nil {
			return
		}
		if !rw.stream.Done() {
			_ = rw.stream.Finish(rw.out)
			flush(rw.w)
		}
	}
}

// sendResponse writes the completion as a Response object, once.
func (rw *responsesWriter) sendResponse() {
	if rw.sent {
		return
	}
	rw.sent = true
	out, _, err := translate.ChatResponseToResponses(rw.buf.Bytes(), rw.echo)
	if err != nil {
		rw.p.log.WarnContext(rw.r.Context(), "chat answer not translated to a Response", "call_id", rw.echo.ID, "err", err)
		if id := rw.echo.ID; id != "" {
			rw.w.Header().Set("X-Call-ID", id)
		}
		WriteError(rw.w, openai.Dialect{}, http.StatusBadGateway, "api_error", "the upstream answer could not be translated to a Response")
		return
	}
	h := rw.w.Header()
	copyHeader(h, rw.header)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	rw.w.WriteHeader(rw.status)
	_, _ = rw.w.Write(out)
}

// translateEvents translates the whole chunks buffered; at the end, the
// last one even without its blank line. It returns the client's write
// error, if any; a chunk that cannot be translated fails the stream.
func (rw *responsesWriter) translateEvents(end bool) error {
	for !rw.stream.Done() {
		b := rw.buf.Bytes()
		n := eventEnd(b)
		if n < 0 {
			if !end || len(bytes.TrimSpace(b)) == 0 {
				return nil
			}
			n = len(b)
		}
		ev, ok := parseEvent(b[:n])
		before := rw.out.n
		var err error
		if ok {
			err = rw.stream.Event(rw.out, ev)
		}
		rw.buf.Next(n)
		if rw.out.err != nil {
			return rw.out.err
		}
		if err != nil {
			rw.p.log.WarnContext(rw.r.Context(), "chat chunk not translated to Responses events", "call_id", rw.echo.ID, "err", err)
			_ = rw.stream.Fail(rw.out, "server_error", "the upstream stream could not be translated to Responses events")
		}
		if rw.out.n != before {
			flush(rw.w)
		}
		if rw.out.err != nil {
			return rw.out.err
		}
	}
	rw.buf.Reset() // what follows the end is not the client's
	return nil
}

// eventEnd is the length of the first SSE event in b, through the blank
// line that ends it; -1 when b holds no whole event.
func eventEnd(b []byte) int {
	for start := 0; start < len(b); {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		line := b[start : start+i+1]
		start += i + 1
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return start
		}
	}
	return -1
}

// parseEvent reads one SSE event's fields; ok is false for an event with
// no field (blank lines).
func parseEvent(raw []byte) (sse.Event, bool) {
	ev := sse.Event{Raw: raw}
	var data []byte
	lines, fields := raw, 0
	for len(lines) > 0 {
		var line []byte
		line, lines, _ = bytes.Cut(lines, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		fields++
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "event":
			ev.Name = value
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
			if data == nil {
				data = []byte{}
			}
		}
	}
	ev.Data = data
	return ev, fields > 0
}

// copyHeader copies every header of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

// countingWriter counts what reached the client, and keeps its error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
	return n, err
}
