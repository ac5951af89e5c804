package phases

import (
	"context"
	"fmt"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// virtualIP writes, on each control plane of a cluster file with
// loadBalancer.virtualIP, keepalived's configuration and static pod: the
// control planes elect one of them (VRRP, unicast between their
// addresses) to hold the virtual IP, where clients outside the cluster
// reach an API server, and another takes it over when that one stops.
// Without a virtual IP the files are removed.
func virtualIP(ctx context.Context, d *Data) error {
	vip := d.Cluster.LoadBalancer.VirtualIP
	if vip == "" {
		return removeFiles(ctx, d.Host, layout.VIPManifest, layout.VIPConfig)
	}
	imgs, err := d.Images()
	if err != nil {
		return err
	}
	iface := d.Cluster.LoadBalancer.Interface
	if iface == "" {
		if iface, err = interfaceOf(ctx, d.Host, d.AdvertiseAddress); err != nil {
			return err
		}
	}
	v := templates.VIP{
		Image: imgs.Keepalived, VirtualIP: vip, Interface: iface, Address: d.AdvertiseAddress,
		ClusterName: d.Cluster.Name, NodeName: d.NodeName, Priority: 100,
	}
	for i, cp := range d.Cluster.ControlPlanes() {
		addr := ControlPlaneAddress(cp)
		if addr == d.AdvertiseAddress || cp.Address == d.Node.Address {
			// The file's order decides the first election only.
			v.Priority = max(1, 200-10*i)
			continue
		}
		v.Peers = append(v.Peers, addr)
	}
	files, err := templates.RenderVIP(v)
	if err != nil {
		return err
	}
	_, err = host.WriteChanged(ctx, d.Host, files...)
	return err
}

// interfaceOf names the host's network interface that holds addr.
func interfaceOf(ctx context.Context, h host.Host, addr string) (string, error) {
	out, err := host.Probe(ctx, h, "ip", "-o", "-4", "addr", "show")
	if err != nil {
		return "", fmt.Errorf("find the interface of %s for the virtual IP: %w", addr, err)
	}
	for _, line := range strings.Split(out, "\n") {
		// 2: eth0    inet 172.30.0.11/16 brd ... scope global eth0
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" && strings.SplitN(f[i+1], "/", 2)[0] == addr && len(f) > 1 {
				return strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0], nil
			}
		}
	}
	return "", fmt.Errorf("no interface of %s holds %s; set loadBalancer.interface in the cluster file", h.Name(), addr)
}
