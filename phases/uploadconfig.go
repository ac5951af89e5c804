package phases

import (
	"context"
	"fmt"

	"gopkg.in/yaml.v3"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// ConfigMaps upload-config writes in kube-system, and their keys.
const (
	ClusterConfigMap    = "kforge-config"
	ClusterConfigKey    = "cluster.yaml"
	KubeletConfigMap    = "kubelet-config"
	KubeletConfigKey    = "kubelet"
	NodesGroup          = "system:nodes"
	nodesKforgeConfig   = "kforge:nodes-kforge-config"
	nodesKubeletConfig  = "kubeadm:kubelet-config"
	namespaceKubeSystem = "kube-system"
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
		return fmt.Errorf("the kubelet's configuration on %s: %w (run `kforge init phase kubelet` first)", d.Host.Name(), err)
	}
	readers := groups(templates.DefaultBootstrapGroup, NodesGroup)
	_, err = d.applyObjects(ctx, c, "upload-config",
		object("v1", "ConfigMap", namespaceKubeSystem, ClusterConfigMap, map[string]any{
			"data": map[string]any{ClusterConfigKey: string(cluster)},
		}),
		object("v1", "ConfigMap", namespaceKubeSystem, KubeletConfigMap, map[string]any{
			"data": map[string]any{KubeletConfigKey: string(kubelet)},
		}),
		readConfigMapRole(nodesKforgeConfig, ClusterConfigMap),
		object("rbac.authorization.k8s.io/v1", "RoleBinding", namespaceKubeSystem, nodesKforgeConfig, map[string]any{
			"roleRef": roleRef("Role", nodesKforgeConfig), "subjects": readers,
		}),
		readConfigMapRole(nodesKubeletConfig, KubeletConfigMap),
		object("rbac.authorization.k8s.io/v1", "RoleBinding", namespaceKubeSystem, nodesKubeletConfig, map[string]any{
			"roleRef": roleRef("Role", nodesKubeletConfig), "subjects": readers,
		}),
	)
	return err
}

func readConfigMapRole(name, configMap string) map[string]any {
	return object("rbac.authorization.k8s.io/v1", "Role", namespaceKubeSystem, name, map[string]any{
		"rules": []any{map[string]any{
			"apiGroups": []any{""}, "resources": []any{"configmaps"},
			"resourceNames": []any{configMap}, "verbs": []any{"get"},
		}},
	})
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
