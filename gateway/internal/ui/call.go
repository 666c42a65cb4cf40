package ui

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// callsTimeout bounds the control-plane queries behind a calls page.
const callsTimeout = 5 * time.Second

// callPage is a call's detail page.
type callPage struct {
	Summary  callSummaryView
	Request  callBodyView
	Response callBodyView
	Policy   []policyEventView
	Events   []callEventView
	Timeline *timelineView
	Errors   []callErrorView
	// Upstream is a routed call's exchange with its provider; nil when
	// the call was not routed.
	Upstream *upstreamView
}

// HasError reports whether the call failed or recorded an error.
func (p callPage) HasError() bool { return p.Summary.Error != "" || len(p.Errors) > 0 }

// callSummaryView is everything the call's summary says, as text.
type callSummaryView struct {
	ID, SessionID, UserID, Model, Format, Upstream string
	Status                                         int32
	Stream, Intervened                             bool
	Started, Finished, TTFT, Duration              string
	InputTokens, OutputTokens                      int64
	CacheCreationTokens, CacheReadTokens           int64
	HasUsage                                       bool
	Revision, Error                                string
}

// callBodyView is a request or a response: original against final.
type callBodyView struct {
	// Recorded: there is a body at all.
	Recorded bool
	// Changed: a policy changed it; Lines then compare it item by item,
	// else Once shows it.
	Changed bool
	Lines   []callRowLine
	Once    []*callItemView
	// ItemsSame: the conversation is the same although other fields
	// changed.
	ItemsSame bool
	// Other lists the changes outside the conversation; Changes counts
	// them all.
	Other        []jsonChangeView
	Changes      int
	OriginalJSON string
	FinalJSON    string
}

// jsonChangeView is one change of a JSON document, its values as JSON text.
type jsonChangeView struct {
	Path, Op, Before, After string
}

// call serves a call's page: its summary, the request and the response
// original against final, its policy decisions, events and stream
// timeline; an unknown call is a 404 page.
func (u *UI) call(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), callsTimeout)
	defer cancel()
	got, err := u.cfg.History.GetCall(ctx, &cpv1.GetCallRequest{CallId: id})
	if err != nil {
		u.fail(w, r, "Call "+id, err)
		return
	}
	diff, err := u.cfg.History.GetCallDiff(ctx, &cpv1.GetCallDiffRequest{CallId: id})
	if err != nil {
		u.fail(w, r, "Call "+id, err)
		return
	}
	u.render(w, r, "call.html", http.StatusOK, page{Title: "Call " + id, Nav: "calls", Data: buildCallPage(got, diff)})
}

// buildCallPage turns a call and its diff into the page's view.
func buildCallPage(got *cpv1.GetCallResponse, diff *cpv1.GetCallDiffResponse) callPage {
	c := got.GetCall()
	p := callPage{Summary: callSummaryOf(c)}
	openai := callIsOpenAI(c.GetFormat(), diff.GetRequest().GetOriginal().AsMap(), diff.GetResponse().GetOriginal().AsMap())
	p.Request = callBodyOf(diff.GetRequest(), func(m map[string]any) []callItem { return requestCallItems(openai, m) }, requestItemPaths)
	p.Response = callBodyOf(diff.GetResponse(), func(m map[string]any) []callItem { return responseCallItems(openai, m) }, responseItemPaths)

	var start time.Time
	if c.GetStartedAt() != nil {
		start = c.GetStartedAt().AsTime()
	}
	events := append([]*cpv1.CallEvent(nil), got.GetEvents()...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].GetTime().AsTime().Before(events[j].GetTime().AsTime()) })
	for _, ev := range events {
		typ := ev.GetEventType()
		p.Events = append(p.Events, callEventView{Type: typ, Offset: eventOffset(start, ev), Note: eventNote(ev)})
		switch {
		case strings.HasPrefix(typ, "policy."):
			p.Policy = append(p.Policy, policyEventOf(start, ev))
		case typ == "stream.timeline":
			p.Timeline = timelineOf(ev)
		case typ == "error":
			p.Errors = append(p.Errors, errorEventOf(start, ev))
		case typ == "route" || typ == "request.upstream" || typ == "response.upstream":
			p.addUpstream(ev)
		}
	}
	return p
}

