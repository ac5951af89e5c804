package templates

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

func testAddons() Addons {
	return Addons{
		ProxyImage:   "registry.k8s.io/kube-proxy:v1.35.4",
		CoreDNSImage: "registry.k8s.io/coredns/coredns:v1.13.1",
		KforgeImage:  "kforge.dev/kforge:sha256-0123456789abcdef",
		APIServerURL: "https://192.0.2.10:6443", CoreDNSAPIServerURL: "https://192.0.2.10:6443",
		// The optional add-ons.
		MetricsServerImage: "registry.k8s.io/metrics-server/metrics-server:v0.8.0",
		LocalPathImage:     "docker.io/rancher/local-path-provisioner:v0.0.30",
		PodSubnet:          "10.244.0.0/16",
		DNSServiceIP:       "10.96.0.10",
	}
}

// apiService is the part of apiregistration.k8s.io/v1 APIService that
// kforge writes, for a strict decode without the aggregator's module.
type apiService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Group                 string `json:"group"`
		Version               string `json:"version"`
		GroupPriorityMinimum  int    `json:"groupPriorityMinimum"`
		VersionPriority       int    `json:"versionPriority"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
		Service               struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"service"`
	} `json:"spec"`
}

// objects parses a multi-document manifest strictly into typed objects.
func objects(t *testing.T, name string, data []byte) map[string]any {
	t.Helper()
	out := map[string]any{}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s document %d: %v", name, i+1, err)
		}
		var obj any
		switch meta.Kind {
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Service":
			obj = &corev1.Service{}
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "Role":
			obj = &rbacv1.Role{}
		case "RoleBinding":
			obj = &rbacv1.RoleBinding{}
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Namespace":
			obj = &corev1.Namespace{}
		case "StorageClass":
			obj = &storagev1.StorageClass{}
		case "APIService":
			obj = &apiService{}
		default:
			t.Fatalf("%s document %d: unexpected kind %q", name, i+1, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", name, i+1, meta.Kind, err)
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if _, dup := out[key]; dup {
			t.Fatalf("%s: two %s", name, key)
		}
		out[key] = obj
	}
	return out
}

func renderAddons(t *testing.T, a Addons) map[string]map[string]any {
	t.Helper()
	addons, err := RenderAddons(a)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, ad := range addons {
		out[ad.Name] = objects(t, ad.Name, ad.Data)
	}
	if len(out) != 5 || out[AddonKubeProxy] == nil || out[AddonCoreDNS] == nil || out[AddonCSRApprover] == nil ||
		out[AddonMetricsServer] == nil || out[AddonLocalPath] == nil {
		t.Fatalf("rendered %v", addons)
	}
	return out
}

func TestAddonsGolden(t *testing.T) {
	a := testAddons()
	a.LibModules = true
	addons, err := RenderAddons(a)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "addons")
	for _, ad := range addons {
		golden := filepath.Join(dir, ad.Name+".yaml")
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, ad.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./templates -update)", err)
		}
		if !bytes.Equal(ad.Data, want) {
			t.Errorf("%s differs from %s (run go test ./templates -update and review the diff)\n--- got\n%s", ad.Name, golden, ad.Data)
		}
	}
}

