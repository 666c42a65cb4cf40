package check

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// composeFile reads docker-compose.yml and .env.example.
func composeFile(t *testing.T) (path string, content []byte, env map[string]string) {
	t.Helper()
	path = filepath.Join(root, "docker-compose.yml")
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env, err = ReadEnvFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	return path, content, env
}

// loadCompose loads content as docker-compose.yml with env and profiles.
func loadCompose(t *testing.T, content []byte, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	p, err := LoadCompose(context.Background(), filepath.Join(root, "docker-compose.yml"), content, env, profiles...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkComposeModes loads content without a profile and with profile
// single, and returns every finding of both and of their modes.
func checkComposeModes(t *testing.T, content []byte, env map[string]string) []error {
	t.Helper()
	split := loadCompose(t, content, env)
	single := loadCompose(t, content, env, "single")
	errs := CheckCompose(split, settings)
	errs = append(errs, CheckCompose(single, settings)...)
	return append(errs, CheckComposeModes(split, single)...)
}

// TestCompose checks docker-compose.yml, with the values of .env.example,
// in both modes: the split one by default, the single process with
// profile single.
func TestCompose(t *testing.T) {
	_, content, env := composeFile(t)
	expectNone(t, checkComposeModes(t, content, env))

	services := func(p *types.Project) []string { return slices.Sorted(maps.Keys(p.Services)) }
	if got, want := services(loadCompose(t, content, env)), []string{"controlplane", "gateway", "migrate", "postgres", "redis"}; !slices.Equal(got, want) {
		t.Errorf("services without a profile: %v, want %v", got, want)
	}
	single := loadCompose(t, content, env, "single")
	if got, want := services(single), []string{"controlplane", "gateway", "gateway-single", "migrate", "postgres", "redis"}; !slices.Equal(got, want) {
		t.Errorf("services with profile single: %v, want %v", got, want)
	}
	if got := single.Services["migrate"].Command; !slices.Equal(got, types.ShellCommand{"migrate"}) {
		t.Errorf("migrate runs %v, want the controlplane's migrate subcommand", got)
	}
}

// TestComposeSecretsRequired checks that the secrets come from .env: the
// compose file refuses to load without each of them (no default value
// to deploy by accident).
func TestComposeSecretsRequired(t *testing.T) {
	path, content, env := composeFile(t)
	for _, name := range []string{"LUTHIEN_ADMIN_API_KEY", "LUTHIEN_CONTROL_PLANE_TOKEN", "POSTGRES_PASSWORD"} {
		t.Run(name, func(t *testing.T) {
			without := maps.Clone(env)
			delete(without, name)
			_, err := LoadCompose(context.Background(), path, content, without, "single")
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("loaded without %s: %v", name, err)
			}
		})
	}
}

// TestEnvExampleDocumentsEveryVariable checks that .env.example mentions
// every variable docker-compose.yml takes from the environment.
func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	_, content, _ := composeFile(t)
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(string(content), -1) {
		if !regexp.MustCompile(`(?m)^#? ?` + m[1] + `=`).Match(example) {
			t.Errorf(".env.example does not mention %s", m[1])
		}
	}
}

