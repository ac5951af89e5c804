// Package explain tells a user what their own cluster is made of and how
// an object of theirs became running containers, from the cluster's own
// records: objects, owner references, conditions, events and endpoint
// slices. The words come from the messages catalogues, so the same facts
// read in English or Chinese.
package explain

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// HostFacts are what only the control-plane host knows.
type HostFacts struct {
	ControlPlane string // the host's name
	Endpoint     string // the API server's URL clients use
	EtcdDataDir  string
	EtcdSize     string // the database as etcd reports it, e.g. "5.2 MiB"; "" when unknown
	// EtcdDiskUsage is the data directory on disk, write-ahead log
	// included.
	EtcdDiskUsage string
	CRISocket     string
	CNIConfig     string // the CNI config file on the host; "" when none
}

// Part is one part of the architecture with its live facts.
type Part struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	// Role is what the part does in any cluster.
	Role  string `json:"role"`
	Facts []Fact `json:"facts"`
}

// Fact is one labelled fact of a part.
type Fact struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Map is the architecture of one cluster.
type Map struct {
	Heading string `json:"heading"`
	Parts   []Part `json:"parts"`
}

// Printer renders message ids; messages.Printer is one.
type Printer interface {
	T(id string, data any) string
}

// Architecture reads the cluster through c and fills the map of its parts
// with what it finds.
func Architecture(ctx context.Context, c kubernetes.Interface, hf HostFacts, p Printer) (*Map, error) {
	v, err := c.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("the API server at %s: %w", hf.Endpoint, err)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	sys, err := c.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := &Map{Heading: p.T("explain.heading", map[string]string{"Version": v.GitVersion, "Nodes": fmt.Sprint(len(nodes.Items))})}
	part := func(key string, facts ...Fact) {
		m.Parts = append(m.Parts, Part{Key: key, Title: p.T("explain."+key+".title", nil), Role: p.T("explain."+key+".role", nil), Facts: facts})
	}
	fact := func(label, value string) Fact { return Fact{Label: p.T("explain.fact."+label, nil), Value: value} }
	unknown := p.T("explain.unknown", nil)
	or := func(s string) string {
		if s == "" {
			return unknown
		}
		return s
	}

	api := staticPod(sys.Items, "kube-apiserver")
	etcd := staticPod(sys.Items, "etcd")
	part("etcd",
		fact("pod", podWhere(etcd, unknown)),
		fact("datadir", hf.EtcdDataDir),
		fact("size", or(hf.EtcdSize)),
		fact("disk", or(hf.EtcdDiskUsage)),
		fact("clients", or(flag(etcd, "etcd", "listen-client-urls"))))
	part("apiserver",
		fact("address", hf.Endpoint),
		fact("pod", podWhere(api, unknown)),
		fact("authn", authModes(api, p)),
		fact("authz", or(flag(api, "kube-apiserver", "authorization-mode"))),
		fact("admission", or(flag(api, "kube-apiserver", "enable-admission-plugins"))),
		fact("etcd", or(flag(api, "kube-apiserver", "etcd-servers"))))
	for _, key := range []string{"kube-scheduler", "kube-controller-manager"} {
		pod := staticPod(sys.Items, key)
		leader := unknown
		if l, err := c.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, key, metav1.GetOptions{}); err == nil && l.Spec.HolderIdentity != nil {
			leader, _, _ = strings.Cut(*l.Spec.HolderIdentity, "_")
		}
		part(strings.TrimPrefix(key, "kube-"), fact("pod", podWhere(pod, unknown)), fact("leader", leader))
	}
	var kubelets []Fact
	for _, n := range nodes.Items {
		ready := p.T("explain.notready", nil)
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = "Ready"
			}
		}
		kubelets = append(kubelets, Fact{Label: n.Name, Value: fmt.Sprintf("%s, %s, %s, %s", n.Status.NodeInfo.KubeletVersion, ready, n.Status.NodeInfo.OSImage, n.Status.NodeInfo.KernelVersion)})
	}
	part("kubelet", kubelets...)
	var runtimes []Fact
	for _, n := range nodes.Items {
		runtimes = append(runtimes, Fact{Label: n.Name, Value: n.Status.NodeInfo.ContainerRuntimeVersion})
	}
	part("runtime", append([]Fact{fact("socket", hf.CRISocket)}, runtimes...)...)
	var cidrs []Fact
	for _, n := range nodes.Items {
		cidrs = append(cidrs, Fact{Label: n.Name, Value: strings.Join(n.Spec.PodCIDRs, ", ")})
	}
	network := networkPods(sys.Items, "")
	if network == "" {
		network = p.T("explain.cni.nopods", nil)
	}
	part("cni", append([]Fact{fact("cniconfig", or(hf.CNIConfig)), fact("network", network)}, cidrs...)...)
	part("storage", storageFacts(ctx, c, fact, unknown)...)
	svcs, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	part("proxy",
		fact("mode", proxyMode(ctx, c, unknown)),
		fact("daemonset", daemonSet(ctx, c, "kube-proxy", unknown)),
		fact("services", fmt.Sprint(len(svcs.Items))),
		fact("kubernetes", kubernetesService(svcs.Items, unknown)))
	dnsIP := unknown
	for _, s := range svcs.Items {
		if s.Namespace == metav1.NamespaceSystem && s.Name == "kube-dns" {
			dnsIP = s.Spec.ClusterIP
		}
	}
	dnsReady := unknown
	if d, err := c.AppsV1().Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{}); err == nil {
		dnsReady = fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, d.Status.Replicas)
	}
	part("dns", fact("serviceip", dnsIP), fact("ready", dnsReady))
	return m, nil
}

