package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"luthien.dev/bench/fakeupstream"
)

// API is the client API a load speaks.
type API string

// The client APIs.
const (
	Anthropic API = "anthropic"
	OpenAI    API = "openai"
)

// call is one kind of request a load sends.
type call struct {
	api    API
	stream bool
	shape  Shape
	// want is the text the response must carry, in order.
	want string
	body []byte
	path string
	hdr  http.Header
}

func newCall(api API, stream bool, shape Shape, upper bool) *call {
	c := &call{api: api, stream: stream, shape: shape, want: shape.Text(), hdr: http.Header{}}
	if upper {
		c.want = strings.ToUpper(c.want)
	}
	c.hdr.Set("Content-Type", "application/json")
	c.hdr.Set(ScenarioHeader, shape.Header())
	switch api {
	case OpenAI:
		c.path = "/v1/chat/completions"
		c.hdr.Set("Authorization", "Bearer sk-bench")
		c.body = fmt.Appendf(nil, `{"model":"gpt-bench","stream":%t,"messages":[{"role":"user","content":"Count for me."}]}`, stream)
	default:
		c.path = "/v1/messages"
		c.hdr.Set("anthropic-version", "2023-06-01")
		c.hdr.Set("x-api-key", "sk-bench")
		c.body = fmt.Appendf(nil, `{"model":"claude-bench","max_tokens":1024,"stream":%t,"messages":[{"role":"user","content":"Count for me."}]}`, stream)
	}
	return c
}

// outcome is what one request measured.
type outcome struct {
	start   time.Time
	status  int
	err     string // transport error, bad status or wrong content
	latency time.Duration
	ttft    time.Duration // to the first content event; streams only
	gaps    []time.Duration
	events  int // SSE events
	content int // content events (text deltas)
	// One clock, streams only: the fake upstream's stamps (see
	// fakeupstream.StampSep) read against this process's wall clock.
	// path is from start to the upstream having read the request;
	// delays[i] is the arrival of text event i minus when the upstream
	// wrote it; added[i-1] is delays[i] - delays[i-1], the gap between
	// text events i-1 and i as received minus the same gap as written;
	// ttft1 is path + delays[0], the time to the first text event
	// without the upstream's own wait before writing it.
	path   time.Duration
	delays []time.Duration
	added  []time.Duration
	ttft1  time.Duration
}

// newClient returns the load generator's HTTP client: keep-alive
// connections for every concurrent request, nothing decompressed.
func newClient(maxConns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        maxConns + 16,
		MaxIdleConnsPerHost: maxConns + 16,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

// do sends one request to base and drains and checks its response.
// Latencies count from start, which an open loop sets to the scheduled
// time.
func (c *call) do(ctx context.Context, hc *http.Client, base string, start time.Time) outcome {
	o := outcome{start: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+c.path, bytes.NewReader(c.body))
	if err != nil {
		o.err = err.Error()
		return o
	}
	for k, v := range c.hdr {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		o.err = err.Error()
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		o.err = fmt.Sprintf("status %d: %s", resp.StatusCode, b)
		return o
	}
	if c.stream {
		ns, ok := fakeupstream.ParseReceived(resp.Header)
		if !ok {
			o.err = "stream without the " + fakeupstream.ReceivedHeader + " header"
			return o
		}
		o.path = time.Duration(ns - start.UnixNano())
		c.readStream(resp.Body, &o)
	} else {
		c.readWhole(resp.Body, &o)
	}
	return o
}

// readWhole reads and checks a complete response.
func (c *call) readWhole(body io.Reader, o *outcome) {
	b, err := io.ReadAll(body)
	o.latency = time.Since(o.start)
	if err != nil {
		o.err = "reading body: " + err.Error()
		return
	}
	var got string
	switch c.api {
	case OpenAI:
		var m struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(b, &m); err != nil || len(m.Choices) == 0 {
			o.err = fmt.Sprintf("unreadable response: %.200s", b)
			return
		}
		got = m.Choices[0].Message.Content
	default:
		var m struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			o.err = fmt.Sprintf("unreadable response: %.200s", b)
			return
		}
		for _, blk := range m.Content {
			if blk.Type == "text" {
				got += blk.Text
			}
		}
	}
	if got != c.want {
		o.err = fmt.Sprintf("text %.60q, want %.60q", got, c.want)
	}
}

// streamState follows one client stream event by event.
type streamState struct {
	c     *call
	o     *outcome
	text  strings.Builder
	first string // name of the first event (Anthropic)
	last  string // name of the last event (Anthropic)
	done  bool   // OpenAI's [DONE] seen
	prev  time.Time
	bad   string
}

