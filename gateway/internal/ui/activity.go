package ui

import "net/http"

// activityFilter is the activity page's filter, from its query string:
// call, session and event type are applied by the feed itself, model by
// the page (the feed learns a call's model from its request).
type activityFilter struct {
	Call, Session, Model, Type string
}

func (u *UI) activity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := activityFilter{Call: q.Get("call_id"), Session: q.Get("session_id"), Model: q.Get("model"), Type: q.Get("type")}
	u.render(w, r, "activity.html", http.StatusOK, page{Title: "Activity", Nav: "activity", Data: f})
}
