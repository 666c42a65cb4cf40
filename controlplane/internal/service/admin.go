package service

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Catalog lists the policy classes the control plane can run.
type Catalog interface {
	Types() []policy.Type
}

// AdminService implements cpv1.PolicyAdminServiceServer: it reads and
// changes the active policy.
type AdminService struct {
	cpv1.UnimplementedPolicyAdminServiceServer

	store     *Store
	catalog   Catalog
	publisher Publisher
}

// Publisher persists an activation and tells the other replicas about it.
type Publisher interface {
	Publish(ctx context.Context, active *cpv1.ActivePolicy) error
}

var _ cpv1.PolicyAdminServiceServer = (*AdminService)(nil)

// NewAdminService returns an AdminService over store; catalog lists the
// policy types; publisher, when not nil, persists and propagates each
// activation before it takes effect here.
func NewAdminService(store *Store, catalog Catalog, publisher Publisher) *AdminService {
	return &AdminService{store: store, catalog: catalog, publisher: publisher}
}

// GetPolicy returns the active policy.
func (s *AdminService) GetPolicy(context.Context, *cpv1.GetPolicyRequest) (*cpv1.GetPolicyResponse, error) {
	return &cpv1.GetPolicyResponse{Active: s.store.Active().Proto()}, nil
}

// SetPolicy validates and activates a policy. An invalid policy is
// INVALID_ARGUMENT with the validation message and changes nothing. With a
// publisher the activation is persisted and announced to the other
// replicas first; when that fails it is UNAVAILABLE and changes nothing.
func (s *AdminService) SetPolicy(ctx context.Context, req *cpv1.SetPolicyRequest) (*cpv1.SetPolicyResponse, error) {
	if req.GetPolicy().GetClass() == "" {
		return nil, status.Error(codes.InvalidArgument, "policy.class is required")
	}
	active, err := s.store.Prepare(req.GetPolicy().GetClass(), req.GetPolicy().GetConfig().AsMap())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if s.publisher != nil {
		if err := s.publisher.Publish(ctx, active.Proto()); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, status.FromContextError(ctxErr).Err()
			}
			return nil, status.Errorf(codes.Unavailable, "set policy: %v", err)
		}
		// Every replica, this one included, applies announcements in the
		// channel's order, so all end on the last one: wait for ours to
		// come back rather than installing it out of order.
		wctx, cancel := context.WithTimeout(ctx, announceWait)
		defer cancel()
		if s.store.WaitInstalled(wctx, active.Revision) {
			return &cpv1.SetPolicyResponse{Active: active.Proto()}, nil
		}
	}
	s.store.Install(active)
	return &cpv1.SetPolicyResponse{Active: active.Proto()}, nil
}

// announceWait bounds the wait for a published activation to come back
// through the replica's subscription; past it the activation is installed
// directly.
const announceWait = 3 * time.Second

// ListPolicyTypes lists the policy classes, sorted by class.
func (s *AdminService) ListPolicyTypes(context.Context, *cpv1.ListPolicyTypesRequest) (*cpv1.ListPolicyTypesResponse, error) {
	types := s.catalog.Types()
	out := &cpv1.ListPolicyTypesResponse{Types: make([]*cpv1.PolicyType, 0, len(types))}
	for _, t := range types {
		out.Types = append(out.Types, &cpv1.PolicyType{
			Class:            t.Class,
			Description:      t.Description,
			ConfigSchemaJson: t.ConfigSchema,
			Aliases:          t.Aliases,
		})
	}
	return out, nil
}
