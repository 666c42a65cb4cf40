package service

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// ActorMetadataKey is the gRPC metadata key naming who calls SetPolicy.
// The gateway sets it after admin authentication; it is informational
// only.
const ActorMetadataKey = "x-luthien-actor"

// maxActorBytes bounds a recorded actor.
const maxActorBytes = 200

// unknownActor is shown for an activation whose author is not known.
const unknownActor = "unknown"

// PolicyHistory lists the activations of the policy, newest first.
type PolicyHistory interface {
	ListHistory(ctx context.Context, limit int) ([]*cpv1.ActivePolicy, error)
}

var _ PolicyHistory = (*Revisions)(nil)

// ListHistory returns up to limit of the last MemoryHistorySize
// activations this store installed, newest first. The caller owns them.
func (s *Revisions) ListHistory(_ context.Context, limit int) ([]*cpv1.ActivePolicy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.history.newest(limit), nil
}

// activations is a ring of the last activations. It is not safe for
// concurrent use: the Store guards it.
type activations struct {
	ring []*cpv1.ActivePolicy
	next int // where the next one goes
	n    int // how many are held
}

// newActivations returns a ring holding up to size activations.
func newActivations(size int) activations {
	return activations{ring: make([]*cpv1.ActivePolicy, size)}
}

// add remembers an activation, forgetting the oldest when full. desc is
// immutable.
func (h *activations) add(desc *cpv1.ActivePolicy) {
	h.ring[h.next] = desc
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
}

// newest returns copies of up to limit activations, newest first.
func (h *activations) newest(limit int) []*cpv1.ActivePolicy {
	out := make([]*cpv1.ActivePolicy, 0, min(limit, h.n))
	for i := 1; i <= h.n && len(out) < limit; i++ {
		out = append(out, proto.CloneOf(h.ring[(h.next-i+len(h.ring))%len(h.ring)]))
	}
	return out
}

// actorFrom returns who makes a call, from its ActorMetadataKey metadata:
// trimmed, without control characters, at most maxActorBytes; "" when
// not given.
func actorFrom(ctx context.Context) string {
	values := metadata.ValueFromIncomingContext(ctx, ActorMetadataKey)
	if len(values) == 0 {
		return ""
	}
	actor := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(values[0], ""))
	actor = strings.TrimSpace(actor)
	if len(actor) <= maxActorBytes {
		return actor
	}
	cut := maxActorBytes
	for cut > 0 && !utf8.RuneStart(actor[cut]) {
		cut--
	}
	return strings.TrimSpace(actor[:cut])
}

// shown returns an activation as the admin API shows it: an unknown
// author reads "unknown", secrets read policy.SecretPlaceholder (k says
// which values are secret). It changes desc, which the caller owns.
func shown(k secretKeeper, desc *cpv1.ActivePolicy) *cpv1.ActivePolicy {
	if desc == nil {
		return nil
	}
	if desc.GetChangedBy() == "" {
		desc.ChangedBy = unknownActor
	}
	redacted(k, desc.GetPolicy())
	return desc
}
