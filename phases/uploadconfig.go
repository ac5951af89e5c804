package phases

import (
	"context"
	"fmt"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// ConfigMaps upload-config writes in kube-system, and their keys.
const (
	ClusterConfigMap   = "kforge-config"
	ClusterConfigKey   = "cluster.yaml"
	KubeletConfigMap   = "kubelet-config"
	KubeletConfigKey   = "kubelet"
	NodesGroup         = "system:nodes"
	nodesKforgeConfig  = "kforge:nodes-kforge-config"
	nodesKubeletConfig = "kubeadm:kubelet-config"
)

// uploadConfig stores the cluster file in the kube-system ConfigMap
// kforge-config (key cluster.yaml, without the hosts' SSH and sudo
// settings, which belong to the machine kforge runs on) and the node's
// KubeletConfiguration in kubelet-config (key kubelet), and lets joining
// nodes (bootstrap tokens) and nodes read both. It changes nothing on the
// host.
func uploadConfig(ctx context.Context, d *Data) error {
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return err
	}
	cluster, err := clusterForUpload(d)
	if err != nil {
		return err
	}
	kubelet, err := d.Host.ReadFile(ctx, layout.KubeletConfig)
	if err != nil {
		return fmt.Errorf("the kubelet's configuration: %w (run `kforge init phase kubelet` first)", err)
	}
	readers := kube.Groups(templates.DefaultBootstrapGroup, NodesGroup)
	ns := metav1.NamespaceSystem
	return d.apply(ctx, c, "upload-config",
		kube.ConfigMap(ns, ClusterConfigMap, map[string]string{ClusterConfigKey: string(cluster)}),
		kube.ConfigMap(ns, KubeletConfigMap, map[string]string{KubeletConfigKey: string(kubelet)}),
		kube.ConfigMapReader(ns, nodesKforgeConfig, ClusterConfigMap),
		kube.RoleBinding(ns, nodesKforgeConfig, nodesKforgeConfig, readers...),
		kube.ConfigMapReader(ns, nodesKubeletConfig, KubeletConfigMap),
		kube.RoleBinding(ns, nodesKubeletConfig, nodesKubeletConfig, readers...),
	)
}

// clusterForUpload is the cluster file as YAML without the hosts' SSH and
// sudo settings.
func clusterForUpload(d *Data) ([]byte, error) {
	c := *d.Cluster
	c.Hosts = append(c.Hosts[:0:0], c.Hosts...)
	for i := range c.Hosts {
		c.Hosts[i].SSH = config.SSH{}
		c.Hosts[i].Sudo = config.Sudo{}
	}
	return yaml.Marshal(&c)
}