func TestKubeProxyManifest(t *testing.T) {
	for _, libModules := range []bool{false, true} {
		t.Run(fmt.Sprint("libModules=", libModules), func(t *testing.T) {
			a := testAddons()
			a.LibModules = libModules
			objs := renderAddons(t, a)[AddonKubeProxy]

			crb := objs["ClusterRoleBinding/kubeadm:node-proxier"].(*rbacv1.ClusterRoleBinding)
			if crb.RoleRef.Name != "system:node-proxier" || len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != "kube-proxy" || crb.Subjects[0].Namespace != "kube-system" {
				t.Errorf("ClusterRoleBinding %+v", crb)
			}
			if _, ok := objs["ServiceAccount/kube-proxy"]; !ok {
				t.Error("no ServiceAccount kube-proxy")
			}
			rb := objs["RoleBinding/kube-proxy"].(*rbacv1.RoleBinding)
			if rb.Subjects[0].Name != DefaultBootstrapGroup {
				t.Errorf("RoleBinding kube-proxy binds %v", rb.Subjects)
			}

			ds := objs["DaemonSet/kube-proxy"].(*appsv1.DaemonSet)
			spec := ds.Spec.Template.Spec
			c := spec.Containers[0]
			if !spec.HostNetwork || spec.PriorityClassName != "system-node-critical" || spec.ServiceAccountName != "kube-proxy" {
				t.Errorf("pod spec: hostNetwork %v, priority class %q, service account %q", spec.HostNetwork, spec.PriorityClassName, spec.ServiceAccountName)
			}
			if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
				t.Error("kube-proxy is not privileged")
			}
			if c.Image != a.ProxyImage {
				t.Errorf("image %q", c.Image)
			}
			if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
				t.Errorf("tolerations %+v do not tolerate every taint", spec.Tolerations)
			}
			if ds.Spec.Selector.MatchLabels["k8s-app"] != ds.Spec.Template.Labels["k8s-app"] {
				t.Error("the selector does not match the pod template")
			}
			mounts := map[string]string{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = m.MountPath
			}
			hostPaths := map[string]string{}
			for _, v := range spec.Volumes {
				if v.HostPath != nil {
					hostPaths[v.Name] = v.HostPath.Path
				}
			}
			if mounts["xtables-lock"] != "/run/xtables.lock" || hostPaths["xtables-lock"] != "/run/xtables.lock" {
				t.Errorf("xtables lock: mounts %v, host paths %v", mounts, hostPaths)
			}
			_, mounted := mounts["lib-modules"]
			_, volume := hostPaths["lib-modules"]
			if mounted != libModules || volume != libModules {
				t.Errorf("LibModules %v: /lib/modules mounted %v, volume %v", libModules, mounted, volume)
			}
			if !slices.Contains(c.Command, "--config="+mounts["kube-proxy"]+"/config.conf") {
				t.Errorf("command %q does not read the mounted config", c.Command)
			}

			cm := objs["ConfigMap/kube-proxy"].(*corev1.ConfigMap)
			var cfg struct {
				Kind             string `json:"kind"`
				Mode             string `json:"mode"`
				ClusterCIDR      string `json:"clusterCIDR"`
				ClientConnection struct {
					Kubeconfig string `json:"kubeconfig"`
				} `json:"clientConnection"`
				Conntrack struct {
					MaxPerCore *int32 `json:"maxPerCore"`
				} `json:"conntrack"`
			}
			if err := yaml.Unmarshal([]byte(cm.Data["config.conf"]), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Kind != "KubeProxyConfiguration" || cfg.Mode != "iptables" || cfg.ClusterCIDR != a.PodSubnet {
				t.Errorf("KubeProxyConfiguration %+v", cfg)
			}
			if strings.Contains(cm.Data["config.conf"], "minSyncPeriod") {
				t.Errorf("without ProxyMinSyncPeriod the configuration sets minSyncPeriod:\n%s", cm.Data["config.conf"])
			}
			if cfg.Conntrack.MaxPerCore == nil || *cfg.Conntrack.MaxPerCore != 0 {
				t.Error("conntrack.maxPerCore is not 0: kube-proxy would set nf_conntrack_max on the host")
			}
			if cfg.ClientConnection.Kubeconfig != mounts["kube-proxy"]+"/kubeconfig.conf" {
				t.Errorf("kubeconfig %q is not the mounted ConfigMap's kubeconfig.conf", cfg.ClientConnection.Kubeconfig)
			}
			kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig.conf"]))
			if err != nil {
				t.Fatal(err)
			}
			if s := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server; s != a.APIServerURL {
				t.Errorf("kube-proxy's kubeconfig points at %q", s)
			}
		})
	}
}

