// Command fakeupstream serves the fake LLM provider of the benchmark
// harness on a free port of 127.0.0.1, logging
// "fake upstream listening addr=HOST:PORT". It speaks the OpenAI and
// Anthropic APIs; what it answers is read from each request's
// X-Bench-Scenario header (see internal/bench), stamped with when it read
// the request and when it wrote each text delta (see
// fakeupstream.StampSep). It keeps no record of the requests, so its
// memory stays flat under load.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"luthien.dev/bench/fakeupstream"
	"luthien.dev/bench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakeupstream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (this command takes none)", args[0])
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := fakeupstream.New()
	defer srv.Close()
	srv.SetRecording(false)
	srv.SetResponder(bench.UpstreamScenario)
	log.Info("fake upstream listening", "addr", strings.TrimPrefix(srv.URL, "http://"))
	<-ctx.Done()
	return nil
}
