// Package service implements the control plane's gRPC services:
// PolicyService, which applies the active policy to the gateway's calls,
// and PolicyAdminService, which reads and changes the active policy. Both
// share a Store of policy revisions.
package service

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// keptRevisions is how many recent revisions stay available to calls in
// flight, the active one included.
const keptRevisions = 32

// Builder builds a policy from a class name (or alias) and a
// configuration, validating both.
type Builder interface {
	Build(class string, cfg map[string]any) (policy.Policy, error)
}

// Active is one activation of a policy. It is immutable.
type Active struct {
	// Policy is the built policy.
	Policy policy.Policy
	// Revision identifies this activation: a random hex string.
	Revision string
	// ActivatedAt is when the policy became active.
	ActivatedAt time.Time

	desc *cpv1.ActivePolicy
}

// Proto returns the activation as an ActivePolicy message, which the
// caller owns.
func (a *Active) Proto() *cpv1.ActivePolicy {
	return proto.CloneOf(a.desc)
}

// Store holds the active policy and the recent revisions, so that a call
// finishes under the policy it started with. It is safe for concurrent
// use.
type Store struct {
	builder Builder
	logger  *slog.Logger
	active  atomic.Pointer[Active]

	mu         sync.Mutex // serializes Activate; guards byRevision and order
	byRevision map[string]*Active
	order      []string // revisions, oldest first
}

// NewStore builds the initial policy and returns a store with it active.
func NewStore(builder Builder, logger *slog.Logger, class string, cfg map[string]any) (*Store, error) {
	s := &Store{builder: builder, logger: logger, byRevision: make(map[string]*Active, keptRevisions)}
	if _, err := s.Activate(class, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Active returns the active policy.
func (s *Store) Active() *Active {
	return s.active.Load()
}

// Lookup returns the policy of a revision. An empty revision, or one the
// store no longer keeps (or never had), yields the active policy.
func (s *Store) Lookup(revision string) *Active {
	active := s.active.Load()
	if revision == "" || revision == active.Revision {
		return active
	}
	s.mu.Lock()
	a, ok := s.byRevision[revision]
	s.mu.Unlock()
	if !ok {
		s.logger.Debug("unknown policy revision, using the active policy",
			"revision", revision, "active_revision", active.Revision)
		return active
	}
	return a
}

// Activate validates and builds a policy and makes it the active one
// under a new revision. An invalid policy is an error and changes nothing.
func (s *Store) Activate(class string, cfg map[string]any) (*Active, error) {
	p, err := s.builder.Build(class, cfg)
	if err != nil {
		return nil, err
	}
	cfgStruct, err := structpb.NewStruct(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy %s: config: %w", p.Name(), err)
	}
	a := &Active{Policy: p, Revision: newRevision(), ActivatedAt: time.Now()}
	a.desc = &cpv1.ActivePolicy{
		Policy:      &cpv1.PolicyConfig{Class: p.Name(), Config: cfgStruct},
		Revision:    a.Revision,
		ActivatedAt: timestamppb.New(a.ActivatedAt),
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.byRevision[a.Revision] = a
	s.order = append(s.order, a.Revision)
	for len(s.order) > keptRevisions {
		delete(s.byRevision, s.order[0])
		s.order = s.order[1:]
	}
	previous := ""
	if prev := s.active.Swap(a); prev != nil {
		previous = prev.Revision
	}
	s.logger.Info("policy activated", "policy", p.Name(), "revision", a.Revision, "previous_revision", previous)
	return a, nil
}

// newRevision returns a fresh random revision id.
func newRevision() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails: see crypto/rand.Read
	return hex.EncodeToString(b)
}
