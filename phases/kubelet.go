package phases

import (
	"context"
	"fmt"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// kubelet writes the kubelet's KubeletConfiguration (cgroup driver and
// failCgroupV1 from the host's facts, cluster DNS at the tenth service
// IP), its flags and its systemd unit, and starts it — as a systemd unit
// when systemd runs, otherwise under kforge's supervisor — restarting it
// when its configuration changed. etcd's and the API server's static pods
// are already in /etc/kubernetes/manifests, so the kubelet starts them at
// once; the controller manager's and the scheduler's follow after wait.
func kubelet(ctx context.Context, d *Data) error {
	k, changed, err := d.writeKubelet(ctx)
	if err != nil {
		return err
	}
	return d.Services.Ensure(ctx, kubeletService(k), changed)
}

// writeKubelet renders the kubelet's files for this host, creates its
// cgroup root when it needs one, writes the files that differ and checks
// that the kubelet is installed. It tells whether any file changed.
func (d *Data) writeKubelet(ctx context.Context) (templates.Kubelet, bool, error) {
	k, files, err := d.renderKubelet()
	if err != nil {
		return k, false, err
	}
	if k.CgroupRoot != "" {
		// The kubelet refuses a cgroup root missing from any hierarchy.
		if _, err := d.Host.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", `for h in /sys/fs/cgroup/*/; do [ -L "${h%/}" ] || mkdir -p "$h${1#/}"; done`, "sh", k.CgroupRoot}, Sudo: true}); err != nil {
			return k, false, err
		}
	}
	changed, err := host.WriteChanged(ctx, d.Host, files...)
	if err != nil {
		return k, false, err
	}
	if _, err := host.Output(ctx, d.Host, "test", "-x", k.BinaryPath); err != nil {
		return k, false, fmt.Errorf("no kubelet at %s: pass --bundle FILE (make artifacts builds one)", k.BinaryPath)
	}
	return k, changed, nil
}

func (d *Data) renderKubelet() (templates.Kubelet, []host.File, error) {
	dns, err := d.Cluster.Networking.ServiceIP(10)
	if err != nil {
		return templates.Kubelet{}, nil, err
	}
	k := templates.Kubelet{
		BinaryPath:    layout.KubeletBinary,
		NodeName:      d.NodeName,
		NodeIP:        d.AdvertiseAddress,
		CgroupDriver:  d.Facts.CgroupDriver(),
		CgroupV1:      !d.Facts.CgroupV2,
		AllowSwap:     d.Facts.SwapOn,
		ClusterDNS:    []string{dns.String()},
		ClusterDomain: d.Cluster.Networking.DNSDomain,
	}
	if d.Facts.SharedCgroups() {
		k.CgroupRoot = "/kubelet-" + d.NodeName
	}
	k.ResolvConf = d.DNS.ResolvConf
	files, err := templates.RenderKubelet(k)
	if err == nil && k.ResolvConf == layout.NoUpstreamResolvConf {
		files = append(files, host.File{Path: layout.NoUpstreamResolvConf, Mode: layout.PublicMode,
			Data: []byte("# kforge: this host's resolvers listen on loopback only, which pods cannot reach;\n# pods with dnsPolicy Default get no resolver, and CoreDNS answers cluster names only.\n")})
	}
	return k, files, err
}
