package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"luthien.dev/controlplane/internal/dbtest"
	"luthien.dev/controlplane/internal/store"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// asActor returns ctx carrying the actor metadata the gateway sets.
func asActor(ctx context.Context, actor string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-luthien-actor", actor)
}

// historyOf lists the policy history of c, newest first, as
// "class/changed_by" strings, and the entries themselves.
func historyOf(t *testing.T, c *cp) ([]string, []*cpv1.ActivePolicy) {
	t.Helper()
	resp, err := c.admin.ListPolicyHistory(testContext(t), &cpv1.ListPolicyHistoryRequest{})
	if err != nil {
		t.Fatalf("ListPolicyHistory: %v", err)
	}
	var out []string
	for _, e := range resp.GetEntries() {
		out = append(out, e.GetPolicy().GetClass()+"/"+e.GetChangedBy())
	}
	return out, resp.GetEntries()
}

// TestPolicyHistory changes the policy through the admin service and
// reads the history back, with the memory history and with PostgreSQL.
func TestPolicyHistory(t *testing.T) {
	for _, tt := range []struct {
		kind        string
		databaseURL func(t *testing.T) string
	}{
		{kind: store.KindMemory, databaseURL: func(*testing.T) string { return "" }},
		{kind: store.KindPostgres, databaseURL: func(t *testing.T) string { return dbtest.NewDatabase(t) }},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			c := startCP(t, Config{PolicyConfigPath: allCapsConfig, DatabaseURL: tt.databaseURL(t)})
			ctx := testContext(t)
			if got, entries := historyOf(t, c); len(got) != 1 || got[0] != "all_caps/"+allCapsConfig {
				t.Fatalf("history at start %v, want the policy file's all_caps", got)
			} else if active, _ := c.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{}); entries[0].GetRevision() != active.GetActive().GetRevision() {
				t.Errorf("startup entry %s, active %s", entries[0].GetRevision(), active.GetActive().GetRevision())
			}

			set, err := c.admin.SetPolicy(asActor(ctx, "alice@example.com"), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}})
			if err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			if set.GetActive().GetChangedBy() != "alice@example.com" {
				t.Errorf("SetPolicy changed_by = %q", set.GetActive().GetChangedBy())
			}
			if _, err := c.admin.SetPolicy(asActor(ctx, "mallory"), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "shouting"}}); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("invalid SetPolicy: %v", err)
			}
			if _, err := c.admin.SetPolicy(ctx, &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "all_caps"}}); err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}

			got, entries := historyOf(t, c)
			want := []string{"all_caps/unknown", "noop/alice@example.com", "all_caps/" + allCapsConfig}
			if len(got) != len(want) {
				t.Fatalf("history %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("history %v, want %v", got, want)
					break
				}
			}
			// PostgreSQL keeps microseconds.
			if entries[1].GetRevision() != set.GetActive().GetRevision() ||
				entries[1].GetActivatedAt().AsTime().Sub(set.GetActive().GetActivatedAt().AsTime()).Abs() >= time.Microsecond {
				t.Errorf("entry %v, want the activation SetPolicy returned: %v", entries[1], set.GetActive())
			}
			page, err := c.admin.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{PageSize: 1})
			if err != nil || len(page.GetEntries()) != 1 || page.GetEntries()[0].GetPolicy().GetClass() != "all_caps" {
				t.Errorf("ListPolicyHistory(page_size 1) = %v, %v", page, err)
			}
			if _, err := c.admin.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{PageSize: -5}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("negative page_size: %v, want INVALID_ARGUMENT", err)
			}
		})
	}
}

// TestPolicyHistorySurvivesRestart changes the policy, restarts the
// control plane over the same database and finds the history and the
// author of the active policy again, without a second startup entry.
func TestPolicyHistorySurvivesRestart(t *testing.T) {
	url := dbtest.NewDatabase(t)
	first := startCP(t, Config{DatabaseURL: url})
	ctx := testContext(t)
	if got, _ := historyOf(t, first); len(got) != 1 || got[0] != "noop/startup" {
		t.Fatalf("history at first start %v, want the default noop from startup", got)
	}
	if _, err := first.admin.SetPolicy(asActor(ctx, "alice"), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "all_caps"}}); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	last, err := first.admin.SetPolicy(asActor(ctx, "bob"), &cpv1.SetPolicyRequest{Policy: &cpv1.PolicyConfig{Class: "noop"}})
	if err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	before, _ := historyOf(t, first)
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.srv.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The policy file only seeds an empty database: it changes nothing.
	second := startCP(t, Config{DatabaseURL: url, PolicyConfigPath: allCapsConfig})
	after, entries := historyOf(t, second)
	want := []string{"noop/bob", "all_caps/alice", "noop/startup"}
	if len(after) != len(want) || after[0] != want[0] || after[1] != want[1] || after[2] != want[2] {
		t.Fatalf("history after restart %v (before %v), want %v", after, before, want)
	}
	if entries[0].GetRevision() != last.GetActive().GetRevision() {
		t.Errorf("newest entry %s, want %s", entries[0].GetRevision(), last.GetActive().GetRevision())
	}
	active, err := second.admin.GetPolicy(ctx, &cpv1.GetPolicyRequest{})
	if err != nil {
		t.Fatalf("GetPolicy: %v", err)
	}
	if active.GetActive().GetRevision() != last.GetActive().GetRevision() || active.GetActive().GetChangedBy() != "bob" {
		t.Errorf("active after restart %v, want bob's noop %s", active.GetActive(), last.GetActive().GetRevision())
	}
}
