package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// containerRuntime makes containerd ready for the kubelet. The bundle
// phase installed containerd, runc and the CNI plugins (or the cluster
// file's `runtime: host` says the host has its own); this phase enables IP
// forwarding and bridge netfilter, writes containerd's config (pause image,
// cgroup driver, restrict_oom_score_adj when root lacks CAP_SYS_RESOURCE)
// and, for a bundle's containerd, its systemd unit, writes the pod
// network's CNI config, and starts containerd — restarting it when its
// config changed. It never runs a package manager.
func containerRuntime(ctx context.Context, d *Data) error {
	rt := d.Runtime()
	version, err := rt.check(ctx, d)
	if err != nil {
		return err
	}
	if err := sysctls(ctx, d); err != nil {
		return err
	}
	changed, err := runtimeConfig(ctx, d, version)
	if err != nil {
		return err
	}
	if err := cniConfig(ctx, d); err != nil {
		return err
	}
	if err := writeRegistryHosts(ctx, d); err != nil {
		return err
	}
	installed, started, err := d.containerdBinary(ctx, rt)
	if err != nil {
		return err
	}
	// A new containerd binary from the bundle restarts it, as a new config
	// does.
	changed = changed || installed != started
	if err := d.Services.Ensure(ctx, containerdService(rt), changed); err != nil {
		return err
	}
	if err := host.WaitFor(ctx, d.Host, 30*time.Second, "containerd", rt.Ctr, "--address", layout.ContainerdSocket, "version"); err != nil {
		return fmt.Errorf("%w\nlast lines of containerd's log:\n%s", err, d.Services.Log(ctx, "containerd", 15))
	}
	return d.noteStarted(ctx, layout.ContainerdStarted, installed, started)
}

// containerdBinary returns the sha256 of the bundle's containerd as the
// bundle phase installed it (its stamp) and of the one that was started
// last; both are empty for the host's own containerd.
func (d *Data) containerdBinary(ctx context.Context, rt Runtime) (installed, started string, err error) {
	if !rt.FromBundle {
		return "", "", nil
	}
	return d.binaryStarted(ctx, rt.Containerd, layout.ContainerdStarted)
}

// binaryStarted returns the sha256 of the binary at path as the bundle
// phase installed it (its line in the binaries stamp) and the one the
// stamp file records as started last: when they differ, the service runs
// an older binary than the one installed, as after a bundle of a newer
// version, and must be restarted.
func (d *Data) binaryStarted(ctx context.Context, path, stamp string) (installed, started string, err error) {
	b, err := d.Host.ReadFile(ctx, layout.BinariesStamp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == path {
			installed = f[0]
		}
	}
	last, err := d.Host.ReadFile(ctx, stamp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	return installed, strings.TrimSpace(string(last)), nil
}

// noteStarted records that the service now runs the binary installed.
func (d *Data) noteStarted(ctx context.Context, stamp, installed, started string) error {
	if installed == started {
		return nil
	}
	return d.Host.WriteFile(ctx, stamp, []byte(installed+"\n"), layout.PublicMode)
}

// Runtime is where a host's container runtime comes from, by the cluster
// file's runtime field: the bundle's containerd and runc in
// /usr/local/bin, or the host's own on its PATH.
type Runtime struct {
	// FromBundle: kforge installs containerd, runc and the CNI plugins
	// from the bundle and runs containerd with its own unit.
	FromBundle bool
	// Containerd and Ctr are the binaries kforge runs.
	Containerd, Ctr string
	// Runc is the OCI runtime containerd's shim runs; empty means runc on
	// containerd's PATH.
	Runc string
}

// Runtime returns the host's runtime for the run's cluster. It follows
// d.Cluster, which a join adopts from the cluster it joins.
func (d *Data) Runtime() Runtime {
	if d.Cluster.Runtime == config.RuntimeHost {
		return Runtime{Containerd: "containerd", Ctr: "ctr"}
	}
	return Runtime{FromBundle: true, Containerd: layout.ContainerdBinary, Ctr: layout.CtrBinary, Runc: layout.RuncBinary}
}

// containerdVersionRe finds the version in `containerd --version`:
// "containerd github.com/containerd/containerd/v2 v2.4.2 <commit>", or
// Debian's "containerd github.com/containerd/containerd 1.6.20~ds1 ...".
var containerdVersionRe = regexp.MustCompile(`\s(v?\d+\.\d+\.\d+)\S*`)

// check makes sure containerd and runc are installed and returns
// containerd's version. A bundle's containerd is the version its row pins
// (containerd 2.x); the host's own is asked, and refused when Kubernetes
// does not support it (images.MinContainerd).
func (rt Runtime) check(ctx context.Context, d *Data) (string, error) {
	if rt.FromBundle {
		v, err := images.VersionsFor(d.Cluster.KubernetesVersion)
		if err != nil {
			return "", err
		}
		for _, b := range []string{rt.Containerd, rt.Runc} {
			if _, err := host.Output(ctx, d.Host, "test", "-x", b); err != nil {
				return "", fmt.Errorf("no %s: the bundle phase installs it from the bundle; run it first with a bundle that carries the runtime (`make artifacts` builds one), or set `runtime: host` in the cluster file to use the host's containerd", b)
			}
		}
		return v.Containerd, nil
	}
	min := images.MinContainerd(d.Cluster.KubernetesVersion)
	out, err := host.Probe(ctx, d.Host, rt.Containerd, "--version")
	if err != nil {
		return "", fmt.Errorf("the cluster file says `runtime: host` and the host has no containerd on its PATH: install containerd %s or newer and runc, or remove `runtime: host` to install them from the bundle", min)
	}
	m := containerdVersionRe.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("cannot read containerd's version from `containerd --version` (%q): check that the host's containerd works, or remove `runtime: host` from the cluster file to install containerd from the bundle", strings.TrimSpace(out))
	}
	version := "v" + strings.TrimPrefix(m[1], "v")
	if images.LessVersion(version, min) {
		return "", fmt.Errorf("the host's containerd is %s and Kubernetes %s needs %s or newer: upgrade it, or remove `runtime: host` from the cluster file to install containerd from the bundle",
			version, d.Cluster.KubernetesVersion, min)
	}
	if _, err := host.Probe(ctx, d.Host, "runc", "--version"); err != nil {
		return "", fmt.Errorf("the host's containerd is there but runc is not on its PATH (%v): install runc, or remove `runtime: host` from the cluster file to install both from the bundle", err)
	}
	return version, nil
}

