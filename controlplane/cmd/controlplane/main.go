// Command controlplane serves the Luthien control plane over gRPC: the
// policy service the gateway calls for every proxied request, the policy
// admin service, gRPC health and server reflection.
//
// The link to the gateways can use TLS (mutual with a client CA) and a
// shared bearer token; a listen address other than loopback is refused
// without a token or mutual TLS unless LUTHIEN_GRPC_INSECURE=1.
//
// Configuration comes from flags, then environment variables (LUTHIEN_*,
// DATABASE_URL, REDIS_URL), then defaults; run with -h for the list.
//
// `controlplane migrate` applies the database migrations (DATABASE_URL or
// -database-url) and exits; the server also applies them at start-up.
// `controlplane -list-settings` prints the environment variables it reads,
// one per line, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"luthien.dev/controlplane/internal/db"
	"luthien.dev/controlplane/server"
	"luthien.dev/migrations"
	"luthien.dev/settings"
)

// shutdownTimeout bounds the graceful stop; calls still running after it
// are cut off.
const shutdownTimeout = 10 * time.Second

// gcPercent is the garbage collector's target when GOGC is not set: the
// control plane allocates per request and per event and keeps little, so
// collecting when the heap has grown 3× instead of 2× halves the
// collector's work for some tens of MB (docs/PERFORMANCE.md).
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		os.Exit(1)
	}
}

// run serves the control plane until ctx is done, then shuts down:
// health goes NOT_SERVING, calls in flight get shutdownTimeout to finish,
// then the server stops.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(ctx, args[1:], getenv)
	}
	if settings.ListRequested(args) {
		return listSettings(os.Stdout)
	}
	cfg, err := loadConfig(args, getenv, os.Stderr)
	if err != nil {
		return err
	}
	if err := cfg.checkExposure(); err != nil {
		return err
	}
	handler, err := server.NewLogHandler(cfg.logFormat, os.Stderr, cfg.logLevel)
	if err != nil {
		return err
	}
	logger := slog.New(handler)
	tlsCfg, err := cfg.serverTLS()
	if err != nil {
		return err
	}
	cfg.warnLink(logger)
	tel, err := startTelemetry(ctx, cfg, getenv, tlsCfg, logger)
	if err != nil {
		return err
	}
	defer tel.close()

	srv, err := server.New(server.Config{
		PolicyConfigPath: cfg.policyConfig,
		Logger:           logger,
		DatabaseURL:      cfg.DatabaseURL,
		RedisURL:         cfg.RedisURL,
		RedisPrefix:      cfg.RedisPrefix,
		RetentionDays:    cfg.RetentionDays,
		CacheTTL:         cfg.CacheTTL,
		CacheMode:        cfg.CacheMode,
		QueueCapacity:    cfg.QueueCapacity,
		Token:            cfg.token,
		Metrics:          tel.registry,
		TracerProvider:   tel.tracerProvider(),
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Connections recycle (so that calls rebalance when control planes
	// are added) and the gateways' keepalive pings are accepted.
	opts := server.NetworkOptions()
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	gs := srv.NewGRPCServer(opts...)
	logger.Info("control plane listening", "addr", lis.Addr().String(),
		"tls", tlsCfg != nil, "mutual_tls", cfg.tlsClientCA != "", "token", cfg.token != "")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// ErrServerStopped: the shutdown came before Serve started.
		if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(tel.serve)
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("control plane shutting down")
		tel.stop()
		srv.Shutdown()
		stopGracefully(gs, shutdownTimeout)
		// Write what is still queued, then close the connections.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), shutdownTimeout)
		defer cancel()
		if err := srv.Close(cctx); err != nil {
			logger.Error("control plane closed with records unwritten", "error", err)
		}
		return nil
	})
	return g.Wait()
}

// migrate applies the database migrations and checks the schema version.
func migrate(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := loadConfig(args, getenv, os.Stderr)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return fmt.Errorf("migrate: no database: set -database-url or %s", envDatabaseURL)
	}
	handler, err := server.NewLogHandler(cfg.logFormat, os.Stderr, cfg.logLevel)
	if err != nil {
		return err
	}
	logger := slog.New(handler)
	pool, err := db.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	pool.Close()
	logger.Info("database schema is current", "url", server.RedactURL(cfg.DatabaseURL), "version", migrations.Latest())
	return nil
}

// listSettings writes the environment variables the control plane reads,
// one per line (deploy/ checks the deployment files against them).
func listSettings(w io.Writer) error {
	names, err := settingNames()
	if err != nil {
		return err
	}
	return settings.WriteNames(w, names)
}

// stopGracefully stops gs gracefully, or forcibly once timeout passes.
func stopGracefully(gs *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		gs.Stop()
		<-done
	}
}
