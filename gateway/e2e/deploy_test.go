package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No container engine runs here, so the deployment files are validated
// instead of run: every Dockerfile the compose file names exists and
// builds a command that exists, every file it copies exists, and every
// setting the compose file gives a service is one that service's binary
// documents in its -h.
func TestDeploymentFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image string
			Build *struct {
				Context    string
				Dockerfile string
			}
			Environment map[string]string
			DependsOn   []string `yaml:"depends_on"`
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	binaries := map[string]string{"gateway": "gateway", "controlplane": "controlplane"}
	built := 0
	for name, svc := range compose.Services {
		for _, dep := range svc.DependsOn {
			if _, ok := compose.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		if svc.Build == nil {
			if svc.Image == "" {
				t.Errorf("%s has neither build nor image", name)
			}
			continue
		}
		built++
		ctxDir := filepath.Join(root, svc.Build.Context)
		df, err := os.ReadFile(filepath.Join(ctxDir, svc.Build.Dockerfile))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		checkDockerfile(t, ctxDir, string(df))
		bin, ok := binaries[name]
		if !ok {
			t.Errorf("service %s builds an unknown binary", name)
			continue
		}
		usage, _ := exec.Command(filepath.Join(binDir, bin), "-h").CombinedOutput()
		for k := range svc.Environment {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).Match(usage) {
				t.Errorf("%s sets %s, which %s does not document:\n%s", name, k, bin, usage)
			}
		}
	}
	if built != len(binaries) {
		t.Errorf("compose builds %d services, want %d", built, len(binaries))
	}
}

var (
	goBuildRE = regexp.MustCompile(`cd (\S+) && .*go build .* (\./cmd/\S+)`)
	copyRE    = regexp.MustCompile(`(?m)^COPY (?:--from=\S+ )?(\S+) \S+$`)
)

func checkDockerfile(t *testing.T, ctxDir, df string) {
	t.Helper()
	m := goBuildRE.FindStringSubmatch(df)
	if m == nil {
		t.Errorf("Dockerfile builds no command:\n%s", df)
		return
	}
	if _, err := os.Stat(filepath.Join(ctxDir, m[1], m[2], "main.go")); err != nil {
		t.Errorf("Dockerfile builds %s/%s: %v", m[1], m[2], err)
	}
	for _, c := range copyRE.FindAllStringSubmatch(df, -1) {
		if strings.HasPrefix(c[0], "COPY --from") || c[1] == "." {
			continue
		}
		if _, err := os.Stat(filepath.Join(ctxDir, c[1])); err != nil {
			t.Errorf("Dockerfile copies %s: %v", c[1], err)
		}
	}
}
