package templates

import (
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/yaml"
)

func TestRenderErrorsNameTheTemplate(t *testing.T) {
	_, err := Render("kubelet/flags.env", map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "files/kubelet/flags.env.tmpl") {
		t.Errorf("missing key: %v, want an error naming files/kubelet/flags.env.tmpl", err)
	}
	if err == nil || !strings.Contains(err.Error(), "map has no entry") {
		t.Errorf("missing key: %v, want missingkey=error", err)
	}
	_, err = Render("controlplane/etcd.yaml", struct{ NodeName string }{"x"})
	if err == nil || !strings.Contains(err.Error(), "files/controlplane/etcd.yaml.tmpl") {
		t.Errorf("missing field: %v, want an error naming files/controlplane/etcd.yaml.tmpl", err)
	}
	_, err = Render("controlplane/nope.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "files/controlplane/nope.yaml.tmpl") {
		t.Errorf("unknown template: %v", err)
	}
}

func TestNames(t *testing.T) {
	want := []string{
		"addons/coredns.yaml", "addons/csr-approver.yaml", "addons/kube-proxy.yaml", "addons/kube-router.yaml", "addons/local-path.yaml", "addons/metrics-server.yaml",
		"containerd/config-v2.toml", "containerd/config-v3.toml", "containerd/containerd.service", "containerd/hosts.toml",
		"controlplane/audit-policy.yaml", "controlplane/etcd.yaml", "controlplane/kube-apiserver.yaml",
		"controlplane/kube-controller-manager.yaml", "controlplane/kube-scheduler.yaml",
		"kubelet/10-kforge.conf", "kubelet/config.yaml", "kubelet/flags.env", "kubelet/kubelet.service",
		"lb/haproxy.cfg", "lb/haproxy.yaml", "lb/keepalived.conf", "lb/keepalived.yaml",
	}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

// The audit policy decodes strictly as the API server's audit.k8s.io/v1
// Policy, and records what it promises: no Secret bodies, writes with their
// requests, no health checks.
func TestAuditPolicy(t *testing.T) {
	data, err := AuditPolicy()
	if err != nil {
		t.Fatal(err)
	}
	var p auditv1.Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("audit policy does not decode strictly: %v", err)
	}
	if p.Kind != "Policy" || p.APIVersion != "audit.k8s.io/v1" || len(p.Rules) == 0 {
		t.Fatalf("audit policy: kind %q apiVersion %q, %d rules", p.Kind, p.APIVersion, len(p.Rules))
	}
	// first returns the level of the first rule matching a request.
	first := func(group, resource, verb, url string) auditv1.Level {
		for _, r := range p.Rules {
			if len(r.Verbs) > 0 && !slices.Contains(r.Verbs, verb) || len(r.Users) > 0 || len(r.UserGroups) > 0 {
				continue
			}
			if url != "" {
				for _, u := range r.NonResourceURLs {
					if u == url || strings.HasSuffix(u, "*") && strings.HasPrefix(url, strings.TrimSuffix(u, "*")) {
						return r.Level
					}
				}
				if len(r.NonResourceURLs) == 0 && len(r.Resources) == 0 {
					return r.Level
				}
				continue
			}
			if len(r.NonResourceURLs) > 0 {
				continue
			}
			if len(r.Resources) == 0 {
				return r.Level
			}
			for _, g := range r.Resources {
				if g.Group == group && (len(g.Resources) == 0 || slices.Contains(g.Resources, resource)) {
					return r.Level
				}
			}
		}
		return "unmatched"
	}
	for _, tc := range []struct {
		group, resource, verb, url string
		want                       auditv1.Level
	}{
		{"", "secrets", "create", "", auditv1.LevelMetadata},
		{"", "secrets", "get", "", auditv1.LevelMetadata},
		{"", "configmaps", "update", "", auditv1.LevelMetadata},
		{"apps", "deployments", "create", "", auditv1.LevelRequest},
		{"", "pods", "delete", "", auditv1.LevelRequest},
		{"", "pods", "list", "", auditv1.LevelMetadata},
		{"coordination.k8s.io", "leases", "update", "", auditv1.LevelNone},
		{"", "", "get", "/readyz", auditv1.LevelNone},
		{"", "", "get", "/livez/etcd", auditv1.LevelNone},
	} {
		if got := first(tc.group, tc.resource, tc.verb, tc.url); got != tc.want {
			t.Errorf("%s %s/%s %s: level %s, want %s", tc.verb, tc.group, tc.resource, tc.url, got, tc.want)
		}
	}
}

