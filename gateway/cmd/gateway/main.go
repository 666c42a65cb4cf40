// Command gateway runs the Luthien Gateway HTTP front end, with the control
// plane in-process (default) or dialled over the network.
//
// `gateway -list-settings` prints the environment variables it reads, one
// per line, and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"luthien.dev/gateway/internal/app"
	"luthien.dev/gateway/internal/config"
	"luthien.dev/settings"
)

// gcPercent is the garbage collector's target when GOGC is not set: the
// gateway allocates per request and per event and keeps little, so
// collecting when the heap has grown 3× instead of 2× halves the
// collector's work for some tens of MB (docs/PERFORMANCE.md).
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if settings.ListRequested(os.Args[1:]) {
		if err := listSettings(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "gateway:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if help := (*config.HelpError)(nil); errors.As(err, &help) {
			fmt.Print(help.Error())
			fmt.Print(tracingUsage)
			return
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	handler, err := app.NewLogHandler(cfg.LogFormat, stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	log := slog.New(handler)
	opts, stopTracing, err := tracing(ctx, getenv)
	if err != nil {
		return err
	}
	defer stopTracing()
	a, err := app.NewWithOptions(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Headers must arrive within 10s and bodies within the body read
	// timeout (set per request by the proxy); idle keep-alive connections
	// close after two minutes. No ReadTimeout or WriteTimeout: streamed
	// answers and the activity feed last as long as they last.
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 1 << 20}
	if cfg.InsecureAdmin && cfg.AdminAPIKey == "" {
		log.Warn("LUTHIEN_INSECURE_ADMIN is set and there is no admin key: the admin surface (UI, /api/, /metrics) is open to every client that can reach this address")
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "config", cfg)

	g, gctx := errgroup.WithContext(ctx)
	if cfg.DebugAddr != "" {
		dln, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			return fmt.Errorf("listen on the debug address: %w", err)
		}
		// The profiler is an admin surface: loopback only (config checks the
		// address) and behind the admin key when there is one.
		dbg := &http.Server{Handler: a.Guard().Protect(profiler()), ReadHeaderTimeout: 10 * time.Second}
		log.Info("profiler listening", "addr", dln.Addr().String())
		g.Go(func() error {
			<-gctx.Done()
			return dbg.Close()
		})
		g.Go(func() error {
			if err := dbg.Serve(dln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve profiler: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		return nil
	})
	return g.Wait()
}

// listSettings writes the environment variables the gateway reads, one per
// line (deploy/ checks the deployment files against them).
func listSettings(w io.Writer) error {
	names, err := config.SettingNames()
	if err != nil {
		return err
	}
	return settings.WriteNames(w, append(names, app.TracingSettings...))
}

// profiler serves the Go profiler's pages under /debug/pprof/, except
// cmdline, which would show keys given as flags.
func profiler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/cmdline" {
			http.NotFound(w, r)
			return
		}
		pprof.Index(w, r)
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
