// Package service implements the control plane's gRPC services:
// CallService, which carries each of the gateway's calls as one stream
// whose session applies the active policy, answers from the response
// cache and fills it, and records the call; PolicyService, which
// evaluates the active policy alone (the contract of external policies);
// PolicyAdminService, which reads and changes the active policy, lists
// its history and dry-runs policies on samples, all sharing one
// Revisions (the active policy and the recent revisions);
// ActivityService and HistoryService, which stream the recorded calls
// live and answer questions about them.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

// MemoryHistorySize is how many activations the revisions remember for the
// policy history when no database keeps it.
const MemoryHistorySize = 100

// Builder builds a policy from a class name (or alias) and a
// configuration, validating both.
type Builder interface {
	Build(class string, cfg map[string]any) (policy.Policy, error)
	// Resolve returns the class a name stands for and the configuration
	// it builds with (an earlier class path's adapted), which is what the
	// revisions keep.
	Resolve(class string, cfg map[string]any) (string, map[string]any, error)
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
	// inlineSecrets are the paths of the secrets its configuration gives
	// inline (e.g. a judge's api_key).
	inlineSecrets []string
}

// forCall returns the activation with the policy's object for one call
// (policy.ForCall): a call session holds it from start to end, so that a
// policy keeps its state across the call's hooks.
func (a *Active) forCall(call *policy.Call) *Active {
	p := policy.ForCall(a.Policy, call)
	if p == a.Policy {
		return a
	}
	c := *a
	c.Policy = p
	return &c
}

// Proto returns the activation as an ActivePolicy message, which the
// caller owns.
func (a *Active) Proto() *cpv1.ActivePolicy {
	return proto.CloneOf(a.desc)
}

// Revisions holds the active policy and the recent revisions, so that a call
// finishes under the policy it started with, and the last activations,
// the policy history when no database keeps one. It is safe for
// concurrent use.
type Revisions struct {
	builder Builder
	logger  *slog.Logger
	active  atomic.Pointer[Active]

	mu         sync.Mutex // serializes Activate; guards byRevision, order, history and installed
	byRevision map[string]*Active
	order      []string      // revisions, oldest first
	history    activations   // the last MemoryHistorySize activations
	installed  chan struct{} // closed and replaced by every Install
}

// NewRevisions builds the initial policy and returns the revisions with it active.
// changedBy says where the policy came from ("startup", a file's path);
// it is the first entry of the history.
func NewRevisions(builder Builder, logger *slog.Logger, class string, cfg map[string]any, changedBy string) (*Revisions, error) {
	s := &Revisions{builder: builder, logger: logger, byRevision: make(map[string]*Active, keptRevisions),
		history: newActivations(MemoryHistorySize), installed: make(chan struct{})}
	if _, err := s.Activate(class, cfg, changedBy); err != nil {
		return nil, err
	}
	return s, nil
}

// Active returns the active policy.
func (s *Revisions) Active() *Active {
	return s.active.Load()
}

// Lookup returns the policy of a revision. An empty revision, or one the
// revisions no longer keep (or never had), yields the active policy.
func (s *Revisions) Lookup(revision string) *Active {
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
// under a new revision, changed by changedBy. An invalid policy is an
// error and changes nothing.
func (s *Revisions) Activate(class string, cfg map[string]any, changedBy string) (*Active, error) {
	a, err := s.Prepare(class, cfg, changedBy)
	if err != nil {
		return nil, err
	}
	s.Install(a)
	return a, nil
}

// Prepare validates and builds a policy under a new revision, changed by
// changedBy, without activating it; Install activates it.
func (s *Revisions) Prepare(class string, cfg map[string]any, changedBy string) (*Active, error) {
	return s.build(class, cfg, newRevision(), time.Now(), changedBy)
}

// Restore activates a policy described by another replica or by the
// database, under its own revision. A description of the active revision
// changes nothing.
func (s *Revisions) Restore(desc *cpv1.ActivePolicy) error {
	if desc.GetRevision() == "" {
		return errors.New("restore policy: no revision")
	}
	if desc.GetRevision() == s.active.Load().Revision {
		return nil
	}
	a, err := s.build(desc.GetPolicy().GetClass(), desc.GetPolicy().GetConfig().AsMap(), desc.GetRevision(),
		desc.GetActivatedAt().AsTime(), desc.GetChangedBy())
	if err != nil {
		return fmt.Errorf("restore policy %s: %w", desc.GetRevision(), err)
	}
	s.Install(a)
	return nil
}

// build builds an activation.
func (s *Revisions) build(class string, cfg map[string]any, revision string, at time.Time, changedBy string) (*Active, error) {
	class, cfg, err := s.builder.Resolve(class, cfg)
	if err != nil {
		return nil, err
	}
	p, err := s.builder.Build(class, cfg)
	if err != nil {
		return nil, err
	}
	cfgStruct, err := structpb.NewStruct(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy %s: config: %w", p.Name(), err)
	}
	a := &Active{Policy: p, Revision: revision, ActivatedAt: at, inlineSecrets: s.secrets().InlineSecrets(class, cfg)}
	a.desc = &cpv1.ActivePolicy{
		Policy:      &cpv1.PolicyConfig{Class: p.Name(), Config: cfgStruct},
		Revision:    a.Revision,
		ActivatedAt: timestamppb.New(a.ActivatedAt),
		ChangedBy:   changedBy,
	}
	return a, nil
}

// Install makes a prepared activation the active one; calls already
// running keep the revision they started with.
func (s *Revisions) Install(a *Active) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.byRevision[a.Revision]; !known {
		s.order = append(s.order, a.Revision)
		s.history.add(a.desc)
		if ws := policy.Warnings(a.Policy); len(ws) > 0 {
			s.logger.Warn("policy configuration accepted with warnings", "policy", a.Policy.Name(), "revision", a.Revision, "warnings", ws)
		}
		if len(a.inlineSecrets) > 0 {
			s.logger.Warn("policy gives secrets inline: they are stored in the database and announced to the replicas as given; name an environment variable with api_key_env instead",
				"policy", a.Policy.Name(), "revision", a.Revision, "keys", a.inlineSecrets)
		}
	}
	s.byRevision[a.Revision] = a
	for len(s.order) > keptRevisions {
		delete(s.byRevision, s.order[0])
		s.order = s.order[1:]
	}
	previous := ""
	if prev := s.active.Swap(a); prev != nil {
		previous = prev.Revision
	}
	close(s.installed)
	s.installed = make(chan struct{})
	s.logger.Info("policy activated", "policy", a.Policy.Name(), "revision", a.Revision, "previous_revision", previous)
}

// changed returns a channel closed by the next Install.
func (s *Revisions) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.installed
}

// WaitInstalled waits until revision has been installed (it may have been
// superseded since) or ctx is done, and reports whether it was.
func (s *Revisions) WaitInstalled(ctx context.Context, revision string) bool {
	for {
		s.mu.Lock()
		_, ok := s.byRevision[revision]
		next := s.installed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-next:
		}
	}
}

// newRevision returns a fresh random revision id.
func newRevision() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails: see crypto/rand.Read
	return hex.EncodeToString(b)
}
