package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/reporter"
)

// Where a snapshot and a restore work on the control plane.
const (
	etcdWorkDir = layout.EtcdWorkDir
	// snapshotInData is inside etcd's data directory, which the etcd pod
	// mounts, so that etcdctl in the pod writes it where the host sees it.
	snapshotInData = layout.EtcdDataDir + "/kforge-snapshot.db"
	// RestoreTimeout bounds the wait for the control plane after a
	// restore.
	RestoreTimeout = 4 * time.Minute
)

// EtcdSnapshotOptions are the inputs of `kforge etcd snapshot save` and
// `restore`.
type EtcdSnapshotOptions struct {
	Connect ConnectOptions
	// ConfigFile works on the cluster file's control plane, over SSH.
	ConfigFile string
	// File is the snapshot on the machine kforge runs on.
	File string
	Out  *reporter.Reporter
}

// SnapshotStatus is what etcdutl snapshot status says of a snapshot.
type SnapshotStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
}

// etcdPod is what a restore needs from the etcd manifest kforge wrote.
type etcdPod struct {
	image, name, peerURL, clientURL string
}

func readEtcdPod(ctx context.Context, h host.Host) (etcdPod, error) {
	file := path.Join(layout.ManifestsDir, "etcd.yaml")
	data, err := h.ReadFile(ctx, file)
	if err != nil {
		return etcdPod{}, fmt.Errorf("%s on %s: %w (is this a kforge control plane?)", file, h.Name(), err)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil || len(pod.Spec.Containers) == 0 {
		return etcdPod{}, fmt.Errorf("%s on %s: not a pod manifest: %v", file, h.Name(), err)
	}
	e := etcdPod{image: pod.Spec.Containers[0].Image}
	for _, a := range pod.Spec.Containers[0].Command {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch k {
		case "name":
			e.name = v
		case "initial-advertise-peer-urls":
			e.peerURL = v
		case "listen-client-urls":
			e.clientURL, _, _ = strings.Cut(v, ",")
		}
	}
	if e.name == "" || e.peerURL == "" || e.clientURL == "" {
		return etcdPod{}, fmt.Errorf("%s on %s: no --name, --initial-advertise-peer-urls or --listen-client-urls", file, h.Name())
	}
	return e, nil
}

// controlPlaneHost connects to a control plane of the cluster file (the
// first one in the file's order that answers, so that a cluster with
// several still answers when one is down), or to this machine.
func controlPlaneHost(ctx context.Context, file string, o *ConnectOptions) (host.Host, func(), error) {
	c, err := LoadConfigOrDefault(file)
	if err != nil {
		return nil, nil, err
	}
	pool := ssh.NewPool()
	o.Pool = pool
	var errs []error
	for _, node := range c.ControlPlanes() {
		h, err := Connect(ctx, node, *o)
		if err == nil {
			return h, func() { h.Close(); pool.Close() }, nil
		}
		errs = append(errs, err)
	}
	pool.Close()
	return nil, nil, errors.Join(errs...)
}

// restoreHost is one control plane a restore works on.
type restoreHost struct {
	h host.Host
	e etcdPod
}

// etcdControlPlanes connects to every control plane of the cluster file
// (or this machine) and reads their etcd manifests: a restore needs them
// all.
func etcdControlPlanes(ctx context.Context, o *EtcdSnapshotOptions) ([]restoreHost, func(), error) {
	c, err := LoadConfigOrDefault(o.ConfigFile)
	if err != nil {
		return nil, nil, err
	}
	if len(c.ControlPlanes()) < 2 {
		h, e, closeAll, err := etcdControlPlane(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		return []restoreHost{{h, e}}, closeAll, nil
	}
	pool := ssh.NewPool()
	o.Connect.Pool = pool
	var out []restoreHost
	for _, n := range c.ControlPlanes() {
		h, err := Connect(ctx, n, o.Connect)
		if err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("a restore works on every control plane: %w", err)
		}
		e, err := readEtcdPod(ctx, h)
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		out = append(out, restoreHost{h, e})
	}
	return out, func() { pool.Close() }, nil
}

// etcdControlPlane connects to the control plane and reads its etcd
// manifest.
func etcdControlPlane(ctx context.Context, o *EtcdSnapshotOptions) (host.Host, etcdPod, func(), error) {
	h, closeAll, err := controlPlaneHost(ctx, o.ConfigFile, &o.Connect)
	if err != nil {
		return nil, etcdPod{}, nil, err
	}
	e, err := readEtcdPod(ctx, h)
	if err != nil {
		closeAll()
		return nil, etcdPod{}, nil, err
	}
	return h, e, closeAll, nil
}

// runningContainer is the ID of the one running container named name in
// kube-system.
func runningContainer(ctx context.Context, h host.Host, name string) (string, error) {
	id, err := host.Output(ctx, h, "crictl", "ps", "--name", "^"+name+"$", "--label", "io.kubernetes.pod.namespace=kube-system", "--state", "running", "--quiet")
	if err != nil {
		return "", err
	}
	if id == "" || strings.Contains(id, "\n") {
		return "", fmt.Errorf("want one running %s container on %s, crictl lists %q", name, h.Name(), id)
	}
	return id, nil
}

// EtcdSnapshotSave takes a consistent snapshot with the etcdctl of the
// cluster's own etcd image (in the running etcd pod), checks it with its
// etcdutl, and copies it to o.File on this machine (0600: it holds the
// cluster's state).
func EtcdSnapshotSave(ctx context.Context, o EtcdSnapshotOptions) error {
	h, e, closeAll, err := etcdControlPlane(ctx, &o)
	if err != nil {
		return err
	}
	defer closeAll()
	id, err := runningContainer(ctx, h, "etcd")
	if err != nil {
		return err
	}
	pki := layout.PKIDir + "/etcd/"
	done := o.Out.Step("etcdctl snapshot save on " + h.Name())
	_, err = h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"crictl", "exec", id, "etcdctl",
		"--endpoints=" + e.clientURL, "--cacert=" + pki + "ca.crt", "--cert=" + pki + "healthcheck-client.crt", "--key=" + pki + "healthcheck-client.key",
		"snapshot", "save", snapshotInData}})
	done(err)
	if err != nil {
		return err
	}
	defer func() { _ = h.Remove(context.WithoutCancel(ctx), snapshotInData) }()
	st, err := snapshotStatus(ctx, h, id, snapshotInData)
	if err != nil {
		return err
	}
	data, err := h.ReadFile(ctx, snapshotInData)
	if err != nil {
		return err
	}
	// The copy is the file etcdutl checked.
	sum, err := host.Output(ctx, h, "sha256sum", snapshotInData)
	if err != nil {
		return err
	}
	local := sha256.Sum256(data)
	if want, _, _ := strings.Cut(sum, " "); want != hex.EncodeToString(local[:]) {
		return fmt.Errorf("the snapshot copied from %s has sha256 %x, the file there %s: take it again", h.Name(), local, want)
	}
	if err := writePrivate(config.ExpandHome(o.File), data, -1, -1); err != nil {
		return err
	}
	o.Out.Infof("snapshot %s: revision %d, %d keys, %d bytes, hash %08x (checked by etcdutl of %s)", o.File, st.Revision, st.TotalKey, len(data), st.Hash, e.image)
	o.Out.Total("kforge etcd snapshot save finished")
	return nil
}

