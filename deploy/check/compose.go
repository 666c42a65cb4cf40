package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Dependency conditions of depends_on.
const (
	started   = types.ServiceConditionStarted
	healthy   = types.ServiceConditionHealthy
	completed = types.ServiceConditionCompletedSuccessfully
)

// ReadEnvFile reads a .env file as compose reads it.
func ReadEnvFile(path string) (map[string]string, error) {
	env, err := dotenv.Read(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return env, nil
}

// LoadCompose loads a compose file's content as `docker compose` would in
// the file's directory, with the variables env for interpolation and the
// profiles enabled.
func LoadCompose(ctx context.Context, path string, content []byte, env map[string]string, profiles ...string) (*types.Project, error) {
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: content}},
		Environment: env,
	}
	p, err := loader.LoadWithContext(ctx, details, loader.WithProfiles(profiles), func(o *loader.Options) {
		o.SetProjectName("luthien", true)
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return p, nil
}

// composeChecker checks one loaded project.
type composeChecker struct {
	p        *types.Project
	settings Settings
	errs     []error
}

// CheckCompose checks a loaded compose project: the binaries' services
// (recognised by their Dockerfile) set only variables their binary reads
// and the values it needs to start; only gateways publish ports, on
// loopback; dependencies wait for health checks that exist and for
// one-shot services that end; PostgreSQL and Redis have their health
// checks; the services run read-only without capabilities.
func CheckCompose(p *types.Project, s Settings) []error {
	c := &composeChecker{p: p, settings: s}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		svc := p.Services[name]
		c.dependencies(svc)
		c.healthCheck(svc)
		c.ports(svc)
		switch bin := c.binary(svc); {
		case bin == "":
		case isMigration(bin, svc):
			c.environment(svc, bin)
			c.hardening(svc)
			c.migration(svc)
		case bin == Gateway:
			c.environment(svc, bin)
			c.hardening(svc)
			c.gateway(svc)
		case bin == ControlPlane:
			c.environment(svc, bin)
			c.hardening(svc)
			c.controlPlane(svc)
		}
	}
	c.sharedState()
	return c.errs
}

// CheckComposeModes checks the deployment modes: the default project
// (no profile) runs one gateway linked to a standalone control plane, the
// project with profile "single" adds a gateway with the control plane
// in-process.
func CheckComposeModes(split, single *types.Project) []error {
	var errs []error
	modes := func(p *types.Project) (splitGateways, singleGateways []string) {
		c := &composeChecker{p: p}
		for name, svc := range p.Services {
			if c.binary(svc) != Gateway {
				continue
			}
			if cp := envOf(svc)["LUTHIEN_CONTROL_PLANE"]; cp == "" || cp == "inprocess" {
				singleGateways = append(singleGateways, name)
			} else {
				splitGateways = append(splitGateways, name)
			}
		}
		return splitGateways, singleGateways
	}
	if s, o := modes(split); len(s) != 1 || len(o) != 0 {
		errs = append(errs, fmt.Errorf("compose without a profile: want one split-mode gateway and no in-process one, got %v and %v", s, o))
	}
	if _, o := modes(single); len(o) != 1 {
		errs = append(errs, fmt.Errorf("compose with profile single: want one gateway with the control plane in-process, got %v", o))
	} else if svc := single.Services[o[0]]; !slices.Contains(svc.Profiles, "single") {
		errs = append(errs, fmt.Errorf("service %s: the in-process gateway must be in profile single only, has profiles %v", o[0], svc.Profiles))
	}
	return errs
}

func (c *composeChecker) fail(svc types.ServiceConfig, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("service %s: "+format, append([]any{svc.Name}, args...)...))
}

// binary is the binary a service runs: from its Dockerfile, or, for a
// service without a build, from a service that builds its image.
func (c *composeChecker) binary(svc types.ServiceConfig) Binary {
	if svc.Build == nil {
		for _, other := range c.p.Services {
			if other.Build != nil && other.Image != "" && other.Image == svc.Image {
				return c.binary(other)
			}
		}
		return ""
	}
	switch filepath.Base(svc.Build.Dockerfile) {
	case "Dockerfile.gateway":
		return Gateway
	case "Dockerfile.controlplane":
		return ControlPlane
	}
	return ""
}

// isMigration reports whether svc runs `controlplane migrate`.
func isMigration(bin Binary, svc types.ServiceConfig) bool {
	return bin == ControlPlane && len(svc.Command) > 0 && svc.Command[0] == "migrate"
}