func TestCoreDNSManifest(t *testing.T) {
	a := testAddons()
	a.DNSDomain = "prod.internal"
	objs := renderAddons(t, a)[AddonCoreDNS]

	cr := objs["ClusterRole/system:coredns"].(*rbacv1.ClusterRole)
	if len(cr.Rules) != 2 || !slices.Contains(cr.Rules[1].Resources, "endpointslices") {
		t.Errorf("ClusterRole %+v", cr.Rules)
	}
	crb := objs["ClusterRoleBinding/system:coredns"].(*rbacv1.ClusterRoleBinding)
	if crb.RoleRef.Name != "system:coredns" || crb.Subjects[0].Name != "coredns" {
		t.Errorf("ClusterRoleBinding %+v", crb)
	}
	corefile := objs["ConfigMap/coredns"].(*corev1.ConfigMap).Data["Corefile"]
	for _, s := range []string{"kubernetes prod.internal in-addr.arpa ip6.arpa {", "forward . /etc/resolv.conf", "ready\n", "health {", "disable success prod.internal"} {
		if !strings.Contains(corefile, s) {
			t.Errorf("Corefile lacks %q:\n%s", s, corefile)
		}
	}
	if strings.Count(corefile, "{") != strings.Count(corefile, "}") {
		t.Errorf("Corefile braces do not balance:\n%s", corefile)
	}

	dep := objs["Deployment/coredns"].(*appsv1.Deployment)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %v", dep.Spec.Replicas)
	}
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != a.CoreDNSImage || spec.ServiceAccountName != "coredns" || spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("image %q, service account %q, priority class %q", c.Image, spec.ServiceAccountName, spec.PriorityClassName)
	}
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	probe := func(kind string, p *corev1.Probe, port int32, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("no %s probe", kind)
		}
		if got := ports[p.HTTPGet.Port.String()].ContainerPort; got != port || p.HTTPGet.Path != path {
			t.Errorf("%s probe: port %s (%d) path %s, want %d %s", kind, p.HTTPGet.Port.String(), got, p.HTTPGet.Path, port, path)
		}
	}
	probe("readiness", c.ReadinessProbe, 8181, "/ready")
	probe("liveness", c.LivenessProbe, 8080, "/health")
	tolerated := false
	for _, tol := range spec.Tolerations {
		if tol.Key == "node-role.kubernetes.io/control-plane" && tol.Effect == corev1.TaintEffectNoSchedule {
			tolerated = true
		}
	}
	if !tolerated {
		t.Error("CoreDNS does not tolerate the control-plane taint")
	}
	if dep.Spec.Selector.MatchLabels["k8s-app"] != dep.Spec.Template.Labels["k8s-app"] {
		t.Error("the selector does not match the pod template")
	}

	svc := objs["Service/kube-dns"].(*corev1.Service)
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Spec.Selector["k8s-app"] != "kube-dns" {
		t.Errorf("Service %+v", svc.Spec)
	}
	var got []string
	for _, p := range svc.Spec.Ports {
		got = append(got, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
	}
	if !slices.Equal(got, []string{"53/UDP", "53/TCP", "9153/TCP"}) {
		t.Errorf("Service ports %v", got)
	}
}

func TestAddonsValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Addons)
		want   string
	}{
		{"no proxy image", func(a *Addons) { a.ProxyImage = "" }, "ProxyImage is empty"},
		{"no CoreDNS image", func(a *Addons) { a.CoreDNSImage = "" }, "CoreDNSImage is empty"},
		{"no kforge image", func(a *Addons) { a.KforgeImage = "" }, "KforgeImage is empty"},
		{"endpoint without port", func(a *Addons) { a.APIServerURL = "https://192.0.2.10" }, "APIServerURL"},
		{"endpoint over http", func(a *Addons) { a.APIServerURL = "http://192.0.2.10:6443" }, "APIServerURL"},
		{"bad pod subnet", func(a *Addons) { a.PodSubnet = "10.244.0.0" }, "PodSubnet"},
		{"no pod subnet", func(a *Addons) { a.PodSubnet = "" }, "PodSubnet is empty"},
		{"bad domain", func(a *Addons) { a.DNSDomain = "Cluster Local" }, "DNSDomain"},
		{"bad DNS IP", func(a *Addons) { a.DNSServiceIP = "10.96.0" }, "DNSServiceIP"},
		{"negative replicas", func(a *Addons) { a.CoreDNSReplicas = -1 }, "CoreDNSReplicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAddons()
			tc.change(&a)
			_, err := RenderAddons(a)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "addons: ") {
				t.Errorf("got %v, want an addons error about %s", err, tc.want)
			}
		})
	}
}

