package phases

import (
	"context"
	"encoding/json"
	"fmt"

	"kforge.dev/kforge/layout"
)

// BridgeName is the Linux bridge the pods of a single-node cluster share.
const BridgeName = "cni0"

// cniConfig writes the pod network's CNI config for the bridge plugin: one
// Linux bridge, host-local addresses from the pod subnet, masquerading of
// traffic leaving it, and portmap for hostPort. kube-router (multi-node)
// writes its own config from its DaemonSet.
func cniConfig(ctx context.Context, d *Data) error {
	if d.CNIPlugin() != "bridge" {
		return nil
	}
	data, err := bridgeConflist(d.Cluster.Networking.PodSubnet)
	if err != nil {
		return err
	}
	return d.Host.WriteFile(ctx, layout.BridgeConflist, data, layout.PublicMode)
}

func bridgeConflist(podSubnet string) ([]byte, error) {
	if podSubnet == "" {
		return nil, fmt.Errorf("bridge CNI: the pod subnet is empty")
	}
	type obj = map[string]any
	conf := obj{
		"cniVersion": "1.0.0",
		"name":       "kforge",
		"plugins": []obj{
			{
				"type":        "bridge",
				"bridge":      BridgeName,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": obj{
					"type":   "host-local",
					"ranges": [][]obj{{{"subnet": podSubnet}}},
					"routes": []obj{{"dst": "0.0.0.0/0"}},
				},
			},
			{"type": "portmap", "capabilities": obj{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	return append(b, '\n'), err
}
