package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Page sizes of the history queries.
const (
	defaultPageSize = 50
	maxPageSize     = 500
	// historyTimeout bounds one history query.
	historyTimeout = 30 * time.Second
)

// History is the store as the history service queries it.
type History interface {
	ListCalls(ctx context.Context, f store.CallFilter) ([]*cpv1.CallSummary, string, error)
	GetCall(ctx context.Context, id string) (*cpv1.CallSummary, []*cpv1.CallEvent, error)
	ListSessions(ctx context.Context, limit int, token string) ([]*cpv1.SessionSummary, string, error)
	GetSession(ctx context.Context, id string) (*cpv1.SessionSummary, []store.Turn, error)
	Search(ctx context.Context, query string, limit int) ([]*cpv1.SearchHit, error)
	Kind() string
}

// Counters are the statistics GetStats reports; any field may be nil.
type Counters struct {
	Queue interface {
		Written() int64
		Dropped() int64
		Depth() int64
		WriteErrors() int64
	}
	Cache interface {
		Hits() int64
		Misses() int64
	}
	Activity interface{ Dropped() int64 }
}

// HistoryService implements cpv1.HistoryServiceServer over a History.
type HistoryService struct {
	cpv1.UnimplementedHistoryServiceServer

	history  History
	counters Counters
	logger   *slog.Logger
}

var _ cpv1.HistoryServiceServer = (*HistoryService)(nil)

// NewHistoryService returns a HistoryService over history.
func NewHistoryService(history History, counters Counters, logger *slog.Logger) *HistoryService {
	return &HistoryService{history: history, counters: counters, logger: logger}
}

// pageSize applies the default and the bound to a requested page size.
func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, status.Error(codes.InvalidArgument, "page_size must not be negative")
	case n == 0:
		return defaultPageSize, nil
	}
	return min(int(n), maxPageSize), nil
}

// queryError translates a store error into a status, logging unexpected
// ones once.
func (s *HistoryService) queryError(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", op, err)
	case errors.Is(err, store.ErrBadPageToken):
		return status.Errorf(codes.InvalidArgument, "%s: %v", op, err)
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	s.logger.ErrorContext(ctx, "history query failed", "op", op, "error", err)
	return status.Errorf(codes.Internal, "%s failed", op)
}

// ListCalls lists calls, newest first.
func (s *HistoryService) ListCalls(ctx context.Context, req *cpv1.ListCallsRequest) (*cpv1.ListCallsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	f := store.CallFilter{
		SessionID: req.GetSessionId(), Model: req.GetModel(), Status: req.GetStatus(),
		IntervenedOnly: req.GetIntervenedOnly(), Limit: n, PageToken: req.GetPageToken(),
	}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		f.Until = req.GetUntil().AsTime()
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	calls, next, err := s.history.ListCalls(ctx, f)
	if err != nil {
		return nil, s.queryError(ctx, "list calls", err)
	}
	return &cpv1.ListCallsResponse{Calls: calls, NextPageToken: next}, nil
}

// GetCall returns a call with its events.
func (s *HistoryService) GetCall(ctx context.Context, req *cpv1.GetCallRequest) (*cpv1.GetCallResponse, error) {
	if req.GetCallId() == "" {
		return nil, status.Error(codes.InvalidArgument, "call_id is required")
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	call, events, err := s.history.GetCall(ctx, req.GetCallId())
	if err != nil {
		return nil, s.queryError(ctx, "get call "+req.GetCallId(), err)
	}
	return &cpv1.GetCallResponse{Call: call, Events: store.ReadableAll(events)}, nil
}

// GetCallDiff compares the original and final request and response of a
// call.
func (s *HistoryService) GetCallDiff(ctx context.Context, req *cpv1.GetCallDiffRequest) (*cpv1.GetCallDiffResponse, error) {
	if req.GetCallId() == "" {
		return nil, status.Error(codes.InvalidArgument, "call_id is required")
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	_, events, err := s.history.GetCall(ctx, req.GetCallId())
	if err != nil {
		return nil, s.queryError(ctx, "get call "+req.GetCallId(), err)
	}
	last := map[string]*cpv1.CallEvent{}
	for _, ev := range events {
		last[ev.GetEventType()] = ev
	}
	diff := func(original, final string) *cpv1.JSONDiff {
		return store.Diff(payloadOf(last[original]), payloadOf(last[final]))
	}
	return &cpv1.GetCallDiffResponse{
		CallId:   req.GetCallId(),
		Request:  diff("request.received", "request.final"),
		Response: diff("response.original", "response.final"),
	}, nil
}

// ListSessions lists sessions, most recently active first.
func (s *HistoryService) ListSessions(ctx context.Context, req *cpv1.ListSessionsRequest) (*cpv1.ListSessionsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	sessions, next, err := s.history.ListSessions(ctx, n, req.GetPageToken())
	if err != nil {
		return nil, s.queryError(ctx, "list sessions", err)
	}
	return &cpv1.ListSessionsResponse{Sessions: sessions, NextPageToken: next}, nil
}

// GetSession returns a session as its turns, oldest first.
func (s *HistoryService) GetSession(ctx context.Context, req *cpv1.GetSessionRequest) (*cpv1.GetSessionResponse, error) {
	if req.GetSessionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "session_id is required")
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	sum, turns, err := s.history.GetSession(ctx, req.GetSessionId())
	if err != nil {
		return nil, s.queryError(ctx, "get session "+req.GetSessionId(), err)
	}
	out := &cpv1.GetSessionResponse{Session: sum, Turns: make([]*cpv1.SessionTurn, len(turns))}
	for i, t := range turns {
		out.Turns[i] = &cpv1.SessionTurn{
			Call: t.Call, Request: payloadOf(t.Request), Response: payloadOf(t.Response), PolicyEvents: store.ReadableAll(t.PolicyEvents),
		}
	}
	return out, nil
}

// SearchCalls searches the conversation text of calls.
func (s *HistoryService) SearchCalls(ctx context.Context, req *cpv1.SearchCallsRequest) (*cpv1.SearchCallsResponse, error) {
	if strings.TrimSpace(req.GetQuery()) == "" {
		return nil, status.Error(codes.InvalidArgument, "query is required")
	}
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	hits, err := s.history.Search(ctx, req.GetQuery(), n)
	if err != nil {
		return nil, s.queryError(ctx, "search", err)
	}
	return &cpv1.SearchCallsResponse{Hits: hits}, nil
}

// GetStats returns the counters of the recording pipeline and the cache.
func (s *HistoryService) GetStats(context.Context, *cpv1.GetStatsRequest) (*cpv1.GetStatsResponse, error) {
	out := &cpv1.GetStatsResponse{Store: s.history.Kind()}
	if q := s.counters.Queue; q != nil {
		out.EventsWritten, out.EventsDropped, out.QueueDepth, out.WriteErrors = q.Written(), q.Dropped(), q.Depth(), q.WriteErrors()
	}
	if c := s.counters.Cache; c != nil {
		out.CacheHits, out.CacheMisses = c.Hits(), c.Misses()
	}
	if a := s.counters.Activity; a != nil {
		out.ActivityDropped = a.Dropped()
	}
	return out, nil
}

// payloadOf returns an event's payload for a reader, nil without an
// event.
func payloadOf(ev *cpv1.CallEvent) *structpb.Struct {
	if ev == nil {
		return nil
	}
	return store.PayloadStruct(ev)
}
