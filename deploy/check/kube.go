package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Objects are decoded Kubernetes manifests, by kind.
type Objects struct {
	Namespaces      []*corev1.Namespace
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	Services        []*corev1.Service
	Deployments     []*appsv1.Deployment
	Jobs            []*batchv1.Job
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	PDBs            []*policyv1.PodDisruptionBudget
	NetworkPolicies []*networkingv1.NetworkPolicy
}

// DecodeManifests decodes a stream of YAML documents into the Kubernetes
// API types, strictly: an unknown or duplicated field, a value of the
// wrong type or a kind the deployment does not use is an error.
func DecodeManifests(data []byte) (*Objects, error) {
	o := &Objects{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return o, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
		var head struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
		tm := head.TypeMeta
		if tm.APIVersion == "" && tm.Kind == "" {
			if len(bytes.TrimSpace(doc)) == 0 || isComments(doc) {
				continue
			}
			return nil, fmt.Errorf("manifest %d: no apiVersion and kind", i)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			obj = appendNew(&o.Namespaces)
		case "v1 ConfigMap":
			obj = appendNew(&o.ConfigMaps)
		case "v1 Secret":
			obj = appendNew(&o.Secrets)
		case "v1 Service":
			obj = appendNew(&o.Services)
		case "apps/v1 Deployment":
			obj = appendNew(&o.Deployments)
		case "batch/v1 Job":
			obj = appendNew(&o.Jobs)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			obj = appendNew(&o.HPAs)
		case "policy/v1 PodDisruptionBudget":
			obj = appendNew(&o.PDBs)
		case "networking.k8s.io/v1 NetworkPolicy":
			obj = appendNew(&o.NetworkPolicies)
		default:
			return nil, fmt.Errorf("manifest %d: %s %s is not a kind the deployment uses (add it to DecodeManifests)", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("manifest %d (%s %s): %w", i, tm.Kind, head.Metadata.Name, err)
		}
	}
}

// appendNew appends a new zero object to list and returns it.
func appendNew[T any](list *[]*T) *T {
	v := new(T)
	*list = append(*list, v)
	return v
}

// isComments reports whether a YAML document holds only comments.
func isComments(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// Render renders the kustomization in dir as `kubectl kustomize` would.
func Render(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	return out, nil
}

// CheckKustomizationFiles checks that the kustomization in dir names only
// files that exist, and every file of dir (a manifest left out would
// silently not be deployed).
func CheckKustomizationFiles(dir string) []error {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return []error{err}
	}
	// Strictly into kustomize's own type, which knows every field; then
	// the fields that name files.
	if err := yaml.UnmarshalStrict(data, &ktypes.Kustomization{}); err != nil {
		return []error{fmt.Errorf("%s/kustomization.yaml: %w", dir, err)}
	}
	var k struct {
		Resources             []string               `json:"resources"`
		Components            []string               `json:"components"`
		ConfigMapGenerator    []ktypes.ConfigMapArgs `json:"configMapGenerator"`
		SecretGenerator       []ktypes.SecretArgs    `json:"secretGenerator"`
		Patches               []ktypes.Patch         `json:"patches"`
		PatchesJSON6902       []ktypes.Patch         `json:"patchesJson6902"`
		PatchesStrategicMerge []string               `json:"patchesStrategicMerge"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return []error{fmt.Errorf("%s/kustomization.yaml: %w", dir, err)}
	}
	var errs []error
	if len(k.PatchesJSON6902) > 0 || len(k.PatchesStrategicMerge) > 0 {
		errs = append(errs, fmt.Errorf("%s/kustomization.yaml: patchesJson6902 and patchesStrategicMerge are deprecated: use patches", dir))
	}
	refs := slices.Concat(k.Resources, k.Components)
	for _, g := range k.ConfigMapGenerator {
		refs = append(refs, sourceFiles(g.KvPairSources)...)
	}
	for _, g := range k.SecretGenerator {
		refs = append(refs, sourceFiles(g.KvPairSources)...)
	}
	for _, p := range k.Patches {
		if p.Path != "" {
			refs = append(refs, p.Path)
		}
	}
	listed := map[string]bool{}
	for _, ref := range refs {
		if strings.Contains(ref, "://") {
			errs = append(errs, fmt.Errorf("%s/kustomization.yaml: %s: remote resources cannot be checked offline", dir, ref))
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ref)); err != nil {
			errs = append(errs, fmt.Errorf("%s/kustomization.yaml lists %s, which does not exist", dir, ref))
		}
		listed[filepath.Clean(ref)] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return append(errs, err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "kustomization.yaml" {
			continue
		}
		if !listed[e.Name()] {
			errs = append(errs, fmt.Errorf("%s/%s is not listed in kustomization.yaml: it would not be deployed", dir, e.Name()))
		}
	}
	return errs
}

// sourceFiles returns the files a generator reads.
func sourceFiles(s ktypes.KvPairSources) []string {
	var files []string
	for _, f := range s.FileSources {
		if _, path, ok := strings.Cut(f, "="); ok {
			f = path
		}
		files = append(files, f)
	}
	return append(files, s.EnvSources...)
}
