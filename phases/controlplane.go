package phases

import (
	"context"
	"fmt"
	"path"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// controlPlaneManifest returns a phase function that writes one static pod
// manifest (etcd.yaml, kube-apiserver.yaml, ...) into
// /etc/kubernetes/manifests, where the kubelet picks it up.
func controlPlaneManifest(file string) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		files, err := renderControlPlane(d)
		if err != nil {
			return err
		}
		for _, f := range files {
			if path.Base(f.Path) == file {
				changed, err := host.WriteChanged(ctx, d.Host, f)
				if changed {
					if d.Results.ChangedManifests == nil {
						d.Results.ChangedManifests = map[string]bool{}
					}
					d.Results.ChangedManifests[file] = true
				}
				return err
			}
		}
		return fmt.Errorf("no rendered manifest %s", file)
	}
}

// etcdPhase creates etcd's data directory readable by root only (the
// kubelet would create a missing hostPath 0755) and writes etcd's
// manifest.
func etcdPhase(ctx context.Context, d *Data) error {
	if _, err := d.Host.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", `mkdir -p "$1" && chmod 0700 "$1"`, "sh", layout.EtcdDataDir}, Sudo: true}); err != nil {
		return err
	}
	return controlPlaneManifest("etcd.yaml")(ctx, d)
}

// apiServerPhase writes the audit policy the API server's manifest mounts,
// then the manifest.
func apiServerPhase(ctx context.Context, d *Data) error {
	policy, err := templates.AuditPolicy()
	if err != nil {
		return err
	}
	if _, err := host.WriteChanged(ctx, d.Host, host.File{Path: layout.AuditPolicy, Data: policy, Mode: layout.SecretMode}); err != nil {
		return err
	}
	return controlPlaneManifest("kube-apiserver.yaml")(ctx, d)
}
