package phases

import (
	"context"
	"fmt"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// runtimePackages are the Debian packages kforge installs when the host has
// no containerd and no bundle provides one.
var runtimePackages = []string{"containerd", "runc", "containernetworking-plugins", "iptables", "conntrack"}

// containerRuntime makes containerd ready for the kubelet: it installs containerd,
// runc and the CNI plugins from the OS package manager when they are
// missing, enables IP forwarding and bridge netfilter, writes containerd's
// config (pause image, cgroup driver, restrict_oom_score_adj when root
// lacks CAP_SYS_RESOURCE) and the pod network's CNI config, and starts
// containerd — restarting it when its config changed.
func containerRuntime(ctx context.Context, d *Data) error {
	if err := installRuntime(ctx, d); err != nil {
		return err
	}
	if err := sysctls(ctx, d); err != nil {
		return err
	}
	changed, err := runtimeConfig(ctx, d)
	if err != nil {
		return err
	}
	if err := cniConfig(ctx, d); err != nil {
		return err
	}
	if err := d.Services.Ensure(ctx, containerdService(), changed); err != nil {
		return err
	}
	if err := host.WaitFor(ctx, d.Host, 30*time.Second, "containerd", "ctr", "--address", layout.ContainerdSocket, "version"); err != nil {
		return fmt.Errorf("%w\nlast lines of containerd's log:\n%s", err, d.Services.Log(ctx, "containerd", 15))
	}
	return nil
}

func installRuntime(ctx context.Context, d *Data) error {
	missing := false
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := host.Output(ctx, d.Host, "sh", "-c", `command -v "$1"`, "sh", bin); err != nil {
			missing = true
		}
	}
	if d.Cluster.Artifacts.Bundle == "" {
		// A bundle brings its own CNI plugins.
		if _, err := host.Output(ctx, d.Host, "test", "-x", d.CNIBinDir()+"/bridge"); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	if _, err := host.Output(ctx, d.Host, "sh", "-c", "command -v apt-get"); err != nil {
		return fmt.Errorf("containerd, runc or the CNI plugins are missing and the host has no apt-get: install them, or pass a bundle that carries them (--bundle)")
	}
	d.Out.Infof("  installing %v with apt-get", runtimePackages)
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if _, err := d.Host.Run(ctx, host.Cmd{Argv: []string{"apt-get", "update", "-qq"}, Env: env, Sudo: true}); err != nil {
		return err
	}
	argv := append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, runtimePackages...)
	if _, err := d.Host.Run(ctx, host.Cmd{Argv: argv, Env: env, Sudo: true}); err != nil {
		return err
	}
	// Debian's package starts containerd with its own config when systemd
	// runs; kforge restarts it with its config below.
	d.Results.RuntimeFromOS = true
	return nil
}

// sysctls enables what pod networking needs, now and across reboots.
func sysctls(ctx context.Context, d *Data) error {
	conf := "net.ipv4.ip_forward = 1\n"
	argv := []string{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}
	if d.Facts.BridgeNFAvailable {
		conf += "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
		argv = append(argv, "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
	} else {
		d.Out.Infof("  ! %s has no bridge netfilter (/proc/sys/net/bridge): Services may not answer pods on the same bridge", d.Host.Name())
	}
	if err := d.Host.WriteFile(ctx, layout.SysctlConf, []byte(conf), layout.PublicMode); err != nil {
		return err
	}
	_, err := d.Host.Run(ctx, host.Cmd{Argv: argv, Sudo: true})
	return err
}
