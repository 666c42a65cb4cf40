package check

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// k8sDir is the Kubernetes layout of the repository.
func k8sDir() string { return filepath.Join(root, "deploy", "k8s") }

// checkKustomization checks the kustomization in dir: its file list, then
// the rendered manifests. Rendering and decoding errors are findings too.
func checkKustomization(t *testing.T, dir string) (*Objects, []error) {
	t.Helper()
	errs := CheckKustomizationFiles(dir)
	out, err := Render(dir)
	if err != nil {
		return nil, append(errs, err)
	}
	o, err := DecodeManifests(out)
	if err != nil {
		return nil, append(errs, err)
	}
	return o, append(errs, CheckKubernetes(o, settings, root)...)
}

// TestKubernetes renders the base and the example overlay and checks
// them; both deploy the same objects, in their namespace.
func TestKubernetes(t *testing.T) {
	for _, tt := range []struct{ dir, namespace string }{
		{"base", "luthien"},
		{filepath.Join("overlays", "example"), "luthien-prod"},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			o, errs := checkKustomization(t, filepath.Join(k8sDir(), tt.dir))
			expectNone(t, errs)
			if o == nil {
				return
			}
			names := func(n int, name func(int) string) []string {
				var out []string
				for i := range n {
					out = append(out, name(i))
				}
				slices.Sort(out)
				return out
			}
			for kind, got := range map[string][]string{
				"Deployment":              names(len(o.Deployments), func(i int) string { return o.Deployments[i].Name }),
				"Service":                 names(len(o.Services), func(i int) string { return o.Services[i].Name }),
				"HorizontalPodAutoscaler": names(len(o.HPAs), func(i int) string { return o.HPAs[i].Name }),
				"PodDisruptionBudget":     names(len(o.PDBs), func(i int) string { return o.PDBs[i].Name }),
				"Job":                     names(len(o.Jobs), func(i int) string { return o.Jobs[i].Name }),
				"Secret":                  names(len(o.Secrets), func(i int) string { return o.Secrets[i].Name }),
				"ConfigMap":               names(len(o.ConfigMaps), func(i int) string { return hashless(o.ConfigMaps[i].Name) }),
				"Namespace":               names(len(o.Namespaces), func(i int) string { return o.Namespaces[i].Name }),
			} {
				want := map[string][]string{
					"Deployment":              {"controlplane", "gateway"},
					"Service":                 {"controlplane-headless", "gateway"},
					"HorizontalPodAutoscaler": {"controlplane", "gateway"},
					"PodDisruptionBudget":     {"controlplane", "gateway"},
					"Job":                     {"luthien-migrate"},
					"Secret":                  {"luthien-secrets"},
					"ConfigMap":               {"luthien-config"},
					"Namespace":               {tt.namespace},
				}[kind]
				if !slices.Equal(got, want) {
					t.Errorf("%s: %v, want %v", kind, got, want)
				}
			}
			for _, d := range o.Deployments {
				if d.Namespace != tt.namespace {
					t.Errorf("Deployment %s in namespace %q, want %q", d.Name, d.Namespace, tt.namespace)
				}
			}
		})
	}
}

// hashless drops the content hash kustomize appends to a generated name.
func hashless(name string) string {
	if i := strings.LastIndex(name, "-"); i > 0 {
		return name[:i]
	}
	return name
}