// envOf returns a service's environment; a variable without a value is "".
func envOf(svc types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		} else {
			env[k] = ""
		}
	}
	return env
}

// environment checks that every variable is one the binary reads.
func (c *composeChecker) environment(svc types.ServiceConfig, bin Binary) {
	for _, name := range slices.Sorted(maps.Keys(svc.Environment)) {
		if !c.settings.Known(bin, name) {
			c.fail(svc, "environment %s is not a setting of the %s (%s -list-settings)", name, bin, bin)
		}
	}
}

// dependencies checks each depends_on condition against its target.
func (c *composeChecker) dependencies(svc types.ServiceConfig) {
	for name, dep := range svc.DependsOn {
		target, ok := c.p.Services[name]
		if !ok {
			c.fail(svc, "depends on %s, which is not a service of this project (profiles?)", name)
			continue
		}
		switch dep.Condition {
		case started:
		case healthy:
			if !hasHealthCheck(target) {
				c.fail(svc, "waits for %s to be healthy, but %s has no health check", name, name)
			}
		case completed:
			if r := target.Restart; r != "" && r != types.RestartPolicyNo && !strings.HasPrefix(r, types.RestartPolicyOnFailure) {
				c.fail(svc, "waits for %s to complete, but %s never completes (restart: %s)", name, name, r)
			}
		default:
			c.fail(svc, "depends on %s with unknown condition %q", name, dep.Condition)
		}
	}
}

