package phases

import (
	"context"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// JoinCleanup is what `kforge join` runs when it fails after discovery on
// a host that had not joined before: it removes the node that the join
// began to make, so that the host is as it was and the same join can be
// run again. It leaves containerd, the CNI plugins and the binaries the
// join installed, which a second try reuses (kforge reset removes them).
func JoinCleanup() []Phase {
	return []Phase{
		{Name: "stop-kubelet", Short: "Stop the kubelet and remove its service", Run: resetStopKubelet},
		{Name: "containers", Short: "Remove the containers the kubelet started", Run: resetContainers},
		{Name: "mounts", Short: "Unmount what the kubelet mounted", Run: resetMounts},
		{Name: "files", Short: "Remove the CA, the kubelet's kubeconfigs, configuration and state, and the pod network's", Run: joinCleanupFiles},
		{Name: "network", Short: "Remove the CNI interfaces and the iptables chains of kube-proxy and the CNI", Run: resetNetwork},
	}
}

// joinPaths are what a join writes, or what the kubelet and the pods it
// started write.
var joinPaths = []string{
	layout.RunRecord, layout.KubeletConf, layout.BootstrapKubeletConf, layout.CACert, layout.KubeletDir,
	layout.KubeletUnit, layout.KubeletUnitDropIn,
	layout.CNIDataDir, layout.KubeRouterConflist, layout.APIServerLBManifest, layout.APIServerLBConfig,
}

func joinCleanupFiles(ctx context.Context, d *Data) error {
	var removed []string
	for _, p := range joinPaths {
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
	// The pki directory holds only the CA on a worker.
	if _, err := host.Script(ctx, d.Host, `rmdir "$1" 2>/dev/null; true`, layout.PKIDir); err != nil {
		return err
	}
	if len(removed) > 0 {
		d.Out.Infof("  removed %s", strings.Join(removed, " "))
	}
	return nil
}