// TestComposeBroken feeds docker-compose.yml with one deliberate fault
// each and checks that the validator reports it.
func TestComposeBroken(t *testing.T) {
	const token = "LUTHIEN_CONTROL_PLANE_TOKEN: ${LUTHIEN_CONTROL_PLANE_TOKEN:?set LUTHIEN_CONTROL_PLANE_TOKEN in .env"
	tests := []struct {
		name, service, old, new, want string
	}{
		{"unknown setting", "  gateway:", "LUTHIEN_LOG_LEVEL: ${LUTHIEN_LOG_LEVEL:-info}", "LUTHIEN_LOGLEVEL: info",
			"environment LUTHIEN_LOGLEVEL is not a setting of the gateway"},
		{"gateway setting on the control plane", "  controlplane:", "LUTHIEN_GRPC_ADDR: 0.0.0.0:9000", "LUTHIEN_GRPC_ADDR: 0.0.0.0:9000\n      LUTHIEN_HTTP_ADDR: 0.0.0.0:8000",
			"environment LUTHIEN_HTTP_ADDR is not a setting of the controlplane"},
		{"published on all interfaces", "  gateway:", `"${LUTHIEN_PUBLISH:-127.0.0.1:8000}:8000"`, `"8000:8000"`,
			"published on all interfaces"},
		{"published on 0.0.0.0", "  gateway-single:", `"${LUTHIEN_SINGLE_PUBLISH:-127.0.0.1:8001}:8000"`, `"0.0.0.0:8001:8000"`,
			"published on all interfaces"},
		{"control plane published", "  controlplane:", "expose:\n      - \"9000\"", "ports:\n      - \"127.0.0.1:9000:9000\"",
			"only the gateway publishes one"},
		{"redis published", "  redis:", "restart: unless-stopped", "restart: unless-stopped\n    ports:\n      - \"127.0.0.1:6379:6379\"",
			"service redis: publishes ports"},
		{"published port is not the listener", "  gateway:", `127.0.0.1:8000}:8000"`, `127.0.0.1:8000}:8080"`,
			"publishes container port 8080"},
		{"healthy without a health check", "  redis:", "    healthcheck:\n      test: [\"CMD-SHELL\", \"redis-cli ping | grep -q PONG\"]\n      interval: 5s\n      timeout: 3s\n      retries: 12\n", "",
			"waits for redis to be healthy, but redis has no health check"},
		{"postgres check without pg_isready", "  postgres:", `["CMD", "pg_isready", "-U", "luthien", "-d", "luthien"]`, `["CMD", "true"]`,
			"PostgreSQL needs a health check with pg_isready"},
		{"migration restarts", "  migrate:", `restart: "no"`, "restart: unless-stopped",
			"waits for migrate to complete, but migrate never completes"},
		{"control plane starts before the migration", "  controlplane:", "condition: service_completed_successfully", "condition: service_started",
			"must wait for the migration"},
		{"gateway starts before the control plane is healthy", "  gateway:", "condition: service_healthy", "condition: service_started",
			"must wait for controlplane to be healthy"},
		{"control plane starts before postgres is healthy", "  controlplane:", "postgres:\n        condition: service_healthy", "postgres:\n        condition: service_started",
			"must wait for postgres to be healthy"},
		{"tokens differ", "  gateway:", token + "}", "LUTHIEN_CONTROL_PLANE_TOKEN: another-token-0123456789abcdef",
			"LUTHIEN_CONTROL_PLANE_TOKEN differs from controlplane's"},
		{"control plane without a token", "  controlplane:", token + " (openssl rand -hex 32)}", "LUTHIEN_CACHE_MODE: temperature0",
			"without LUTHIEN_CONTROL_PLANE_TOKEN"},
		{"wrong control plane port", "  gateway:", "LUTHIEN_CONTROL_PLANE: controlplane:9000", "LUTHIEN_CONTROL_PLANE: controlplane:9001",
			"port 9001, but controlplane listens on port \"9000\""},
		{"control plane is not a service", "  gateway:", "LUTHIEN_CONTROL_PLANE: controlplane:9000", "LUTHIEN_CONTROL_PLANE: cp:9000",
			"does not name a control plane service"},
		{"gateway without an admin key", "  gateway:", "LUTHIEN_ADMIN_API_KEY: ${LUTHIEN_ADMIN_API_KEY:?set LUTHIEN_ADMIN_API_KEY in .env (openssl rand -hex 32)}", "LUTHIEN_SESSION_TTL: 1h",
			"without LUTHIEN_ADMIN_API_KEY"},
		{"split gateway with a database", "  gateway:", "LUTHIEN_HTTP_ADDR: 0.0.0.0:8000", "LUTHIEN_HTTP_ADDR: 0.0.0.0:8000\n      DATABASE_URL: postgres://postgres/luthien",
			"sets DATABASE_URL with a standalone control plane"},
		{"policy file not in the image", "  controlplane:", "/config/policies/noop.yaml", "/config/policies/nope.yaml",
			"LUTHIEN_POLICY_CONFIG /config/policies/nope.yaml is not in the image"},
		{"health check program not in the image", "  controlplane:", `"/grpc_health_probe"`, `"/bin/grpc_health_probe"`,
			"the health check runs /bin/grpc_health_probe"},
		{"health check on the wrong port", "  controlplane:", "-addr=127.0.0.1:9000", "-addr=127.0.0.1:9090",
			"the health check probes 127.0.0.1:9090"},
		{"writable root file system", "  gateway:", "read_only: true", "read_only: false",
			"service gateway: needs read_only: true"},
		{"capabilities kept", "  migrate:", "cap_drop: [ALL]", "cap_drop: [NET_RAW]",
			"service migrate: needs cap_drop: [ALL]"},
		{"database host is not a service", "  controlplane:", "@postgres:5432", "@db:5432",
			"DATABASE_URL names host \"db\", which is not a service"},
		{"single process on another database", "  gateway-single:", "@postgres:5432/luthien?", "@postgres:5432/other?",
			"DATABASE_URL differs"},
		{"single process in the default mode", "  gateway-single:", "    profiles: [single]\n", "",
			"want one split-mode gateway and no in-process one"},
	}
	_, content, env := composeFile(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := replaceOnce(t, string(content), "\n"+tt.service+"\n", tt.old, tt.new)
			expectFinding(t, checkComposeModes(t, []byte(broken), env), tt.want)
		})
	}
}
