package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// trickle opens a connection announcing a body of announced bytes and
// sends only the first one.
func trickle(t *testing.T, url string, announced int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: sk-test\r\nanthropic-version: 2023-06-01\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", announced)
	return conn
}

// Clients announcing 10 MiB and sending one byte do not make the gateway
// allocate 10 MiB each: the buffer grows with the bytes that arrive.
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	g := startGateway(t, Config{BodyReadTimeout: 5 * time.Second}, &passPolicy{}, http.NotFoundHandler())
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const conns = 20
	for i := 0; i < conns; i++ {
		c := trickle(t, g.URL, MaxBodyBytes)
		defer c.Close()
	}
	time.Sleep(300 * time.Millisecond) // the handlers are reading
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Fatalf("%d idle uploads took %d MiB of heap (a buffer per announced length would take %d MiB)",
			conns, grew>>20, conns*MaxBodyBytes>>20)
	}
}

// A client that stops sending its body gets a 408 in its format once the
// body read timeout has passed, and the handler is released.
func TestBodyReadTimeout(t *testing.T) {
	g := startGateway(t, Config{BodyReadTimeout: 200 * time.Millisecond}, &passPolicy{}, http.NotFoundHandler())
	c := trickle(t, g.URL, 1000)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(buf[:n]), `"type":"error"`) {
		t.Fatalf("got %d %s, want 408 in Anthropic's error format", resp.StatusCode, buf[:n])
	}
}
