package check

import (
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// configMap returns the ConfigMap ns/name, nil when there is none.
func (c *kubeChecker) configMap(ns, name string) *corev1.ConfigMap {
	for _, cm := range c.o.ConfigMaps {
		if cm.Namespace == ns && cm.Name == name {
			return cm
		}
	}
	return nil
}

// secret returns the Secret ns/name, nil when there is none.
func (c *kubeChecker) secret(ns, name string) *corev1.Secret {
	for _, s := range c.o.Secrets {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

// secretData returns a Secret's keys and values (data and stringData).
func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// envRefs checks a container's variables: each one its binary reads,
// once, and every ConfigMap and Secret key it takes exists (unless
// optional).
func (c *kubeChecker) envRefs(obj, ns string, ct *corev1.Container) {
	bin := imageBinary(ct.Image)
	known := func(name, from string) {
		if bin != "" && !c.settings.Known(bin, name) {
			c.fail(obj, "env %s%s is not a setting of the %s (%s -list-settings)", name, from, bin, bin)
		}
	}
	seen := map[string]bool{}
	for _, e := range ct.Env {
		if seen[e.Name] {
			c.fail(obj, "env %s is set twice", e.Name)
		}
		seen[e.Name] = true
		known(e.Name, "")
		if e.ValueFrom == nil {
			continue
		}
		if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil && !isTrue(ref.Optional) {
			if cm := c.configMap(ns, ref.Name); cm == nil {
				c.fail(obj, "env %s: no ConfigMap %s", e.Name, ref.Name)
			} else if _, ok := cm.Data[ref.Key]; !ok {
				c.fail(obj, "env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil && !isTrue(ref.Optional) {
			if s := c.secret(ns, ref.Name); s == nil {
				c.fail(obj, "env %s: no Secret %s", e.Name, ref.Name)
			} else if _, ok := secretData(s)[ref.Key]; !ok {
				c.fail(obj, "env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
		}
	}
	for _, ef := range ct.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := c.configMap(ns, ef.ConfigMapRef.Name)
			if cm == nil {
				if !isTrue(ef.ConfigMapRef.Optional) {
					c.fail(obj, "envFrom: no ConfigMap %s", ef.ConfigMapRef.Name)
				}
				continue
			}
			for k := range cm.Data {
				known(ef.Prefix+k, " (envFrom ConfigMap "+cm.Name+")")
			}
		case ef.SecretRef != nil:
			s := c.secret(ns, ef.SecretRef.Name)
			if s == nil {
				if !isTrue(ef.SecretRef.Optional) {
					c.fail(obj, "envFrom: no Secret %s", ef.SecretRef.Name)
				}
				continue
			}
			for k := range secretData(s) {
				known(ef.Prefix+k, " (envFrom Secret "+s.Name+")")
			}
		}
	}
}

// env returns a container's environment as the pod gets it; a variable
// whose source is missing is "".
func (c *kubeChecker) env(ns string, ct *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, ef := range ct.EnvFrom {
		var data map[string]string
		if ef.ConfigMapRef != nil {
			if cm := c.configMap(ns, ef.ConfigMapRef.Name); cm != nil {
				data = cm.Data
			}
		} else if ef.SecretRef != nil {
			if s := c.secret(ns, ef.SecretRef.Name); s != nil {
				data = secretData(s)
			}
		}
		for k, v := range data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range ct.Env {
		v := e.Value
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.ConfigMapKeyRef != nil:
				if cm := c.configMap(ns, vf.ConfigMapKeyRef.Name); cm != nil {
					v = cm.Data[vf.ConfigMapKeyRef.Key]
				}
			case vf.SecretKeyRef != nil:
				if s := c.secret(ns, vf.SecretKeyRef.Name); s != nil {
					v = secretData(s)[vf.SecretKeyRef.Key]
				}
			}
		}
		env[e.Name] = v
	}
	return env
}

// namespaces checks that every object is in one namespace, which the
// manifests create when they create any.
func (c *kubeChecker) namespaces() {
	var all []metav1.Object
	for _, l := range [][]metav1.Object{objs(c.o.ConfigMaps), objs(c.o.Secrets), objs(c.o.Services), objs(c.o.Deployments),
		objs(c.o.Jobs), objs(c.o.HPAs), objs(c.o.PDBs), objs(c.o.NetworkPolicies)} {
		all = append(all, l...)
	}
	var names []string
	for _, n := range c.o.Namespaces {
		names = append(names, n.Name)
	}
	first := ""
	for _, o := range all {
		obj, ns := o.GetName(), o.GetNamespace()
		switch {
		case ns == "":
			c.fail(obj, "no namespace: set one in kustomization.yaml")
		case first == "":
			first = ns
		case ns != first:
			c.fail(obj, "in namespace %s, the others in %s", ns, first)
		}
		if ns != "" && len(names) > 0 && !slices.Contains(names, ns) {
			c.fail(obj, "namespace %s is not the one the manifests create (%v)", ns, names)
		}
	}
}

// objs returns a list of API objects as metav1.Object.
func objs[T any, P interface {
	*T
	metav1.Object
}](list []*T) []metav1.Object {
	out := make([]metav1.Object, len(list))
	for i, o := range list {
		out[i] = P(o)
	}
	return out
}

// service checks that a Service selects pods, and that its target ports
// are their container ports (the same numbers, for a headless Service,
// whose clients connect to the pods directly).
func (c *kubeChecker) service(svc *corev1.Service) {
	obj := "Service " + svc.Name
	if len(svc.Spec.Selector) == 0 {
		c.fail(obj, "has no selector")
		return
	}
	ds := c.selected(svc.Namespace, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
	if len(ds) == 0 {
		c.fail(obj, "selector %v selects no Deployment's pods", svc.Spec.Selector)
	}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		if target == (intstr.IntOrString{}) {
			target = intstr.FromInt32(p.Port)
		}
		for _, d := range ds {
			n, ok := podPort(d, target)
			if !ok {
				c.fail(obj, "port %s: targetPort %s is not a container port of Deployment %s", p.Name, target.String(), d.Name)
			} else if headless && n != p.Port {
				c.fail(obj, "port %s: %d, but clients of a headless Service connect to container port %d", p.Name, p.Port, n)
			}
		}
	}
}

// podPort resolves a port, by name or number, among the containers of a
// Deployment's pods.
func podPort(d *appsv1.Deployment, p intstr.IntOrString) (int32, bool) {
	for i := range d.Spec.Template.Spec.Containers {
		if n, ok := containerPort(&d.Spec.Template.Spec.Containers[i], p); ok {
			return n, true
		}
	}
	return 0, false
}

// deploymentNamed returns the Deployment ns/name, nil when there is none.
func (c *kubeChecker) deploymentNamed(ns, name string) *appsv1.Deployment {
	for _, d := range c.o.Deployments {
		if d.Namespace == ns && d.Name == name {
			return d
		}
	}
	return nil
}

// hpa checks an autoscaler's target and the requests its metrics need.
func (c *kubeChecker) hpa(h *autoscalingv2.HorizontalPodAutoscaler) {
	obj := "HorizontalPodAutoscaler " + h.Name
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
		c.fail(obj, "targets %s %s: want an apps/v1 Deployment", ref.APIVersion, ref.Kind)
		return
	}
	d := c.deploymentNamed(h.Namespace, ref.Name)
	if d == nil {
		c.fail(obj, "targets Deployment %s, which does not exist", ref.Name)
		return
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 {
		c.fail(obj, "needs minReplicas of 1 or more")
	} else if h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		c.fail(obj, "maxReplicas %d is below minReplicas %d", h.Spec.MaxReplicas, *h.Spec.MinReplicas)
	}
	if d.Spec.Replicas != nil {
		c.fail(obj, "Deployment %s sets replicas: every apply would undo what the autoscaler chose", d.Name)
	}
	for _, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil || m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
			continue
		}
		for _, ct := range d.Spec.Template.Spec.Containers {
			if _, ok := ct.Resources.Requests[m.Resource.Name]; !ok {
				c.fail(obj, "scales on %s utilization, but container %s of Deployment %s requests no %s", m.Resource.Name, ct.Name, d.Name, m.Resource.Name)
			}
		}
	}
}

// minReplicas is the fewest pods a Deployment runs: its autoscaler's
// minimum, else its replicas.
func (c *kubeChecker) minReplicas(d *appsv1.Deployment) int32 {
	for _, h := range c.o.HPAs {
		if h.Namespace == d.Namespace && h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name && h.Spec.MinReplicas != nil {
			return *h.Spec.MinReplicas
		}
	}
	if d.Spec.Replicas != nil {
		return *d.Spec.Replicas
	}
	return 1
}

// pdb checks that a disruption budget covers one Deployment and leaves a
// pod to evict.
func (c *kubeChecker) pdb(p *policyv1.PodDisruptionBudget) {
	obj := "PodDisruptionBudget " + p.Name
	ds := c.selected(p.Namespace, p.Spec.Selector)
	if len(ds) != 1 {
		c.fail(obj, "selector %s selects the pods of %d Deployments, want 1", metav1.FormatLabelSelector(p.Spec.Selector), len(ds))
		return
	}
	switch {
	case p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil:
		c.fail(obj, "needs minAvailable or maxUnavailable")
	case p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int:
		if n := c.minReplicas(ds[0]); p.Spec.MinAvailable.IntVal >= n {
			c.fail(obj, "minAvailable %d with %d replicas of Deployment %s: no pod could ever be evicted, node drains would block", p.Spec.MinAvailable.IntVal, n, ds[0].Name)
		}
	}
}

// networkPolicy checks that a policy selects pods, its peers exist and
// its ports are container ports.
func (c *kubeChecker) networkPolicy(n *networkingv1.NetworkPolicy) {
	obj := "NetworkPolicy " + n.Name
	var targets []*appsv1.Deployment
	if len(n.Spec.PodSelector.MatchLabels) == 0 && len(n.Spec.PodSelector.MatchExpressions) == 0 {
		targets = c.selected(n.Namespace, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: metav1.LabelSelectorOpDoesNotExist}}})
	} else {
		targets = c.selected(n.Namespace, &n.Spec.PodSelector)
	}
	if len(targets) == 0 {
		c.fail(obj, "podSelector selects no Deployment's pods")
	}
	for _, rule := range n.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.PodSelector != nil && peer.NamespaceSelector == nil && len(c.selected(n.Namespace, peer.PodSelector)) == 0 {
				c.fail(obj, "ingress from %s selects no Deployment's pods", metav1.FormatLabelSelector(peer.PodSelector))
			}
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				continue
			}
			for _, d := range targets {
				if _, ok := podPort(d, *p.Port); !ok {
					c.fail(obj, "ingress port %s is not a container port of Deployment %s", p.Port.String(), d.Name)
				}
			}
		}
	}
}

