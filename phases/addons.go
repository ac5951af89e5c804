package phases

import (
	"context"
	"fmt"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// addons applies kube-proxy (a DaemonSet in iptables mode on every node),
// CoreDNS (a Deployment of two, behind the kube-dns Service at the tenth
// service IP), kforge's kubelet serving certificate approver (a Deployment
// on the control planes, from kforge's image), metrics-server and
// local-path-provisioner (unless the cluster file's addons turn them off)
// and, when the cluster's network is kube-router, kube-router
// (a DaemonSet that installs the CNI config and routes pods between
// nodes) with server-side apply; a re-run that finds them as rendered
// changes nothing. It changes nothing on the host.
func addons(ctx context.Context, d *Data) error {
	_, err := d.applyAddons(ctx)
	return err
}

func (d *Data) applyAddons(ctx context.Context) ([]kube.Applied, error) {
	rendered, err := d.renderAddons(ctx)
	if err != nil {
		return nil, err
	}
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return nil, err
	}
	var all []kube.Applied
	for _, a := range rendered {
		applied, err := c.Apply(ctx, a.Data)
		all = append(all, applied...)
		if err != nil {
			return all, fmt.Errorf("addon %s: %w", a.Name, err)
		}
		d.logApplied("addon "+a.Name, applied)
	}
	return all, nil
}

func (d *Data) renderAddons(ctx context.Context) ([]templates.Addon, error) {
	imgs, err := d.Images()
	if err != nil {
		return nil, err
	}
	self, err := d.kforgeImageSpec()
	if err != nil {
		return nil, err
	}
	n := d.Cluster.Networking
	dns, err := n.ServiceIP(10)
	if err != nil {
		return nil, err
	}
	libModules, err := host.Exists(ctx, d.Host, "/lib/modules")
	if err != nil {
		return nil, err
	}
	// imageRepository: the workload add-ons come from the user's registry.
	pull := "Never"
	if repo := d.Cluster.ImageRepository; repo != "" {
		imgs.CoreDNS, imgs.MetricsServer, imgs.LocalPath = images.Rehome(imgs.CoreDNS, repo), images.Rehome(imgs.MetricsServer, repo), images.Rehome(imgs.LocalPath, repo)
		pull = "IfNotPresent"
	}
	var metrics, localPath string
	if config.Enabled(d.Cluster.Addons.MetricsServer) {
		metrics = imgs.MetricsServer
	}
	if config.Enabled(d.Cluster.Addons.Storage) {
		localPath = imgs.LocalPath
	}
	out, err := templates.RenderAddons(templates.Addons{
		WorkloadPullPolicy:  pull,
		MetricsServerImage:  metrics,
		LocalPathImage:      localPath,
		ProxyImage:          imgs.Proxy,
		CoreDNSImage:        imgs.CoreDNS,
		KforgeImage:         self.Ref,
		NoUpstreamDNS:       !d.DNS.Upstream,
		APIServerURL:        "https://" + d.NodeAPIServer(),
		CoreDNSAPIServerURL: d.podAPIServerURL(),
		PodSubnet:           n.PodSubnet,
		ProxyMinSyncPeriod:  d.Cluster.ProxyMinSyncPeriod(),
		DNSDomain:           n.DNSDomain,
		DNSServiceIP:        dns.String(),
		LibModules:          libModules,
	})
	if err != nil || d.CNIPlugin() != "kube-router" {
		return out, err
	}
	kr, err := templates.RenderKubeRouter(templates.KubeRouter{
		Image:        imgs.KubeRouter,
		APIServerURL: "https://" + d.NodeAPIServer(),
		LibModules:   libModules,
		CNIConfDir:   layout.CNIConfDir,
	})
	if err != nil {
		return nil, err
	}
	return append(out, kr), nil
}

// podAPIServerURL is where CoreDNS, on the pod network, reaches the API
// server: the endpoint with one control plane; with several, the
// kubernetes Service (empty), which follows the live API servers, where
// the endpoint may be one machine.
func (d *Data) podAPIServerURL() string {
	if d.Cluster.HA() {
		return ""
	}
	return "https://" + d.Endpoint
}