// runtimeConfig writes containerd's config.toml (format 3 for containerd
// 2.x, 2 for 1.x) and, for a bundle's containerd, its systemd unit; it
// tells whether any changed.
func runtimeConfig(ctx context.Context, d *Data, containerdVersion string) (bool, error) {
	imgs, err := d.Images()
	if err != nil {
		return false, err
	}
	rt := d.Runtime()
	auths, err := registryAuths(ctx, d)
	if err != nil {
		return false, err
	}
	c := templates.Containerd{
		RegistryAuths:       auths,
		ConfigVersion:       2,
		SandboxImage:        imgs.Pause,
		SystemdCgroup:       d.Facts.CgroupDriver() == templates.CgroupDriverSystemd,
		RestrictOOMScoreAdj: !d.Facts.CapSysResource,
		CNIBinDir:           d.CNIBinDir(),
		RuntimeBinary:       rt.Runc,
	}
	if !images.LessVersion(containerdVersion, "v2.0.0") {
		c.ConfigVersion = 3
	}
	if rt.FromBundle {
		c.BinaryPath = rt.Containerd
	}
	files, err := templates.RenderContainerd(c)
	if err != nil {
		return false, err
	}
	changed, err := d.writeReplacing(ctx, files...)
	if err != nil {
		return false, err
	}
	// crictl talks to containerd without asking which runtime runs here.
	crictl := "# " + kforgeMark + "\nruntime-endpoint: " + layout.ContainerRuntimeEndpoint + "\nimage-endpoint: " + layout.ContainerRuntimeEndpoint + "\n"
	_, err = d.writeReplacing(ctx, host.File{Path: layout.CrictlConfig, Data: []byte(crictl), Mode: layout.PublicMode})
	return changed, err
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

// RefreshRuntime brings a joined node's container runtime configuration
// (containerd's config, the registries' hosts.toml and credentials) and
// its node-local load balancer (the control planes it sends to) to
// d.Cluster, holding the host's lock, as `init -f` does for workers that
// have already joined. containerd restarts only when its config changed.
func RefreshRuntime(ctx context.Context, d *Data) error {
	unlock, err := d.lockHost(ctx)
	if err != nil {
		return &Error{Phase: "lock", Host: d.Host.Name(), Err: err}
	}
	defer unlock()
	if err := containerRuntime(ctx, d); err != nil {
		return &Error{Phase: "runtime", Host: d.Host.Name(), Err: err}
	}
	// The control planes the node-local load balancer sends to.
	if err := apiServerLB(ctx, d); err != nil {
		return &Error{Phase: "apiserver-lb", Host: d.Host.Name(), Err: err}
	}
	return nil
}
