// Command bench runs the gateway's load harness (internal/bench): the fake
// upstream called directly, a minimal reverse proxy (the floor), and the
// gateway in its deployment modes, side by side against one fake upstream.
// It prints a Markdown table and, with -out-json and -out-md, writes the
// JSON results and the table to files.
//
//	go run ./cmd/bench -duration 3s -out-json bench.json -out-md bench.md
//	go run ./cmd/bench -smoke
//	go run ./cmd/bench -targets floor,gateway-noop
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"luthien.dev/bench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 3*time.Second, "measured window of each phase")
	smoke := fs.Bool("smoke", false, "a quick run with small loads, to check the harness works (figures not meaningful)")
	outJSON := fs.String("out-json", "", "write the results as JSON to this file")
	outMD := fs.String("out-md", "", "write the Markdown table to this file")
	targets := fs.String("targets", strings.Join(bench.AllTargets, ","), "comma-separated targets to run")
	phases := fs.String("phases", "", "comma-separated phases to run (default: all)")
	api := fs.String("api", string(bench.Anthropic), "client API of the loads: anthropic or openai")
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL for the gateway-postgres target ($DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := bench.Config{Duration: *duration, Smoke: *smoke, API: bench.API(*api), DatabaseURL: *dbURL, Progress: stderr}
	if *smoke && !isSet(fs, "duration") {
		cfg.Duration = 300 * time.Millisecond
	}
	cfg.Targets = splitList(*targets)
	cfg.PhaseNames = splitList(*phases)
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if *outMD != "" {
		if err := os.WriteFile(*outMD, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if *outJSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*outJSON, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
