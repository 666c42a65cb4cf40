package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// healthMethods is the prefix of gRPC health's methods, which answer
// callers that present no token (load balancers, orchestrators' probes).
const healthMethods = "/grpc.health.v1.Health/"

// maxAuthValues bounds the authorization values a call's token is looked
// for in.
const maxAuthValues = 4

// tokenAuth checks the shared bearer token of the link between gateways
// and the control plane. A call presents it as `authorization: Bearer
// <token>` metadata; every call must, except health checks that present
// no authorization at all. A health check with a wrong token is refused
// too, so that a gateway's readiness probe notices its wrong token.
type tokenAuth struct {
	sum [sha256.Size]byte
}

// newTokenAuth returns the check of token, or nil (no check) when token is
// empty.
func newTokenAuth(token string) *tokenAuth {
	if token == "" {
		return nil
	}
	return &tokenAuth{sum: sha256.Sum256([]byte(token))}
}

// check returns UNAUTHENTICATED unless the call may go on. The tokens are
// compared as SHA-256 digests in constant time, so that neither their
// contents nor their lengths show in the time taken.
func (a *tokenAuth) check(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) == 0 {
		if strings.HasPrefix(method, healthMethods) {
			return nil
		}
		return status.Error(codes.Unauthenticated, "missing control plane token: send the metadata authorization: Bearer <token>")
	}
	ok := 0
	for _, v := range values[:min(len(values), maxAuthValues)] {
		scheme, token, found := strings.Cut(strings.TrimSpace(v), " ")
		if !found || !strings.EqualFold(scheme, "bearer") {
			continue
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		ok |= subtle.ConstantTimeCompare(sum[:], a.sum[:])
	}
	if ok != 1 {
		return status.Error(codes.Unauthenticated, "invalid control plane token")
	}
	return nil
}

// authUnary refuses unary calls without the token.
func authUnary(a *tokenAuth) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := a.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// authStream refuses streaming calls (server reflection included) without
// the token.
func authStream(a *tokenAuth) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
