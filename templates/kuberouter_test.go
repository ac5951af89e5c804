package templates

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"

	kimages "kforge.dev/kforge/images"
	"kforge.dev/kforge/internal/testtier"
)

func testKubeRouter() KubeRouter {
	return KubeRouter{
		Image:        "docker.io/cloudnativelabs/kube-router:v2.1.0",
		APIServerURL: "https://192.0.2.10:6443",
	}
}

func TestKubeRouterGolden(t *testing.T) {
	k := testKubeRouter()
	k.LibModules = true
	a, err := RenderKubeRouter(k)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "addons", a.Name+".yaml")
	if *update {
		if err := os.WriteFile(golden, a.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update)", err)
	}
	if !bytes.Equal(a.Data, want) {
		t.Errorf("%s differs from %s (run go test ./templates -update and review the diff)\n--- got\n%s", a.Name, golden, a.Data)
	}
}

func TestKubeRouterManifest(t *testing.T) {
	for _, libModules := range []bool{false, true} {
		k := testKubeRouter()
		k.LibModules = libModules
		a, err := RenderKubeRouter(k)
		if err != nil {
			t.Fatal(err)
		}
		objs := objects(t, a.Name, a.Data)
		if len(objs) != 5 {
			t.Errorf("%d objects, want ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, DaemonSet", len(objs))
		}
		if _, ok := objs["ServiceAccount/kube-router"]; !ok {
			t.Error("no ServiceAccount kube-router")
		}
		cr := objs["ClusterRole/kube-router"].(*rbacv1.ClusterRole)
		may := func(group, resource, verb string) bool {
			for _, r := range cr.Rules {
				if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
					return true
				}
			}
			return false
		}
		for _, want := range [][3]string{
			{"", "nodes", "watch"}, {"", "pods", "list"}, {"", "namespaces", "watch"},
			{"networking.k8s.io", "networkpolicies", "watch"}, {"discovery.k8s.io", "endpointslices", "list"},
			{"coordination.k8s.io", "leases", "update"},
		} {
			if !may(want[0], want[1], want[2]) {
				t.Errorf("kube-router may not %s %s in group %q", want[2], want[1], want[0])
			}
		}
		crb := objs["ClusterRoleBinding/kube-router"].(*rbacv1.ClusterRoleBinding)
		if crb.RoleRef.Name != "kube-router" || crb.Subjects[0].Kind != "ServiceAccount" || crb.Subjects[0].Name != "kube-router" || crb.Subjects[0].Namespace != "kube-system" {
			t.Errorf("ClusterRoleBinding %+v", crb)
		}

		cm := objs["ConfigMap/kube-router-cfg"].(*corev1.ConfigMap)
		var conf struct {
			CNIVersion string `json:"cniVersion"`
			Plugins    []struct {
				Type             string          `json:"type"`
				Bridge           string          `json:"bridge"`
				IsDefaultGateway bool            `json:"isDefaultGateway"`
				HairpinMode      bool            `json:"hairpinMode"`
				IPAM             json.RawMessage `json:"ipam"`
				Capabilities     map[string]bool `json:"capabilities"`
			} `json:"plugins"`
		}
		dec := json.NewDecoder(strings.NewReader(cm.Data["cni-conf.json"]))
		if err := dec.Decode(&conf); err != nil {
			t.Fatalf("cni-conf.json: %v\n%s", err, cm.Data["cni-conf.json"])
		}
		if len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" || conf.Plugins[0].Bridge != "kube-bridge" ||
			!conf.Plugins[0].IsDefaultGateway || !conf.Plugins[0].HairpinMode || string(conf.Plugins[0].IPAM) == "" ||
			conf.Plugins[1].Type != "portmap" || !conf.Plugins[1].Capabilities["portMappings"] {
			t.Errorf("CNI config %+v", conf)
		}
		kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
		if err != nil {
			t.Fatal(err)
		}
		cl := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
		if cl.Server != k.APIServerURL || cl.CertificateAuthority != "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" ||
			kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].TokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
			t.Errorf("kube-router's kubeconfig:\n%s", cm.Data["kubeconfig"])
		}

		ds := objs["DaemonSet/kube-router"].(*appsv1.DaemonSet)
		spec := ds.Spec.Template.Spec
		if !spec.HostNetwork || spec.ServiceAccountName != "kube-router" || spec.PriorityClassName != "system-node-critical" {
			t.Errorf("pod spec: hostNetwork %v, service account %q, priority class %q", spec.HostNetwork, spec.ServiceAccountName, spec.PriorityClassName)
		}
		if ds.Spec.Selector.MatchLabels["k8s-app"] != ds.Spec.Template.Labels["k8s-app"] {
			t.Error("the selector does not match the pod template")
		}
		tolerates := func(effect corev1.TaintEffect) bool {
			return slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
				return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == effect
			})
		}
		if !tolerates(corev1.TaintEffectNoSchedule) || !tolerates(corev1.TaintEffectNoExecute) {
			t.Errorf("tolerations %+v: kube-router must run on every node, control plane and not-ready nodes included", spec.Tolerations)
		}
		c := spec.Containers[0]
		if c.Image != k.Image || c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
			t.Errorf("container: image %q, security context %+v", c.Image, c.SecurityContext)
		}
		for _, a := range []string{"--run-router=true", "--run-firewall=true", "--run-service-proxy=false", "--enable-overlay=false", "--kubeconfig=/var/lib/kube-router/kubeconfig"} {
			if !slices.Contains(c.Args, a) {
				t.Errorf("args %q lack %s", c.Args, a)
			}
		}
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		if env["KUBE_ROUTER_CNI_CONF_FILE"].Value != "/etc/cni/net.d/10-kuberouter.conflist" || env["NODE_NAME"].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
			t.Errorf("env %+v", c.Env)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Port.IntValue() != 20244 {
			t.Errorf("liveness probe %+v", c.LivenessProbe)
		}
		vols := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			vols[v.Name] = v
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("mount %s has no volume", m.Name)
			}
			mounts[m.Name] = m.MountPath
		}
		if mounts["cni-conf-dir"] != "/etc/cni/net.d" || vols["cni-conf-dir"].HostPath.Path != "/etc/cni/net.d" {
			t.Errorf("CNI config dir: mount %q, volume %+v", mounts["cni-conf-dir"], vols["cni-conf-dir"])
		}
		if mounts["xtables-lock"] != "/run/xtables.lock" || vols["xtables-lock"].HostPath.Path != "/run/xtables.lock" {
			t.Errorf("xtables lock: mount %q", mounts["xtables-lock"])
		}
		if mounts["kubeconfig"] != "/var/lib/kube-router" || vols["kubeconfig"].ConfigMap.Items[0].Path != "kubeconfig" {
			t.Errorf("kubeconfig: mount %q, volume %+v", mounts["kubeconfig"], vols["kubeconfig"])
		}
		_, mounted := mounts["lib-modules"]
		_, volume := vols["lib-modules"]
		if mounted != libModules || volume != libModules {
			t.Errorf("LibModules %v: /lib/modules mounted %v, volume %v", libModules, mounted, volume)
		}
		ic := spec.InitContainers[0]
		if ic.Image != k.Image || len(ic.Command) != 3 || ic.Command[0] != "/bin/sh" {
			t.Errorf("init container %+v", ic)
		}
	}
}

