package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// UpgradeWorker is the phase list kforge upgrade apply runs on a worker
// that has joined, from the operator's machine over its connection, with
// the cluster file at the target version: the bundle's worker binaries and
// images, the runtime, the node-local load balancer and the kubelet, which
// restarts on its new binary. The node keeps its identity: no token, no
// discovery, no new client certificate.
func UpgradeWorker() []Phase {
	return []Phase{
		{Name: "bundle", Short: "Verify the bundle and install a worker's binaries of the target version", Run: loadBundle},
		{Name: "runtime", Short: "Configure containerd, restarting it when its binary or config changed", Run: containerRuntime},
		{Name: "images", Short: "Import a worker's images of the target version", Run: loadImages},
		{Name: "apiserver-lb", Short: "With several control planes, the node-local load balancer", Run: apiServerLB},
		{Name: "kubelet", Short: "Write the kubelet's configuration and restart it on its new binary", Run: kubelet},
	}
}

// UpgradeRecord describes a node's upgrade backup (layout.UpgradeRecord).
type UpgradeRecord struct {
	From    string    `json:"from"`
	To      string    `json:"to"`
	Started time.Time `json:"started"`
	// EtcdUpgraded says the node's etcd ran the target's version: its data
	// may then be in the newer format, so a rollback keeps etcd's new
	// manifest (etcd does not run on data a newer minor wrote).
	EtcdUpgraded bool `json:"etcdUpgraded,omitempty"`
	// Done says the node finished its upgrade.
	Done bool `json:"done,omitempty"`
}

// upgradeBackupPaths are what a node's upgrade changes: /etc/kubernetes
// (manifests, PKI, kubeconfigs), the kubelet's configuration and unit,
// containerd's configuration, kforge's stamps, and every file the bundle
// phase installed.
var upgradeBackupPaths = []string{
	layout.KubernetesDir, layout.KubeletConfig, layout.KubeletFlagsEnv, layout.KubeletUnit, layout.KubeletUnitDropIn,
	layout.ContainerdConfig, layout.BinariesStamp, layout.ImagesStamp, layout.ContainerdStarted, layout.KubeletStarted,
	layout.Installed,
}

// ReadUpgradeRecord returns the host's upgrade record, or nil.
func ReadUpgradeRecord(ctx context.Context, h host.Host) (*UpgradeRecord, error) {
	b, err := h.ReadFile(ctx, layout.UpgradeRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r UpgradeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", layout.UpgradeRecord, h.Name(), err)
	}
	return &r, nil
}

// WriteUpgradeRecord replaces the host's upgrade record.
func WriteUpgradeRecord(ctx context.Context, h host.Host, r UpgradeRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return h.WriteFile(ctx, layout.UpgradeRecord, append(b, '\n'), layout.SecretMode)
}

// BackupNode keeps what the node runs at from before an upgrade to to
// changes it. A backup of the same upgrade is kept as it is: a re-run
// after an interruption must not take the half-upgraded state for the
// old one.
func BackupNode(ctx context.Context, h host.Host, from, to string, now time.Time) error {
	r, err := ReadUpgradeRecord(ctx, h)
	if err != nil {
		return err
	}
	if r != nil && r.From == from && r.To == to {
		return nil
	}
	if r != nil && r.To == from && r.Done {
		// The backup of an earlier upgrade, which this one replaces.
		r = nil
	}
	if r != nil && !r.Done {
		return fmt.Errorf("%s: an upgrade from %s to %s did not finish here; run it again (kforge upgrade apply with the bundle of %s) or take the node back (kforge upgrade rollback)", h.Name(), r.From, r.To, r.To)
	}
	if _, err := h.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"mkdir", "-p", "-m", "0700", layout.UpgradeDir}}); err != nil {
		return err
	}
	installed, err := h.ReadFile(ctx, layout.Installed)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	paths := append([]string(nil), upgradeBackupPaths...)
	paths = append(paths, strings.Fields(string(installed))...)
	// Only what exists, relative to /; written beside and renamed, so a
	// kill leaves no half archive under the final name.
	script := `set -e; umask 077; out=$1; shift; list=""; for p in "$@"; do [ -e "$p" ] && list="$list ${p#/}"; done; ` +
		`tar -C / -cpf "$out.tmp" $list; mv "$out.tmp" "$out"`
	if _, err := h.Run(ctx, host.Cmd{Sudo: true, Argv: append([]string{"sh", "-c", script, "sh", layout.UpgradeBackup}, paths...)}); err != nil {
		return fmt.Errorf("back up %s before the upgrade: %w", h.Name(), err)
	}
	return WriteUpgradeRecord(ctx, h, UpgradeRecord{From: from, To: to, Started: now.UTC()})
}

