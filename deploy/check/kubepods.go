package check

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kubeChecker checks one set of decoded manifests.
type kubeChecker struct {
	o        *Objects
	settings Settings
	// root is the repository, for the files the Dockerfiles copy.
	root string
	errs []error
}

// CheckKubernetes checks decoded (rendered) manifests: containers run our
// images with only the variables their binary reads, every ConfigMap and
// Secret key they use exists, probes and Services point at container
// ports, selectors select the pods they are meant for, autoscalers and
// disruption budgets target Deployments, the gateway's control plane
// target names the headless Service, and pods run as the restricted Pod
// Security Standard requires, with resources set. root is the repository
// (for the files the images contain).
func CheckKubernetes(o *Objects, s Settings, root string) []error {
	c := &kubeChecker{o: o, settings: s, root: root}
	c.namespaces()
	for _, d := range o.Deployments {
		c.deployment(d)
	}
	for _, j := range o.Jobs {
		c.job(j)
	}
	for _, svc := range o.Services {
		c.service(svc)
	}
	for _, h := range o.HPAs {
		c.hpa(h)
	}
	for _, p := range o.PDBs {
		c.pdb(p)
	}
	for _, n := range o.NetworkPolicies {
		c.networkPolicy(n)
	}
	c.scaling()
	c.link()
	return c.errs
}

func (c *kubeChecker) fail(obj, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: "+format, append([]any{obj}, args...)...))
}

// imageBinary is the binary an image runs: the last element of its
// repository (luthien/gateway:tag, registry/luthien/controlplane@digest).
func imageBinary(image string) Binary {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	for _, b := range Binaries {
		if image == string(b) {
			return b
		}
	}
	return ""
}

// selects reports whether a selector selects the labels; an empty or
// invalid selector selects nothing here.
func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// selected returns the Deployments of namespace ns whose pods sel selects.
func (c *kubeChecker) selected(ns string, sel *metav1.LabelSelector) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range c.o.Deployments {
		if d.Namespace == ns && selects(sel, d.Spec.Template.Labels) {
			out = append(out, d)
		}
	}
	return out
}

// runs returns the Deployments of namespace ns with a container of bin.
func (c *kubeChecker) runs(ns string, bin Binary) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range c.o.Deployments {
		if d.Namespace == ns && hasBinary(d, bin) {
			out = append(out, d)
		}
	}
	return out
}

// hasBinary reports whether a Deployment's pods run bin.
func hasBinary(d *appsv1.Deployment, bin Binary) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(ct corev1.Container) bool {
		return imageBinary(ct.Image) == bin
	})
}

// deployment checks a Deployment's selector, pods and binaries' settings.
func (c *kubeChecker) deployment(d *appsv1.Deployment) {
	obj := "Deployment " + d.Name
	if !selects(d.Spec.Selector, d.Spec.Template.Labels) {
		c.fail(obj, "selector %v does not match its pod labels %v", metav1.FormatLabelSelector(d.Spec.Selector), d.Spec.Template.Labels)
	}
	for _, other := range c.o.Deployments {
		if other != d && other.Namespace == d.Namespace && selects(d.Spec.Selector, other.Spec.Template.Labels) {
			c.fail(obj, "selector also selects the pods of Deployment %s", other.Name)
		}
	}
	c.pod(obj, d.Namespace, &d.Spec.Template.Spec)
	for i := range d.Spec.Template.Spec.Containers {
		ct := &d.Spec.Template.Spec.Containers[i]
		cobj := obj + " container " + ct.Name
		env := c.env(d.Namespace, ct)
		switch imageBinary(ct.Image) {
		case Gateway:
			c.listener(cobj, ct, env, "LUTHIEN_HTTP_ADDR")
			if !isLoopbackAddr(env["LUTHIEN_HTTP_ADDR"]) && env["LUTHIEN_ADMIN_API_KEY"] == "" {
				c.fail(cobj, "listens on %q without LUTHIEN_ADMIN_API_KEY: the gateway refuses to start", env["LUTHIEN_HTTP_ADDR"])
			}
			if _, ok := env["LUTHIEN_INSECURE_ADMIN"]; ok {
				c.fail(cobj, "sets LUTHIEN_INSECURE_ADMIN: the admin surface must keep its key")
			}
		case ControlPlane:
			c.listener(cobj, ct, env, "LUTHIEN_GRPC_ADDR")
			if !isLoopbackAddr(env["LUTHIEN_GRPC_ADDR"]) && env["LUTHIEN_CONTROL_PLANE_TOKEN"] == "" && env["LUTHIEN_GRPC_TLS_CLIENT_CA"] == "" {
				c.fail(cobj, "listens on %q without LUTHIEN_CONTROL_PLANE_TOKEN (or mutual TLS): the control plane refuses to start", env["LUTHIEN_GRPC_ADDR"])
			}
			if _, ok := env["LUTHIEN_GRPC_INSECURE"]; ok {
				c.fail(cobj, "sets LUTHIEN_GRPC_INSECURE: the link must keep its token")
			}
			for _, name := range []string{"DATABASE_URL", "REDIS_URL"} {
				if _, ok := env[name]; !ok {
					c.fail(cobj, "needs %s: replicas share calls, policy and cache through it", name)
				}
			}
			c.policyFile(cobj, d.Namespace, &d.Spec.Template.Spec, ct, env)
		}
		if ct.ReadinessProbe == nil || ct.LivenessProbe == nil {
			c.fail(cobj, "needs a readiness and a liveness probe")
		}
	}
}

