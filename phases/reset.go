package phases

import (
	"context"
	"path"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/services"
)

// Reset is the phase list of `kforge reset`, in order. Every phase works on
// a host in any state: a half-built node, a healthy one, or one already
// reset.
func Reset() []Phase {
	return []Phase{
		{Name: "etcd-leave", Short: "On a control plane, take its etcd member out of the cluster (refused when the rest would lose quorum, unless --force)", Run: etcdLeave},
		{Name: "stop-kubelet", Short: "Stop the kubelet so it starts nothing again", Run: resetStopKubelet},
		{Name: "containers", Short: "Stop and remove every Kubernetes container and pod sandbox", Run: resetContainers},
		{Name: "virtual-ip", Short: "Take the cluster's virtual IP off this host's interface if it holds it", Run: resetVIP},
		{Name: "services", Short: "Stop containerd and kforge's supervisor", Run: resetServices},
		{Name: "mounts", Short: "Unmount what the kubelet mounted", Run: resetMounts},
		{Name: "files", Short: "Remove the cluster's files and state", Run: resetFiles},
		{Name: "network", Short: "Remove the CNI interfaces and the iptables chains of kube-proxy and the CNI", Run: resetNetwork},
	}
}

// resetPaths are what reset removes: the contents of /etc/kubernetes and
// the state of the kubelet, etcd, the CNI and kforge.
var resetPaths = []string{
	layout.ManifestsDir, layout.PKIDir, layout.AdminConf, layout.SuperAdminConf, layout.KubeletConf,
	layout.BootstrapKubeletConf, layout.ControllerManagerConf, layout.SchedulerConf,
	layout.KubeletDir, layout.EtcdDataDir, layout.CNIDataDir, layout.SupervisorDir, layout.ImagesDir, layout.NoUpstreamResolvConf,
	layout.PodLogsDir, layout.ContainerLogsDir, layout.SysctlConf, layout.KubeletUnit, layout.KubeletUnitDropIn,
	layout.BinariesStamp, layout.Installed, layout.ContainerdStarted, layout.KubeletStarted, layout.BootstrapToken,
	layout.AuditPolicy, layout.AuditLogDir, layout.KubeletSysctlConf, layout.EtcdBeforeRestore, layout.EtcdWorkDir,
	layout.LocalPathDir, layout.RegistryAuth, layout.APIServerLBConfig, layout.VIPConfig, layout.UpgradeDir,
	path.Dir(layout.BundleManifest),
	// Last: a reset killed before the end leaves the record that tells the
	// next init or up that what is left is kforge's.
	layout.RunRecord,
}

func resetStopKubelet(ctx context.Context, d *Data) error {
	return d.Services.Stop(ctx, services.Service{Name: "kubelet", Unit: "kubelet"})
}

// resetContainers kills and removes every container in containerd's k8s.io
// namespace, pod sandboxes included, then releases the pods' network
// namespaces. Without containerd running there is nothing to do.
func resetContainers(ctx context.Context, d *Data) error {
	out, err := host.Script(ctx, d.Host, `
ctr=$2
[ -x "$ctr" ] || ctr=$(command -v ctr) || exit 0
[ -S "$1" ] || exit 0
c="$ctr --address $1 -n k8s.io"
n=0
for t in $($c tasks ls -q 2>/dev/null); do $c tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
for t in $($c tasks ls -q 2>/dev/null); do $c tasks rm -f "$t" >/dev/null 2>&1; done
for id in $($c containers ls -q 2>/dev/null); do $c containers rm "$id" >/dev/null 2>&1 && n=$((n+1)); done
for ns in /var/run/netns/cni-*; do [ -e "$ns" ] || continue; umount "$ns" 2>/dev/null; rm -f "$ns"; done
echo "$n"`, layout.ContainerdSocket, layout.CtrBinary)
	if err != nil {
		return err
	}
	d.Out.Infof("  removed %s containers", out)
	return nil
}

func resetServices(ctx context.Context, d *Data) error {
	// Under systemd a bundle's containerd runs from kforge's unit, which
	// reset stops and disables; the OS's unit (runtime: host) is left to
	// the OS (no Unit). Under kforge's supervisor containerd is kforge's.
	svc := services.Service{Name: "containerd"}
	if ours, err := d.ownsFile(ctx, layout.ContainerdUnit); err != nil {
		return err
	} else if ours {
		svc.Unit = "containerd"
	}
	if err := d.Services.Stop(ctx, svc); err != nil {
		return err
	}
	if err := d.Services.RemoveJob(ctx, AutoRenewJob); err != nil {
		return err
	}
	return d.Services.Shutdown(ctx)
}

