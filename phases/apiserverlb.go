package phases

import (
	"context"
	"net"
	"strconv"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// apiServerLB writes, on every node of a cluster with several control
// planes, HAProxy's configuration and static pod: the node's own load
// balancer on 127.0.0.1:6444 in front of every control plane's API server
// (see NodeAPIServer). It runs before the kubelet starts, which then runs
// it before it reaches any API server itself. A cluster with one control
// plane has none, and a node left from an earlier shape loses its own.
func apiServerLB(ctx context.Context, d *Data) error {
	if !d.Cluster.HA() {
		return removeFiles(ctx, d.Host, layout.APIServerLBManifest, layout.APIServerLBConfig)
	}
	imgs, err := d.Images()
	if err != nil {
		return err
	}
	lb := templates.APIServerLB{Image: imgs.HAProxy}
	for _, cp := range d.Cluster.ControlPlanes() {
		addr := ControlPlaneAddress(cp)
		name := cp.Name
		if name == "" {
			name = addr
		}
		lb.Servers = append(lb.Servers, templates.LBServer{Name: name, Address: net.JoinHostPort(addr, strconv.Itoa(layout.APIServerPort))})
	}
	files, err := templates.RenderAPIServerLB(lb)
	if err != nil {
		return err
	}
	// The configuration first: the manifest's hash names it.
	_, err = host.WriteChanged(ctx, d.Host, files...)
	return err
}

// ControlPlaneAddress is the address other nodes reach a control plane at:
// its nodeIP, else its address.
func ControlPlaneAddress(h config.Host) string {
	if h.NodeIP != "" {
		return h.NodeIP
	}
	return h.Address
}

// removeFiles removes paths that exist; the manifest first, so that the
// kubelet stops the pod before its configuration goes.
func removeFiles(ctx context.Context, h host.Host, paths ...string) error {
	for _, p := range paths {
		if err := h.Remove(ctx, p); err != nil {
			return err
		}
	}
	return nil
}