// listener checks that a binary listens, on all addresses, on one of its
// container's ports (else neither the probes nor the Services reach it).
func (c *kubeChecker) listener(obj string, ct *corev1.Container, env map[string]string, name string) {
	addr, ok := env[name]
	if !ok {
		c.fail(obj, "needs %s (the image's default is not checked here)", name)
		return
	}
	if isLoopbackAddr(addr) {
		c.fail(obj, "%s %q: listen on 0.0.0.0, or neither probes nor Services reach it", name, addr)
		return
	}
	p, err := strconv.Atoi(port(addr))
	if err != nil || !slices.ContainsFunc(ct.Ports, func(cp corev1.ContainerPort) bool { return int(cp.ContainerPort) == p }) {
		c.fail(obj, "%s %q: port is not one of the container's ports", name, addr)
	}
}

// policyFile checks that LUTHIEN_POLICY_CONFIG is a file the pod has: a
// key of a mounted ConfigMap, or a file of the image.
func (c *kubeChecker) policyFile(obj, ns string, pod *corev1.PodSpec, ct *corev1.Container, env map[string]string) {
	p, ok := env["LUTHIEN_POLICY_CONFIG"]
	if !ok || p == "" {
		return
	}
	for _, m := range ct.VolumeMounts {
		rel, ok := strings.CutPrefix(path.Clean(p), path.Clean(m.MountPath)+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := c.configMap(ns, v.ConfigMap.Name)
			if cm == nil {
				return // reported with the volume
			}
			key := rel
			if len(v.ConfigMap.Items) > 0 {
				key = ""
				for _, it := range v.ConfigMap.Items {
					if it.Path == rel {
						key = it.Key
					}
				}
			}
			if _, ok := cm.Data[key]; key == "" || !ok {
				c.fail(obj, "LUTHIEN_POLICY_CONFIG %s: the ConfigMap %s mounted at %s has no such file", p, v.ConfigMap.Name, m.MountPath)
			}
			return
		}
		c.fail(obj, "LUTHIEN_POLICY_CONFIG %s: the volume mounted at %s is not a ConfigMap", p, m.MountPath)
		return
	}
	bin := imageBinary(ct.Image)
	files, err := readDockerfile(filepath.Join(c.root, "deploy", "Dockerfile."+string(bin)), c.root)
	if err != nil {
		c.fail(obj, "%v", err)
	} else if !files.has(p) {
		c.fail(obj, "LUTHIEN_POLICY_CONFIG %s is neither in a mounted ConfigMap nor in the image", p)
	}
}

// job checks the migration Job: the control plane's image, `migrate`,
// the control plane's database.
func (c *kubeChecker) job(j *batchv1.Job) {
	obj := "Job " + j.Name
	spec := &j.Spec.Template.Spec
	c.pod(obj, j.Namespace, spec)
	if r := spec.RestartPolicy; r != corev1.RestartPolicyNever && r != corev1.RestartPolicyOnFailure {
		c.fail(obj, "restartPolicy %q: want Never or OnFailure", r)
	}
	if j.Spec.BackoffLimit == nil {
		c.fail(obj, "needs a backoffLimit")
	}
	for i := range spec.Containers {
		ct := &spec.Containers[i]
		cobj := obj + " container " + ct.Name
		env := c.env(j.Namespace, ct)
		if imageBinary(ct.Image) != ControlPlane || len(ct.Command) != 0 || !slices.Equal(ct.Args, []string{"migrate"}) {
			c.fail(cobj, "runs %s %v %v: want the control plane's image with args [migrate]", ct.Image, ct.Command, ct.Args)
			continue
		}
		if _, ok := env["DATABASE_URL"]; !ok {
			c.fail(cobj, "needs DATABASE_URL")
		}
		for _, d := range c.runs(j.Namespace, ControlPlane) {
			for _, dct := range d.Spec.Template.Spec.Containers {
				if imageBinary(dct.Image) != ControlPlane {
					continue
				}
				if dct.Image != ct.Image {
					c.fail(cobj, "image %s differs from Deployment %s's %s: migrate with the release that runs", ct.Image, d.Name, dct.Image)
				}
				if c.env(d.Namespace, &dct)["DATABASE_URL"] != env["DATABASE_URL"] {
					c.fail(cobj, "DATABASE_URL differs from Deployment %s's", d.Name)
				}
			}
		}
	}
}