// TestKubeRouterInstallsItsCNIConfig runs the init container's script with
// the host's sh: it installs the config once, keeps the one kube-router
// has filled in, and removes kforge's single-node bridge config.
func TestKubeRouterInstallsItsCNIConfig(t *testing.T) {
	dir, cfg := t.TempDir(), t.TempDir()
	k := testKubeRouter()
	k.CNIConfDir = dir
	a, err := RenderKubeRouter(k)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, a.Name, a.Data)
	cm := objs["ConfigMap/kube-router-cfg"].(*corev1.ConfigMap)
	if err := os.WriteFile(filepath.Join(cfg, "cni-conf.json"), []byte(cm.Data["cni-conf.json"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ic := objs["DaemonSet/kube-router"].(*appsv1.DaemonSet).Spec.Template.Spec.InitContainers[0]
	script := strings.ReplaceAll(ic.Command[2], "/etc/kube-router", cfg)
	run := func() {
		t.Helper()
		if out, err := exec.Command(ic.Command[0], ic.Command[1], script).CombinedOutput(); err != nil {
			t.Fatalf("install-cni: %v\n%s", err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "10-kforge-bridge.conflist"), []byte("{}"), 0o644)
	run()
	conf := filepath.Join(dir, DefaultKubeRouterCNIConf)
	if b, err := os.ReadFile(conf); err != nil || string(b) != cm.Data["cni-conf.json"] {
		t.Fatalf("%s: %v\n%s", conf, err, b)
	}
	os.WriteFile(conf, []byte("filled in by kube-router"), 0o644)
	run()
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if b, _ := os.ReadFile(conf); string(b) != "filled in by kube-router" || !slices.Equal(names, []string{DefaultKubeRouterCNIConf}) {
		t.Errorf("after a second run: %s holds %q; the directory holds %v", conf, b, names)
	}
}

// TestKubeRouterKnowsItsFlags asks the kube-router that `make artifacts`
// built whether it has every flag the manifest passes.
func TestKubeRouterKnowsItsFlags(t *testing.T) {
	testtier.Integration(t, "kube-router from `make artifacts`")
	v, err := kimages.For(kimages.Default())
	if err != nil {
		t.Fatal(err)
	}
	bin := kimages.DefaultCache().Binary("kube-router", v.Versions.KubeRouter, "kube-router")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s is not built: run `make artifacts` first (%v)", bin, err)
	}
	a, err := RenderKubeRouter(testKubeRouter())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	help, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if !strings.Contains(string(help), "--run-router") {
		t.Fatalf("kube-router --help:\n%s", help)
	}
	c := objects(t, a.Name, a.Data)["DaemonSet/kube-router"].(*appsv1.DaemonSet).Spec.Template.Spec.Containers[0]
	for _, arg := range c.Args {
		name, _, _ := strings.Cut(arg, "=")
		if !strings.Contains(string(help), "      "+name+" ") {
			t.Errorf("kube-router %s has no flag %s", v.Versions.KubeRouter, name)
		}
	}
}

func TestKubeRouterValidation(t *testing.T) {
	for name, change := range map[string]func(*KubeRouter){
		"Image":        func(k *KubeRouter) { k.Image = "" },
		"APIServerURL": func(k *KubeRouter) { k.APIServerURL = "http://192.0.2.10:6443" },
		"CNIConfDir":   func(k *KubeRouter) { k.CNIConfDir = "/etc/cni/net.d; rm -rf /" },
		"CNIConfName":  func(k *KubeRouter) { k.CNIConfName = "10-kuberouter.conf" },
	} {
		k := testKubeRouter()
		change(&k)
		if _, err := RenderKubeRouter(k); err == nil || !strings.Contains(err.Error(), name) || !strings.HasPrefix(err.Error(), "kube-router: ") {
			t.Errorf("bad %s: %v", name, err)
		}
	}
}
