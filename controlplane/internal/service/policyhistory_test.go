package service

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// TestChangedBy sets the policy with x-luthien-actor metadata and checks
// what SetPolicy and the history record.
func TestChangedBy(t *testing.T) {
	tests := []struct {
		name   string
		actors []string // metadata values; nil: none sent
		want   string
	}{
		{name: "no metadata", want: "unknown"},
		{name: "plain", actors: []string{"alice@example.com"}, want: "alice@example.com"},
		{name: "trimmed", actors: []string{"  bob  "}, want: "bob"},
		{name: "blank", actors: []string{"   "}, want: "unknown"},
		{name: "first value", actors: []string{"carol", "mallory"}, want: "carol"},
		{name: "capped at 200 bytes", actors: []string{strings.Repeat("a", 250)}, want: strings.Repeat("a", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := serveAdmin(t, classBuilder{"active": &fakePolicy{name: "active"}})
			ctx := testContext(t)
			for _, a := range tt.actors {
				ctx = metadata.AppendToOutgoingContext(ctx, ActorMetadataKey, a)
			}
			set, err := client.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "active"}})
			if err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			if got := set.GetActive().GetChangedBy(); got != tt.want {
				t.Errorf("SetPolicy changed_by = %q, want %q", got, tt.want)
			}
			got, err := client.GetPolicy(testContext(t), &cpv1.GetPolicyRequest{})
			if err != nil || got.GetActive().GetChangedBy() != tt.want {
				t.Errorf("GetPolicy changed_by = %q (%v), want %q", got.GetActive().GetChangedBy(), err, tt.want)
			}
			hist, err := client.ListPolicyHistory(testContext(t), &cpv1.ListPolicyHistoryRequest{})
			if err != nil {
				t.Fatalf("ListPolicyHistory: %v", err)
			}
			if len(hist.GetEntries()) != 2 || hist.GetEntries()[0].GetChangedBy() != tt.want ||
				hist.GetEntries()[0].GetRevision() != set.GetActive().GetRevision() {
				t.Errorf("history %v, want the change by %q first", hist.GetEntries(), tt.want)
			}
		})
	}
}

// TestActorFrom covers what gRPC clients cannot send but an in-process
// caller can: control characters and text beyond ASCII.
func TestActorFrom(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{name: "control characters dropped", value: "eve\x00\n\tadmin", want: "eveadmin"},
		{name: "invalid UTF-8 dropped", value: "f\xffrank", want: "frank"},
		{name: "capped on a character boundary", value: strings.Repeat("a", 199) + "éé", want: strings.Repeat("a", 199)},
		{name: "multi-byte kept", value: "zoë", want: "zoë"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs(ActorMetadataKey, tt.value))
			if got := actorFrom(ctx); got != tt.want {
				t.Errorf("actorFrom(%q) = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
	if got := actorFrom(t.Context()); got != "" {
		t.Errorf("actorFrom without metadata = %q", got)
	}
}

// TestMemoryPolicyHistory checks the in-memory history: the startup
// entry, newest first, failed changes left out, page sizes and the bound.
func TestMemoryPolicyHistory(t *testing.T) {
	client, store := serveAdmin(t, classBuilder{"active": &fakePolicy{name: "active"}})
	ctx := testContext(t)
	startup := store.Active().Revision

	list := func(pageSize int32) []*cpv1.ActivePolicy {
		t.Helper()
		resp, err := client.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{PageSize: pageSize})
		if err != nil {
			t.Fatalf("ListPolicyHistory(%d): %v", pageSize, err)
		}
		return resp.GetEntries()
	}
	if got := list(0); len(got) != 1 || got[0].GetChangedBy() != "startup" || got[0].GetRevision() != startup ||
		got[0].GetPolicy().GetClass() != "active" || !got[0].GetActivatedAt().IsValid() {
		t.Fatalf("history at start %v, want the startup policy", got)
	}

	actorCtx := metadata.AppendToOutgoingContext(ctx, ActorMetadataKey, "dana")
	if _, err := client.SetPolicy(actorCtx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "shouting"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid SetPolicy: %v", err)
	}
	var revisions []string // newest last
	for range MemoryHistorySize + 5 {
		set, err := client.SetPolicy(actorCtx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "active"}})
		if err != nil {
			t.Fatalf("SetPolicy: %v", err)
		}
		revisions = append(revisions, set.GetActive().GetRevision())
	}

	tests := []struct {
		name     string
		pageSize int32
		want     int
	}{
		{name: "default page", pageSize: 0, want: 50},
		{name: "small page", pageSize: 3, want: 3},
		{name: "the bound", pageSize: 500, want: MemoryHistorySize},
		{name: "above the maximum page", pageSize: 10_000, want: MemoryHistorySize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := list(tt.pageSize)
			if len(got) != tt.want {
				t.Fatalf("%d entries, want %d", len(got), tt.want)
			}
			for i, e := range got {
				if want := revisions[len(revisions)-1-i]; e.GetRevision() != want || e.GetChangedBy() != "dana" {
					t.Fatalf("entry %d = %s by %q, want %s by dana (newest first)", i, e.GetRevision(), e.GetChangedBy(), want)
				}
			}
		})
	}
	if _, err := client.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{PageSize: -1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("negative page_size: %v, want INVALID_ARGUMENT", err)
	}
}