func TestValidation(t *testing.T) {
	good := goldenCases()[0]
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"empty control plane", func() error { _, err := RenderControlPlane(ControlPlane{}); return err }, "Images.Etcd is empty"},
		{"unspecified address", func() error {
			c := good.controlPlane
			c.AdvertiseAddress = "0.0.0.0"
			_, err := RenderControlPlane(c)
			return err
		}, "AdvertiseAddress"},
		{"bad etcd version", func() error {
			c := good.controlPlane
			c.EtcdVersion = "latest"
			_, err := RenderControlPlane(c)
			return err
		}, "EtcdVersion"},
		{"bad service subnet", func() error {
			c := good.controlPlane
			c.ServiceSubnet = "10.96.0.0"
			_, err := RenderControlPlane(c)
			return err
		}, "ServiceSubnet"},
		{"no cgroup driver", func() error {
			k := good.kubelet
			k.CgroupDriver = ""
			_, err := RenderKubelet(k)
			return err
		}, "CgroupDriver"},
		{"no cluster DNS", func() error {
			k := good.kubelet
			k.ClusterDNS = nil
			_, err := RenderKubelet(k)
			return err
		}, "ClusterDNS"},
		{"flag with a space", func() error {
			k := good.kubelet
			k.ExtraArgs = map[string]string{"node-labels": "a=b c"}
			_, err := RenderKubelet(k)
			return err
		}, "node-labels"},
		{"no CNI bin dir", func() error {
			c := good.containerd
			c.CNIBinDir = ""
			_, err := RenderContainerd(c)
			return err
		}, "CNIBinDir"},
		{"config version 1", func() error {
			c := good.containerd
			c.ConfigVersion = 1
			_, err := RenderContainerd(c)
			return err
		}, "ConfigVersion"},
	} {
		err := tc.err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}

func TestFlagsOverrideAndSort(t *testing.T) {
	got := flags(map[string]string{"b": "1", "a": "2"}, map[string]string{"--b": "3", "c": ""})
	want := []string{"--a=2", "--b=3", "--c="}
	if !slices.Equal(got, want) {
		t.Errorf("flags = %v, want %v", got, want)
	}
}

func TestYAMLScalarReadsBack(t *testing.T) {
	for _, s := range []string{
		"", "true", "yes", "on", "null", "~", "10", "1e3", "0x1f", "10.0.0.1", "fd00::1", "a: b", "a:", "#x", "x #y",
		"*alias", "&anchor", "!tag", "- x", "-", "--", "--a=b", "[x]", "{x}", "'q'", `"q"`, "%x", "@x", "`x`",
		"--controllers=*,bootstrapsigner,tokencleaner", "https://[2001:db8::1]:2379", "line\nbreak", "tab\there",
		"/etc/kubernetes/pki", "registry.k8s.io/pause:3.10.1", "Node,RBAC", "ünïcode",
	} {
		out := yamlScalar(s)
		var v map[string]any
		if err := yaml.Unmarshal([]byte("k: "+out+"\n"), &v); err != nil {
			t.Errorf("yamlScalar(%q) = %s: %v", s, out, err)
			continue
		}
		if got, ok := v["k"].(string); !ok || got != s {
			t.Errorf("yamlScalar(%q) = %s reads back as %#v", s, out, v["k"])
		}
		var l []any
		if err := yaml.Unmarshal([]byte("- "+out+"\n"), &l); err != nil || len(l) != 1 || l[0] != s {
			t.Errorf("yamlScalar(%q) = %s reads back in a list as %#v (%v)", s, out, l, err)
		}
	}
}

func TestTOMLStringReadsBack(t *testing.T) {
	for _, s := range []string{"", `a"b`, `back\slash`, "line\nbreak", "tab\there", "\x01ctl", "ünïcode", "'single'"} {
		var v struct{ K string }
		if err := toml.Unmarshal([]byte("K = "+tomlString(s)+"\n"), &v); err != nil || v.K != s {
			t.Errorf("tomlString(%q) = %s reads back as %q (%v)", s, tomlString(s), v.K, err)
		}
	}
}