// callSummaryOf shows a call's summary.
func callSummaryOf(c *cpv1.CallSummary) callSummaryView {
	s := callSummaryView{
		ID: c.GetCallId(), SessionID: c.GetSessionId(), UserID: c.GetUserId(), Model: c.GetModel(),
		Format: callFormatName(c.GetFormat()), Upstream: c.GetUpstream(), Status: c.GetStatus(), Stream: c.GetStream(),
		Intervened: c.GetIntervened(), Revision: c.GetPolicyRevision(), Error: c.GetError(),
		Started: callTime(c.GetStartedAt()), Finished: callTime(c.GetFinishedAt()),
		TTFT: callDuration(c.GetTtftMs()), Duration: callDuration(c.GetDurationMs()),
	}
	if u := c.GetUsage(); u != nil {
		s.HasUsage = true
		s.InputTokens, s.OutputTokens = u.GetInputTokens(), u.GetOutputTokens()
		s.CacheCreationTokens, s.CacheReadTokens = u.GetCacheCreationInputTokens(), u.GetCacheReadInputTokens()
	}
	return s
}

// callBodyOf compares an original and a final body: item by item when a
// policy changed it, else shown once. covered matches the JSON paths the
// items show; the other changes are listed.
func callBodyOf(d *cpv1.JSONDiff, items func(map[string]any) []callItem, covered *regexp.Regexp) callBodyView {
	if d.GetOriginal() == nil && d.GetFinal() == nil {
		return callBodyView{}
	}
	orig, fin := d.GetOriginal().AsMap(), d.GetFinal().AsMap()
	if d.GetFinal() == nil {
		fin = orig
	}
	v := callBodyView{Recorded: true, Changed: d.GetChanged(), Changes: len(d.GetChanges()),
		OriginalJSON: indentJSONValue(orig), FinalJSON: indentJSONValue(fin)}
	a := items(orig)
	if !v.Changed {
		for _, it := range a {
			v.Once = append(v.Once, plainItemView(it, false, "same"))
		}
		return v
	}
	rows := compareCallItems(a, items(fin))
	v.ItemsSame = true
	for _, r := range rows {
		v.ItemsSame = v.ItemsSame && r.State == "same"
	}
	v.Lines = foldItemRows(rows)
	for _, ch := range d.GetChanges() {
		if covered.MatchString(ch.GetPath()) {
			continue
		}
		v.Other = append(v.Other, jsonChangeView{Path: ch.GetPath(), Op: ch.GetOp(), Before: changeValueText(ch.GetBefore()), After: changeValueText(ch.GetAfter())})
	}
	return v
}

// requestItemPaths and responseItemPaths match the JSON pointers of what the
// items show of a request and of a response.
var (
	requestItemPaths  = regexp.MustCompile(`^/(messages|system)(/|$)`)
	responseItemPaths = regexp.MustCompile(`^/((content|stop_reason|stop_sequence|error)(/|$)|choices(/[0-9]+(/(message|finish_reason)(/|$)|$)|$))`)
)

// changeValueText is a JSON value as compact JSON text; "" when absent.
func changeValueText(v *structpb.Value) string {
	if v == nil {
		return ""
	}
	return clipText(compactJSONValue(v.AsInterface()), 2000)
}

// callFormatName names a client format: openai or anthropic.
func callFormatName(f cpv1.ClientFormat) string {
	switch f {
	case cpv1.ClientFormat_CLIENT_FORMAT_OPENAI_CHAT:
		return "openai"
	case cpv1.ClientFormat_CLIENT_FORMAT_ANTHROPIC_MESSAGES:
		return "anthropic"
	}
	return "unknown"
}

// callDuration writes a duration for the page; "–" when unknown.
func callDuration(v float64) string {
	if v == 0 {
		return "–"
	}
	return callMs(v)
}
