package service

import (
	"log/slog"
	"testing"
)

func TestStoreRevisions(t *testing.T) {
	p := &fakePolicy{name: "fake"}
	store, err := NewRevisions(fakeBuilder{p}, slog.New(slog.DiscardHandler), "fake", nil, "test")
	if err != nil {
		t.Fatalf("NewRevisions: %v", err)
	}
	first := store.Active()

	if _, err := store.Activate("invalid", nil, "test"); err == nil {
		t.Fatal("Activate(invalid) succeeded")
	}
	if store.Active() != first {
		t.Fatal("a failed Activate changed the active policy")
	}

	seen := map[string]bool{first.Revision: true}
	all := []*Active{first}
	for range keptRevisions {
		a, err := store.Activate("fake", map[string]any{"n": 1.0}, "test")
		if err != nil {
			t.Fatalf("Activate: %v", err)
		}
		if seen[a.Revision] {
			t.Fatalf("revision %q reused", a.Revision)
		}
		seen[a.Revision] = true
		all = append(all, a)
	}
	active := store.Active()
	if active != all[len(all)-1] {
		t.Fatal("the last activation is not active")
	}
	if got := active.Proto().GetPolicy().GetConfig().AsMap()["n"]; got != 1.0 {
		t.Errorf("active config n = %v, want 1", got)
	}

	tests := []struct {
		name     string
		revision string
		want     *Active
	}{
		{name: "empty revision", revision: "", want: active},
		{name: "unknown revision", revision: "0123456789abcdef", want: active},
		{name: "evicted revision", revision: first.Revision, want: active},
		{name: "oldest kept revision", revision: all[1].Revision, want: all[1]},
		{name: "recent revision", revision: all[len(all)-2].Revision, want: all[len(all)-2]},
		{name: "active revision", revision: active.Revision, want: active},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.Lookup(tt.revision); got != tt.want {
				t.Errorf("Lookup(%q) = %q, want %q", tt.revision, got.Revision, tt.want.Revision)
			}
		})
	}
}
