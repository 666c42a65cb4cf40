package service

import (
	"google.golang.org/protobuf/types/known/structpb"

	"luthien.dev/controlplane/internal/policy"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// secretKeeper knows which values of a policy configuration are secret
// (policy.Registry, from the "x-secret" marks of the config schemas). The
// admin API never shows them: they read policy.SecretPlaceholder, and a
// placeholder sent back keeps the stored value.
type secretKeeper interface {
	// Redact returns a copy of cfg with every secret shown as the
	// placeholder.
	Redact(class string, cfg map[string]any) map[string]any
	// KeepSecrets replaces the placeholders of cfg with the values stored
	// at the same paths of prev, the active configuration.
	KeepSecrets(class string, cfg map[string]any, prevClass string, prev map[string]any) (map[string]any, error)
	// InlineSecrets lists the paths of the secrets given in cfg.
	InlineSecrets(class string, cfg map[string]any) []string
}

var _ secretKeeper = (*policy.Registry)(nil)

// noSecrets is the secretKeeper of a builder that knows of no secrets.
type noSecrets struct{}

func (noSecrets) Redact(_ string, cfg map[string]any) map[string]any { return cfg }

func (noSecrets) KeepSecrets(_ string, cfg map[string]any, _ string, _ map[string]any) (map[string]any, error) {
	return cfg, nil
}

func (noSecrets) InlineSecrets(string, map[string]any) []string { return nil }

// secrets returns the store's secretKeeper: its builder when that knows
// the secrets of configurations (the registry does).
func (s *Revisions) secrets() secretKeeper {
	if k, ok := s.builder.(secretKeeper); ok {
		return k
	}
	return noSecrets{}
}

// redacted shows p's secrets as the placeholder. It changes p, which the
// caller owns, and returns it.
func redacted(k secretKeeper, p *cpv1.PolicyConfig) *cpv1.PolicyConfig {
	if p == nil || p.GetConfig() == nil {
		return p
	}
	cfg, err := structpb.NewStruct(k.Redact(p.GetClass(), p.GetConfig().AsMap()))
	if err != nil {
		// Not reachable for a configuration that came from a Struct; show
		// none rather than an unredacted one.
		cfg = &structpb.Struct{}
	}
	p.Config = cfg
	return p
}
