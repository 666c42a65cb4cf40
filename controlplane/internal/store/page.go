package store

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ErrBadPageToken is returned for a page token this store did not issue.
var ErrBadPageToken = errors.New("invalid page token")

// encodeCallToken encodes the position after a call in a newest-first
// listing.
func encodeCallToken(s *cpv1.CallSummary) string {
	raw := strconv.FormatInt(startedAt(s).UnixMicro(), 10) + ":" + s.GetCallId()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCallToken(token string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	micros, id, ok := strings.Cut(string(raw), ":")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	return time.UnixMicro(us), id, nil
}

// pageCalls cuts a listing fetched with limit+1 rows to limit and returns
// the next page's token.
func pageCalls(calls []*cpv1.CallSummary, limit int) ([]*cpv1.CallSummary, string, error) {
	if len(calls) <= limit {
		return calls, "", nil
	}
	calls = calls[:limit]
	return calls, encodeCallToken(calls[limit-1]), nil
}

func decodeOffset(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, ErrBadPageToken
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
	if err != nil || n < 0 || !strings.HasPrefix(string(raw), "o:") {
		return 0, ErrBadPageToken
	}
	return n, nil
}

// pageOffset cuts a listing fetched with limit+1 rows from offset to
// limit and returns the next page's token.
func pageOffset[T any](items []T, limit, offset int) ([]T, string, error) {
	if len(items) <= limit {
		return items, "", nil
	}
	next := "o:" + strconv.Itoa(offset+limit)
	return items[:limit], base64.RawURLEncoding.EncodeToString([]byte(next)), nil
}

// buildTurns pairs calls with their request, final response and policy
// events.
func buildTurns(calls []*cpv1.CallSummary, events []*cpv1.CallEvent) []Turn {
	byCall := make(map[string]int, len(calls))
	turns := make([]Turn, len(calls))
	for i, c := range calls {
		byCall[c.GetCallId()] = i
		turns[i].Call = c
	}
	for _, ev := range events {
		i, ok := byCall[ev.GetCallId()]
		if !ok {
			continue
		}
		switch t := ev.GetEventType(); {
		case t == "request.received":
			turns[i].Request = ev
		case t == "response.final":
			turns[i].Response = ev
		case t == "response.original" && turns[i].Response == nil:
			// The final response unless a policy changed it (then its
			// response.final, later in time order, replaces it).
			turns[i].Response = ev
		case isPolicyEvent(t):
			turns[i].PolicyEvents = append(turns[i].PolicyEvents, ev)
		}
	}
	return turns
}
