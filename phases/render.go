// What kforge renders for a host from the run's Data: the kubelet's
// files, the control plane's static pod manifests, containerd's config
// and the single-node bridge network's CNI config, and the services that
// run them. Phases write these; nothing here changes a host except
// writeKubelet, which the kubelet and kubelet-start phases share.
package phases

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/services"
	"kforge.dev/kforge/templates"
)

// BridgeName is the Linux bridge the pods of a single-node cluster share.
const BridgeName = "cni0"

// writeKubelet renders the kubelet's files for this host, creates its
// cgroup root when it needs one, writes the files that differ and checks
// that the kubelet is installed. It tells whether any file changed.
func (d *Data) writeKubelet(ctx context.Context) (templates.Kubelet, bool, error) {
	if err := d.kernelDefaults(ctx); err != nil {
		return templates.Kubelet{}, false, err
	}
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

// kernelDefaults sets the sysctls the kubelet's protectKernelDefaults
// checks, now and across reboots, and reads them back. Where the host's
// kernel refuses one (a container whose /proc/sys is read-only, say),
// protectKernelDefaults stays off and the kubelet sets what it can itself.
func (d *Data) kernelDefaults(ctx context.Context) error {
	var conf strings.Builder
	conf.WriteString("# The kernel settings the kubelet checks under protectKernelDefaults, written by kforge.\n")
	set := []string{"sysctl", "-q", "-w"}
	get := []string{"sysctl", "-n"}
	want := templates.KernelDefaults()
	for _, kv := range want {
		fmt.Fprintf(&conf, "%s = %s\n", kv[0], kv[1])
		set = append(set, kv[0]+"="+kv[1])
		get = append(get, kv[0])
	}
	if err := d.Host.WriteFile(ctx, layout.KubeletSysctlConf, []byte(conf.String()), layout.PublicMode); err != nil {
		return err
	}
	// A refused setting is found by the read-back below.
	_, _ = d.Host.Run(ctx, host.Cmd{Argv: set, Sudo: true})
	res, err := d.Host.Run(ctx, host.Cmd{Argv: get, Sudo: true})
	got := strings.Fields(string(res.Stdout))
	var differ []string
	for i, kv := range want {
		if err != nil || i >= len(got) || got[i] != kv[1] {
			differ = append(differ, kv[0]+"="+kv[1])
		}
	}
	d.Results.KernelDefaults = len(differ) == 0
	if len(differ) > 0 && len(got) > 0 { // a dry run reads nothing back
		d.Out.Infof("  ! %s keeps its own %s (its kernel refused them): the kubelet runs without protectKernelDefaults", d.Host.Name(), strings.Join(differ, ", "))
	}
	return nil
}

func (d *Data) renderKubelet() (templates.Kubelet, []host.File, error) {
	dns, err := d.Cluster.Networking.ServiceIP(10)
	if err != nil {
		return templates.Kubelet{}, nil, err
	}
	k := templates.Kubelet{
		BinaryPath:   layout.KubeletBinary,
		NodeName:     d.NodeName,
		NodeIP:       d.AdvertiseAddress,
		CgroupDriver: d.Facts.CgroupDriver(),
		CgroupV1:     !d.Facts.CgroupV2,
		AllowSwap:    d.Facts.SwapOn,
		// The kubelet then refuses to change kernel settings itself.
		ProtectKernelDefaults: d.Results.KernelDefaults,
		ClusterDNS:            []string{dns.String()},
		ClusterDomain:         d.Cluster.Networking.DNSDomain,
		ExtraArgs:             d.Cluster.Kubelet.ExtraArgs,
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

func renderControlPlane(d *Data) ([]host.File, error) {
	imgs, err := d.Images()
	if err != nil {
		return nil, err
	}
	c := d.Cluster
	return templates.RenderControlPlane(templates.ControlPlane{
		Images: templates.ControlPlaneImages{
			Etcd:              imgs.Etcd,
			APIServer:         imgs.APIServer,
			ControllerManager: imgs.ControllerManager,
			Scheduler:         imgs.Scheduler,
		},
		EtcdVersion:      imgs.Versions.Etcd,
		NodeName:         d.NodeName,
		AdvertiseAddress: d.AdvertiseAddress,
		BindPort:         layout.APIServerPort,
		ServiceSubnet:    c.Networking.ServiceSubnet,
		PodSubnet:        c.Networking.PodSubnet,
		ClusterName:      c.Name,
		DNSDomain:        c.Networking.DNSDomain,
		CACertDirs:       d.CACertDirs,

		EtcdInitialCluster: d.Results.EtcdInitialCluster,
		EtcdJoin:           d.Results.EtcdInitialCluster != "",
		EtcdMembers:        len(c.ControlPlanes()),

		APIServerExtraArgs:         c.APIServer.ExtraArgs,
		ControllerManagerExtraArgs: c.ControllerManager.ExtraArgs,
		SchedulerExtraArgs:         c.Scheduler.ExtraArgs,
		EtcdExtraArgs:              c.Etcd.ExtraArgs,
	})
}

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

// containerdService is containerd with kforge's config: under systemd the
// bundle's containerd runs from kforge's unit (runtimeConfig writes it),
// the host's own from the OS's.
func containerdService(rt Runtime) services.Service {
	return services.Service{
		Name: "containerd",
		Argv: []string{rt.Containerd, "--config", layout.ContainerdConfig},
		// The shim and runc are found on containerd's PATH.
		Env:         map[string]string{"PATH": layout.ServicePath},
		Unit:        "containerd",
		Config:      []string{layout.ContainerdConfig},
		ReadySocket: layout.ContainerdSocket,
	}
}

// kubeletService is the kubelet with the files the kubelet phase renders.
// Under systemd it is kforge's unit, which reads the same flags file.
func kubeletService(k templates.Kubelet) services.Service {
	return services.Service{
		Name:   "kubelet",
		Argv:   append([]string{k.BinaryPath}, k.Args()...),
		After:  "containerd",
		Unit:   "kubelet",
		Config: []string{layout.KubeletConfig, layout.KubeletConf},
	}
}