// pod checks what every pod of the deployment needs: the restricted Pod
// Security Standard, volumes that exist, and each container.
func (c *kubeChecker) pod(obj, ns string, spec *corev1.PodSpec) {
	sc := spec.SecurityContext
	if sc == nil {
		sc = &corev1.PodSecurityContext{}
	}
	if len(spec.Containers) == 0 {
		c.fail(obj, "has no container")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		c.fail(obj, "must not share the host's network, PIDs or IPC")
	}
	for _, v := range spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm := c.configMap(ns, v.ConfigMap.Name)
			if cm == nil {
				c.fail(obj, "volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					c.fail(obj, "volume %s: ConfigMap %s has no key %s", v.Name, v.ConfigMap.Name, it.Key)
				}
			}
		case v.Secret != nil:
			if c.secret(ns, v.Secret.SecretName) == nil {
				c.fail(obj, "volume %s: no Secret %s", v.Name, v.Secret.SecretName)
			}
		}
	}
	for i := range spec.Containers {
		ct := &spec.Containers[i]
		c.container(obj+" container "+ct.Name, ns, sc, spec, ct)
	}
}

// container checks a container's image, security context, resources and
// probes, and its environment's names and references.
func (c *kubeChecker) container(obj, ns string, podSC *corev1.PodSecurityContext, spec *corev1.PodSpec, ct *corev1.Container) {
	if imageBinary(ct.Image) == "" {
		c.fail(obj, "image %s is neither the gateway's nor the control plane's", ct.Image)
	}
	c.envRefs(obj, ns, ct)
	sc := ct.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if !isTrue(sc.RunAsNonRoot) && !isTrue(podSC.RunAsNonRoot) {
		c.fail(obj, "needs runAsNonRoot: true")
	}
	if u := sc.RunAsUser; (u != nil && *u == 0) || (u == nil && podSC.RunAsUser != nil && *podSC.RunAsUser == 0) {
		c.fail(obj, "runs as user 0")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = podSC.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		c.fail(obj, "needs seccompProfile RuntimeDefault")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.fail(obj, "needs allowPrivilegeEscalation: false")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		c.fail(obj, "needs readOnlyRootFilesystem: true")
	}
	if isTrue(sc.Privileged) {
		c.fail(obj, "must not be privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		c.fail(obj, "needs capabilities drop [ALL] and nothing added")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := ct.Resources.Requests[r]
		lim, okLim := ct.Resources.Limits[r]
		if !okReq || !okLim {
			c.fail(obj, "needs a %s request and limit", r)
		} else if req.Cmp(lim) > 0 {
			c.fail(obj, "%s request %s is above its limit %s", r, req.String(), lim.String())
		}
	}
	for _, e := range ct.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		limit, ok := ct.Resources.Limits[corev1.ResourceMemory]
		if n, err := parseGoMemLimit(e.Value); err != nil {
			c.fail(obj, "GOMEMLIMIT %q: %v", e.Value, err)
		} else if ok && n >= limit.Value() {
			c.fail(obj, "GOMEMLIMIT %s is not below the memory limit %s", e.Value, limit.String())
		}
	}
	for name, p := range map[string]*corev1.Probe{"readiness": ct.ReadinessProbe, "liveness": ct.LivenessProbe, "startup": ct.StartupProbe} {
		if p != nil {
			c.probe(obj+" "+name+" probe", ct, p)
		}
	}
	for _, m := range ct.VolumeMounts {
		if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
			c.fail(obj, "mounts volume %s, which the pod does not have", m.Name)
		}
	}
}

// probe checks that a probe reaches one of the container's ports.
func (c *kubeChecker) probe(obj string, ct *corev1.Container, p *corev1.Probe) {
	switch {
	case p.HTTPGet != nil:
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			c.fail(obj, "path %q: want an absolute path", p.HTTPGet.Path)
		}
		if _, ok := containerPort(ct, p.HTTPGet.Port); !ok {
			c.fail(obj, "port %s is not a port of the container", p.HTTPGet.Port.String())
		}
	case p.GRPC != nil:
		if _, ok := containerPort(ct, intstr.FromInt32(p.GRPC.Port)); !ok {
			c.fail(obj, "gRPC port %d is not a port of the container", p.GRPC.Port)
		}
	case p.TCPSocket != nil:
		if _, ok := containerPort(ct, p.TCPSocket.Port); !ok {
			c.fail(obj, "port %s is not a port of the container", p.TCPSocket.Port.String())
		}
	case p.Exec != nil:
		c.fail(obj, "exec probes need a program the distroless images do not have")
	}
}

// containerPort resolves a port, by name or number, among a container's
// ports.
func containerPort(ct *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range ct.Ports {
		if (p.Type == intstr.String && p.StrVal == cp.Name) || (p.Type == intstr.Int && p.IntVal == cp.ContainerPort) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// isTrue reports whether b is set and true.
func isTrue(b *bool) bool { return b != nil && *b }

// goMemLimit is the syntax of GOMEMLIMIT.
var goMemLimit = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`)

// parseGoMemLimit parses GOMEMLIMIT as the Go runtime does (without
// "off", which has no place next to a memory limit).
func parseGoMemLimit(s string) (int64, error) {
	m := goMemLimit.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("want a number of bytes with an optional B, KiB, MiB, GiB or TiB")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	return n << shift, nil
}
