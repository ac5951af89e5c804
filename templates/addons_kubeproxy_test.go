package templates_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"kforge.dev/kforge/internal/controlplanetest"
	"kforge.dev/kforge/templates"
)

// TestKubeProxyAcceptsItsConfiguration has the real kube-proxy load,
// strictly decode and validate the KubeProxyConfiguration kforge renders,
// and write out what it resolved (--write-config-to exits before touching
// iptables or sysctls), a single host's minSyncPeriod included.
func TestKubeProxyAcceptsItsConfiguration(t *testing.T) {
	bin := controlplanetest.Binary(t, nil, "kube-proxy")
	addons, err := templates.RenderAddons(templates.Addons{
		ProxyImage: "registry.k8s.io/kube-proxy:v1.35.4", CoreDNSImage: "registry.k8s.io/coredns/coredns:v1.13.1", KforgeImage: "kforge.dev/kforge:sha256-0123456789abcdef",
		APIServerURL: "https://192.0.2.10:6443", CoreDNSAPIServerURL: "https://192.0.2.10:6443", PodSubnet: "10.244.0.0/16", DNSServiceIP: "10.96.0.10",
		ProxyMinSyncPeriod: "100ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Data map[string]string `json:"data"`
	}
	for _, doc := range strings.Split(string(addons[0].Data), "\n---\n") {
		if strings.Contains(doc, "\nkind: ConfigMap\n") {
			if err := yaml.Unmarshal([]byte(doc), &data); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "config.conf"), filepath.Join(dir, "resolved.yaml")
	if err := os.WriteFile(in, []byte(data.Data["config.conf"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log, err := exec.CommandContext(ctx, bin, "--config="+in, "--write-config-to="+out).CombinedOutput()
	if err != nil {
		t.Fatalf("kube-proxy refused the configuration: %v\n%s", err, log)
	}
	if strings.Contains(string(log), "strict decoding") || strings.Contains(string(log), "lenient") {
		t.Errorf("kube-proxy decoded the configuration only leniently:\n%s", log)
	}
	var cfg struct {
		Mode        string `json:"mode"`
		ClusterCIDR string `json:"clusterCIDR"`
		Conntrack   struct {
			MaxPerCore *int32 `json:"maxPerCore"`
		} `json:"conntrack"`
		ClientConnection struct {
			Kubeconfig string `json:"kubeconfig"`
		} `json:"clientConnection"`
		IPTables struct {
			MinSyncPeriod string `json:"minSyncPeriod"`
		} `json:"iptables"`
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != "iptables" || cfg.ClusterCIDR != "10.244.0.0/16" || cfg.Conntrack.MaxPerCore == nil || *cfg.Conntrack.MaxPerCore != 0 || cfg.ClientConnection.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" ||
		cfg.IPTables.MinSyncPeriod != "100ms" {
		t.Errorf("kube-proxy resolved:\n%s", b)
	}
}