// TestDecodeManifestsStrict checks that decoding refuses what the API
// server would refuse or what the checks would skip.
func TestDecodeManifestsStrict(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selectr: {a: b}}\n", "unknown field"},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: http}]}\n", "port"},
		{"unchecked kind", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\n", "not a kind the deployment uses"},
		{"no kind", "metadata: {name: s}\n", "no apiVersion and kind"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeManifests([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeManifests: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestKubernetesBroken copies the layout, breaks one file of the base in
// each case, and checks that the validator reports it.
func TestKubernetesBroken(t *testing.T) {
	const gatewaySelector = "  selector:\n    matchLabels:\n      app.kubernetes.io/name: luthien\n      app.kubernetes.io/component: gateway\n"
	tests := []struct {
		name, file, block, old, new, want string
	}{
		{"selector does not match the pods", "gateway-deployment.yaml", "", gatewaySelector, strings.Replace(gatewaySelector, "component: gateway", "component: gatewai", 1),
			"Deployment gateway: selector app.kubernetes.io/component=gatewai,app.kubernetes.io/name=luthien does not match its pod labels"},
		{"selector selects the other deployment's pods", "gateway-deployment.yaml", "", gatewaySelector, "  selector:\n    matchLabels:\n      app.kubernetes.io/name: luthien\n",
			"selector also selects the pods of Deployment controlplane"},
		{"service targetPort is not a container port", "controlplane-service.yaml", "", "targetPort: grpc", "targetPort: grpc-port",
			"targetPort grpc-port is not a container port of Deployment controlplane"},
		{"headless port is not the container port", "controlplane-service.yaml", "", "port: 9000", "port: 9001",
			"clients of a headless Service connect to container port 9000"},
		{"round robin without a headless service", "controlplane-service.yaml", "", "  clusterIP: None\n", "",
			"needs a headless Service"},
		{"service selects nothing", "gateway-service.yaml", "selector:", "component: gateway", "component: web",
			"Service gateway: selector map[app.kubernetes.io/component:web app.kubernetes.io/name:luthien] selects no Deployment's pods"},
		{"unknown setting", "gateway-deployment.yaml", "", "- name: LUTHIEN_POLICY_TIMEOUT\n", "- name: LUTHIEN_POLICY_TIMEOUTS\n",
			"env LUTHIEN_POLICY_TIMEOUTS is not a setting of the gateway"},
		{"control plane setting on the gateway", "gateway-deployment.yaml", "", "- name: LUTHIEN_HTTP_ADDR\n", "- name: LUTHIEN_GRPC_ADDR\n",
			"env LUTHIEN_GRPC_ADDR is not a setting of the gateway"},
		{"missing secret key", "controlplane-deployment.yaml", "- name: DATABASE_URL", "key: DATABASE_URL", "key: DATABASE_URI",
			"env DATABASE_URL: Secret luthien-secrets has no key DATABASE_URI"},
		{"missing secret", "controlplane-deployment.yaml", "- name: REDIS_URL", "name: luthien-secrets", "name: luthien-secret",
			"env REDIS_URL: no Secret luthien-secret"},
		{"missing configmap key", "gateway-deployment.yaml", "- name: LUTHIEN_POLICY_TIMEOUT", "key: LUTHIEN_POLICY_TIMEOUT", "key: POLICY_TIMEOUT",
			"has no key POLICY_TIMEOUT"},
		{"missing configmap", "gateway-deployment.yaml", "- name: LUTHIEN_LOG_LEVEL", "name: luthien-config", "name: luthien-settings",
			"env LUTHIEN_LOG_LEVEL: no ConfigMap luthien-settings"},
		{"readiness probe on an unknown port", "gateway-deployment.yaml", "readinessProbe:", "port: http", "port: https",
			"readiness probe: port https is not a port of the container"},
		{"gRPC probe on another port", "controlplane-deployment.yaml", "livenessProbe:", "port: 9000", "port: 9090",
			"liveness probe: gRPC port 9090 is not a port of the container"},
		{"no readiness probe", "controlplane-deployment.yaml", "", "readinessProbe:\n            grpc:\n              port: 9000\n", "startupProbe:\n            grpc:\n              port: 9000\n",
			"needs a readiness and a liveness probe"},
		{"listens on another port", "gateway-deployment.yaml", "", "value: 0.0.0.0:8000", "value: 0.0.0.0:8080",
			"LUTHIEN_HTTP_ADDR \"0.0.0.0:8080\": port is not one of the container's ports"},
		{"listens on loopback", "controlplane-deployment.yaml", "", "value: 0.0.0.0:9000", "value: 127.0.0.1:9000",
			"listen on 0.0.0.0"},
		{"gateway without an admin key", "gateway-deployment.yaml", "", "- name: LUTHIEN_ADMIN_API_KEY\n", "- name: LUTHIEN_SESSION_SECRET\n",
			"without LUTHIEN_ADMIN_API_KEY"},
		{"tokens differ", "gateway-deployment.yaml", "- name: LUTHIEN_CONTROL_PLANE_TOKEN", "key: LUTHIEN_CONTROL_PLANE_TOKEN", "key: LUTHIEN_ADMIN_API_KEY",
			"LUTHIEN_CONTROL_PLANE_TOKEN differs from Deployment controlplane's"},
		{"control plane in another namespace", "config.env", "", "controlplane-headless.luthien.svc", "controlplane-headless.default.svc",
			"no Service controlplane-headless in namespace default"},
		{"control plane target on another port", "config.env", "", "cluster.local:9000", "cluster.local:9443",
			"Service controlplane-headless has no port 9443"},
		{"policy file not mounted", "controlplane-deployment.yaml", "", "value: /etc/luthien/policy.yaml", "value: /etc/luthien/policies.yaml",
			"LUTHIEN_POLICY_CONFIG /etc/luthien/policies.yaml: the ConfigMap"},
		{"autoscaler targets nothing", "gateway-hpa.yaml", "scaleTargetRef:", "name: gateway", "name: gateway-v2",
			"targets Deployment gateway-v2, which does not exist"},
		{"deployment sets replicas", "gateway-deployment.yaml", "", "  revisionHistoryLimit: 5\n", "  replicas: 3\n  revisionHistoryLimit: 5\n",
			"Deployment gateway sets replicas"},
		{"autoscaler without cpu requests", "controlplane-deployment.yaml", "requests:", "cpu: 250m\n", "",
			"scales on cpu utilization, but container controlplane of Deployment controlplane requests no cpu"},
		{"disruption budget selects nothing", "gateway-pdb.yaml", "selector:", "component: gateway", "component: gw",
			"selects the pods of 0 Deployments"},
		{"disruption budget blocks drains", "controlplane-pdb.yaml", "", "minAvailable: 1", "minAvailable: 2",
			"no pod could ever be evicted"},
		{"file left out of the kustomization", "kustomization.yaml", "", "  - gateway-pdb.yaml\n", "",
			"gateway-pdb.yaml is not listed in kustomization.yaml"},
		{"kustomization lists a missing file", "kustomization.yaml", "", "  - gateway-pdb.yaml\n", "  - gateway-pdb.yaml\n  - gateway-ingress.yaml\n",
			"lists gateway-ingress.yaml, which does not exist"},
		{"writable root file system", "controlplane-deployment.yaml", "", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
			"needs readOnlyRootFilesystem: true"},
		{"may run as root", "gateway-deployment.yaml", "", "runAsNonRoot: true", "runAsNonRoot: false",
			"needs runAsNonRoot: true"},
		{"capabilities kept", "migrate-job.yaml", "", "drop: [ALL]", "drop: [NET_RAW]",
			"needs capabilities drop [ALL]"},
		{"no seccomp profile", "gateway-deployment.yaml", "", "type: RuntimeDefault", "type: Unconfined",
			"needs seccompProfile RuntimeDefault"},
		{"privilege escalation", "gateway-deployment.yaml", "", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true",
			"needs allowPrivilegeEscalation: false"},
		{"request above limit", "gateway-deployment.yaml", "limits:", "memory: 512Mi", "memory: 128Mi",
			"memory request 256Mi is above its limit 128Mi"},
		{"GOMEMLIMIT above the limit", "gateway-deployment.yaml", "", "value: 450MiB", "value: 600MiB",
			"GOMEMLIMIT 600MiB is not below the memory limit 512Mi"},
		{"migration from another image", "migrate-job.yaml", "", "image: luthien/controlplane", "image: other/controlplane",
			"differs from Deployment controlplane's"},
		{"migration runs the server", "migrate-job.yaml", "", `args: ["migrate"]`, `args: []`,
			"want the control plane's image with args [migrate]"},
		{"network policy on a port the pods lack", "controlplane-networkpolicy.yaml", "", "port: grpc", "port: http",
			"ingress port http is not a container port of Deployment controlplane"},
		{"network policy from nowhere", "controlplane-networkpolicy.yaml", "from:", "component: gateway", "component: web",
			"ingress from app.kubernetes.io/component=web,app.kubernetes.io/name=luthien selects no Deployment's pods"},
		{"misspelt field", "gateway-deployment.yaml", "", "readinessProbe:", "readinesProbe:",
			"unknown field"},
		{"image of no binary", "gateway-deployment.yaml", "", "image: luthien/gateway", "image: luthien/gw",
			"image luthien/gw is neither the gateway's nor the control plane's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(k8sDir())); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "base", tt.file)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(replaceOnce(t, string(b), tt.block, tt.old, tt.new)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, errs := checkKustomization(t, filepath.Join(dir, "base"))
			expectFinding(t, errs, tt.want)
		})
	}
}

// TestKubernetesLayout checks that every directory of deploy/k8s with
// manifests is a kustomization the tests render.
func TestKubernetesLayout(t *testing.T) {
	err := filepath.WalkDir(k8sDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), "kustomization.yaml")); err != nil {
			t.Errorf("%s is not in a kustomization's directory", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
