package server

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// contextStream is a grpc.ServerStream that only has a context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s contextStream) Context() context.Context { return s.ctx }

func TestInterceptors(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	unaryChain := func(handler grpc.UnaryHandler) error {
		info := &grpc.UnaryServerInfo{FullMethod: "/test.Service/Unary"}
		_, err := logUnary(logger)(t.Context(), nil, info, func(ctx context.Context, req any) (any, error) {
			return recoverUnary(logger)(ctx, req, info, handler)
		})
		return err
	}
	streamChain := func(handler grpc.StreamHandler) error {
		info := &grpc.StreamServerInfo{FullMethod: "/test.Service/Stream"}
		ss := contextStream{ctx: t.Context()}
		return logStream(logger)(nil, ss, info, func(srv any, ss grpc.ServerStream) error {
			return recoverStream(logger)(srv, ss, info, handler)
		})
	}
	denied := status.Error(codes.PermissionDenied, "no")
	tests := []struct {
		name     string
		run      func() error
		wantCode codes.Code
	}{
		{name: "unary ok", run: func() error {
			return unaryChain(func(context.Context, any) (any, error) { return "ok", nil })
		}},
		{name: "unary error passes through", wantCode: codes.PermissionDenied, run: func() error {
			return unaryChain(func(context.Context, any) (any, error) { return nil, denied })
		}},
		{name: "unary panic", wantCode: codes.Internal, run: func() error {
			return unaryChain(func(context.Context, any) (any, error) { panic("boom") })
		}},
		{name: "stream ok", run: func() error {
			return streamChain(func(any, grpc.ServerStream) error { return nil })
		}},
		{name: "stream error passes through", wantCode: codes.PermissionDenied, run: func() error {
			return streamChain(func(any, grpc.ServerStream) error { return denied })
		}},
		{name: "stream panic", wantCode: codes.Internal, run: func() error {
			return streamChain(func(any, grpc.ServerStream) error { panic(errors.New("boom")) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); status.Code(err) != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.wantCode)
			}
		})
	}
}
