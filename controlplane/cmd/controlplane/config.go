package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
)

// Environment variables read by the binary; a flag beats its variable.
const (
	envGRPCAddr     = "LUTHIEN_GRPC_ADDR"
	envPolicyConfig = "LUTHIEN_POLICY_CONFIG"
	envLogLevel     = "LUTHIEN_LOG_LEVEL"
)

// config is the binary's configuration, loaded once at start-up.
type config struct {
	// grpcAddr is the address the gRPC server listens on.
	grpcAddr string
	// policyConfig is the policy configuration file; empty runs noop.
	policyConfig string
	// logLevel is the minimum level logged.
	logLevel slog.Level
}

// loadConfig builds the configuration from flags, then environment
// variables (getenv; empty counts as unset), then defaults, and validates
// it. Usage and flag errors are written to output.
func loadConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	grpcAddr := envOr(getenv, envGRPCAddr, "127.0.0.1:9000")
	policyConfig := envOr(getenv, envPolicyConfig, "")
	logLevel := envOr(getenv, envLogLevel, "info")

	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&grpcAddr, "grpc-addr", grpcAddr, "gRPC listen address, host:port (env "+envGRPCAddr+")")
	fs.StringVar(&policyConfig, "policy-config", policyConfig, "policy configuration file (YAML); empty runs noop (env "+envPolicyConfig+")")
	fs.StringVar(&logLevel, "log-level", logLevel, "log level: debug, info, warn or error (env "+envLogLevel+")")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	cfg := config{grpcAddr: grpcAddr, policyConfig: policyConfig}
	if err := validateAddr(grpcAddr); err != nil {
		return config{}, fmt.Errorf("invalid -grpc-addr (%s) %q: %w", envGRPCAddr, grpcAddr, err)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return config{}, fmt.Errorf("invalid -log-level (%s) %q: want debug, info, warn or error", envLogLevel, logLevel)
	}
	if policyConfig != "" {
		if err := validateFile(policyConfig); err != nil {
			return config{}, fmt.Errorf("invalid -policy-config (%s): %w", envPolicyConfig, err)
		}
	}
	return cfg, nil
}

// envOr returns the variable's value, or def when it is unset or empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// validateAddr checks a host:port listen address.
func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// validateFile checks that path names a regular file.
func validateFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return errors.New(path + " is not a regular file")
	}
	return nil
}
