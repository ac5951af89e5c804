package phases

import (
	"context"

	"kforge.dev/kforge/templates"
)

// kubeletConfig writes the kubelet's KubeletConfiguration, its flags file
// and its systemd unit: cgroup driver and failCgroupV1 follow the host's
// facts, cluster DNS is the tenth service IP.
func kubeletConfig(ctx context.Context, d *Data) error {
	files, err := d.renderKubelet()
	if err != nil {
		return err
	}
	return writeFiles(ctx, d, files)
}

func (d *Data) renderKubelet() ([]templates.File, error) {
	dns, err := d.Cluster.Networking.ServiceIP(10)
	if err != nil {
		return nil, err
	}
	return templates.RenderKubelet(templates.Kubelet{
		NodeName:      d.NodeName,
		NodeIP:        d.AdvertiseAddress,
		CgroupDriver:  d.Facts.CgroupDriver(),
		CgroupV1:      !d.Facts.CgroupV2,
		AllowSwap:     d.Facts.SwapOn,
		ClusterDNS:    []string{dns.String()},
		ClusterDomain: d.Cluster.Networking.DNSDomain,
	})
}
