package app

import (
	"os/exec"
	"strings"
	"testing"
)

// The proto service is the only seam between gateway and control plane:
// only this composition root (and the gateway binary through it) may
// import the control plane, and only its server package.
func TestOnlyCompositionRootImportsControlPlane(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}`, "luthien.dev/gateway/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		checked++
		for _, imp := range imports {
			if !strings.HasPrefix(imp, "luthien.dev/controlplane") {
				continue
			}
			if pkg != "luthien.dev/gateway/internal/app" || imp != "luthien.dev/controlplane/server" {
				t.Errorf("%s imports %s: only internal/app may import luthien.dev/controlplane/server", pkg, imp)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("listed only %d packages; the check saw nothing", checked)
	}
}