// hasHealthCheck reports whether a service has a health check that runs.
func hasHealthCheck(svc types.ServiceConfig) bool {
	h := svc.HealthCheck
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// healthCheck checks the health checks of the images whose check is
// known, and that a check's program is in the image.
func (c *composeChecker) healthCheck(svc types.ServiceConfig) {
	image := svc.Image
	if i := strings.LastIndex(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	test := ""
	if hasHealthCheck(svc) {
		test = strings.Join(svc.HealthCheck.Test, " ")
	}
	switch {
	case strings.HasPrefix(image, "postgres"):
		if !strings.Contains(test, "pg_isready") {
			c.fail(svc, "PostgreSQL needs a health check with pg_isready, has %q", test)
		}
	case strings.HasPrefix(image, "redis"):
		if !strings.Contains(test, "redis-cli") || !strings.Contains(test, "ping") {
			c.fail(svc, "Redis needs a health check with redis-cli ping, has %q", test)
		}
	}
	if test == "" || svc.Build == nil || svc.HealthCheck.Test[0] != "CMD" || len(svc.HealthCheck.Test) < 2 {
		return
	}
	files, err := readDockerfile(c.dockerfile(svc), svc.Build.Context)
	if err != nil {
		c.fail(svc, "%v", err)
		return
	}
	if prog := svc.HealthCheck.Test[1]; !files.has(prog) {
		c.fail(svc, "the health check runs %s, which %s does not put in the image", prog, svc.Build.Dockerfile)
	}
	if c.binary(svc) == ControlPlane {
		if addr := flagValue(svc.HealthCheck.Test[2:], "addr"); addr != "" && port(addr) != port(envOf(svc)["LUTHIEN_GRPC_ADDR"]) {
			c.fail(svc, "the health check probes %s, but LUTHIEN_GRPC_ADDR is %q", addr, envOf(svc)["LUTHIEN_GRPC_ADDR"])
		}
	}
}

// dockerfile is the path of a service's Dockerfile.
func (c *composeChecker) dockerfile(svc types.ServiceConfig) string {
	if filepath.IsAbs(svc.Build.Dockerfile) {
		return svc.Build.Dockerfile
	}
	return filepath.Join(svc.Build.Context, svc.Build.Dockerfile)
}

// ports checks that only gateways publish, on loopback, their listener.
func (c *composeChecker) ports(svc types.ServiceConfig) {
	if len(svc.Ports) == 0 {
		return
	}
	bin := c.binary(svc)
	if bin != Gateway {
		c.fail(svc, "publishes ports %v: only the gateway publishes one", publishedPorts(svc))
		return
	}
	listen := envOf(svc)["LUTHIEN_HTTP_ADDR"]
	for _, p := range svc.Ports {
		if !isLoopbackHost(p.HostIP) {
			c.fail(svc, "port %s is published on all interfaces (host_ip %q): publish on 127.0.0.1 (e.g. ${LUTHIEN_PUBLISH:-127.0.0.1:8000}:8000)", p.Published, p.HostIP)
		}
		if fmt.Sprint(p.Target) != port(listen) {
			c.fail(svc, "publishes container port %d, but the gateway listens on LUTHIEN_HTTP_ADDR %q", p.Target, listen)
		}
	}
}

// publishedPorts renders a service's ports for messages.
func publishedPorts(svc types.ServiceConfig) []string {
	var out []string
	for _, p := range svc.Ports {
		out = append(out, fmt.Sprintf("%s:%s:%d", p.HostIP, p.Published, p.Target))
	}
	return out
}

// hardening checks that a binary's container runs read-only, without
// capabilities and without privilege escalation.
func (c *composeChecker) hardening(svc types.ServiceConfig) {
	if !svc.ReadOnly {
		c.fail(svc, "needs read_only: true (the binaries write no files)")
	}
	if !slices.Contains(svc.CapDrop, "ALL") {
		c.fail(svc, "needs cap_drop: [ALL]")
	}
	if !slices.Contains(svc.SecurityOpt, "no-new-privileges:true") && !slices.Contains(svc.SecurityOpt, "no-new-privileges") {
		c.fail(svc, "needs security_opt: [no-new-privileges:true]")
	}
	if svc.Privileged {
		c.fail(svc, "must not be privileged")
	}
}

// gateway checks a gateway's listener, admin key and control plane.
func (c *composeChecker) gateway(svc types.ServiceConfig) {
	env := envOf(svc)
	listen, ok := env["LUTHIEN_HTTP_ADDR"]
	if !ok || port(listen) == "" {
		c.fail(svc, "needs LUTHIEN_HTTP_ADDR host:port (the Dockerfile's default is not checked here), has %q", listen)
	}
	if !isLoopbackAddr(listen) && env["LUTHIEN_ADMIN_API_KEY"] == "" {
		c.fail(svc, "listens on %q without LUTHIEN_ADMIN_API_KEY: the gateway refuses to start", listen)
	}
	if k := env["LUTHIEN_ADMIN_API_KEY"]; k != "" && k == env["LUTHIEN_CLIENT_API_KEY"] {
		c.fail(svc, "LUTHIEN_ADMIN_API_KEY equals LUTHIEN_CLIENT_API_KEY: the gateway refuses to start")
	}
	if env["LUTHIEN_INSECURE_ADMIN"] != "" {
		c.fail(svc, "sets LUTHIEN_INSECURE_ADMIN: the admin surface must keep its key")
	}
	target := env["LUTHIEN_CONTROL_PLANE"]
	if target == "" || target == "inprocess" {
		c.store(svc)
		return
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "LUTHIEN_POLICY_CONFIG"} {
		if env[name] != "" {
			c.fail(svc, "sets %s with a standalone control plane: the gateway refuses to start (the control plane has it)", name)
		}
	}
	addr := controlPlaneAddr(target)
	host, cpPort := hostOf(addr), port(addr)
	cp, ok := c.p.Services[host]
	if !ok || c.binary(cp) != ControlPlane || isMigration(ControlPlane, cp) {
		c.fail(svc, "LUTHIEN_CONTROL_PLANE %q does not name a control plane service", target)
		return
	}
	cpEnv := envOf(cp)
	if want := port(cpEnv["LUTHIEN_GRPC_ADDR"]); cpPort != want {
		c.fail(svc, "LUTHIEN_CONTROL_PLANE %q: port %s, but %s listens on port %q", target, cpPort, host, want)
	}
	if d, ok := svc.DependsOn[host]; !ok || d.Condition != healthy {
		c.fail(svc, "must wait for %s to be healthy (depends_on condition: service_healthy)", host)
	}
	if cpEnv["LUTHIEN_CONTROL_PLANE_TOKEN"] != "" && env["LUTHIEN_CONTROL_PLANE_TOKEN"] != cpEnv["LUTHIEN_CONTROL_PLANE_TOKEN"] {
		c.fail(svc, "LUTHIEN_CONTROL_PLANE_TOKEN differs from %s's: every call would be refused", host)
	}
}

// controlPlane checks a standalone control plane's listener and storage.
func (c *composeChecker) controlPlane(svc types.ServiceConfig) {
	env := envOf(svc)
	listen := env["LUTHIEN_GRPC_ADDR"]
	if port(listen) == "" {
		c.fail(svc, "needs LUTHIEN_GRPC_ADDR host:port, has %q", listen)
	}
	if !isLoopbackAddr(listen) && env["LUTHIEN_CONTROL_PLANE_TOKEN"] == "" && env["LUTHIEN_GRPC_TLS_CLIENT_CA"] == "" {
		c.fail(svc, "listens on %q without LUTHIEN_CONTROL_PLANE_TOKEN (or mutual TLS): the control plane refuses to start", listen)
	}
	if env["LUTHIEN_GRPC_INSECURE"] != "" {
		c.fail(svc, "sets LUTHIEN_GRPC_INSECURE: the link must keep its token")
	}
	if !hasHealthCheck(svc) {
		c.fail(svc, "needs a health check (gateways wait for it)")
	}
	c.store(svc)
}

// store checks a control plane's PostgreSQL, Redis, migration and policy
// file (standalone or in a gateway).
func (c *composeChecker) store(svc types.ServiceConfig) {
	env := envOf(svc)
	for _, v := range []struct{ name, schemes string }{{"DATABASE_URL", "postgres postgresql"}, {"REDIS_URL", "redis rediss"}} {
		c.serviceURL(svc, v.name, env[v.name], strings.Fields(v.schemes))
	}
	var migrated bool
	for name, dep := range svc.DependsOn {
		if m, ok := c.p.Services[name]; ok && isMigration(c.binary(m), m) {
			migrated = dep.Condition == completed
			if envOf(m)["DATABASE_URL"] != env["DATABASE_URL"] {
				c.fail(svc, "DATABASE_URL differs from the one %s migrates", name)
			}
		}
	}
	if !migrated {
		c.fail(svc, "must wait for the migration (depends_on a `migrate` service, condition: service_completed_successfully)")
	}
	if path := env["LUTHIEN_POLICY_CONFIG"]; path != "" && svc.Build != nil {
		files, err := readDockerfile(c.dockerfile(svc), svc.Build.Context)
		if err != nil {
			c.fail(svc, "%v", err)
		} else if !files.has(path) {
			c.fail(svc, "LUTHIEN_POLICY_CONFIG %s is not in the image (%s)", path, svc.Build.Dockerfile)
		}
	}
}

// migration checks the migration service.
func (c *composeChecker) migration(svc types.ServiceConfig) {
	if len(svc.Command) != 1 {
		c.fail(svc, "runs %v: want exactly [migrate]", svc.Command)
	}
	c.serviceURL(svc, "DATABASE_URL", envOf(svc)["DATABASE_URL"], []string{"postgres", "postgresql"})
}

// serviceURL checks that a URL setting names a service of the project,
// with one of the schemes, that svc waits for until healthy.
func (c *composeChecker) serviceURL(svc types.ServiceConfig, name, value string, schemes []string) {
	if value == "" {
		c.fail(svc, "needs %s", name)
		return
	}
	u, err := url.Parse(value)
	if err != nil {
		// Without the URL, which may hold a password.
		c.fail(svc, "%s: %v", name, errors.Unwrap(err))
		return
	}
	if !slices.Contains(schemes, u.Scheme) {
		c.fail(svc, "%s: scheme %q, want one of %v", name, u.Scheme, schemes)
	}
	host := u.Hostname()
	if _, ok := c.p.Services[host]; !ok {
		c.fail(svc, "%s names host %q, which is not a service of this project", name, host)
		return
	}
	if d, ok := svc.DependsOn[host]; !ok || d.Condition != healthy {
		c.fail(svc, "must wait for %s to be healthy (depends_on condition: service_healthy) before using %s", host, name)
	}
}

// sharedState checks that every control plane of the project (standalone
// or in-process) uses the same PostgreSQL and Redis, so that they share
// calls, policy and feed.
func (c *composeChecker) sharedState() {
	seen := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.p.Services)) {
		svc := c.p.Services[name]
		bin := c.binary(svc)
		env := envOf(svc)
		if bin == "" || isMigration(bin, svc) || (bin == Gateway && env["LUTHIEN_CONTROL_PLANE"] != "" && env["LUTHIEN_CONTROL_PLANE"] != "inprocess") {
			continue
		}
		for _, v := range []string{"DATABASE_URL", "REDIS_URL", "LUTHIEN_REDIS_PREFIX"} {
			key := v + "=" + env[v]
			if first, ok := seen[v]; ok && first != key {
				c.fail(svc, "%s differs from another control plane's: they would not share calls, policy and feed", v)
			}
			seen[v] = key
		}
	}
}

// flagValue returns the value of -name=value or --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		for _, p := range []string{"-" + name + "=", "--" + name + "="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				return v
			}
		}
	}
	return ""
}
