package service

import (
	"context"

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

	store   *Store
	catalog Catalog
}

var _ cpv1.PolicyAdminServiceServer = (*AdminService)(nil)

// NewAdminService returns an AdminService over store; catalog lists the
// policy types.
func NewAdminService(store *Store, catalog Catalog) *AdminService {
	return &AdminService{store: store, catalog: catalog}
}

// GetPolicy returns the active policy.
func (s *AdminService) GetPolicy(context.Context, *cpv1.GetPolicyRequest) (*cpv1.GetPolicyResponse, error) {
	return &cpv1.GetPolicyResponse{Active: s.store.Active().Proto()}, nil
}

// SetPolicy validates and activates a policy. An invalid policy is
// INVALID_ARGUMENT with the validation message and changes nothing.
func (s *AdminService) SetPolicy(_ context.Context, req *cpv1.SetPolicyRequest) (*cpv1.SetPolicyResponse, error) {
	if req.GetPolicy().GetClass() == "" {
		return nil, status.Error(codes.InvalidArgument, "policy.class is required")
	}
	active, err := s.store.Activate(req.GetPolicy().GetClass(), req.GetPolicy().GetConfig().AsMap())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &cpv1.SetPolicyResponse{Active: active.Proto()}, nil
}

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