// scaling checks that every Deployment has one autoscaler and a
// disruption budget, so that each side scales, and drains, on its own.
func (c *kubeChecker) scaling() {
	for _, d := range c.o.Deployments {
		n := 0
		for _, h := range c.o.HPAs {
			if h.Namespace == d.Namespace && h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
				n++
			}
		}
		if n != 1 {
			c.fail("Deployment "+d.Name, "has %d HorizontalPodAutoscalers, want 1", n)
		}
		if !slices.ContainsFunc(c.o.PDBs, func(p *policyv1.PodDisruptionBudget) bool {
			return p.Namespace == d.Namespace && selects(p.Spec.Selector, d.Spec.Template.Labels)
		}) {
			c.fail("Deployment "+d.Name, "has no PodDisruptionBudget")
		}
	}
}

// link checks each gateway's control plane: the target names a Service
// that selects the control plane's pods, on its port; a dns:/// target
// (balanced over every address) names a headless Service; both sides
// share the token. An in-process control plane needs the database and
// Redis, or each replica would keep its own state.
func (c *kubeChecker) link() {
	for _, d := range c.o.Deployments {
		c.linkOf(d)
	}
}

// linkOf checks the control plane link of one gateway Deployment.
func (c *kubeChecker) linkOf(d *appsv1.Deployment) {
	for i := range d.Spec.Template.Spec.Containers {
		ct := &d.Spec.Template.Spec.Containers[i]
		if imageBinary(ct.Image) != Gateway {
			continue
		}
		obj := "Deployment " + d.Name + " container " + ct.Name
		env := c.env(d.Namespace, ct)
		target := env["LUTHIEN_CONTROL_PLANE"]
		if target == "" || target == "inprocess" {
			for _, name := range []string{"DATABASE_URL", "REDIS_URL"} {
				if env[name] == "" {
					c.fail(obj, "runs the control plane in-process without %s: every replica would keep its own state", name)
				}
			}
			continue
		}
		for _, name := range []string{"DATABASE_URL", "REDIS_URL", "LUTHIEN_POLICY_CONFIG"} {
			if _, ok := env[name]; ok {
				c.fail(obj, "sets %s with a standalone control plane: the gateway refuses to start (the control plane has it)", name)
			}
		}
		addr := controlPlaneAddr(target)
		svc, why := c.serviceByDNS(d.Namespace, hostOf(addr))
		if svc == nil {
			c.fail(obj, "LUTHIEN_CONTROL_PLANE %q: %s", target, why)
			continue
		}
		cps := c.selected(svc.Namespace, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		if !slices.ContainsFunc(cps, func(cp *appsv1.Deployment) bool { return hasBinary(cp, ControlPlane) }) {
			c.fail(obj, "LUTHIEN_CONTROL_PLANE %q: Service %s does not select the control plane's pods", target, svc.Name)
		}
		if strings.HasPrefix(target, "dns:") && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			c.fail(obj, "LUTHIEN_CONTROL_PLANE %q: balancing over the control plane pods needs a headless Service (clusterIP: None), and %s has a cluster IP", target, svc.Name)
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return port(addr) == strconv.Itoa(int(p.Port)) }) {
			c.fail(obj, "LUTHIEN_CONTROL_PLANE %q: Service %s has no port %s", target, svc.Name, port(addr))
		}
		for _, cp := range cps {
			for j := range cp.Spec.Template.Spec.Containers {
				cpct := &cp.Spec.Template.Spec.Containers[j]
				if imageBinary(cpct.Image) != ControlPlane {
					continue
				}
				if c.env(cp.Namespace, cpct)["LUTHIEN_CONTROL_PLANE_TOKEN"] != env["LUTHIEN_CONTROL_PLANE_TOKEN"] {
					c.fail(obj, "LUTHIEN_CONTROL_PLANE_TOKEN differs from Deployment %s's: every call would be refused", cp.Name)
				}
			}
		}
	}
}

// serviceByDNS finds the Service a cluster DNS name names, from namespace
// ns: name, name.namespace, name.namespace.svc[.cluster-domain].
func (c *kubeChecker) serviceByDNS(ns, host string) (*corev1.Service, string) {
	parts := strings.Split(host, ".")
	name := parts[0]
	if len(parts) >= 2 {
		ns = parts[1]
	}
	if len(parts) >= 3 && parts[2] != "svc" {
		return nil, "host " + host + " is not a Service's DNS name (name.namespace.svc.cluster.local)"
	}
	for _, s := range c.o.Services {
		if s.Name == name && s.Namespace == ns {
			return s, ""
		}
	}
	return nil, "no Service " + name + " in namespace " + ns
}
