package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/gateway/internal/admin"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// policyAdmin answers the page's three queries with what a test sets.
type policyAdmin struct {
	cpv1.PolicyAdminServiceClient
	active     *cpv1.ActivePolicy
	activeErr  error
	history    []*cpv1.ActivePolicy
	historyErr error
	types      []*cpv1.PolicyType
	typesErr   error
}

func (p *policyAdmin) GetPolicy(context.Context, *cpv1.GetPolicyRequest, ...grpc.CallOption) (*cpv1.GetPolicyResponse, error) {
	return &cpv1.GetPolicyResponse{Active: p.active}, p.activeErr
}

func (p *policyAdmin) ListPolicyHistory(_ context.Context, req *cpv1.ListPolicyHistoryRequest, _ ...grpc.CallOption) (*cpv1.ListPolicyHistoryResponse, error) {
	if req.GetPageSize() != policyHistorySize {
		return nil, status.Errorf(codes.InvalidArgument, "page size %d", req.GetPageSize())
	}
	return &cpv1.ListPolicyHistoryResponse{Entries: p.history}, p.historyErr
}

func (p *policyAdmin) ListPolicyTypes(context.Context, *cpv1.ListPolicyTypesRequest, ...grpc.CallOption) (*cpv1.ListPolicyTypesResponse, error) {
	return &cpv1.ListPolicyTypesResponse{Types: p.types}, p.typesErr
}

func activation(t *testing.T, class string, cfg map[string]any, by string) *cpv1.ActivePolicy {
	t.Helper()
	s, err := structpb.NewStruct(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cpv1.ActivePolicy{Policy: &cpv1.PolicyConfig{Class: class, Config: s}, Revision: "rev-" + class,
		ActivatedAt: timestamppb.New(timestamppb.Now().AsTime()), ChangedBy: by}
}

// getPolicyPage renders /policy over the given control plane answers.
func getPolicyPage(t *testing.T, p *policyAdmin) (int, string) {
	t.Helper()
	u, err := New(Config{Guard: admin.New(admin.Config{}), Policy: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	u.policy(w, httptest.NewRequest(http.MethodGet, "/policy", nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestPolicyPage(t *testing.T) {
	types := []*cpv1.PolicyType{
		{Class: "all_caps", Description: "Uppercases.", ConfigSchemaJson: `{"type":"object","properties":{}}`, Aliases: []string{"old.AllCaps"}},
		{Class: "broken", Description: "A schema that is not JSON.", ConfigSchemaJson: `{not json`},
	}
	cases := []struct {
		name   string
		admin  *policyAdmin
		status int
		want   []string
		absent []string
	}{
		{
			name: "everything",
			admin: &policyAdmin{active: activation(t, "all_caps", nil, "loopback"), types: types,
				history: []*cpv1.ActivePolicy{activation(t, "all_caps", nil, "loopback"), activation(t, "noop", nil, "startup")}},
			status: http.StatusOK,
			want: []string{`<code id="active-class">all_caps</code>`, `<td class="actor">startup</td>`,
				`<article class="policy-type" data-class="all_caps"`, `<article class="policy-type" data-class="broken"`,
				`old.AllCaps`, `{not json`, `"class":"broken","description":"A schema that is not JSON.","aliases":[],"schema":{}`},
			absent: []string{`id="history-error"`, `id="catalogue-error"`},
		},
		{
			name: "history unavailable",
			admin: &policyAdmin{active: activation(t, "all_caps", nil, "x"), types: types,
				historyErr: status.Error(codes.Unavailable, "history store down")},
			status: http.StatusOK,
			want:   []string{`<code id="active-class">all_caps</code>`, `id="history-error"`, "history store down", `data-class="all_caps"`},
		},
		{
			name: "catalogue unavailable",
			admin: &policyAdmin{active: activation(t, "all_caps", nil, "x"),
				typesErr: status.Error(codes.Unavailable, "no registry")},
			status: http.StatusOK,
			want:   []string{`<code id="active-class">all_caps</code>`, `id="catalogue-error"`, "no registry"},
			absent: []string{`class="policy-type"`},
		},
		{
			name:   "no active policy",
			admin:  &policyAdmin{activeErr: status.Error(codes.Unavailable, "control plane down")},
			status: http.StatusBadGateway,
			want:   []string{`id="page-error"`, "control plane down"},
			absent: []string{`id="policy-form"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := getPolicyPage(t, c.admin)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, a := range c.absent {
				if strings.Contains(body, a) {
					t.Errorf("page has %q", a)
				}
			}
		})
	}
}

// Markup in a policy's configuration is text wherever the page shows it.
func TestPolicyPageEscapes(t *testing.T) {
	const payload = `</script><script>alert(1)</script>`
	a := activation(t, "string_replacement", map[string]any{"replacements": []any{[]any{"a", payload}}}, `<b>me</b>`)
	_, body := getPolicyPage(t, &policyAdmin{active: a, history: []*cpv1.ActivePolicy{a}})
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>me</b>") {
		t.Fatalf("page contains raw markup from the config:\n%s", body)
	}
	for _, want := range []string{`&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;`, `\u003c/script\u003e`, `&lt;b&gt;me&lt;/b&gt;`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks the escaped %q", want)
		}
	}
}
