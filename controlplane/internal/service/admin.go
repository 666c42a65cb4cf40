package service

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Catalog lists the policy classes the control plane can run.
type Catalog interface {
	Types() []policy.Type
}

// AdminService implements cpv1.PolicyAdminServiceServer: it reads and
// changes the active policy, lists its history and dry-runs policies
// (dryrun.go).
type AdminService struct {
	cpv1.UnimplementedPolicyAdminServiceServer

	revisions *Revisions
	catalog   Catalog
	publisher Publisher
	history   PolicyHistory
}

// Publisher persists activations and tells the other replicas about them
// (replica.Replica).
type Publisher interface {
	// Persist stores an activation where every replica finds it at
	// start-up and when it reconnects; durable is false when there is no
	// such store (no database). A failure stores nothing.
	Persist(ctx context.Context, active *cpv1.ActivePolicy) (durable bool, err error)
	// Announce tells the running replicas about an activation.
	Announce(ctx context.Context, active *cpv1.ActivePolicy) error
}

// PropagationMetadataKey is the gRPC response header SetPolicy sets to
// PropagationDelayed when the change is committed and active here but
// could not be announced: the other replicas pick it up from the
// database when they reconnect, or within replica.ReconcileInterval.
// Over REST it is the header Grpc-Metadata-X-Luthien-Propagation.
const PropagationMetadataKey = "x-luthien-propagation"

// PropagationDelayed is the value of PropagationMetadataKey.
const PropagationDelayed = "delayed"

var _ cpv1.PolicyAdminServiceServer = (*AdminService)(nil)

// NewAdminService returns an AdminService over store; catalog lists the
// policy types; publisher, when not nil, persists and propagates each
// activation before it takes effect here; history lists the past
// activations (nil: the store's own, in memory).
func NewAdminService(revisions *Revisions, catalog Catalog, publisher Publisher, history PolicyHistory) *AdminService {
	if history == nil {
		history = revisions
	}
	return &AdminService{revisions: revisions, catalog: catalog, publisher: publisher, history: history}
}

// GetPolicy returns the active policy, its secrets shown as
// policy.SecretPlaceholder.
func (s *AdminService) GetPolicy(context.Context, *cpv1.GetPolicyRequest) (*cpv1.GetPolicyResponse, error) {
	return &cpv1.GetPolicyResponse{Active: shown(s.revisions.secrets(), s.revisions.Active().Proto())}, nil
}

// SetPolicy validates and activates a policy, recording who made the
// change (ActorMetadataKey); a secret sent as policy.SecretPlaceholder
// keeps the active policy's value (policy.Registry.KeepSecrets). An
// invalid policy is INVALID_ARGUMENT with the validation message and
// changes nothing.
//
// With a publisher the activation is persisted first: when that fails it
// is UNAVAILABLE and changes nothing. Then it is announced, retried until
// shortly before the caller's deadline (at most announceRetries). Once
// persisted in the database the change is made whatever the announcement
// does: when that fails, the answer is still the new policy, active here,
// with the header PropagationMetadataKey: PropagationDelayed, and the
// other replicas load it from the database. Without a database an
// announcement that fails is UNAVAILABLE and changes nothing.
func (s *AdminService) SetPolicy(ctx context.Context, req *cpv1.SetPolicyRequest) (*cpv1.SetPolicyResponse, error) {
	active, err := s.prepare(req.GetPolicy(), "policy", actorFrom(ctx))
	if err != nil {
		return nil, err
	}
	answer := func() *cpv1.SetPolicyResponse {
		return &cpv1.SetPolicyResponse{Active: shown(s.revisions.secrets(), active.Proto())}
	}
	if s.publisher == nil {
		s.revisions.Install(active)
		return answer(), nil
	}
	durable, err := s.publisher.Persist(ctx, active.Proto())
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, status.Errorf(codes.Unavailable, "set policy: %v (nothing changed)", err)
	}
	if err := s.announce(ctx, active.Proto()); err != nil {
		if !durable {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, status.FromContextError(ctxErr).Err()
			}
			return nil, status.Errorf(codes.Unavailable, "set policy: %v (nothing changed)", err)
		}
		// Committed: the database is the truth, this replica runs it now.
		s.revisions.logger.WarnContext(ctx, "policy change committed but not announced: active here; the other replicas load it from the database when they resubscribe or reconcile",
			"revision", active.Revision, "error", err)
		_ = grpc.SetHeader(ctx, metadata.Pairs(PropagationMetadataKey, PropagationDelayed))
		s.revisions.Install(active)
		return answer(), nil
	}
	// Every replica, this one included, applies announcements in the
	// channel's order, so all end on the last one: wait for ours to come
	// back rather than installing it out of order.
	wctx, cancel := answerContext(ctx, announceWait)
	defer cancel()
	if !s.revisions.WaitInstalled(wctx, active.Revision) {
		s.revisions.Install(active)
	}
	return answer(), nil
}

