package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"luthien.dev/canon/jsonx"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// policyHistorySize is how many activations the page lists.
const policyHistorySize = 50

// policyData is the policy page: the active policy, its history, the
// catalogue of classes and what the editor's script starts from.
type policyData struct {
	Active       policyView
	History      []policyView
	HistoryError string
	Types        []policyTypeView
	TypesError   string
	// Actor is who this request was authenticated as: activations from
	// the page are recorded as made by it.
	Actor string
	// Boot is what policy.js reads: the active policy and every class's
	// schema. It is written into a JSON script element, where
	// html/template encodes it as JSON with markup characters escaped.
	Boot policyBoot
}

// policyView is one activation of a policy, ready to show.
type policyView struct {
	Class       string
	Revision    string
	ActivatedAt string
	ChangedBy   string
	// ConfigJSON is the configuration as indented JSON text.
	ConfigJSON string
	// PolicyJSON is {"class":..,"config":..} as compact JSON text, for the
	// editor's "load" action.
	PolicyJSON string
}

// policyTypeView is one class of the catalogue.
type policyTypeView struct {
	Class       string
	Description string
	Aliases     []string
	// SchemaJSON is the config schema as indented JSON text.
	SchemaJSON string
}

// policyBoot is the editor's starting data.
type policyBoot struct {
	Active editorPolicy `json:"active"`
	Types  []editorType `json:"types"`
	Error  string       `json:"error,omitempty"`
}

// editorPolicy is a policy as the editor holds it.
type editorPolicy struct {
	Class  string         `json:"class"`
	Config map[string]any `json:"config"`
}

// editorType is a class as the editor's form generator reads it.
type editorType struct {
	Class       string          `json:"class"`
	Description string          `json:"description"`
	Aliases     []string        `json:"aliases"`
	Schema      json.RawMessage `json:"schema"`
}

// policy renders the policy page. Only the active policy is essential:
// when the history or the catalogue cannot be read, the page says so in
// their place.
func (u *UI) policy(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var (
		wg                              sync.WaitGroup
		active                          *cpv1.GetPolicyResponse
		history                         *cpv1.ListPolicyHistoryResponse
		types                           *cpv1.ListPolicyTypesResponse
		errActive, errHistory, errTypes error
	)
	wg.Go(func() { active, errActive = u.cfg.Policy.GetPolicy(ctx, &cpv1.GetPolicyRequest{}) })
	wg.Go(func() {
		history, errHistory = u.cfg.Policy.ListPolicyHistory(ctx, &cpv1.ListPolicyHistoryRequest{PageSize: policyHistorySize})
	})
	wg.Go(func() { types, errTypes = u.cfg.Policy.ListPolicyTypes(ctx, &cpv1.ListPolicyTypesRequest{}) })
	wg.Wait()
	if errActive != nil {
		u.fail(w, r, "Policy", errActive)
		return
	}
	d := policyData{Active: policyViewOf(active.GetActive()), Actor: actor(r)}
	d.Boot.Active = editorPolicy{Class: active.GetActive().GetPolicy().GetClass(), Config: policyConfigMap(active.GetActive().GetPolicy())}
	if errHistory != nil {
		d.HistoryError = policyRPCMessage(errHistory)
	} else {
		for _, h := range history.GetEntries() {
			d.History = append(d.History, policyViewOf(h))
		}
	}
	if errTypes != nil {
		d.TypesError = policyRPCMessage(errTypes)
		d.Boot.Error = "the policy classes could not be listed: " + d.TypesError
	} else {
		d.Types, d.Boot.Types = policyTypeViews(types.GetTypes())
	}
	u.render(w, r, "policy.html", http.StatusOK, page{Title: "Policy", Nav: "policy", Data: d})
}

// policyViewOf prepares one activation for the page.
func policyViewOf(a *cpv1.ActivePolicy) policyView {
	cfg := policyConfigMap(a.GetPolicy())
	return policyView{
		Class:       a.GetPolicy().GetClass(),
		Revision:    a.GetRevision(),
		ActivatedAt: policyTime(a.GetActivatedAt()),
		ChangedBy:   a.GetChangedBy(),
		ConfigJSON:  policyJSONText(cfg, "  "),
		PolicyJSON:  policyJSONText(editorPolicy{Class: a.GetPolicy().GetClass(), Config: cfg}, ""),
	}
}

// policyTypeViews prepares the catalogue and the editor's schemas. A schema
// that is not valid JSON is shown as it is and given to the editor as an
// empty schema (its config is then edited as JSON).
func policyTypeViews(types []*cpv1.PolicyType) ([]policyTypeView, []editorType) {
	views := make([]policyTypeView, 0, len(types))
	edit := make([]editorType, 0, len(types))
	for _, t := range types {
		schema := json.RawMessage(t.GetConfigSchemaJson())
		text := t.GetConfigSchemaJson()
		var indented bytes.Buffer
		if err := json.Indent(&indented, schema, "", "  "); err == nil {
			text = indented.String()
		} else {
			schema = json.RawMessage(`{}`)
		}
		aliases := t.GetAliases()
		if aliases == nil {
			aliases = []string{}
		}
		views = append(views, policyTypeView{Class: t.GetClass(), Description: t.GetDescription(), Aliases: aliases, SchemaJSON: text})
		edit = append(edit, editorType{Class: t.GetClass(), Description: t.GetDescription(), Aliases: aliases, Schema: schema})
	}
	return views, edit
}

// policyTime formats an activation time as the page and its script
// show it: UTC, to the millisecond.
func policyTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format("2006-01-02 15:04:05.000")
}

// policyConfigMap is a policy's configuration as plain values, never nil.
func policyConfigMap(p *cpv1.PolicyConfig) map[string]any {
	if m := p.GetConfig().AsMap(); m != nil {
		return m
	}
	return map[string]any{}
}

// policyJSONText is v as JSON text with markup characters left as they are
// (the template escapes them for where the text goes).
func policyJSONText(v any, indent string) string {
	b, err := jsonx.MarshalIndent(v, "", indent)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// policyRPCMessage is the message of a failed RPC.
func policyRPCMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