// readStream reads a client event stream, timing every event as it is
// complete (its blank line read), and checks the text it carries: every
// piece, once, in order, each text event ending with the upstream's stamp
// (which is cut off before the check).
func (c *call) readStream(body io.Reader, o *outcome) {
	st := &streamState{c: c, o: o}
	br := bufio.NewReaderSize(body, 16<<10)
	var name, data []byte
	inEvent := false
	var err error
	for err == nil {
		var line []byte
		line, err = br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			// A long line: keep it whole.
			long := append([]byte(nil), line...)
			line, err = br.ReadSlice('\n')
			line = append(long, line...)
		}
		if len(line) == 0 {
			continue // the end of the stream (err is set)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if inEvent {
				st.event(time.Now(), name, data)
				name, data, inEvent = name[:0], data[:0], false
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(line[5:], []byte(" "))...)
			inEvent = true
		case bytes.HasPrefix(line, []byte("event:")):
			name = append(name[:0], bytes.TrimPrefix(line[6:], []byte(" "))...)
			inEvent = true
		default:
			inEvent = true // a comment or another field
		}
	}
	o.latency = time.Since(o.start)
	switch {
	case !errors.Is(err, io.EOF):
		o.err = "reading stream: " + err.Error()
	case inEvent:
		o.err = "stream ends inside an event"
	case st.bad != "":
		o.err = st.bad
	default:
		o.err = st.check()
	}
}

// event takes one complete event.
func (st *streamState) event(now time.Time, name, data []byte) {
	o := st.o
	o.events++
	if !st.prev.IsZero() {
		o.gaps = append(o.gaps, now.Sub(st.prev))
	}
	st.prev = now
	var text string
	var isText bool
	switch st.c.api {
	case OpenAI:
		if string(data) == "[DONE]" {
			st.done = true
			return
		}
		var m struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			st.fail(fmt.Sprintf("event %d: unreadable: %.200s", o.events, data))
			return
		}
		if m.Error != nil {
			st.fail(fmt.Sprintf("in-stream error: %.200s", m.Error))
			return
		}
		if len(m.Choices) > 0 && m.Choices[0].Delta.Content != "" {
			text, isText = m.Choices[0].Delta.Content, true
		}
	default:
		if st.first == "" {
			st.first = string(name)
		}
		st.last = string(name)
		switch string(name) {
		case "error":
			st.fail(fmt.Sprintf("in-stream error: %.200s", data))
			return
		case "content_block_delta":
			var m struct {
				Delta struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"delta"`
			}
			if err := json.Unmarshal(data, &m); err != nil {
				st.fail(fmt.Sprintf("event %d: unreadable: %.200s", o.events, data))
				return
			}
			if m.Delta.Type == "text_delta" {
				text, isText = m.Delta.Text, true
			}
		}
	}
	if !isText {
		return
	}
	text, stamp, ok := fakeupstream.CutStamp(text)
	if !ok {
		st.fail(fmt.Sprintf("text event %d without a stamp: %.60q", o.content+1, text))
		return
	}
	if o.content == 0 {
		o.ttft = now.Sub(o.start)
	}
	o.stamped(now, stamp)
	o.content++
	st.text.WriteString(text)
}

// stamped takes the stamp of a text event received at now.
func (o *outcome) stamped(now time.Time, stamp int64) {
	d := time.Duration(now.UnixNano() - stamp)
	if n := len(o.delays); n > 0 {
		o.added = append(o.added, d-o.delays[n-1])
	} else {
		o.ttft1 = o.path + d
	}
	o.delays = append(o.delays, d)
}

func (st *streamState) fail(msg string) {
	if st.bad == "" {
		st.bad = msg
	}
}

// check judges a finished stream.
func (st *streamState) check() string {
	c := st.c
	switch {
	case st.o.content != c.shape.Chunks:
		return fmt.Sprintf("%d text events, want %d", st.o.content, c.shape.Chunks)
	case st.text.String() != c.want:
		return fmt.Sprintf("text out of order or changed: %.60q, want %.60q", st.text.String(), c.want)
	case c.api == OpenAI && !st.done:
		return "stream without [DONE]"
	case c.api != OpenAI && (st.first != "message_start" || st.last != "message_stop"):
		return fmt.Sprintf("stream from %q to %q, want message_start to message_stop", st.first, st.last)
	}
	return ""
}
