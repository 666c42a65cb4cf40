package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The targets, in the order they run.
const (
	TargetDirect    = "direct"
	TargetFloor     = "floor"
	TargetNoop      = "gateway-noop"
	TargetAllCaps   = "gateway-allcaps"
	TargetSplit     = "gateway-split"
	TargetPostgres  = "gateway-postgres"
	allCapsPolicy   = "policy:\n  class: all_caps\n  config: {}\n"
	persistenceHint = "DATABASE_URL"
)

// AllTargets lists every target.
var AllTargets = []string{TargetDirect, TargetFloor, TargetNoop, TargetAllCaps, TargetSplit, TargetPostgres}

// targetDescriptions say what each target runs.
var targetDescriptions = map[string]string{
	TargetDirect:   "the fake upstream, called directly",
	TargetFloor:    "a minimal Go reverse proxy (read body, forward, flush per event)",
	TargetNoop:     "gateway, control plane in-process (bufconn), noop policy",
	TargetAllCaps:  "gateway, control plane in-process (bufconn), all_caps policy (every text chunk through the stream policy)",
	TargetSplit:    "gateway and control plane as separate processes over TCP, all_caps policy",
	TargetPostgres: "gateway-noop with PostgreSQL logging on (DATABASE_URL)",
}

// env is what starting a target needs.
type env struct {
	bins        Binaries
	upstream    string // the fake upstream's base URL
	dir         string // scratch directory
	databaseURL string
}

// running is a started target.
type running struct {
	base  string     // base URL the load is sent to
	procs []*Process // under test (their CPU and memory are measured)
	upper bool       // responses come back uppercased
	// pending, when set, says why the target cannot run; it is reported
	// instead of figures.
	pending string
}

// start starts the processes of target name.
func (e *env) start(ctx context.Context, name string) (*running, error) {
	gatewayEnv := []string{
		"LUTHIEN_HTTP_ADDR=127.0.0.1:0",
		"LUTHIEN_LOG_LEVEL=info",
		"OPENAI_BASE_URL=" + e.upstream + "/v1",
		"ANTHROPIC_BASE_URL=" + e.upstream,
		// A benchmark's own settings only: nothing inherited from the
		// shell may change what runs.
		"LUTHIEN_CONTROL_PLANE=", "LUTHIEN_POLICY_CONFIG=", "LUTHIEN_CLIENT_API_KEY=", "DATABASE_URL=",
	}
	switch name {
	case TargetDirect:
		return &running{base: e.upstream}, nil
	case TargetFloor:
		p, err := Start(name, e.bins.Floor, []string{"-upstream", e.upstream}, nil)
		if err != nil {
			return nil, err
		}
		return e.ready(ctx, &running{base: "http://" + p.Addr, procs: []*Process{p}}, "")
	case TargetNoop:
		return e.startGateway(ctx, name, gatewayEnv, false)
	case TargetAllCaps:
		path := filepath.Join(e.dir, "all_caps.yaml")
		if err := os.WriteFile(path, []byte(allCapsPolicy), 0o644); err != nil {
			return nil, err
		}
		return e.startGateway(ctx, name, append(gatewayEnv, "LUTHIEN_POLICY_CONFIG="+path), true)
	case TargetSplit:
		path := filepath.Join(e.dir, "all_caps.yaml")
		if err := os.WriteFile(path, []byte(allCapsPolicy), 0o644); err != nil {
			return nil, err
		}
		cp, err := Start("controlplane", e.bins.ControlPlane, nil, []string{
			"LUTHIEN_GRPC_ADDR=127.0.0.1:0", "LUTHIEN_LOG_LEVEL=info", "LUTHIEN_POLICY_CONFIG=" + path, "DATABASE_URL="})
		if err != nil {
			return nil, err
		}
		r, err := e.startGateway(ctx, "gateway", append(gatewayEnv, "LUTHIEN_CONTROL_PLANE="+cp.Addr), true)
		if err != nil {
			cp.Stop()
			return nil, err
		}
		r.procs = append(r.procs, cp)
		return r, nil
	case TargetPostgres:
		if !persistenceLanded(e.bins.Gateway) {
			return &running{pending: "pending (persistence not landed)"}, nil
		}
		if e.databaseURL == "" {
			return &running{pending: "skipped (no database: set DATABASE_URL or -database-url)"}, nil
		}
		return e.startGateway(ctx, name, append(gatewayEnv, "DATABASE_URL="+e.databaseURL), false)
	}
	return nil, fmt.Errorf("bench: unknown target %q", name)
}

func (e *env) startGateway(ctx context.Context, name string, vars []string, upper bool) (*running, error) {
	p, err := Start(name, e.bins.Gateway, nil, vars)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, &running{base: "http://" + p.Addr, procs: []*Process{p}, upper: upper}, "/ready")
}

// ready waits for a started target to answer readyPath (when set) with
// 200, stopping its processes when it does not within 10 s.
func (e *env) ready(ctx context.Context, r *running, readyPath string) (*running, error) {
	if readyPath == "" {
		return r, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+readyPath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			stopAll(r.procs)
			return nil, fmt.Errorf("bench: %s not ready: %v", r.procs[0].Name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// persistenceLanded reports whether the gateway binary knows
// DATABASE_URL, i.e. whether PostgreSQL persistence is built in.
func persistenceLanded(gatewayBinary string) bool {
	b, err := os.ReadFile(gatewayBinary)
	return err == nil && bytes.Contains(b, []byte(persistenceHint))
}