// staticPod is the kube-system pod of a control-plane component, the
// first found.
func staticPod(pods []corev1.Pod, component string) *corev1.Pod {
	for i := range pods {
		if pods[i].Labels["component"] == component {
			return &pods[i]
		}
	}
	return nil
}

func podWhere(p *corev1.Pod, unknown string) string {
	if p == nil {
		return unknown
	}
	return fmt.Sprintf("kube-system/%s on %s (%s)", p.Name, p.Spec.NodeName, p.Status.Phase)
}

// flag is a container's --name=value.
func flag(p *corev1.Pod, container, name string) string {
	if p == nil {
		return ""
	}
	for _, c := range p.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, a := range append(append([]string{}, c.Command...), c.Args...) {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// authModes names the API server's ways of authenticating, from its
// flags.
func authModes(api *corev1.Pod, p Printer) string {
	var modes []string
	for _, m := range [][2]string{
		{"client-ca-file", "explain.authn.x509"},
		{"service-account-key-file", "explain.authn.sa"},
		{"enable-bootstrap-token-auth", "explain.authn.bootstrap"},
		{"requestheader-client-ca-file", "explain.authn.proxy"},
		{"oidc-issuer-url", "explain.authn.oidc"},
		{"token-auth-file", "explain.authn.static"},
	} {
		if flag(api, "kube-apiserver", m[0]) != "" {
			modes = append(modes, p.T(m[1], nil))
		}
	}
	return strings.Join(modes, "; ")
}

// networkPods names the pod network's own pods in kube-system.
func networkPods(pods []corev1.Pod, unknown string) string {
	count := map[string]int{}
	for _, p := range pods {
		if app := p.Labels["k8s-app"]; app == "kube-router" || app == "flannel" || app == "calico-node" || app == "cilium" {
			count[app]++
		}
	}
	if len(count) == 0 {
		return unknown
	}
	var out []string
	for app, n := range count {
		out = append(out, fmt.Sprintf("%s (%d)", app, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func storageFacts(ctx context.Context, c kubernetes.Interface, fact func(string, string) Fact, unknown string) []Fact {
	classes, err := c.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil || len(classes.Items) == 0 {
		return []Fact{fact("storageclass", unknown)}
	}
	var facts []Fact
	for _, sc := range classes.Items {
		v := sc.Provisioner
		if isDefault(sc) {
			v += " (default)"
		}
		if sc.VolumeBindingMode != nil {
			v += ", " + string(*sc.VolumeBindingMode)
		}
		facts = append(facts, Fact{Label: "StorageClass " + sc.Name, Value: v})
	}
	drivers := unknown
	if d, err := c.StorageV1().CSIDrivers().List(ctx, metav1.ListOptions{}); err == nil {
		var names []string
		for _, x := range d.Items {
			names = append(names, x.Name)
		}
		drivers = strings.Join(names, ", ")
		if drivers == "" {
			drivers = "0"
		}
	}
	return append(facts, fact("csidrivers", drivers))
}

func isDefault(sc storagev1.StorageClass) bool {
	return sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true"
}

// proxyMode is kube-proxy's mode from its ConfigMap.
func proxyMode(ctx context.Context, c kubernetes.Interface, unknown string) string {
	cm, err := c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return unknown
	}
	for _, data := range cm.Data {
		var cfg struct {
			Mode string `json:"mode"`
		}
		if yaml.Unmarshal([]byte(data), &cfg) == nil && cfg.Mode != "" {
			return cfg.Mode
		}
	}
	return "iptables"
}

func daemonSet(ctx context.Context, c kubernetes.Interface, name, unknown string) string {
	ds, err := c.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return unknown
	}
	return fmt.Sprintf("kube-system/%s %d/%d", name, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
}

func kubernetesService(svcs []corev1.Service, unknown string) string {
	for _, s := range svcs {
		if s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes" {
			return s.Spec.ClusterIP + ":443"
		}
	}
	return unknown
}
