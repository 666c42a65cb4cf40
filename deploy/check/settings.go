// Package check validates the deployment files (docker-compose.yml and
// the Kubernetes manifests under deploy/k8s) against each other and
// against the settings the binaries read: every environment variable is
// one the binary knows, every reference (selector, port, probe, ConfigMap
// or Secret key, autoscaler target) points at something that exists, and
// the combinations the binaries refuse at start-up are refused here.
//
// No container engine or cluster is needed: the files are decoded with
// the compose loader and the Kubernetes API types, kustomizations are
// rendered in-process, and the binaries are asked for their settings
// (-list-settings).
package check

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
)

// Binary is a program of the project.
type Binary string

// The binaries a deployment runs.
const (
	Gateway      Binary = "gateway"
	ControlPlane Binary = "controlplane"
)

// Binaries lists every Binary.
var Binaries = []Binary{Gateway, ControlPlane}

// runtimeEnv are variables the Go runtime reads in every binary; the
// binaries' own configuration does not list them.
var runtimeEnv = []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"}

// Settings are the environment variables each binary reads.
type Settings map[Binary][]string

// Known reports whether bin reads the variable name.
func (s Settings) Known(bin Binary, name string) bool {
	return slices.Contains(s[bin], name) || slices.Contains(runtimeEnv, name)
}

// settingName is the shape of a variable name in a -list-settings line.
var settingName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Build builds every binary from the repository at root into dir and
// returns their paths.
func Build(ctx context.Context, root, dir string) (map[Binary]string, error) {
	paths := map[Binary]string{}
	for _, bin := range Binaries {
		out := filepath.Join(dir, string(bin))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/"+string(bin))
		cmd.Dir = filepath.Join(root, string(bin))
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", bin, err, b)
		}
		paths[bin] = out
	}
	return paths, nil
}

// ListSettings asks each binary for the variables it reads
// (`-list-settings`: one name per line).
func ListSettings(ctx context.Context, paths map[Binary]string) (Settings, error) {
	s := Settings{}
	for _, bin := range Binaries {
		cmd := exec.CommandContext(ctx, paths[bin], "-list-settings")
		cmd.Env = []string{}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s -list-settings: %w: %s", bin, err, stderr.Bytes())
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			name := sc.Text()
			if !settingName.MatchString(name) {
				return nil, fmt.Errorf("%s -list-settings: %q is not a variable name", bin, name)
			}
			s[bin] = append(s[bin], name)
		}
		if len(s[bin]) == 0 {
			return nil, fmt.Errorf("%s -list-settings: no settings", bin)
		}
	}
	return s, nil
}