func snapshotStatus(ctx context.Context, h host.Host, container, file string) (SnapshotStatus, error) {
	out, err := host.Output(ctx, h, "crictl", "exec", container, "etcdutl", "snapshot", "status", file, "-w", "json")
	if err != nil {
		return SnapshotStatus{}, fmt.Errorf("etcdutl snapshot status on %s: %w", h.Name(), err)
	}
	var st SnapshotStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("etcdutl snapshot status on %s: %q: %w", h.Name(), out, err)
	}
	if st.TotalKey == 0 {
		return st, fmt.Errorf("the snapshot on %s holds no keys", h.Name())
	}
	return st, nil
}

// EtcdSnapshotRestore brings the cluster back to a snapshot: it stops the
// static pods of every control plane, restores the snapshot with the
// etcdutl of the cluster's etcd image into a new data directory on each
// (a new cluster ID and new member IDs, every control plane's member in
// the initial cluster), swaps it for /var/lib/etcd (the old one is kept
// beside it), starts the control planes again and waits for the API
// server and the nodes.
func EtcdSnapshotRestore(ctx context.Context, o EtcdSnapshotOptions) error {
	if _, err := os.Stat(config.ExpandHome(o.File)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	cps, closeAll, err := etcdControlPlanes(ctx, &o)
	if err != nil {
		return err
	}
	defer closeAll()
	var initial []string
	for _, cp := range cps {
		initial = append(initial, cp.e.name+"="+cp.e.peerURL)
	}
	work := etcdWorkDir + "/restore"
	manifests := []string{"kube-scheduler.yaml", "kube-controller-manager.yaml", "kube-apiserver.yaml", "etcd.yaml"}
	parked := work + "/manifests"
	// each runs fn on every control plane, one after another, as one step.
	each := func(title string, fn func(h host.Host, e etcdPod) error) error {
		for _, cp := range cps {
			done := o.Out.Step(title + " on " + cp.h.Name())
			err := fn(cp.h, cp.e)
			done(err)
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := each("upload the snapshot", func(h host.Host, _ etcdPod) error {
		if err := h.Remove(ctx, work); err != nil {
			return err
		}
		return h.Upload(ctx, config.ExpandHome(o.File), work+"/snapshot.db", layout.SecretMode)
	}); err != nil {
		return err
	}
	// etcdutl of the cluster's etcd, in a container of its image that sees
	// only the work directory.
	if err := each("etcdutl snapshot restore", func(h host.Host, e etcdPod) error {
		// A container a killed restore left behind would block the name.
		_, _ = h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"ctr", "--address", layout.ContainerdSocket, "-n", layout.ContainerdNamespace, "containers", "rm", "kforge-etcd-restore"}})
		_, err := h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{
			"ctr", "--address", layout.ContainerdSocket, "-n", layout.ContainerdNamespace, "run", "--rm",
			"--mount", "type=bind,src=" + work + ",dst=/restore,options=rbind:rw",
			e.image, "kforge-etcd-restore",
			"etcdutl", "snapshot", "restore", "/restore/snapshot.db", "--data-dir", "/restore/data",
			"--name", e.name, "--initial-cluster", strings.Join(initial, ","), "--initial-advertise-peer-urls", e.peerURL,
		}})
		return err
	}); err != nil {
		return err
	}
	if err := each("stop the control plane", func(h host.Host, _ etcdPod) error {
		for _, m := range manifests {
			if _, err := h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"sh", "-c", `mkdir -p "$2" && mv -f "$1" "$2/"`, "sh", path.Join(layout.ManifestsDir, m), parked}}); err != nil {
				return fmt.Errorf("%w; the manifests are in %s on %s", err, parked, h.Name())
			}
		}
		// The kubelet would give the API server its 30 s grace period;
		// the state it would save is being replaced anyway.
		ids, _ := host.Output(ctx, h, "crictl", "ps", "--name", "^(etcd|kube-apiserver|kube-controller-manager|kube-scheduler)$", "--quiet")
		if ids != "" {
			_, _ = h.Run(ctx, host.Cmd{Sudo: true, Argv: append([]string{"crictl", "stop", "--timeout", "5"}, strings.Fields(ids)...)})
		}
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, RestoreTimeout, true, func(ctx context.Context) (bool, error) {
			out, err := host.Output(ctx, h, "crictl", "ps", "--name", "^(etcd|kube-apiserver)$", "--quiet")
			return err == nil && out == "", nil
		})
		if err != nil {
			return fmt.Errorf("%w; the manifests are in %s on %s", err, parked, h.Name())
		}
		return nil
	}); err != nil {
		return err
	}
	old := layout.EtcdBeforeRestore
	if err := each("swap in the restored data directory", func(h host.Host, _ etcdPod) error {
		_, err := h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"sh", "-c",
			`rm -rf "$3" && mv "$1" "$3" && mv "$2" "$1" && chmod 0700 "$1"`, "sh", layout.EtcdDataDir, work + "/data", old}})
		if err != nil {
			return fmt.Errorf("%w; the manifests are in %s on %s", err, parked, h.Name())
		}
		return nil
	}); err != nil {
		return err
	}
	if err := each("start the control plane", func(h host.Host, _ etcdPod) error {
		for i := len(manifests) - 1; i >= 0; i-- {
			if _, err := h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"mv", "-f", path.Join(parked, manifests[i]), layout.ManifestsDir + "/"}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	h := cps[0].h
	step := func(title string, fn func() error) error {
		done := o.Out.Step(title)
		err := fn()
		done(err)
		return err
	}
	var last string
	if err := step("wait for the API server, the control plane and every node Ready", func() error {
		return wait.PollUntilContextTimeout(ctx, time.Second, RestoreTimeout, true, func(ctx context.Context) (bool, error) {
			c, err := kube.FromHost(ctx, h, layout.AdminConf, "")
			if err != nil {
				last = err.Error()
				return false, nil
			}
			nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				last = "the API server does not answer yet: " + err.Error()
				return false, nil
			}
			for _, n := range nodes.Items {
				if ready, _ := kube.NodeReady(&n); !ready {
					last = "node " + n.Name + " is not Ready"
					return false, nil
				}
			}
			pods, err := c.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			for _, p := range pods.Items {
				for _, cs := range p.Status.ContainerStatuses {
					if !cs.Ready {
						last = p.Name + " is not Ready"
						return false, nil
					}
				}
			}
			return len(nodes.Items) > 0 && len(pods.Items) > 0, nil
		})
	}); err != nil {
		return fmt.Errorf("after the restore: %s (%w)", last, err)
	}
	var names []string
	for _, cp := range cps {
		_ = cp.h.Remove(ctx, work)
		names = append(names, cp.h.Name())
	}
	o.Out.Infof("restored %s on %s; the data directory before the restore is %s (remove it once the cluster is as you want it)", o.File, strings.Join(names, ", "), old)
	o.Out.Total("kforge etcd snapshot restore finished")
	return nil
}
