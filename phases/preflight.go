package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"

	"kforge.dev/kforge/layout"
)

// Minimums a control-plane node needs, as kubeadm checks them.
const (
	MinCPUs       = 2
	MinMemoryMiB  = 1700
	MinDiskFreeMB = 2048
)

// preflight checks that the host can run a control plane before anything
// is changed: root, free ports, CPUs, memory and disk, and leftovers of a
// cluster kforge did not make. It warns about what kforge adapts to (cgroup
// v1, no CAP_SYS_RESOURCE, swap, IP forwarding off). It changes nothing
// but the run record (runrecord.go), once every check passed.
// Problems named in --ignore-preflight-errors (or "all") become warnings.
func preflight(ctx context.Context, d *Data) error {
	return d.runPreflight(ctx, layout.ControlPlanePorts)
}

func (d *Data) runPreflight(ctx context.Context, ports []int) error {
	f := d.Facts
	var problems []problem
	add := func(name, format string, a ...any) {
		problems = append(problems, problem{name, fmt.Sprintf(format, a...)})
	}
	if f.UID != 0 {
		add("IsPrivilegedUser", "kforge runs as uid %d; run it as root (sudo kforge ...)", f.UID)
	}
	if f.CPUs < MinCPUs {
		add("NumCPU", "%d CPU(s); a control plane needs at least %d", f.CPUs, MinCPUs)
	}
	if f.MemoryMiB < MinMemoryMiB {
		add("Mem", "%d MiB of memory; a control plane needs at least %d MiB", f.MemoryMiB, MinMemoryMiB)
	}
	if err := d.hostFits(ctx, add, true); err != nil {
		return err
	}
	if running, err := d.runningVersion(ctx); err != nil {
		return err
	} else if running != "" && running != d.Cluster.KubernetesVersion {
		add("KubernetesVersion", "this node runs Kubernetes %s (%s) and this run would make it %s; changing the version in place is an upgrade, which init and up do not do: pass --kubernetes-version %s (or set kubernetesVersion) to re-run, or `kforge reset` first",
			running, layout.ManifestsDir+"/kube-apiserver.yaml", d.Cluster.KubernetesVersion, running)
	}
	st, err := d.preflightProbe(ctx)
	if err != nil {
		return err
	}
	if st.diskFreeMB >= 0 && st.diskFreeMB < MinDiskFreeMB {
		add("DiskSpace", "%d MB free under /var/lib; kforge needs at least %d MB for images, etcd and logs", st.diskFreeMB, MinDiskFreeMB)
	}
	if st.foreign != "" {
		add("Leftovers", "%s is left from a cluster kforge did not build here; remove it with `kforge reset` (or `kubeadm reset`) first", st.foreign)
	}
	if !st.ours {
		// On a node kforge already built, its own components hold the
		// ports: a re-run must go through.
		for _, p := range ports {
			if slices.Contains(st.listening, p) {
				add(fmt.Sprintf("Port-%d", p), "port %d is in use; stop what listens there (ss -ltnp 'sport = :%d') or run `kforge reset` if it is an earlier cluster", p, p)
			}
		}
	}
	if !f.CgroupV2 {
		d.Out.Infof("  ! %s uses cgroup v1: kubelet runs with failCgroupV1: false (upstream deprecates cgroup v1; move to cgroup v2 when you can)", d.Host.Name())
	}
	if !f.CapSysResource {
		d.Out.Infof("  ! %s: root lacks CAP_SYS_RESOURCE: containerd is configured with restrict_oom_score_adj", d.Host.Name())
	}
	if f.SwapOn {
		d.Out.Infof("  ! %s has swap on: the kubelet runs with failSwapOn: false and pods do not use swap (swapBehavior: NoSwap)", d.Host.Name())
	}
	if !f.IPForward {
		d.Out.Infof("  ! %s: IP forwarding is off; the runtime phase turns it on (net.ipv4.ip_forward=1)", d.Host.Name())
	}
	if !f.BridgeNFAvailable {
		d.Out.Infof("  ! %s has no bridge netfilter (br_netfilter): pods may not reach Services on the same bridge", d.Host.Name())
	}
	if err := d.preflightResult(st, problems); err != nil {
		return err
	}
	// The first change of the run: a re-run after a kill anywhere later
	// knows that the files it finds are its own.
	return d.recordRun(ctx, st.record)
}

// apiServerImageRe finds the API server's image tag in its manifest.
var apiServerImageRe = regexp.MustCompile(`image:\s*"?[^\s"]*/kube-apiserver:(v[0-9]+\.[0-9]+\.[0-9]+)`)

// runningVersion is the Kubernetes version of the control plane a
// previous run left on the host (its API server's image), or "".
func (d *Data) runningVersion(ctx context.Context) (string, error) {
	data, err := d.Host.ReadFile(ctx, layout.ManifestsDir+"/kube-apiserver.yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if m := apiServerImageRe.FindSubmatch(data); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}