// RestoreNode puts back what BackupNode kept, except etcd's manifest once
// etcd ran the newer version, and restarts containerd when the binary
// restored is not the one running. It tells whether the kubelet runs
// another binary than the one restored, which RestartKubelet then starts:
// on a control plane only once its static pods are healthy again, since a
// kubelet started while the API server is down waits minutes for its
// Node before it runs any pod.
func RestoreNode(ctx context.Context, d *Data) (rec *UpgradeRecord, kubeletChanged bool, err error) {
	r, err := ReadUpgradeRecord(ctx, d.Host)
	if err != nil {
		return nil, false, err
	}
	if r == nil {
		return nil, false, fmt.Errorf("%s has no upgrade backup (%s): it was not changed by kforge upgrade apply, or was reset since", d.Host.Name(), layout.UpgradeBackup)
	}
	// What runs now, as the stamps say, before the restore puts back the
	// backup's stamps.
	_, kubeletRuns, err := d.binaryStarted(ctx, layout.KubeletBinary, layout.KubeletStarted)
	if err != nil {
		return r, false, err
	}
	_, containerdRuns, err := d.containerdBinary(ctx, d.Runtime())
	if err != nil {
		return r, false, err
	}
	// Unpacked beside, then only the files that differ are put back, each
	// renamed into place: a running binary is replaced, not written into,
	// and an unchanged static pod manifest is not touched (the kubelet
	// would restart its pod).
	exclude := ""
	if r.EtcdUpgraded {
		exclude = strings.TrimPrefix(etcdManifest, "/")
	}
	script := `set -e; umask 077; w=$1 b=$2 x=$3; rm -rf "$w"; mkdir -p "$w"; ` +
		`if [ -n "$x" ]; then tar -C "$w" -xpf "$b" --exclude "$x"; else tar -C "$w" -xpf "$b"; fi; cd "$w"; ` +
		`find . \( -type f -o -type l \) | while IFS= read -r f; do t="/${f#./}"; ` +
		`if ! cmp -s "$f" "$t" 2>/dev/null; then mkdir -p "$(dirname "$t")"; cp -pP "$f" "$t.kforge-restore"; mv -f "$t.kforge-restore" "$t"; fi; done; ` +
		`cd /; rm -rf "$w"`
	if _, err := d.Host.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"sh", "-c", script, "sh", layout.UpgradeDir + "/restore", layout.UpgradeBackup, exclude}}); err != nil {
		return r, false, fmt.Errorf("restore %s from %s: %w", d.Host.Name(), layout.UpgradeBackup, err)
	}
	if installed, _, err := d.containerdBinary(ctx, d.Runtime()); err != nil {
		return r, false, err
	} else if installed != containerdRuns {
		if err := d.Services.Restart(ctx, containerdService(d.Runtime())); err != nil {
			return r, false, err
		}
		if err := d.noteStarted(ctx, layout.ContainerdStarted, installed, ""); err != nil {
			return r, false, err
		}
	}
	installed, _, err := d.binaryStarted(ctx, layout.KubeletBinary, layout.KubeletStarted)
	if err != nil {
		return r, false, err
	}
	if installed != kubeletRuns {
		// Until RestartKubelet, the stamp says what runs.
		if err := d.Host.WriteFile(ctx, layout.KubeletStarted, []byte(kubeletRuns+"\n"), layout.PublicMode); err != nil {
			return r, false, err
		}
	}
	return r, installed != kubeletRuns, nil
}

// RestartKubelet restarts the kubelet with its files as they are, and
// records the binary it runs.
func RestartKubelet(ctx context.Context, d *Data) error {
	k, _, err := d.renderKubelet()
	if err != nil {
		return err
	}
	installed, started, err := d.binaryStarted(ctx, layout.KubeletBinary, layout.KubeletStarted)
	if err != nil {
		return err
	}
	if err := d.Services.Restart(ctx, kubeletService(k)); err != nil {
		return err
	}
	return d.noteStarted(ctx, layout.KubeletStarted, installed, started)
}
