// Command controlplane serves the Luthien control plane over gRPC: the
// policy service the gateway calls for every proxied request, the policy
// admin service, gRPC health and server reflection.
//
// Configuration comes from flags, then LUTHIEN_* environment variables,
// then defaults; run with -h for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"luthien.dev/controlplane/server"
)

// shutdownTimeout bounds the graceful stop; calls still running after it
// are cut off.
const shutdownTimeout = 10 * time.Second

func main() {
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
	cfg, err := loadConfig(args, getenv, os.Stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	srv, err := server.New(server.Config{PolicyConfigPath: cfg.policyConfig, Logger: logger})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	gs := srv.NewGRPCServer()
	logger.Info("control plane listening", "addr", lis.Addr().String())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// ErrServerStopped: the shutdown came before Serve started.
		if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("control plane shutting down")
		srv.Shutdown()
		stopGracefully(gs, shutdownTimeout)
		return nil
	})
	return g.Wait()
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