// TestCSRApproverAddon checks the approver's Deployment and its rights: it
// runs kforge's image (never pulled) on the control planes in the host's
// network, talks to the endpoint directly, and may approve only for the
// kubelet-serving signer.
func TestCSRApproverAddon(t *testing.T) {
	objs := renderAddons(t, testAddons())[AddonCSRApprover]
	dep := objs["Deployment/kforge-csr-approver"].(*appsv1.Deployment)
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != "kforge.dev/kforge:sha256-0123456789abcdef" || c.ImagePullPolicy != corev1.PullNever || c.Args[0] != "csr-approver" {
		t.Errorf("container %s %s %v", c.Image, c.ImagePullPolicy, c.Args)
	}
	if !spec.HostNetwork || spec.NodeSelector["node-role.kubernetes.io/control-plane"] != "" || spec.ServiceAccountName != "kforge-csr-approver" {
		t.Errorf("hostNetwork %v, nodeSelector %v, service account %q", spec.HostNetwork, spec.NodeSelector, spec.ServiceAccountName)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "192.0.2.10" || env["KUBERNETES_SERVICE_PORT"] != "6443" {
		t.Errorf("env %v", env)
	}
	if sc := c.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("security context %+v", c.SecurityContext)
	}
	role := objs["ClusterRole/kforge:csr-approver"].(*rbacv1.ClusterRole)
	approve := false
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v == "approve" {
				approve = true
				if len(r.ResourceNames) != 1 || r.ResourceNames[0] != "kubernetes.io/kubelet-serving" {
					t.Errorf("approve is granted for %v, want only kubernetes.io/kubelet-serving", r.ResourceNames)
				}
			}
		}
	}
	if !approve {
		t.Error("the ClusterRole does not grant approve")
	}
}

// TestOptionalAddons: metrics-server verifies kubelets with the cluster CA
// (never --kubelet-insecure-tls) and is never pulled; local-path is the
// default StorageClass and runs its helper pods from its own image; both
// are left out when their images are not set.
func TestOptionalAddons(t *testing.T) {
	objs := renderAddons(t, testAddons())
	ms := objs[AddonMetricsServer]["Deployment/metrics-server"].(*appsv1.Deployment).Spec.Template.Spec
	c := ms.Containers[0]
	args := strings.Join(c.Args, " ")
	if strings.Contains(args, "insecure") || !strings.Contains(args, "--kubelet-certificate-authority=/etc/kubernetes/cluster-ca/ca.crt") || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("metrics-server: args %s, pull %s", args, c.ImagePullPolicy)
	}
	if ms.Volumes[1].ConfigMap == nil || ms.Volumes[1].ConfigMap.Name != "kube-root-ca.crt" {
		t.Errorf("metrics-server's CA volume: %+v", ms.Volumes[1])
	}
	if svc := objs[AddonMetricsServer]["APIService/v1beta1.metrics.k8s.io"].(*apiService); svc.Spec.Service.Name != "metrics-server" || svc.Spec.Group != "metrics.k8s.io" {
		t.Errorf("APIService %+v", svc.Spec)
	}
	sc := objs[AddonLocalPath]["StorageClass/local-path"].(*storagev1.StorageClass)
	if sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" || sc.Provisioner != "rancher.io/local-path" {
		t.Errorf("StorageClass %+v", sc)
	}
	cm := objs[AddonLocalPath]["ConfigMap/local-path-config"].(*corev1.ConfigMap)
	if !strings.Contains(cm.Data["helperPod.yaml"], "image: docker.io/rancher/local-path-provisioner:v0.0.30") ||
		!strings.Contains(cm.Data["config.json"], `"/opt/local-path-provisioner"`) {
		t.Errorf("local-path-config: %v", cm.Data)
	}
	a := testAddons()
	a.MetricsServerImage, a.LocalPathImage = "", ""
	addons, err := RenderAddons(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(addons) != 3 {
		t.Errorf("without their images, %d add-ons", len(addons))
	}
}

// With several control planes CoreDNS reaches the API server through the
// kubernetes Service: the host-network add-ons' load balancer on
// 127.0.0.1 is not on the pod network.
func TestCoreDNSThroughTheServiceWithSeveralControlPlanes(t *testing.T) {
	a := Addons{ProxyImage: "p:1", CoreDNSImage: "c:1", KforgeImage: "k:1", APIServerURL: "https://127.0.0.1:6444", PodSubnet: "10.244.0.0/16", DNSServiceIP: "10.96.0.10"}
	files, err := RenderAddons(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.Contains(f.Name, "coredns") && strings.Contains(string(f.Data), "KUBERNETES_SERVICE_HOST") {
			t.Errorf("%s sets KUBERNETES_SERVICE_HOST without CoreDNSAPIServerURL", f.Name)
		}
	}
}
