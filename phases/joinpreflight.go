package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// joinPreflight checks that the host can join as a worker before anything
// is changed: root, no control plane here, port 10250 free, and no
// kubelet.conf of another cluster. A kubelet.conf whose CA matches the
// pinned hash (or, without a pin, whose server is the endpoint) means the
// host joined this cluster before: the run goes on and converges. It
// changes nothing. Problems named in --ignore-preflight-errors (or "all")
// become warnings.
func joinPreflight(ctx context.Context, d *Data) error {
	var problems []problem
	add := func(name, format string, a ...any) {
		problems = append(problems, problem{name, fmt.Sprintf(format, a...)})
	}
	if d.Facts.UID != 0 {
		add("IsPrivilegedUser", "kforge runs as uid %d; run it as root (sudo kforge join ...)", d.Facts.UID)
	}
	if ok, err := host.Exists(ctx, d.Host, layout.ManifestsDir+"/kube-apiserver.yaml"); err != nil {
		return err
	} else if ok {
		add("ControlPlane", "%s/kube-apiserver.yaml: this host runs a control plane; a worker joins from a host without one (kforge reset removes it)", layout.ManifestsDir)
	}
	joined, why, err := d.joinedBefore(ctx)
	if err != nil {
		return err
	}
	d.Results.Joined = joined
	if why != "" && !joined {
		add("KubeletConf", "%s", why)
	}
	if err := d.hostFits(ctx, add, false); err != nil {
		return err
	}
	st, err := d.preflightProbe(ctx)
	if err != nil {
		return err
	}
	// The kubelet of an earlier join (or kforge's own kubelet service)
	// holds the port on a re-run.
	if slices.Contains(st.listening, layout.KubeletPort) && !joined && !st.ours {
		add(fmt.Sprintf("Port-%d", layout.KubeletPort), "port %d is in use: another kubelet runs here; stop it (ss -ltnp 'sport = :%d') or run kforge reset", layout.KubeletPort, layout.KubeletPort)
	}
	if joined {
		d.Out.Infof("  %s already belongs to this cluster (%s): the join goes on and changes only what differs", d.Host.Name(), layout.KubeletConf)
	}
	if !d.Facts.CgroupV2 {
		d.Out.Infof("  ! %s uses cgroup v1: kubelet runs with failCgroupV1: false", d.Host.Name())
	}
	if !d.Facts.CapSysResource {
		d.Out.Infof("  ! %s: root lacks CAP_SYS_RESOURCE: containerd is configured with restrict_oom_score_adj", d.Host.Name())
	}
	if d.Facts.SwapOn {
		d.Out.Infof("  ! %s has swap on: the kubelet runs with failSwapOn: false and pods do not use swap", d.Host.Name())
	}
	return d.preflightResult(st, problems)
}

// joinedBefore tells whether the host's kubelet.conf belongs to the
// cluster being joined; when there is one that does not, why says whose
// it is.
func (d *Data) joinedBefore(ctx context.Context) (joined bool, why string, err error) {
	data, err := d.Host.ReadFile(ctx, layout.KubeletConf)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("%s: %w", layout.KubeletConf, err)
	}
	leftover := func(format string, a ...any) (bool, string, error) {
		return false, fmt.Sprintf("%s is left from another cluster: %s; run kforge reset on this host first", layout.KubeletConf, fmt.Sprintf(format, a...)), nil
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return leftover("it does not load (%v)", err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || cfg.Clusters[kctx.Cluster] == nil {
		return leftover("its current context names no cluster")
	}
	cluster := cfg.Clusters[kctx.Cluster]
	o := d.Discovery
	if len(o.CACertHashes) == 0 {
		want, err := discovery.EndpointURL(o.Endpoint)
		if err != nil {
			return false, "", err
		}
		if strings.TrimSuffix(cluster.Server, "/") == want {
			return true, "", nil
		}
		return leftover("it talks to %s, not %s", cluster.Server, want)
	}
	ca := cluster.CertificateAuthorityData
	if len(ca) == 0 && cluster.CertificateAuthority != "" {
		if ca, err = d.Host.ReadFile(ctx, cluster.CertificateAuthority); err != nil {
			return leftover("its CA %s cannot be read (%v)", cluster.CertificateAuthority, err)
		}
	}
	hashes, err := discovery.CAHashes(ca)
	if err != nil {
		return leftover("its CA: %v", err)
	}
	for _, pin := range o.CACertHashes {
		if slices.Contains(hashes, strings.ToLower(strings.TrimSpace(pin))) {
			return true, "", nil
		}
	}
	return leftover("its CA is %s, the join pins %s", strings.Join(hashes, ", "), strings.Join(o.CACertHashes, ", "))
}
