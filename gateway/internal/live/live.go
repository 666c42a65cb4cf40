// Package live serves the activity feed to browsers and scripts as
// Server-Sent Events, relaying the control plane's ActivityService stream
// with heartbeats so that idle connections stay open through proxies. The
// relay holds at most relayBytes of a client's feed: a client that reads
// slowly slows its own stream, and the control plane drops (and counts)
// the events it cannot take.
package live

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Subscriber is the part of the activity service the feed uses.
type Subscriber interface {
	StreamActivity(ctx context.Context, in *cpv1.StreamActivityRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[cpv1.StreamActivityResponse], error)
}

var _ Subscriber = cpv1.ActivityServiceClient(nil)

// Handler serves GET /api/activity/stream?call_id=&session_id=&type=a,b.
type Handler struct {
	sub       Subscriber
	log       *slog.Logger
	heartbeat time.Duration
}

// New returns the feed handler; heartbeat is the idle interval between
// comment lines (15s when zero).
func New(sub Subscriber, log *slog.Logger, heartbeat time.Duration) *Handler {
	if heartbeat <= 0 {
		heartbeat = 15 * time.Second
	}
	return &Handler{sub: sub, log: log, heartbeat: heartbeat}
}

var marshal = protojson.MarshalOptions{UseProtoNames: true}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := &cpv1.StreamActivityRequest{CallId: q.Get("call_id"), SessionId: q.Get("session_id"), PayloadAsJson: true}
	for _, t := range strings.Split(q.Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.EventTypePrefixes = append(req.EventTypePrefixes, t)
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := h.sub.StreamActivity(ctx, req)
	if err == nil {
		err = subscribed(stream)
	}
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_, _ = io.WriteString(w, ": connected\n\n")
	_ = rc.Flush()

	events := make(chan *cpv1.StreamActivityResponse, 64)
	errc := make(chan error, 1)
	held := newBudget(relayBytes)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			if !held.acquire(ctx, int64(proto.Size(msg))) {
				return
			}
			select {
			case events <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(h.heartbeat)
	defer tick.Stop()
	for {
		var err error
		select {
		case msg := <-events:
			err = h.write(w, msg)
			held.release(int64(proto.Size(msg)))
		case <-tick.C:
			_, err = io.WriteString(w, ": heartbeat\n\n")
		case err = <-errc:
			if ctx.Err() == nil {
				h.log.WarnContext(ctx, "activity feed ended", "err", err)
				_, _ = io.WriteString(w, "event: error\ndata: "+jsonString(status.Convert(err).Message())+"\n\n")
				_ = rc.Flush()
			}
			return
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// subscribed waits until the control plane has the subscription in place:
// it sends the stream's headers then, so that a client told "connected"
// misses no event after it. A stream that ends before its headers (the
// control plane refused it) returns its error.
func subscribed(stream grpc.ServerStreamingClient[cpv1.StreamActivityResponse]) error {
	md, err := stream.Header()
	if err != nil || md != nil {
		return err
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return status.Error(codes.Internal, "activity stream sent an event before its headers")
}

// unavailable answers a feed that could not be opened: 503 with a JSON
// error; when the control plane has its most subscribers, the answer says
// so and when to try again.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	msg := "activity feed unavailable: " + status.Convert(err).Message()
	if status.Code(err) == codes.ResourceExhausted {
		w.Header().Set("Retry-After", "5")
	} else if r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "activity feed unavailable", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg})
}

func (h *Handler) write(w io.Writer, msg *cpv1.StreamActivityResponse) error {
	data, err := encode(msg)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// encode renders one feed message as an SSE event: data is the message as
// JSON with the proto field names. The payload arrives as JSON text and is
// written as it is; the rest goes through protojson.
func encode(msg *cpv1.StreamActivityResponse) ([]byte, error) {
	ev := msg.GetEvent()
	payload := ev.GetPayloadJson()
	if len(payload) > 0 {
		ev = &cpv1.CallEvent{CallId: ev.GetCallId(), SessionId: ev.GetSessionId(), EventType: ev.GetEventType(), Time: ev.GetTime()}
	}
	evJSON, err := marshal.Marshal(ev)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(evJSON)+len(payload)+64)
	buf = append(buf, `data: {"event":`...)
	if len(payload) > 0 {
		// protojson writes a compact object: put the payload before its
		// closing brace.
		evJSON = bytes.TrimRight(evJSON, " ")
		evJSON = bytes.TrimRight(evJSON[:len(evJSON)-1], " ")
		buf = append(buf, evJSON...)
		if evJSON[len(evJSON)-1] != '{' {
			buf = append(buf, ',')
		}
		buf = append(buf, `"payload":`...)
		buf = append(buf, payload...)
		buf = append(buf, '}')
	} else {
		buf = append(buf, evJSON...)
	}
	if n := msg.GetDropped(); n != 0 {
		buf = append(buf, `,"dropped":"`...)
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, '"')
	}
	return append(buf, "}\n\n"...), nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(map[string]string{"message": s})
	return string(b)
}