// resetMounts unmounts everything under /var/lib/kubelet, deepest first.
func resetMounts(ctx context.Context, d *Data) error {
	out, err := host.Script(ctx, d.Host, `
n=0
for m in $(awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r); do
  umount "$m" 2>/dev/null || umount -l "$m" && n=$((n+1))
done
echo "$n"`, layout.KubeletDir)
	if err != nil {
		return err
	}
	d.Out.Infof("  unmounted %s kubelet mounts", out)
	return nil
}

func resetFiles(ctx context.Context, d *Data) error {
	installed, err := d.installedFiles(ctx)
	if err != nil {
		return err
	}
	// containerd's config and unit and crictl.yaml: the host's own come
	// back, kforge's go.
	restored, removed, err := d.restoreReplaced(ctx)
	if err != nil {
		return err
	}
	if len(restored) > 0 {
		d.Out.Infof("  put back the host's own %s", strings.Join(restored, " "))
	}
	if err := removeStaleRegistryHosts(ctx, d, nil); err != nil {
		return err
	}
	for _, p := range append(installed, resetPaths...) {
		if ok, err := host.Exists(ctx, d.Host, p); err != nil {
			return err
		} else if !ok {
			continue
		}
		if err := d.Host.Remove(ctx, p); err != nil {
			return err
		}
		removed = append(removed, p)
	}
	// Only the pod network's own CNI files: other tools' stay (kubeadm
	// stopped emptying the directory for the same reason, kubeadm#1822).
	out, err := host.Script(ctx, d.Host, `for f in "$@"; do [ -e "$f" ] || continue; rm -f "$f"; echo "$f"; done`,
		layout.BridgeConflist, layout.KubeRouterConflist, layout.CNIConfDir+"/.kube-router.tmp")
	if err != nil {
		return err
	}
	removed = append(removed, strings.Fields(out)...)
	d.Out.Infof("  removed %s", strings.Join(removed, " "))
	return nil
}

// resetNetwork deletes the bridges and dummy interfaces the CNI and
// kube-proxy made and, in both the nft and legacy iptables backends, every
// chain whose name starts with KUBE- or CNI- and the rules of other chains
// that name one. It deletes them one by one under iptables' lock (-w),
// never rewriting a whole table, so other firewall users' concurrent
// changes stay.
func resetNetwork(ctx context.Context, d *Data) error {
	out, err := host.Script(ctx, d.Host, resetNetworkScript)
	if err != nil {
		return err
	}
	if out != "" {
		d.Out.Infof("  removed %s", strings.Join(strings.Fields(out), " "))
	}
	return nil
}

// resetNetworkScript is resetNetwork's work, a POSIX shell script.
const resetNetworkScript = `
for i in cni0 kube-bridge kube-dummy-if kube-ipvs0 flannel.1; do
  ip link show "$i" >/dev/null 2>&1 && ip link delete "$i" && echo "interface:$i"
done
for v in "" -legacy -nft; do
  for fam in iptables ip6tables; do
    ipt=$fam$v
    command -v "$ipt" >/dev/null 2>&1 || continue
    n=0
    for t in filter nat mangle raw; do
      rules=$("$ipt" -w 5 -t "$t" -S 2>/dev/null) || continue
      # The rules of other chains that name a KUBE- or CNI- chain, one
      # by one (eval: -S quotes comments as a shell would).
      todo=$(printf '%s\n' "$rules" | grep -E '^-A ' | grep -vE '^-A (KUBE-|CNI-)' | grep -E 'KUBE-|CNI-')
      while IFS= read -r r; do
        [ -n "$r" ] || continue
        eval "set -- ${r#-A }" && "$ipt" -w 5 -t "$t" -D "$@" 2>/dev/null && n=$((n+1))
      done <<EOF
$todo
EOF
      chains=$(printf '%s\n' "$rules" | sed -n -E 's/^-N ((KUBE-|CNI-)[^ ]*)$/\1/p')
      for c in $chains; do "$ipt" -w 5 -t "$t" -F "$c" 2>/dev/null; done
      for c in $chains; do "$ipt" -w 5 -t "$t" -X "$c" 2>/dev/null && n=$((n+1)); done
    done
    [ "$n" = 0 ] || echo "chains:$ipt"
  done
done
true`