// announce announces an activation, retrying with backoff until it
// succeeds or the time to answer runs out (answerContext).
func (s *AdminService) announce(ctx context.Context, desc *cpv1.ActivePolicy) error {
	actx, cancel := answerContext(ctx, announceRetries)
	defer cancel()
	delay := announceBackoff
	for {
		err := s.publisher.Announce(actx, desc)
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-actx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

// answerContext returns a context that ends after d, or answerMargin
// before ctx's deadline if that is sooner, so that the caller gets an
// answer telling what happened rather than DEADLINE_EXCEEDED.
func answerContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	end := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-answerMargin).Before(end) {
		end = dl.Add(-answerMargin)
	}
	return context.WithDeadline(ctx, end)
}

// prepare validates and builds a policy without activating it; field
// names the request's policy field in errors. Secrets sent as the
// placeholder keep the active policy's values. An invalid policy is
// INVALID_ARGUMENT with the validation message.
func (s *AdminService) prepare(cfg *cpv1.PolicyConfig, field, changedBy string) (*Active, error) {
	if cfg.GetClass() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "%s.class is required", field)
	}
	cur := s.revisions.Active().desc.GetPolicy()
	m, err := s.revisions.secrets().KeepSecrets(cfg.GetClass(), cfg.GetConfig().AsMap(), cur.GetClass(), cur.GetConfig().AsMap())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	active, err := s.revisions.Prepare(cfg.GetClass(), m, changedBy)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return active, nil
}

// ListPolicyHistory returns the activations of the policy, newest first:
// page_size of them (50 by default, at most 500).
func (s *AdminService) ListPolicyHistory(ctx context.Context, req *cpv1.ListPolicyHistoryRequest) (*cpv1.ListPolicyHistoryResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	entries, err := s.history.ListHistory(ctx, n)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, status.Errorf(codes.Unavailable, "list policy history: %v", err)
	}
	for _, e := range entries {
		shown(s.revisions.secrets(), e)
	}
	return &cpv1.ListPolicyHistoryResponse{Entries: entries}, nil
}

// Bounds of SetPolicy's announcement.
const (
	// announceWait bounds the wait for an announced activation to come
	// back through the replica's subscription; past it the activation is
	// installed directly.
	announceWait = 3 * time.Second
	// announceRetries bounds the retries of an announcement.
	announceRetries = 5 * time.Second
	// announceBackoff is the wait before the first retry; it doubles up
	// to a second.
	announceBackoff = 50 * time.Millisecond
	// answerMargin is the time kept before the caller's deadline to
	// answer.
	answerMargin = 500 * time.Millisecond
)

// ListPolicyTypes lists the policy classes, sorted by class.
func (s *AdminService) ListPolicyTypes(context.Context, *cpv1.ListPolicyTypesRequest) (*cpv1.ListPolicyTypesResponse, error) {
	types := s.catalog.Types()
	out := &cpv1.ListPolicyTypesResponse{Types: make([]*cpv1.PolicyType, 0, len(types))}
	for _, t := range types {
		out.Types = append(out.Types, &cpv1.PolicyType{
			Class:            t.Class,
			Description:      t.Description,
			ConfigSchemaJson: t.ConfigSchema,
			Aliases:          t.AllAliases(),
		})
	}
	return out, nil
}
