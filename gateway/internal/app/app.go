// Package app is the gateway's composition root: it connects to the control
// plane (linked in-process over bufconn, or dialled over the network) and
// assembles the HTTP front end. It is the only package of the gateway that
// may import the control plane's server package.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"luthien.dev/controlplane/server"
	"luthien.dev/gateway/internal/admin"
	"luthien.dev/gateway/internal/config"
	"luthien.dev/gateway/internal/live"
	"luthien.dev/gateway/internal/proxy"
	"luthien.dev/gateway/internal/record"
	"luthien.dev/gateway/internal/routesapi"
	"luthien.dev/gateway/internal/ui"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
	"luthien.dev/gen/openapiv2"
)

// MaxMessageBytes bounds one control-plane message; request bodies (up to
// 10 MiB) travel whole, with room for their canonical forms.
const MaxMessageBytes = 64 << 20

// App is a running gateway without its listener.
type App struct {
	handler  http.Handler
	guard    *admin.Guard
	routes   []Route
	conn     *grpc.ClientConn
	recorder *record.Recorder
	// unwatch ends the watch of the processing modes.
	unwatch context.CancelFunc
	stop    func()
}

// NewWithOptions connects to the control plane and builds the HTTP
// handler, with its metrics and, given a tracer provider, its traces.
func NewWithOptions(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*App, error) {
	a := &App{stop: func() {}}
	tel, err := newTelemetry(cfg, opts)
	if err != nil {
		return nil, err
	}
	dialOpts, err := linkOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	dialOpts = append(dialOpts, tel.dialOptions()...)
	dialOpts = append(dialOpts,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
	target := cfg.ControlPlane
	if cfg.ControlPlane == config.InProcess {
		// The in-process control plane checks the token too when one is
		// set: the check follows the configuration, not the mode.
		srv, err := server.New(server.Config{PolicyConfigPath: cfg.PolicyConfig, Logger: log,
			DatabaseURL: cfg.DatabaseURL, RedisURL: cfg.RedisURL, RedisPrefix: cfg.RedisPrefix,
			RetentionDays: cfg.RetentionDays, CacheTTL: cfg.CacheTTL, CacheMode: cfg.CacheMode,
			QueueCapacity: cfg.QueueCapacity, Token: cfg.ControlPlaneToken,
			Metrics: tel.registry, TracerProvider: tel.provider})
		if err != nil {
			return nil, fmt.Errorf("in-process control plane: %w", err)
		}
		gs := srv.NewGRPCServer(grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
		lis := bufconn.Listen(1 << 20)
		go func() { _ = gs.Serve(lis) }()
		a.stop = func() {
			srv.Shutdown()
			stopGracefully(gs, 10*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Close(ctx); err != nil {
				log.Error("closing the in-process control plane", "err", err)
			}
		}
		target = "passthrough:///bufnet"
		dialOpts = append(dialOpts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		}))
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		a.stop()
		return nil, fmt.Errorf("control plane %s: %w", cfg.ControlPlane, err)
	}
	a.conn = conn

	// REST speaks the proto field names (snake_case), like the activity
	// feed, and shows zero values so clients see every field.
	// The admin guard's verdict on who the caller is travels to the
	// control plane as metadata (it records who changed the policy).
	rest := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}), runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
		if http.CanonicalHeaderKey(key) == admin.ActorHeader {
			return "x-luthien-actor", true
		}
		return runtime.DefaultHeaderMatcher(key)
	}))
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		cpv1.RegisterPolicyAdminServiceHandler, cpv1.RegisterHistoryServiceHandler,
	} {
		if err := register(ctx, rest, conn); err != nil {
			a.Close()
			return nil, fmt.Errorf("REST handlers: %w", err)
		}
	}
	a.recorder = record.New(log, record.Options{})
	if err := tel.registerRecorder(a.recorder); err != nil {
		a.Close()
		return nil, err
	}
	p := proxy.New(proxy.Config{
		OpenAIBaseURL: cfg.OpenAIBaseURL, AnthropicBaseURL: cfg.AnthropicBaseURL,
		ClientAPIKey: cfg.ClientAPIKey, OpenAIAPIKey: cfg.OpenAIAPIKey, AnthropicAPIKey: cfg.AnthropicAPIKey,
		PolicyTimeout: cfg.PolicyTimeout, Recorder: a.recorder,
		UpstreamHeaderTimeout: cfg.UpstreamHeaderTimeout, UpstreamIdleTimeout: cfg.UpstreamIdleTimeout,
		BodyReadTimeout: cfg.BodyReadTimeout, Metrics: tel.metrics, Tracer: tel.tracer(), Routes: cfg.RouteTable,
	}, cpv1.NewCallServiceClient(conn), log)
	wctx, unwatch := context.WithCancel(context.WithoutCancel(ctx))
	a.unwatch = unwatch
	go p.WatchProcessing(wctx)

	a.guard = admin.New(admin.Config{Key: cfg.AdminAPIKey, SessionSecret: cfg.SessionSecret, SessionTTL: cfg.SessionTTL,
		AllowedHosts: cfg.AllowedHosts, Insecure: cfg.InsecureAdmin})
	health := healthpb.NewHealthClient(conn)
	mode := "in-process"
	if cfg.ControlPlane != config.InProcess {
		mode = "split: control plane at " + cfg.ControlPlane
	}
	// The routing table can be replaced at run time (GET and PUT
	// /api/routes, the routes page); the proxy holds the table in effect.
	routeTable := routesapi.New(routesapi.Config{Proxy: p, Path: cfg.Routes, Log: log, KeyEnvs: cfg.RoutesKeyEnvs, Defaults: []routesapi.Default{
		{Endpoint: "/v1/chat/completions", Kind: "openai", BaseURL: routesapi.PublicURL(cfg.OpenAIBaseURL)},
		{Endpoint: "/v1/messages", Kind: "anthropic", BaseURL: routesapi.PublicURL(cfg.AnthropicBaseURL)},
	}})
	pages, err := ui.New(ui.Config{Guard: a.guard, History: cpv1.NewHistoryServiceClient(conn),
		Policy: cpv1.NewPolicyAdminServiceClient(conn), Health: health, Mode: mode, Log: log, Routes: routeTable})
	if err != nil {
		a.Close()
		return nil, err
	}

	rt := newRouter(a.guard)
	rt.metrics = tel.metrics
	p.Register(clientRoutes{rt})
	pages.Register(rt)
	rt.Admin("/api/v1/", rest)
	rt.Admin("GET /api/openapi.json", http.HandlerFunc(serveOpenAPI))
	routeTable.Register(rt)
	rt.Admin("GET /api/activity/stream", live.New(cpv1.NewActivityServiceClient(conn), log, cfg.Heartbeat))
	rt.Admin("GET /metrics", tel.handler())
	rt.Public("GET /health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	rt.Public("GET /ready", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			// The reason stays in the log: /ready answers anyone.
			if err != nil {
				log.WarnContext(ctx, "readiness check failed", "err", err)
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "control plane not serving"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	rt.Public("/", http.HandlerFunc(p.ServeRoot))
	a.routes = rt.routes
	a.handler = rt.mux
	return a, nil
}

// Handler is the gateway's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Routes lists every registered route with who may use it.
func (a *App) Routes() []Route { return a.routes }

// Guard is the admin guard, for other admin listeners (the profiler).
func (a *App) Guard() *admin.Guard { return a.guard }

// Close stops watching the processing modes, ends the calls still
// waiting for their records to be sent, disconnects from the control
// plane and stops it when in-process.
func (a *App) Close() {
	if a.unwatch != nil {
		a.unwatch()
	}
	if a.recorder != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a.recorder.Close(ctx)
		cancel()
	}
	if a.conn != nil {
		_ = a.conn.Close()
	}
	a.stop()
}

// serveOpenAPI serves the OpenAPI description of the REST API under
// /api/v1/, as generated from the protos.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, openapiv2.ControlPlane)
}

// stopGracefully lets in-flight RPCs finish for up to d, then stops.
func stopGracefully(gs *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		gs.Stop()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// LogHandler wraps the gateway's log handler so that credentials in log
// records are replaced, with the same table of credential forms as the
// recorded calls (the control plane's).
func LogHandler(h slog.Handler) slog.Handler { return server.RedactLogs(h) }
