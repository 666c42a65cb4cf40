package ui

import (
	"context"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// homeData is the landing page: the gateway's state and how to point
// clients at it.
type homeData struct {
	Ready      bool
	ReadyError string
	Mode       string
	Stats      *cpv1.GetStatsResponse
	StatsError string
	Active     *cpv1.ActivePolicy
	BaseURL    string
	Keyed      bool
}

func (u *UI) home(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	d := homeData{Mode: u.cfg.Mode, BaseURL: baseURL(r), Keyed: u.cfg.Guard.HasKey()}
	if resp, err := u.cfg.Health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		d.ReadyError = err.Error()
	} else {
		d.Ready = resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}
	if st, err := u.cfg.History.GetStats(ctx, &cpv1.GetStatsRequest{}); err != nil {
		d.StatsError = err.Error()
	} else {
		d.Stats = st
	}
	if p, err := u.cfg.Policy.GetPolicy(ctx, &cpv1.GetPolicyRequest{}); err == nil {
		d.Active = p.GetActive()
	}
	u.render(w, r, "home.html", http.StatusOK, page{Title: "Gateway", Nav: "home", Data: d})
}

// baseURL is how this request reached the gateway, for the set-up
// commands.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
